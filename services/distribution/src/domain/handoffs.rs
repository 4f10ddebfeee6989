//! The life of an IS → FS handoff: pending → accepted | rejected; rejected → disputed → rejected
//! (upheld) | accepted (overturned); accepted → won | lost.

use baton_proto::distribution::v1::{HandoffAction, HandoffState};

/// What someone does to a handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Accept,
    Reject,
    Dispute,
    Uphold,
    Overturn,
    Win,
    Lose,
}

/// The enum of a step recorded by its name ("created", "accepted", …); unknown names are
/// unspecified.
pub fn action_kind(action: &str) -> HandoffAction {
    HandoffAction::from_str_name(&format!("HANDOFF_ACTION_{}", action.to_ascii_uppercase()))
        .unwrap_or(HandoffAction::Unspecified)
}

impl Step {
    /// The name recorded in the handoff's steps.
    pub fn action(self) -> &'static str {
        match self {
            Step::Accept => "accepted",
            Step::Reject => "rejected",
            Step::Dispute => "disputed",
            Step::Uphold => "dispute_upheld",
            Step::Overturn => "dispute_overturned",
            Step::Win => "won",
            Step::Lose => "lost",
        }
    }
}

/// The state after `step`, or the rule it breaks.
pub fn after(state: HandoffState, step: Step) -> Result<HandoffState, &'static str> {
    use HandoffState::*;
    match (state, step) {
        (Pending, Step::Accept) => Ok(Accepted),
        (Pending, Step::Reject) => Ok(Rejected),
        (_, Step::Accept | Step::Reject) => Err("pending_only"),
        (Rejected, Step::Dispute) => Ok(Disputed),
        (_, Step::Dispute) => Err("rejected_only"),
        (Disputed, Step::Uphold) => Ok(Rejected),
        (Disputed, Step::Overturn) => Ok(Accepted),
        (_, Step::Uphold | Step::Overturn) => Err("disputed_only"),
        (Accepted, Step::Win) => Ok(Won),
        (Accepted, Step::Lose) => Ok(Lost),
        (_, Step::Win | Step::Lose) => Err("accepted_only"),
    }
}

/// A handoff still open (a lead has at most one).
pub fn is_open(state: HandoffState) -> bool {
    matches!(
        state,
        HandoffState::Pending | HandoffState::Accepted | HandoffState::Disputed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_can_be_disputed_once_and_ruled_either_way() {
        let rejected = after(HandoffState::Pending, Step::Reject).unwrap();
        let disputed = after(rejected, Step::Dispute).unwrap();
        assert_eq!(after(disputed, Step::Uphold), Ok(HandoffState::Rejected));
        assert_eq!(after(disputed, Step::Overturn), Ok(HandoffState::Accepted));
        assert_eq!(after(disputed, Step::Dispute), Err("rejected_only"));
        assert_eq!(after(rejected, Step::Accept), Err("pending_only"));
    }

    #[test]
    fn only_an_accepted_handoff_has_an_outcome() {
        assert_eq!(
            after(HandoffState::Pending, Step::Win),
            Err("accepted_only")
        );
        assert_eq!(
            after(HandoffState::Accepted, Step::Lose),
            Ok(HandoffState::Lost)
        );
    }
}
