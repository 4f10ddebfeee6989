//! The funnel: each lead passes each step at most once; a step's count in a period is the number of
//! leads that passed it then, and a conversion rate is one step's count over the previous one's.

/// A step of the funnel, as stored in `funnel_fact.step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Captured,
    Enrolled,
    BecameMql,
    Assigned,
    BecameSql,
    HandedOff,
    Won,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::Captured,
        Step::Enrolled,
        Step::BecameMql,
        Step::Assigned,
        Step::BecameSql,
        Step::HandedOff,
        Step::Won,
    ];

    pub fn from_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Captured => "captured",
            Step::Enrolled => "enrolled",
            Step::BecameMql => "mql",
            Step::Assigned => "assigned",
            Step::BecameSql => "sql",
            Step::HandedOff => "handed_off",
            Step::Won => "won",
        }
    }
}

/// Counts per step for one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunnelCounts {
    pub leads: i64,
    pub enrollments: i64,
    pub mqls: i64,
    pub assignments: i64,
    pub sqls: i64,
    pub opportunities: i64,
    pub won: i64,
}

impl FunnelCounts {
    /// Adds `n` leads to `step`'s count.
    pub fn add(&mut self, step: Step, n: i64) {
        let count = match step {
            Step::Captured => &mut self.leads,
            Step::Enrolled => &mut self.enrollments,
            Step::BecameMql => &mut self.mqls,
            Step::Assigned => &mut self.assignments,
            Step::BecameSql => &mut self.sqls,
            Step::HandedOff => &mut self.opportunities,
            Step::Won => &mut self.won,
        };
        *count += n;
    }
}

/// `numerator / denominator`, or 0 when the denominator is 0 (no leads, no rate).
pub fn conversion_rate(numerator: i64, denominator: i64) -> f64 {
    if denominator <= 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_divide_consecutive_steps_and_never_divide_by_zero() {
        assert_eq!(conversion_rate(25, 200), 0.125);
        assert_eq!(conversion_rate(0, 0), 0.0);
        assert_eq!(conversion_rate(3, 0), 0.0);
    }

    #[test]
    fn step_names_are_distinct() {
        let names: std::collections::HashSet<_> = Step::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names.len(), Step::ALL.len());
    }
}
