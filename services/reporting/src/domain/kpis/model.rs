//! The KPI engine's vocabulary: the metrics reporting counts, how a KPI reads them (terms), units,
//! phases, owners and dimensions.

use crate::domain::{email::Reach, funnel::Step};

/// A counter reporting keeps per 15-minute slot and dimension group (facts rolled up in the
/// transaction that applies the event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Leads captured (each lead once).
    Leads,
    /// Anonymous visitors, per day.
    Visits,
    /// Form submissions (activities of kind form submitted).
    FormSubmissions,
    /// Leads that became MQL (each once).
    Mqls,
    /// Leads that became SQL (each once).
    Sqls,
    /// Handoffs IS created for FS (appointments handed over).
    Opportunities,
    /// Handed-off leads won (each outcome; under the currency of its amount).
    Wins,
    /// Handed-off leads won or lost.
    Decided,
    /// Call activities.
    Calls,
    /// Calls whose outcome is connected.
    Connects,
    /// Connected calls that reached the department that buys.
    ValidConnects,
    /// Seconds of talk time over all calls.
    TalkTimeSeconds,
    /// Leads that moved to a hotter rank (warm → hot, cold → warm or hot).
    RankUps,
    /// Of the leads captured in a slot, those that became MQL (at any time), at their capture's
    /// slot.
    MqlsOfCapturedCohort,
    /// Of the leads that became MQL in a slot, those that became SQL (at any time), at their
    /// MQL's slot.
    SqlsOfMqlCohort,
    /// Leads handed off to FS for the first time (each lead once).
    HandedOffLeads,
    /// Leads assigned to a rep for the first time (each lead once): the leads IS works.
    AssignedLeads,
    /// Of the leads that became SQL in a slot, those handed off to FS since.
    OpportunitiesOfSqlCohort,
    /// Of the leads first handed off in a slot, those won since.
    WinsOfOpportunityCohort,
    /// Of the leads captured in a slot, those won since.
    WinsOfCapturedCohort,
    /// Won amounts, in minor units of their currency.
    WonAmountMinor,
    /// Seconds from a won lead's first touch to the win, summed over wins.
    SalesCycleSeconds,
    /// Wins whose lead's first touch is known (the sales cycle's denominator).
    TimedWins,
    /// Spend, in minor units of its currency, per day.
    SpendMinor,
    /// Customers opened (+1, at the win) and closed (−1, at the churn): a stock.
    Customers,
    /// Monthly recurring revenue of the customers, in minor units: a stock.
    MrrMinor,
    /// Customers that churned.
    Churned,
    /// E-mails delivered.
    EmailsDelivered,
    /// Clicks in e-mails.
    EmailClicks,
    /// Deliverable addresses (+1 when one becomes deliverable, −1 when it stops): a stock.
    ListSize,
    /// Deliverable addresses counting those never opted in (a tenant that does not require
    /// opt-in): a stock.
    ListSizeAnyConsent,
    /// Leads an e-mail was delivered to (each lead once per period).
    DeliveredLeads,
    /// Leads an e-mail was delivered to or bounced from.
    SentLeads,
    /// Leads that opened an e-mail delivered in the period.
    OpenedLeads,
    /// Leads that clicked in an e-mail delivered in the period.
    ClickedLeads,
    /// Leads that unsubscribed after an e-mail delivered in the period.
    UnsubscribedLeads,
    /// Leads an e-mail bounced from.
    BouncedLeads,
    /// Leads that converted within the window after an e-mail delivered in the period.
    ConvertedLeads,
    /// Leads captured whose company matched the target-account condition then.
    TargetAccountLeads,
    /// Handoffs created for target-account leads.
    TargetAccountOpportunities,
    /// The median of the period's wins' sales cycles, in seconds (one value per period and group,
    /// from `won_deal`; not summed from slots).
    MedianCycleSeconds,
}

impl Metric {
    pub const ALL: [Metric; 41] = [
        Metric::Leads,
        Metric::Visits,
        Metric::FormSubmissions,
        Metric::Mqls,
        Metric::Sqls,
        Metric::Opportunities,
        Metric::Wins,
        Metric::Decided,
        Metric::Calls,
        Metric::Connects,
        Metric::ValidConnects,
        Metric::TalkTimeSeconds,
        Metric::RankUps,
        Metric::MqlsOfCapturedCohort,
        Metric::SqlsOfMqlCohort,
        Metric::HandedOffLeads,
        Metric::AssignedLeads,
        Metric::OpportunitiesOfSqlCohort,
        Metric::WinsOfOpportunityCohort,
        Metric::WinsOfCapturedCohort,
        Metric::WonAmountMinor,
        Metric::SalesCycleSeconds,
        Metric::TimedWins,
        Metric::SpendMinor,
        Metric::Customers,
        Metric::MrrMinor,
        Metric::Churned,
        Metric::EmailsDelivered,
        Metric::EmailClicks,
        Metric::ListSize,
        Metric::ListSizeAnyConsent,
        Metric::DeliveredLeads,
        Metric::SentLeads,
        Metric::OpenedLeads,
        Metric::ClickedLeads,
        Metric::UnsubscribedLeads,
        Metric::BouncedLeads,
        Metric::ConvertedLeads,
        Metric::TargetAccountLeads,
        Metric::TargetAccountOpportunities,
        Metric::MedianCycleSeconds,
    ];

    /// The name stored in `kpi_cube.metric`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Leads => "leads",
            Metric::Visits => "visits",
            Metric::FormSubmissions => "form_submissions",
            Metric::Mqls => "mqls",
            Metric::Sqls => "sqls",
            Metric::Opportunities => "opportunities",
            Metric::Wins => "wins",
            Metric::Decided => "decided",
            Metric::Calls => "calls",
            Metric::Connects => "connects",
            Metric::ValidConnects => "valid_connects",
            Metric::TalkTimeSeconds => "talk_time_seconds",
            Metric::RankUps => "rank_ups",
            Metric::MqlsOfCapturedCohort => "mqls_of_captured_cohort",
            Metric::SqlsOfMqlCohort => "sqls_of_mql_cohort",
            Metric::HandedOffLeads => "handed_off_leads",
            Metric::AssignedLeads => "assigned_leads",
            Metric::OpportunitiesOfSqlCohort => "opportunities_of_sql_cohort",
            Metric::WinsOfOpportunityCohort => "wins_of_opportunity_cohort",
            Metric::WinsOfCapturedCohort => "wins_of_captured_cohort",
            Metric::WonAmountMinor => "won_amount_minor",
            Metric::SalesCycleSeconds => "sales_cycle_seconds",
            Metric::TimedWins => "timed_wins",
            Metric::SpendMinor => "spend_minor",
            Metric::Customers => "customers",
            Metric::MrrMinor => "mrr_minor",
            Metric::Churned => "churned",
            Metric::EmailsDelivered => "emails_delivered",
            Metric::EmailClicks => "email_clicks",
            Metric::ListSize => "list_size",
            Metric::ListSizeAnyConsent => "list_size_any_consent",
            Metric::DeliveredLeads => "delivered_leads",
            Metric::SentLeads => "sent_leads",
            Metric::OpenedLeads => "opened_leads",
            Metric::ClickedLeads => "clicked_leads",
            Metric::UnsubscribedLeads => "unsubscribed_leads",
            Metric::BouncedLeads => "bounced_leads",
            Metric::ConvertedLeads => "converted_leads",
            Metric::TargetAccountLeads => "target_account_leads",
            Metric::TargetAccountOpportunities => "target_account_opportunities",
            Metric::MedianCycleSeconds => "median_cycle_seconds",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// Counted in minor units of a currency.
    pub fn is_money(self) -> bool {
        matches!(
            self,
            Metric::WonAmountMinor | Metric::SpendMinor | Metric::MrrMinor
        )
    }

    /// Stored under a currency: money, and the counts money is divided by (wins under their
    /// amount's currency, customers under their MRR's).
    pub fn carries_currency(self) -> bool {
        self.is_money() || matches!(self, Metric::Wins | Metric::Customers | Metric::Churned)
    }

    /// A stock: its value at a moment is the sum of every change before it.
    pub fn is_stock(self) -> bool {
        matches!(
            self,
            Metric::Customers | Metric::MrrMinor | Metric::ListSize | Metric::ListSizeAnyConsent
        )
    }

    /// Leads counted once per period (from `email_lead_slot`, not summed from slots).
    pub fn reach(self) -> Option<Reach> {
        Some(match self {
            Metric::DeliveredLeads => Reach::Delivered,
            Metric::SentLeads => Reach::Sent,
            Metric::OpenedLeads => Reach::Opened,
            Metric::ClickedLeads => Reach::Clicked,
            Metric::UnsubscribedLeads => Reach::Unsubscribed,
            Metric::BouncedLeads => Reach::Bounced,
            Metric::ConvertedLeads => Reach::Converted,
            _ => return None,
        })
    }

    /// Kept per calendar day (placed at the day's local midnight in the query's time zone).
    pub fn is_daily(self) -> bool {
        matches!(self, Metric::Visits | Metric::SpendMinor)
    }
}

/// How a KPI's numerator or denominator is read from the metrics of a period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Term {
    /// The metric's sum over the period.
    Flow(Metric),
    /// A stock's value at the period's end.
    AtEnd(Metric),
    /// A stock's value at the period's start.
    AtStart(Metric),
    /// One term divided by another (undefined when the second is 0).
    Per(&'static Term, &'static Term),
    /// One term divided by another, per average month (30.436875 days) of the period's length: a
    /// monthly share (undefined when the second is 0).
    MonthlyShare(&'static Term, &'static Term),
    /// The term's counts read in the series' currency only (wins of deals in that currency,
    /// customers paying in it); money is always read in the series' currency.
    InCurrency(&'static Term),
}

impl Term {
    /// Every metric the term reads.
    pub fn metrics(&self, out: &mut Vec<Metric>) {
        match self {
            Term::Flow(m) | Term::AtEnd(m) | Term::AtStart(m) => out.push(*m),
            Term::Per(a, b) | Term::MonthlyShare(a, b) => {
                a.metrics(out);
                b.metrics(out);
            }
            Term::InCurrency(t) => t.metrics(out),
        }
    }
}

/// Cohort conversions: a lead that reached `first` and then (at any time) `second` counts for
/// `metric` at the moment it reached `first`.
pub struct Cohort {
    pub first: Step,
    pub second: Step,
    pub metric: Metric,
}

pub const COHORTS: [Cohort; 5] = [
    Cohort {
        first: Step::Captured,
        second: Step::BecameMql,
        metric: Metric::MqlsOfCapturedCohort,
    },
    Cohort {
        first: Step::BecameMql,
        second: Step::BecameSql,
        metric: Metric::SqlsOfMqlCohort,
    },
    Cohort {
        first: Step::BecameSql,
        second: Step::HandedOff,
        metric: Metric::OpportunitiesOfSqlCohort,
    },
    Cohort {
        first: Step::HandedOff,
        second: Step::Won,
        metric: Metric::WinsOfOpportunityCohort,
    },
    Cohort {
        first: Step::Captured,
        second: Step::Won,
        metric: Metric::WinsOfCapturedCohort,
    },
];

/// Whether a rank change is a rank-up (hot = 1 < warm = 2 < cold = 3; a first rank is none).
pub fn is_rank_up(from: i32, to: i32) -> bool {
    from > 0 && to > 0 && to < from
}

/// The name of a rank (1 hot, 2 warm, 3 cold), as its dimension value.
pub fn rank_name(rank: i32) -> &'static str {
    match rank {
        1 => "hot",
        2 => "warm",
        3 => "cold",
        _ => "",
    }
}

/// The employee band of a company of `employees` people: 1-9, 10-49, 50-249, 250-999, 1000+.
pub fn employee_band(employees: Option<i64>) -> &'static str {
    match employees {
        None => "",
        Some(n) if n < 10 => "1-9",
        Some(n) if n < 50 => "10-49",
        Some(n) if n < 250 => "50-249",
        Some(n) if n < 1000 => "250-999",
        Some(_) => "1000+",
    }
}

/// Every dimension a KPI can be grouped and filtered by.
pub const DIMENSIONS: [&str; 10] = [
    "channel",
    "campaign",
    "lead_magnet",
    "funnel_position",
    "industry",
    "employee_band",
    "country",
    "rank",
    "team",
    "rep",
];

/// The dimensions of facts that only know their source (visits, spend).
pub const SOURCE_DIMENSIONS: [&str; 2] = ["channel", "campaign"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    /// numerator / denominator × 100.
    Percent,
    /// A sum of seconds, or (with a denominator) seconds per item.
    Seconds,
    /// A sum of days, or (with a denominator) days per item.
    Days,
    /// An amount in major units of the series' currency, or (with a denominator) an amount per
    /// item.
    Money,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Acquisition,
    PeriodicContact,
    AttitudeChange,
    Opportunity,
    Closing,
    Retention,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Marketing,
    InsideSales,
    FieldSales,
    CustomerSuccess,
}

/// A parameter of a KPI's definition, changeable per tenant (each change is a new version).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Param {
    pub name: &'static str,
    pub description: &'static str,
    pub default: f64,
    pub min: f64,
    pub max: f64,
}

/// One KPI of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Kpi {
    pub key: &'static str,
    pub name: &'static str,
    pub definition: &'static str,
    pub unit: Unit,
    pub numerator: Term,
    pub numerator_words: &'static str,
    /// `None` for a count or a sum.
    pub denominator: Option<Term>,
    pub denominator_words: &'static str,
    pub phase: Phase,
    pub owner: Owner,
    pub version: i32,
    /// The dimensions it can be grouped and filtered by.
    pub dimensions: &'static [&'static str],
    /// Its parameters, with their defaults (version 1).
    pub parameters: &'static [Param],
    /// The tenant's values of `parameters`, in their order (the defaults until changed).
    pub values: [f64; 2],
}

impl Kpi {
    /// Every metric it reads.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut out = Vec::new();
        self.numerator.metrics(&mut out);
        if let Some(d) = &self.denominator {
            d.metrics(&mut out);
        }
        out
    }

    /// A money KPI: one series per currency.
    pub fn is_money(&self) -> bool {
        self.metrics().iter().any(|m| m.is_money())
    }
}

impl Kpi {
    /// The value of parameter `name` (its default when it has none).
    pub fn value(&self, name: &str) -> Option<f64> {
        let i = self.parameters.iter().position(|p| p.name == name)?;
        self.values.get(i).copied()
    }

    /// The KPI as the tenant's `version` with `values` defines it.
    pub fn with_values(&self, version: i32, values: &[(String, f64)]) -> Kpi {
        let mut k = self.clone();
        k.version = version;
        for (name, v) in values {
            if let Some(i) = k.parameters.iter().position(|p| p.name == name)
                && let Some(slot) = k.values.get_mut(i)
            {
                *slot = *v;
            }
        }
        // A tenant that does not require opt-in counts every clean known address.
        if k.value(REQUIRES_OPT_IN) == Some(0.0) {
            k.numerator = Term::AtEnd(Metric::ListSizeAnyConsent);
        }
        k
    }

    /// Every problem of new parameter values, each with its name.
    pub fn check_values(&self, values: &[(String, f64)]) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (name, v) in values {
            match self.parameters.iter().find(|p| p.name == name) {
                None => problems.push((
                    name.clone(),
                    format!(
                        "{} has no parameter {name:?}; it has {}",
                        self.key,
                        self.parameters
                            .iter()
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
                Some(p) if !(v.is_finite() && *v >= p.min && *v <= p.max) => {
                    problems.push((name.clone(), format!("must be from {} to {}", p.min, p.max)))
                }
                Some(_) => {}
            }
        }
        problems
    }
}

/// list_size's parameter: 1 = only opted-in addresses count, 0 = every clean known one.
pub const REQUIRES_OPT_IN: &str = "requires_opt_in";
/// email_conversion_rate's parameter: days after a delivery a conversion counts.
pub const WINDOW_DAYS: &str = "window_days";

/// The median of `values` (the mean of the two middle ones for an even count, rounded down); 0
/// for none.
pub fn median(mut values: Vec<i64>) -> i64 {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => 0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]).div_euclid(2),
    }
}

/// The metrics `kpis` read (numerators and denominators), each once.
pub fn metrics_of(kpis: &[Kpi]) -> Vec<Metric> {
    let mut metrics: Vec<Metric> = kpis.iter().flat_map(Kpi::metrics).collect();
    metrics.sort();
    metrics.dedup();
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_move_to_a_hotter_rank_is_a_rank_up() {
        assert!(is_rank_up(3, 2) && is_rank_up(2, 1) && is_rank_up(3, 1));
        assert!(!is_rank_up(1, 2) && !is_rank_up(0, 1) && !is_rank_up(2, 2));
    }

    #[test]
    fn metric_names_are_unique() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(m.as_str()), Some(m));
        }
    }

    #[test]
    fn the_median_is_the_middle_or_the_mean_of_the_two_middles() {
        assert_eq!(median(vec![12, 6, 30]), 12);
        assert_eq!(median(vec![12, 6]), 9);
        assert_eq!(median(vec![]), 0);
    }

    #[test]
    fn employee_bands_start_at_their_lower_bound() {
        let bands: Vec<&str> = [
            None,
            Some(0),
            Some(9),
            Some(10),
            Some(249),
            Some(250),
            Some(1000),
        ]
        .into_iter()
        .map(employee_band)
        .collect();
        assert_eq!(
            bands,
            ["", "1-9", "1-9", "10-49", "50-249", "250-999", "1000+"]
        );
    }
}
