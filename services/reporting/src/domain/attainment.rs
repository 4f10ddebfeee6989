//! A contract's attainment: what each handoff contributes to its period's numbers, and how each
//! target stands on the value projected to the period's end. Pure; no I/O.
//!
//! Definitions (docs/contracts.md says the same in words):
//! - handoffs: handoffs created in the period under the contract;
//! - valid leads: those FS accepted (every stored handoff passed the gate);
//! - accepted rate: accepted / (accepted + rejected);
//! - IS win rate: won / (won + lost + rejected): a rejected lead is decided and not won;
//! - won amount: won amounts in the contract's currency (never added across currencies);
//! - decision-SLA adherence: decisions in time, or late for a system reason / decisions due
//!   (made, or breached);
//! - reason on every rejection: rejections with a reason code / rejections;
//! - FS win rate: won / (won + lost) of accepted handoffs;
//! - dispute-ruling adherence: disputes ruled in time / disputes due (ruled, or breached).

use baton_proto::reporting::v1::{ContractTerms, ScorecardPeriod};
use baton_shared::time;
use chrono::{DateTime, Utc};

use super::kpis::{Granularity, Period, periods};

/// The periods of a contract: its span `[period_start, period_end)` cut by its scorecard period in
/// its time zone (empty when the span is missing or too long to split).
pub fn contract_periods(terms: &ContractTerms) -> Vec<Period> {
    let start = terms.period_start.as_ref().and_then(time::from_proto);
    let end = terms.period_end.as_ref().and_then(time::from_proto);
    let (Some(start), Some(end)) = (start, end) else {
        return Vec::new();
    };
    let granularity = match ScorecardPeriod::try_from(terms.scorecard_period) {
        Ok(ScorecardPeriod::Week) => Granularity::Week,
        Ok(ScorecardPeriod::Month) => Granularity::Month,
        Ok(ScorecardPeriod::Quarter) => Granularity::Quarter,
        _ => Granularity::Whole,
    };
    periods(
        start,
        end,
        granularity,
        baton_shared::contract::time_zone(terms),
    )
    .unwrap_or_default()
}

/// A period's numbers (also one handoff's contribution to them, each 0 or 1 but the amount).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub handoffs: i64,
    pub accepted: i64,
    /// Rejected now, disputed or not.
    pub rejected: i64,
    /// Rejected now and not under dispute.
    pub rejected_final: i64,
    pub rejected_with_reason: i64,
    pub won: i64,
    pub lost: i64,
    pub won_amount_minor: i64,
    pub decisions_due: i64,
    pub decisions_in_time: i64,
    pub human_breaches: i64,
    pub system_breaches: i64,
    pub disputes_due: i64,
    pub disputes_in_time: i64,
}

/// The columns of [`Counts`], in order (their names as stored).
pub const COUNT_NAMES: [&str; 14] = [
    "handoffs",
    "accepted",
    "rejected",
    "rejected_final",
    "rejected_with_reason",
    "won",
    "lost",
    "won_amount_minor",
    "decisions_due",
    "decisions_in_time",
    "human_breaches",
    "system_breaches",
    "disputes_due",
    "disputes_in_time",
];

impl Counts {
    pub fn to_array(self) -> [i64; 14] {
        [
            self.handoffs,
            self.accepted,
            self.rejected,
            self.rejected_final,
            self.rejected_with_reason,
            self.won,
            self.lost,
            self.won_amount_minor,
            self.decisions_due,
            self.decisions_in_time,
            self.human_breaches,
            self.system_breaches,
            self.disputes_due,
            self.disputes_in_time,
        ]
    }

    pub fn from_array(a: [i64; 14]) -> Self {
        Counts {
            handoffs: a[0],
            accepted: a[1],
            rejected: a[2],
            rejected_final: a[3],
            rejected_with_reason: a[4],
            won: a[5],
            lost: a[6],
            won_amount_minor: a[7],
            decisions_due: a[8],
            decisions_in_time: a[9],
            human_breaches: a[10],
            system_breaches: a[11],
            disputes_due: a[12],
            disputes_in_time: a[13],
        }
    }

    pub fn plus(self, other: Counts) -> Counts {
        let (a, b) = (self.to_array(), other.to_array());
        Counts::from_array(std::array::from_fn(|i| a[i] + b[i]))
    }

    pub fn minus(self, other: Counts) -> Counts {
        let (a, b) = (self.to_array(), other.to_array());
        Counts::from_array(std::array::from_fn(|i| a[i] - b[i]))
    }

    pub fn is_zero(self) -> bool {
        self.to_array().iter().all(|v| *v == 0)
    }
}

/// Where a change to a handoff of the period starting at `base` is counted: that period while
/// its scorecard is open, else the first later period whose scorecard is open (None: none is).
pub fn counting_period(
    periods: &[Period],
    closed: &[DateTime<Utc>],
    base: DateTime<Utc>,
) -> Option<Period> {
    periods
        .iter()
        .find(|p| p.start >= base && !closed.contains(&p.start))
        .copied()
}

/// Where a handoff stands, as far as attainment cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Pending,
    Accepted,
    Rejected,
    Disputed,
    Won,
    Lost,
}

/// Why a breached SLA was late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breach {
    /// A person held it.
    Human,
    /// The system did: no rep available, a queue, a late event.
    System,
}

/// What reporting keeps of one handoff.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandoffFacts {
    pub state: State,
    pub reason_code: String,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_due_at: Option<DateTime<Utc>>,
    pub decision_breach: Option<Breach>,
    pub ruled_at: Option<DateTime<Utc>>,
    pub ruling_due_at: Option<DateTime<Utc>>,
    pub ruling_breach: Option<Breach>,
    /// (currency, minor units) of a won deal.
    pub amount: Option<(String, i64)>,
}

/// What `h` adds to its period's numbers under a contract in `currency`.
pub fn contribution(h: &HandoffFacts, currency: &str) -> Counts {
    let b = |v: bool| i64::from(v);
    let accepted = matches!(h.state, State::Accepted | State::Won | State::Lost);
    let rejected = matches!(h.state, State::Rejected | State::Disputed);
    let won = h.state == State::Won;
    let won_amount = match &h.amount {
        Some((c, minor)) if won && c.eq_ignore_ascii_case(currency) => *minor,
        _ => 0,
    };
    let decision_due = h.decided_at.is_some() || h.decision_breach.is_some();
    let decided_in_time = match (h.decided_at, h.decision_due_at) {
        (Some(at), Some(due)) => at <= due,
        (Some(_), None) => true,
        _ => false,
    };
    let decision_ok = match h.decision_breach {
        Some(Breach::System) => true,
        Some(Breach::Human) => false,
        None => decided_in_time,
    };
    let ruling_due = h.ruled_at.is_some() || h.ruling_breach.is_some();
    let ruled_in_time = match (h.ruled_at, h.ruling_due_at) {
        (Some(at), Some(due)) => at <= due,
        (Some(_), None) => true,
        _ => false,
    };
    let ruling_ok = match h.ruling_breach {
        Some(Breach::System) => true,
        Some(Breach::Human) => false,
        None => ruled_in_time,
    };
    Counts {
        handoffs: 1,
        accepted: b(accepted),
        rejected: b(rejected),
        rejected_final: b(h.state == State::Rejected),
        rejected_with_reason: b(rejected && !h.reason_code.is_empty()),
        won: b(won),
        lost: b(h.state == State::Lost),
        won_amount_minor: won_amount,
        decisions_due: b(decision_due),
        decisions_in_time: b(decision_due && decision_ok),
        human_breaches: b(h.decision_breach == Some(Breach::Human)),
        system_breaches: b(h.decision_breach == Some(Breach::System)),
        disputes_due: b(ruling_due),
        disputes_in_time: b(ruling_due && ruling_ok),
    }
}

/// Which side a target binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    InsideSales,
    FieldSales,
}

/// How a target is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A count or amount that only grows: projected from the elapsed part of the period.
    Count,
    /// A percentage: the value so far is the projection.
    Rate,
    /// Every one must hold (100 %); one miss breaks it.
    Every,
}

/// One target of a contract: what it measures and its value (None = the contract sets none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub name: &'static str,
    pub side: Side,
    pub kind: Kind,
    pub value: Option<f64>,
    pub definition: &'static str,
}

/// The targets of a contract's terms, IS first.
pub fn targets(terms: &baton_proto::reporting::v1::ContractTerms) -> Vec<Target> {
    let is = terms.is_targets.clone().unwrap_or_default();
    let fs = terms.fs_targets.unwrap_or_default();
    let set = |v: f64| (v > 0.0).then_some(v);
    let t = |name, side, kind, value, definition| Target {
        name,
        side,
        kind,
        value,
        definition,
    };
    use {Kind::*, Side::*};
    vec![
        t(
            "handoffs",
            InsideSales,
            Count,
            set(f64::from(is.handoffs_per_period)),
            "handoffs created in the period",
        ),
        t(
            "valid_leads",
            InsideSales,
            Count,
            set(f64::from(is.valid_leads_per_period)),
            "handoffs of the period that passed the gate and that FS accepted",
        ),
        t(
            "accepted_rate",
            InsideSales,
            Rate,
            set(is.accepted_rate_pct),
            "accepted / decided (accepted or rejected) handoffs",
        ),
        t(
            "win_rate",
            InsideSales,
            Rate,
            set(is.win_rate_pct),
            "won / decided handed-off leads (won, lost or rejected)",
        ),
        t(
            "won_amount",
            InsideSales,
            Count,
            (is.won_amount_minor > 0).then_some(is.won_amount_minor as f64),
            "won amounts in the contract's currency, minor units",
        ),
        t(
            "decision_sla_adherence",
            FieldSales,
            Rate,
            set(fs.decision_sla_adherence_pct),
            "decisions in time (or late for a system reason) / decisions due",
        ),
        t(
            "reason_on_every_rejection",
            FieldSales,
            Every,
            fs.reason_on_every_rejection.then_some(100.0),
            "rejections with a reason from the contract / rejections",
        ),
        t(
            "win_rate_of_accepted",
            FieldSales,
            Rate,
            set(fs.win_rate_pct),
            "won / decided (won or lost) accepted handoffs",
        ),
        t(
            "dispute_ruling_adherence",
            FieldSales,
            Rate,
            set(fs.dispute_ruling_adherence_pct),
            "disputes ruled in time / disputes due",
        ),
    ]
}

/// The numerator and denominator of `target` in `c` (denominator 0 for counts).
pub fn fraction(target: &str, c: &Counts) -> (i64, i64) {
    match target {
        "handoffs" => (c.handoffs, 0),
        "valid_leads" => (c.accepted, 0),
        "accepted_rate" => (c.accepted, c.accepted + c.rejected),
        "win_rate" => (c.won, c.won + c.lost + c.rejected_final),
        "won_amount" => (c.won_amount_minor, 0),
        "decision_sla_adherence" => (c.decisions_in_time, c.decisions_due),
        "reason_on_every_rejection" => (c.rejected_with_reason, c.rejected),
        "win_rate_of_accepted" => (c.won, c.won + c.lost),
        "dispute_ruling_adherence" => (c.disputes_in_time, c.disputes_due),
        _ => (0, 0),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Met,
    OnTrack,
    AtRisk,
    Missed,
    NoData,
    NoTarget,
}

/// A target judged in a period at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub target: Target,
    pub numerator: i64,
    pub denominator: i64,
    pub actual: Option<f64>,
    pub projected: Option<f64>,
    pub status: Status,
}

/// Judges `target` on `counts` of `period` as of `as_of`.
pub fn judge(target: Target, counts: &Counts, period: Period, as_of: DateTime<Utc>) -> Judged {
    let (numerator, denominator) = fraction(target.name, counts);
    let ended = as_of >= period.end;
    let (actual, projected) = match target.kind {
        Kind::Count => {
            let actual = numerator as f64;
            let total = (period.end - period.start).num_seconds().max(1) as f64;
            let elapsed = (as_of.min(period.end) - period.start).num_seconds() as f64;
            let projected = if ended || elapsed <= 0.0 {
                actual
            } else {
                actual * total / elapsed
            };
            (Some(actual), Some(projected))
        }
        Kind::Rate | Kind::Every => {
            let value = (denominator > 0).then(|| numerator as f64 * 100.0 / denominator as f64);
            (value, value)
        }
    };
    let status = match (target.value, actual, projected) {
        (None, _, _) => Status::NoTarget,
        (_, None, _) | (_, _, None) => Status::NoData,
        (Some(goal), Some(actual), Some(projected)) => match target.kind {
            Kind::Count if actual >= goal => Status::Met,
            Kind::Every if numerator < denominator => Status::Missed,
            _ if ended && actual >= goal => Status::Met,
            _ if ended => Status::Missed,
            _ if projected >= goal => Status::OnTrack,
            _ => Status::AtRisk,
        },
    };
    Judged {
        target,
        numerator,
        denominator,
        actual,
        projected,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 1, day, 0, 0, 0).unwrap()
    }

    fn january() -> Period {
        Period {
            start: at(1),
            end: Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap(),
        }
    }

    fn target(name: &'static str, kind: Kind, value: f64) -> Target {
        Target {
            name,
            side: Side::InsideSales,
            kind,
            value: Some(value),
            definition: "",
        }
    }

    #[test]
    fn a_monthly_contract_splits_into_calendar_months_of_its_time_zone() {
        let terms = ContractTerms {
            period_start: Some(time::to_proto(at(1))),
            period_end: Some(time::to_proto(
                Utc.with_ymd_and_hms(2027, 4, 1, 0, 0, 0).unwrap(),
            )),
            scorecard_period: ScorecardPeriod::Month as i32,
            ..ContractTerms::default()
        };
        let p = contract_periods(&terms);
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[1].start,
            Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap()
        );
        let whole = ContractTerms {
            scorecard_period: 0,
            ..terms
        };
        assert_eq!(contract_periods(&whole).len(), 1);
    }

    #[test]
    fn a_change_to_a_closed_period_counts_in_the_next_open_one() {
        let p = |m: u32| Period {
            start: Utc.with_ymd_and_hms(2027, m, 1, 0, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2027, m + 1, 1, 0, 0, 0).unwrap(),
        };
        let periods = [p(1), p(2), p(3)];
        assert_eq!(counting_period(&periods, &[], p(1).start), Some(p(1)));
        assert_eq!(
            counting_period(&periods, &[p(1).start], p(1).start),
            Some(p(2))
        );
        let two = [p(1).start, p(2).start];
        assert_eq!(counting_period(&periods, &two, p(1).start), Some(p(3)));
        let all = [p(1).start, p(2).start, p(3).start];
        assert_eq!(counting_period(&periods, &all, p(2).start), None);
    }

    #[test]
    fn a_won_deal_adds_its_amount_only_in_the_contracts_currency() {
        let won = HandoffFacts {
            state: State::Won,
            decided_at: Some(at(2)),
            decision_due_at: Some(at(3)),
            amount: Some(("JPY".into(), 500)),
            ..HandoffFacts::default()
        };
        let c = contribution(&won, "JPY");
        assert_eq!(
            (c.handoffs, c.accepted, c.won, c.won_amount_minor),
            (1, 1, 1, 500)
        );
        assert_eq!((c.decisions_due, c.decisions_in_time), (1, 1));
        assert_eq!(contribution(&won, "EUR").won_amount_minor, 0);
    }

    #[test]
    fn a_late_decision_is_the_person_s_unless_the_system_held_it() {
        let mut late = HandoffFacts {
            state: State::Accepted,
            decided_at: Some(at(5)),
            decision_due_at: Some(at(3)),
            decision_breach: Some(Breach::Human),
            ..HandoffFacts::default()
        };
        let c = contribution(&late, "JPY");
        assert_eq!(
            (c.decisions_due, c.decisions_in_time, c.human_breaches),
            (1, 0, 1)
        );
        late.decision_breach = Some(Breach::System);
        let c = contribution(&late, "JPY");
        assert_eq!(
            (c.decisions_due, c.decisions_in_time, c.system_breaches),
            (1, 1, 1)
        );
        let pending = HandoffFacts::default();
        assert_eq!(contribution(&pending, "JPY").decisions_due, 0);
    }

    #[test]
    fn a_count_is_projected_from_the_elapsed_part_of_the_period() {
        // 10 handoffs after 10 of January's 31 days project to 31; a target of 40 is at risk,
        // of 30 on track; 40 reached is met at once.
        let c = Counts {
            handoffs: 10,
            ..Counts::default()
        };
        let j = judge(target("handoffs", Kind::Count, 40.0), &c, january(), at(11));
        assert_eq!(j.projected, Some(31.0));
        assert_eq!(j.status, Status::AtRisk);
        let j = judge(target("handoffs", Kind::Count, 30.0), &c, january(), at(11));
        assert_eq!(j.status, Status::OnTrack);
        let done = Counts {
            handoffs: 40,
            ..Counts::default()
        };
        let j = judge(
            target("handoffs", Kind::Count, 40.0),
            &done,
            january(),
            at(2),
        );
        assert_eq!(j.status, Status::Met);
        let end = january().end + Duration::days(1);
        let j = judge(target("handoffs", Kind::Count, 40.0), &c, january(), end);
        assert_eq!((j.projected, j.status), (Some(10.0), Status::Missed));
    }

    #[test]
    fn a_rate_with_no_denominator_has_no_value_and_every_breaks_on_one_miss() {
        let none = Counts::default();
        let j = judge(
            target("accepted_rate", Kind::Rate, 70.0),
            &none,
            january(),
            at(5),
        );
        assert_eq!((j.actual, j.status), (None, Status::NoData));
        let c = Counts {
            accepted: 3,
            rejected: 1,
            rejected_with_reason: 0,
            ..Counts::default()
        };
        let j = judge(
            target("accepted_rate", Kind::Rate, 70.0),
            &c,
            january(),
            at(5),
        );
        assert_eq!((j.numerator, j.denominator, j.actual), (3, 4, Some(75.0)));
        assert_eq!(j.status, Status::OnTrack);
        let j = judge(
            target("reason_on_every_rejection", Kind::Every, 100.0),
            &c,
            january(),
            at(5),
        );
        assert_eq!(
            (j.numerator, j.denominator, j.status),
            (0, 1, Status::Missed)
        );
    }
}
