//! The life of an IS → FS handoff: pending → accepted | rejected; rejected → disputed → rejected
//! (upheld) | pending again (overturned: re-opened for FS); accepted → won | lost.

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
        (Disputed, Step::Overturn) => Ok(Pending),
        (_, Step::Uphold | Step::Overturn) => Err("disputed_only"),
        (Accepted, Step::Win) => Ok(Won),
        (Accepted, Step::Lose) => Ok(Lost),
        (_, Step::Win | Step::Lose) => Err("accepted_only"),
    }
}

/// A lead's BANT as qualification recorded it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bant {
    pub budget: bool,
    pub authority: bool,
    pub need: bool,
    pub timeframe: bool,
}

impl Bant {
    /// Stored as bits: 1 budget, 2 authority, 4 need, 8 timeframe.
    pub fn bits(self) -> i32 {
        i32::from(self.budget)
            | i32::from(self.authority) << 1
            | i32::from(self.need) << 2
            | i32::from(self.timeframe) << 3
    }

    pub fn from_bits(bits: i32) -> Self {
        Bant {
            budget: bits & 1 != 0,
            authority: bits & 2 != 0,
            need: bits & 4 != 0,
            timeframe: bits & 8 != 0,
        }
    }

    /// The confirmed items by name ("budget", …).
    pub fn confirmed(self) -> Vec<&'static str> {
        [
            (self.budget, "budget"),
            (self.authority, "authority"),
            (self.need, "need"),
            (self.timeframe, "timeframe"),
        ]
        .into_iter()
        .filter_map(|(yes, name)| yes.then_some(name))
        .collect()
    }
}

/// What distribution knows of a lead someone hands off.
#[derive(Debug, Clone, Default)]
pub struct LeadStanding<'a> {
    /// Distribution heard of the lead (a profile, a signal or an assignment).
    pub known: bool,
    pub erased: bool,
    pub merged_into: Option<&'a str>,
    /// The team of the lead's current assignment, when a rep holds it (not queued).
    pub assigned_team: Option<&'a str>,
}

/// Why a lead may not be handed off by `is_team`: `Err((rule, description))`; a rule of
/// `"not_found"` means the lead is unknown.
pub fn may_hand_off(
    lead_id: &str,
    is_team: &str,
    lead: &LeadStanding<'_>,
) -> Result<(), (&'static str, String)> {
    if let Some(survivor) = lead.merged_into {
        return Err((
            "lead_merged",
            format!("lead {lead_id} was merged into {survivor}; hand off {survivor}"),
        ));
    }
    if lead.erased {
        return Err((
            "lead_erased",
            format!("lead {lead_id} was erased and cannot be handed off"),
        ));
    }
    if !lead.known {
        return Err(("not_found", format!("lead {lead_id}")));
    }
    match lead.assigned_team {
        Some(team) if team == is_team => Ok(()),
        Some(team) => Err((
            "lead_not_assigned_to_team",
            format!("lead {lead_id} is assigned to team {team}, not {is_team}"),
        )),
        None => Err((
            "lead_not_assigned_to_team",
            format!("lead {lead_id} is not assigned to a rep of {is_team}"),
        )),
    }
}

/// Who may rule on a dispute: an owner the contract names, or its escalation owner once the
/// dispute was escalated.
pub fn may_rule(actor: &str, owners: [&str; 2], escalation_owner: &str, escalated: bool) -> bool {
    let is = |o: &str| !o.trim().is_empty() && o.trim().eq_ignore_ascii_case(actor);
    owners.iter().any(|o| is(o)) || (escalated && is(escalation_owner))
}

/// Seconds FS had left to decide at `at` (never negative).
pub fn decision_left(due: chrono::DateTime<chrono::Utc>, at: chrono::DateTime<chrono::Utc>) -> i64 {
    (due - at).num_seconds().max(0)
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
        assert_eq!(after(disputed, Step::Overturn), Ok(HandoffState::Pending));
        assert_eq!(after(disputed, Step::Dispute), Err("rejected_only"));
        assert_eq!(after(rejected, Step::Accept), Err("pending_only"));
    }

    #[test]
    fn owners_rule_and_the_escalation_owner_only_once_escalated() {
        let owners = ["is@x", "fs@x"];
        assert!(may_rule("FS@x", owners, "boss@x", false));
        assert!(!may_rule("boss@x", owners, "boss@x", false));
        assert!(may_rule("boss@x", owners, "boss@x", true));
        assert!(!may_rule("rep@x", owners, "", true));
    }

    #[test]
    fn bant_bits_round_trip_and_name_what_is_confirmed() {
        let bant = Bant {
            budget: true,
            need: true,
            ..Bant::default()
        };
        assert_eq!(bant.bits(), 5);
        assert_eq!(Bant::from_bits(5), bant);
        assert_eq!(bant.confirmed(), vec!["budget", "need"]);
    }

    #[test]
    fn only_a_live_lead_assigned_to_the_team_may_be_handed_off() {
        let mut lead = LeadStanding {
            known: true,
            assigned_team: Some("is"),
            ..LeadStanding::default()
        };
        assert_eq!(may_hand_off("l", "is", &lead), Ok(()));
        assert_eq!(
            may_hand_off("l", "is-2", &lead).unwrap_err().0,
            "lead_not_assigned_to_team"
        );
        lead.assigned_team = None;
        assert_eq!(
            may_hand_off("l", "is", &lead).unwrap_err().0,
            "lead_not_assigned_to_team"
        );
        lead.erased = true;
        assert_eq!(may_hand_off("l", "is", &lead).unwrap_err().0, "lead_erased");
        lead.merged_into = Some("s");
        assert_eq!(may_hand_off("l", "is", &lead).unwrap_err().0, "lead_merged");
        let unknown = LeadStanding::default();
        assert_eq!(
            may_hand_off("l", "is", &unknown).unwrap_err().0,
            "not_found"
        );
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
