//! Round robin: rotate through active reps in queue (creation) order.

/// A rep as the rotation sees it: its place in the queue and whether it can take leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub queue_position: i64,
    pub active: bool,
}

/// The queue position of the rep who gets the next lead: the first active rep after
/// `last_assigned` (wrapping around), or `None` if no rep is active. `candidates` must be sorted by
/// queue position.
pub fn next_in_rotation(candidates: &[Candidate], last_assigned: Option<i64>) -> Option<i64> {
    let active = candidates.iter().filter(|c| c.active);
    let after_last =
        last_assigned.and_then(|last| active.clone().find(|c| c.queue_position > last));
    after_last
        .or_else(|| active.clone().next())
        .map(|c| c.queue_position)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reps(active: &[bool]) -> Vec<Candidate> {
        active
            .iter()
            .enumerate()
            .map(|(i, a)| Candidate {
                queue_position: i as i64 + 1,
                active: *a,
            })
            .collect()
    }

    #[test]
    fn rotates_through_every_rep_and_wraps() {
        let r = reps(&[true, true, true]);
        let mut last = None;
        let picks: Vec<_> = (0..6)
            .map(|_| {
                last = next_in_rotation(&r, last);
                last.unwrap()
            })
            .collect();
        assert_eq!(picks, [1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn inactive_reps_are_skipped() {
        let r = reps(&[true, false, true]);
        assert_eq!(next_in_rotation(&r, Some(1)), Some(3));
        assert_eq!(next_in_rotation(&r, Some(3)), Some(1));
    }

    #[test]
    fn nobody_active_means_nobody() {
        assert_eq!(next_in_rotation(&reps(&[false, false]), None), None);
        assert_eq!(next_in_rotation(&[], Some(4)), None);
    }

    #[test]
    fn a_removed_last_rep_continues_with_the_next_in_queue() {
        let r = reps(&[true, true]);
        assert_eq!(next_in_rotation(&r, Some(7)), Some(1));
    }
}
