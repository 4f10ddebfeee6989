//! Performance-weighted routing: a team that opts in routes by each rep's own weight times a
//! performance factor, the rep's win rate over the team's pooled win rate in a window, held inside
//! guardrails kept as data (window, minimum decided handoffs, lowest and highest factor, most
//! change per period). Pure; the store counts the handoffs and keeps the factors.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Which handoffs count toward a rep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Basis {
    /// The leads the rep handed off: won / (won + lost + rejected).
    HandedOff,
    /// The leads handed to the rep that it closed: won / (won + lost).
    Closed,
}

/// A handoff's final state as weighting sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Won,
    Lost,
    Rejected,
}

impl Basis {
    /// Whether a handoff with `verdict` counts as decided, and as won.
    pub fn tally(self, verdict: Verdict) -> Option<bool> {
        match (self, verdict) {
            (_, Verdict::Won) => Some(true),
            (_, Verdict::Lost) | (Basis::HandedOff, Verdict::Rejected) => Some(false),
            (Basis::Closed, Verdict::Rejected) => None,
        }
    }
}

/// The guardrails of a team's weighting, with their documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Guardrails {
    pub window_days: i32,
    pub min_decided: i32,
    pub min_weight: f64,
    pub max_weight: f64,
    pub max_change: f64,
    pub period_days: i32,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            window_days: 90,
            min_decided: 10,
            min_weight: 0.5,
            max_weight: 2.0,
            max_change: 0.25,
            period_days: 7,
        }
    }
}

/// Every problem of a set of guardrails, as (field, description).
pub fn validate(g: &Guardrails) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    let mut days = |field, value: i32, max: i32| {
        if !(1..=max).contains(&value) {
            problems.push((field, format!("must be 1-{max} days, not {value}")));
        }
    };
    days("guardrails.window_days", g.window_days, 730);
    days("guardrails.period_days", g.period_days, 92);
    if !(1..=100_000).contains(&g.min_decided) {
        problems.push((
            "guardrails.min_decided",
            format!("must be 1-100000, not {}", g.min_decided),
        ));
    }
    if !(g.min_weight > 0.0 && g.min_weight <= 1.0) {
        problems.push((
            "guardrails.min_weight",
            format!("must be greater than 0 and at most 1, not {}", g.min_weight),
        ));
    }
    if !(1.0..=10.0).contains(&g.max_weight) {
        problems.push((
            "guardrails.max_weight",
            format!("must be 1-10, not {}", g.max_weight),
        ));
    }
    if !(g.max_change > 0.0 && g.max_change <= 10.0) {
        problems.push((
            "guardrails.max_change_per_period",
            format!(
                "must be greater than 0 and at most 10, not {}",
                g.max_change
            ),
        ));
    }
    problems
}

/// Decided handoffs and how many were won.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    pub won: i64,
    pub decided: i64,
}

impl Record {
    pub fn add(&mut self, won: bool) {
        self.decided += 1;
        self.won += i64::from(won);
    }

    fn rate(self) -> f64 {
        if self.decided == 0 {
            0.0
        } else {
            self.won as f64 / self.decided as f64
        }
    }
}

/// Why a factor is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    Performance,
    ClampedMin,
    ClampedMax,
    CappedByMaxChange,
    BelowMinDecided,
    TeamHasNoWins,
    WeightingDisabled,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::Performance => "performance",
            Reason::ClampedMin => "clamped_min",
            Reason::ClampedMax => "clamped_max",
            Reason::CappedByMaxChange => "capped_by_max_change",
            Reason::BelowMinDecided => "below_min_decided",
            Reason::TeamHasNoWins => "team_has_no_wins",
            Reason::WeightingDisabled => "weighting_disabled",
        }
    }
}

/// Where a factor came from (kept with each change, shown by ExplainAssignment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Origin {
    pub reason: Reason,
    pub detail: String,
    pub rep: (i64, i64),
    pub team: (i64, i64),
    pub raw_factor: f64,
    pub factor: f64,
    pub weighting_version: i32,
    pub computed_at: DateTime<Utc>,
}

/// Four decimals: a factor that moves less than that does not move.
fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn percent(r: Record) -> String {
    format!("{:.1}% ({} of {})", 100.0 * r.rate(), r.won, r.decided)
}

/// Where a rep's factor goes: `period_factor` is its factor when its period began (the most it
/// moves counts from there). Returns the factor, the reason, the raw ratio and the reason in words.
pub fn propose(
    g: &Guardrails,
    rep: Record,
    team: Record,
    period_factor: f64,
) -> (f64, Reason, f64, String) {
    let (target, mut reason, raw, mut detail) = if rep.decided < i64::from(g.min_decided) {
        let why = format!(
            "{} decided handoffs, fewer than the {} needed: back toward 1",
            rep.decided, g.min_decided
        );
        (1.0, Reason::BelowMinDecided, 1.0, why)
    } else if team.won == 0 {
        let why = format!(
            "the team won none of {} decided handoffs: back toward 1",
            team.decided
        );
        (1.0, Reason::TeamHasNoWins, 1.0, why)
    } else {
        let raw = rep.rate() / team.rate();
        let mut why = format!(
            "win rate {} vs team {}: {raw:.2}",
            percent(rep),
            percent(team)
        );
        let (target, reason) = if raw < g.min_weight {
            why.push_str(&format!(", clamped to the minimum {}", g.min_weight));
            (g.min_weight, Reason::ClampedMin)
        } else if raw > g.max_weight {
            why.push_str(&format!(", clamped to the maximum {}", g.max_weight));
            (g.max_weight, Reason::ClampedMax)
        } else {
            (raw, Reason::Performance)
        };
        (target, reason, raw, why)
    };
    let low = period_factor - g.max_change;
    let high = period_factor + g.max_change;
    // Not f64::clamp: it panics on bounds a stored row could hold (NaN).
    let capped = if target > high {
        high
    } else if target < low {
        low
    } else {
        target
    };
    if (capped - target).abs() > 1e-9 {
        reason = Reason::CappedByMaxChange;
        detail.push_str(&format!(
            ", moved at most {} from {period_factor} this period",
            g.max_change
        ));
    }
    (round(capped), reason, round(raw), detail)
}

/// Whether the rep's period (begun at `started`) is over at `now`, so a new one begins with the
/// factor it has then.
pub fn period_over(g: &Guardrails, started: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    started.is_none_or(|s| now >= s + Duration::days(i64::from(g.period_days)))
}

/// The first moment of the window at `now`.
pub fn window_start(g: &Guardrails, now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(i64::from(g.window_days))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g() -> Guardrails {
        Guardrails {
            window_days: 90,
            min_decided: 4,
            min_weight: 0.8,
            max_weight: 1.4,
            max_change: 0.3,
            period_days: 7,
        }
    }

    const TEAM: Record = Record {
        won: 5,
        decided: 10,
    };

    #[test]
    fn a_strong_rep_is_clamped_then_capped_by_the_change_a_period_allows() {
        // 3 of 4 = 75% vs 50%: 1.5, clamped to 1.4, then at most 1.0 + 0.3.
        let (f, reason, raw, detail) = propose(&g(), Record { won: 3, decided: 4 }, TEAM, 1.0);
        assert_eq!((f, reason, raw), (1.3, Reason::CappedByMaxChange, 1.5));
        assert!(detail.contains("75.0% (3 of 4)"), "{detail}");
        // Next period, from 1.3: the clamp holds it at 1.4.
        let (f, reason, _, _) = propose(&g(), Record { won: 3, decided: 4 }, TEAM, 1.3);
        assert_eq!((f, reason), (1.4, Reason::ClampedMax));
    }

    #[test]
    fn a_weak_rep_is_clamped_to_the_minimum_and_a_small_sample_goes_back_toward_one() {
        // 1 of 4 = 25% vs 50%: 0.5, clamped to 0.8 (a move of 0.2, inside the cap).
        let weak = propose(&g(), Record { won: 1, decided: 4 }, TEAM, 1.0);
        assert_eq!((weak.0, weak.1, weak.2), (0.8, Reason::ClampedMin, 0.5));
        let small = propose(&g(), Record { won: 2, decided: 2 }, TEAM, 0.6);
        assert_eq!((small.0, small.1), (0.9, Reason::CappedByMaxChange));
        let none = propose(
            &g(),
            Record { won: 0, decided: 5 },
            Record { won: 0, decided: 9 },
            1.0,
        );
        assert_eq!((none.0, none.1), (1.0, Reason::TeamHasNoWins));
        let fair = propose(&g(), Record { won: 5, decided: 9 }, TEAM, 1.0);
        assert_eq!((fair.0, fair.1), (1.1111, Reason::Performance));
    }

    #[test]
    fn rejections_count_against_the_handing_off_rep_but_not_the_closer() {
        assert_eq!(Basis::HandedOff.tally(Verdict::Rejected), Some(false));
        assert_eq!(Basis::Closed.tally(Verdict::Rejected), None);
        assert_eq!(Basis::Closed.tally(Verdict::Won), Some(true));
    }

    #[test]
    fn every_bad_guardrail_is_named() {
        let bad = Guardrails {
            window_days: 0,
            min_decided: 0,
            min_weight: 1.5,
            max_weight: 0.5,
            max_change: 0.0,
            period_days: 100,
        };
        let fields: Vec<_> = validate(&bad).into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields.len(), 6, "{fields:?}");
        assert!(validate(&Guardrails::default()).is_empty());
    }

    #[test]
    fn a_period_ends_after_its_days() {
        let start = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert!(period_over(&g(), None, start));
        assert!(!period_over(&g(), Some(start), start + Duration::days(6)));
        assert!(period_over(&g(), Some(start), start + Duration::days(7)));
    }
}
