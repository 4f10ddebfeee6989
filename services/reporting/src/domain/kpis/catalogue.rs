//! The catalogue: every KPI of the lead-management process, as data (definitions in words, unit,
//! numerator and denominator, monitoring phase, owning function, version, dimensions).

use super::model::{
    DIMENSIONS, Kpi, Metric, Owner, Param, Phase, REQUIRES_OPT_IN, SOURCE_DIMENSIONS,
    Term::{self, AtEnd, AtStart, Flow, InCurrency, MonthlyShare, Per},
    Unit, WINDOW_DAYS,
};

/// What a KPI divides by: the term and its words.
type Divisor = Option<(Term, &'static str)>;

#[allow(clippy::too_many_arguments)]
const fn kpi(
    (key, name): (&'static str, &'static str),
    definition: &'static str,
    unit: Unit,
    (numerator, numerator_words): (Term, &'static str),
    denominator: Divisor,
    phase: Phase,
    owner: Owner,
    dimensions: &'static [&'static str],
) -> Kpi {
    let (denominator, denominator_words) = match denominator {
        Some((t, w)) => (Some(t), w),
        None => (None, ""),
    };
    Kpi {
        key,
        name,
        definition,
        unit,
        numerator,
        numerator_words,
        denominator,
        denominator_words,
        phase,
        owner,
        version: 1,
        dimensions,
        parameters: &[],
        values: [0.0; 2],
    }
}

/// A count of the period: its definition is also its numerator.
const fn count(
    key_name: (&'static str, &'static str),
    definition: &'static str,
    metric: Metric,
    phase: Phase,
    owner: Owner,
) -> Kpi {
    kpi(
        key_name,
        definition,
        Unit::Count,
        (Flow(metric), definition),
        None,
        phase,
        owner,
        &DIMENSIONS,
    )
}

/// numerator / denominator × 100, both flows of the period.
const fn rate(
    key_name: (&'static str, &'static str),
    definition: &'static str,
    numerator: (Metric, &'static str),
    denominator: (Metric, &'static str),
    phase: Phase,
    owner: Owner,
) -> Kpi {
    kpi(
        key_name,
        definition,
        Unit::Percent,
        (Flow(numerator.0), numerator.1),
        Some((Flow(denominator.0), denominator.1)),
        phase,
        owner,
        &DIMENSIONS,
    )
}

/// The period's spend per thing reached in the period, per currency.
const fn cost_per(
    key_name: (&'static str, &'static str),
    definition: &'static str,
    denominator: (Metric, &'static str),
    phase: Phase,
) -> Kpi {
    kpi(
        key_name,
        definition,
        Unit::Money,
        (Flow(Metric::SpendMinor), SPEND),
        Some((Flow(denominator.0), denominator.1)),
        phase,
        Owner::Marketing,
        &SOURCE_DIMENSIONS,
    )
}

const SPEND: &str = "spend of the period (RecordSpend, spread over its days), in the currency";
const WON_AMOUNT: &str = "amounts of the deals won in the period, in the currency";
const ARPA: Term = Per(
    &AtEnd(Metric::MrrMinor),
    &InCurrency(&AtEnd(Metric::Customers)),
);
const CPL: Term = Per(&Flow(Metric::SpendMinor), &Flow(Metric::Leads));
const DEAL_SIZE: Term = Per(
    &Flow(Metric::WonAmountMinor),
    &InCurrency(&Flow(Metric::Wins)),
);

use Owner::{CustomerSuccess, FieldSales, InsideSales, Marketing};
use Phase::{Acquisition, AttitudeChange, Closing, Opportunity, PeriodicContact, Retention};

const LIST_PARAMETERS: [Param; 1] = [Param {
    name: REQUIRES_OPT_IN,
    description: "1: only addresses that opted in count (where the tenant requires opt-in); 0: \
                  every known address that is not unsubscribed, bounced, do-not-contact or \
                  erased",
    default: 1.0,
    min: 0.0,
    max: 1.0,
}];

const WINDOW_PARAMETERS: [Param; 1] = [Param {
    name: WINDOW_DAYS,
    description: "days after a delivered e-mail in which a conversion counts for it",
    default: 7.0,
    min: 0.0,
    max: crate::domain::email::MAX_CONVERSION_WINDOW_DAYS,
}];

/// A unique-lead e-mail rate: leads reached one way / leads reached another × 100.
const fn email_rate(
    key_name: (&'static str, &'static str),
    definition: &'static str,
    numerator: (Metric, &'static str),
    denominator: (Metric, &'static str),
) -> Kpi {
    rate(
        key_name,
        definition,
        numerator,
        denominator,
        PeriodicContact,
        Marketing,
    )
}

const DELIVERED_LEADS: (Metric, &str) = (
    Metric::DeliveredLeads,
    "leads an e-mail was delivered to in the period (each once)",
);

/// The catalogue, in the order ListKpis answers.
const CATALOGUE: [Kpi; 51] = [
    kpi(
        ("visits", "Visits"),
        "anonymous visitors of the period, as recorded per source and day",
        Unit::Count,
        (Flow(Metric::Visits), "anonymous visitors of the period"),
        None,
        Acquisition,
        Marketing,
        &SOURCE_DIMENSIONS,
    ),
    count(
        ("leads", "Leads"),
        "leads captured in the period (a lead counts once, when first captured)",
        Metric::Leads,
        Acquisition,
        Marketing,
    ),
    count(
        ("form_submissions", "Form submissions"),
        "forms submitted by leads in the period",
        Metric::FormSubmissions,
        Acquisition,
        Marketing,
    ),
    count(
        ("target_account_leads", "Target-account leads"),
        "leads captured in the period whose company matched the tenant's target-account \
         condition when captured",
        Metric::TargetAccountLeads,
        Acquisition,
        Marketing,
    ),
    kpi(
        ("opt_in_rate", "Opt-in rate"),
        "leads captured / anonymous visitors × 100, in the period",
        Unit::Percent,
        (Flow(Metric::Leads), "leads captured in the period"),
        Some((Flow(Metric::Visits), "anonymous visitors in the period")),
        Acquisition,
        Marketing,
        &SOURCE_DIMENSIONS,
    ),
    cost_per(
        ("cost_per_lead", "Cost per lead"),
        "spend of the period / leads captured in the period, per currency",
        (Metric::Leads, "leads captured in the period"),
        Acquisition,
    ),
    Kpi {
        parameters: &LIST_PARAMETERS,
        values: [1.0, 0.0],
        ..kpi(
            ("list_size", "List size"),
            "deliverable addresses at the period's end: opted in (see requires_opt_in), not \
             unsubscribed, not bounced, not do-not-contact, not erased",
            Unit::Count,
            (
                AtEnd(Metric::ListSize),
                "deliverable addresses at the period's end",
            ),
            None,
            PeriodicContact,
            Marketing,
            &DIMENSIONS,
        )
    },
    count(
        ("emails_delivered", "E-mails delivered"),
        "e-mails delivered in the period",
        Metric::EmailsDelivered,
        PeriodicContact,
        Marketing,
    ),
    email_rate(
        ("open_rate", "Open rate"),
        "leads that opened an e-mail delivered in the period / leads delivered to × 100 (each \
         lead once)",
        (
            Metric::OpenedLeads,
            "leads that opened an e-mail delivered in the period",
        ),
        DELIVERED_LEADS,
    ),
    email_rate(
        ("click_rate", "Click rate"),
        "leads that clicked in an e-mail delivered in the period / leads delivered to × 100",
        (
            Metric::ClickedLeads,
            "leads that clicked in an e-mail delivered in the period",
        ),
        DELIVERED_LEADS,
    ),
    email_rate(
        ("click_to_open_rate", "Click-to-open rate"),
        "clickers / openers of the e-mails delivered in the period × 100",
        (
            Metric::ClickedLeads,
            "leads that clicked in an e-mail delivered in the period",
        ),
        (
            Metric::OpenedLeads,
            "leads that opened an e-mail delivered in the period",
        ),
    ),
    Kpi {
        parameters: &WINDOW_PARAMETERS,
        values: [7.0, 0.0],
        ..email_rate(
            ("email_conversion_rate", "E-mail conversion rate"),
            "leads that converted (form, download, webinar registration, meeting booked) within \
             window_days of an e-mail delivered in the period / leads delivered to × 100",
            (
                Metric::ConvertedLeads,
                "leads converting within the window after an e-mail delivered in the period",
            ),
            DELIVERED_LEADS,
        )
    },
    email_rate(
        ("unsubscribe_rate", "Unsubscribe rate"),
        "leads that unsubscribed after an e-mail delivered in the period / leads delivered to × \
         100",
        (
            Metric::UnsubscribedLeads,
            "leads that unsubscribed after an e-mail delivered in the period",
        ),
        DELIVERED_LEADS,
    ),
    email_rate(
        ("bounce_rate", "Bounce rate"),
        "leads an e-mail bounced from / leads an e-mail was sent to (delivered or bounced) × 100, \
         in the period",
        (
            Metric::BouncedLeads,
            "leads an e-mail bounced from in the period",
        ),
        (
            Metric::SentLeads,
            "leads an e-mail was delivered to or bounced from in the period",
        ),
    ),
    count(
        ("email_clicks", "E-mail clicks"),
        "clicks in e-mails in the period (every click; IS follows them up)",
        Metric::EmailClicks,
        PeriodicContact,
        InsideSales,
    ),
    count(
        ("mqls", "MQLs"),
        "leads that became marketing-qualified in the period (each lead once)",
        Metric::Mqls,
        AttitudeChange,
        Marketing,
    ),
    rate(
        ("lead_to_mql_rate", "Lead → MQL (cohort)"),
        "of the leads captured in the period, the share that became MQL by the time of the \
         query × 100",
        (
            Metric::MqlsOfCapturedCohort,
            "leads captured in the period that became MQL since",
        ),
        (Metric::Leads, "leads captured in the period"),
        AttitudeChange,
        Marketing,
    ),
    cost_per(
        ("cost_per_mql", "Cost per MQL"),
        "spend of the period / leads that became MQL in the period, per currency",
        (Metric::Mqls, "leads that became MQL in the period"),
        AttitudeChange,
    ),
    rate(
        ("mql_to_sql_rate", "MQL → SQL (cohort)"),
        "of the leads that became MQL in the period, the share that became SQL by the time of \
         the query × 100",
        (
            Metric::SqlsOfMqlCohort,
            "leads that became MQL in the period and SQL since",
        ),
        (Metric::Mqls, "leads that became MQL in the period"),
        AttitudeChange,
        InsideSales,
    ),
    count(
        ("rank_ups", "Rank-ups"),
        "rank changes of the period to a hotter rank (cold → warm or hot, warm → hot)",
        Metric::RankUps,
        AttitudeChange,
        Marketing,
    ),
    count(
        ("sqls", "SQLs"),
        "leads that became sales-qualified in the period (each lead once)",
        Metric::Sqls,
        AttitudeChange,
        InsideSales,
    ),
    cost_per(
        ("cost_per_sql", "Cost per SQL"),
        "spend of the period / leads that became SQL in the period, per currency",
        (Metric::Sqls, "leads that became SQL in the period"),
        AttitudeChange,
    ),
    rate(
        ("sql_to_opportunity_rate", "SQL → opportunity (cohort)"),
        "of the leads that became SQL in the period, the share handed off to FS by the time of \
         the query × 100",
        (
            Metric::OpportunitiesOfSqlCohort,
            "leads that became SQL in the period and were handed off since",
        ),
        (Metric::Sqls, "leads that became SQL in the period"),
        Opportunity,
        InsideSales,
    ),
    count(
        ("calls", "Calls"),
        "calls logged by inside sales in the period",
        Metric::Calls,
        Opportunity,
        InsideSales,
    ),
    kpi(
        ("talk_time_seconds", "Talk time"),
        "seconds of talk time over the period's calls (the total)",
        Unit::Seconds,
        (
            Flow(Metric::TalkTimeSeconds),
            "seconds of talk time over the period's calls",
        ),
        None,
        Opportunity,
        InsideSales,
        &DIMENSIONS,
    ),
    kpi(
        ("mean_talk_time_seconds", "Mean talk time"),
        "seconds of talk time / connected calls, in the period",
        Unit::Seconds,
        (
            Flow(Metric::TalkTimeSeconds),
            "seconds of talk time over the period's calls",
        ),
        Some((Flow(Metric::Connects), "connected calls in the period")),
        Opportunity,
        InsideSales,
        &DIMENSIONS,
    ),
    count(
        ("connects", "Connects"),
        "calls of the period whose outcome is connected",
        Metric::Connects,
        Opportunity,
        InsideSales,
    ),
    rate(
        ("connect_rate", "Connect rate"),
        "connected calls / calls × 100, in the period",
        (Metric::Connects, "connected calls in the period"),
        (Metric::Calls, "calls in the period"),
        Opportunity,
        InsideSales,
    ),
    count(
        ("valid_connects", "Valid connects"),
        "connected calls of the period that reached the department that buys",
        Metric::ValidConnects,
        Opportunity,
        InsideSales,
    ),
    rate(
        ("valid_connect_rate", "Valid connect rate"),
        "calls that reached the department that buys / calls × 100, in the period",
        (
            Metric::ValidConnects,
            "calls that reached the buying department in the period",
        ),
        (Metric::Calls, "calls in the period"),
        Opportunity,
        InsideSales,
    ),
    count(
        ("opportunities", "Opportunities"),
        "handoffs IS created for FS in the period (appointments handed over)",
        Metric::Opportunities,
        Opportunity,
        InsideSales,
    ),
    count(
        (
            "target_account_opportunities",
            "Target-account opportunities",
        ),
        "handoffs IS created in the period for target-account leads",
        Metric::TargetAccountOpportunities,
        Opportunity,
        InsideSales,
    ),
    rate(
        ("opportunity_rate", "Opportunity rate"),
        "handoffs IS created / leads assigned to IS (first assignment), in the period × 100",
        (Metric::Opportunities, "handoffs created in the period"),
        (
            Metric::AssignedLeads,
            "leads first assigned to a rep in the period",
        ),
        Opportunity,
        InsideSales,
    ),
    cost_per(
        ("cost_per_opportunity", "Cost per opportunity"),
        "spend of the period / handoffs created in the period, per currency",
        (Metric::Opportunities, "handoffs created in the period"),
        Opportunity,
    ),
    rate(
        ("opportunity_to_won_rate", "Opportunity → won (cohort)"),
        "of the leads first handed off to FS in the period, the share won by the time of the \
         query × 100",
        (
            Metric::WinsOfOpportunityCohort,
            "leads first handed off in the period and won since",
        ),
        (
            Metric::HandedOffLeads,
            "leads first handed off in the period",
        ),
        Closing,
        FieldSales,
    ),
    count(
        ("wins", "Wins"),
        "handed-off leads FS won in the period",
        Metric::Wins,
        Closing,
        FieldSales,
    ),
    rate(
        ("win_rate", "Win rate"),
        "handed-off leads won / handed-off leads decided (won or lost) × 100, by when the \
         outcome was recorded",
        (Metric::Wins, "handed-off leads won in the period"),
        (
            Metric::Decided,
            "handed-off leads won or lost in the period",
        ),
        Closing,
        FieldSales,
    ),
    count(
        ("won_deals", "Won deals"),
        "deals won in the period (outcomes recorded as won)",
        Metric::Wins,
        Closing,
        FieldSales,
    ),
    kpi(
        ("won_amount", "Won amount"),
        "amount of the deals won in the period from IS's handed-off leads, per currency",
        Unit::Money,
        (Flow(Metric::WonAmountMinor), WON_AMOUNT),
        None,
        Closing,
        InsideSales,
        &DIMENSIONS,
    ),
    cost_per(
        ("cost_per_won_deal", "Cost per won deal"),
        "spend of the period / deals won in the period (every currency's), per currency of \
         spend",
        (Metric::Wins, "deals won in the period"),
        Closing,
    ),
    rate(
        ("sales_conversion_rate", "Sales conversion rate (cohort)"),
        "of the leads captured in the period, the share won by the time of the query × 100",
        (
            Metric::WinsOfCapturedCohort,
            "leads captured in the period and won since",
        ),
        (Metric::Leads, "leads captured in the period"),
        Closing,
        FieldSales,
    ),
    kpi(
        ("total_sales", "Total sales"),
        "amount of every deal won in the period, per currency",
        Unit::Money,
        (Flow(Metric::WonAmountMinor), WON_AMOUNT),
        None,
        Closing,
        FieldSales,
        &DIMENSIONS,
    ),
    kpi(
        ("average_deal_size", "Average deal size"),
        "won amount / deals won with an amount in that currency, in the period",
        Unit::Money,
        (Flow(Metric::WonAmountMinor), WON_AMOUNT),
        Some((
            InCurrency(&Flow(Metric::Wins)),
            "deals won in the period with an amount in the currency",
        )),
        Closing,
        FieldSales,
        &DIMENSIONS,
    ),
    kpi(
        ("sales_cycle_days", "Sales cycle (mean)"),
        "days from a lead's first touch (its capture or earliest activity) to the win, averaged \
         over the deals won in the period",
        Unit::Days,
        (
            Flow(Metric::SalesCycleSeconds),
            "days from first touch to win, summed over the period's wins",
        ),
        Some((
            Flow(Metric::TimedWins),
            "deals won in the period whose first touch is known",
        )),
        Closing,
        FieldSales,
        &DIMENSIONS,
    ),
    kpi(
        ("sales_cycle_days_median", "Sales cycle (median)"),
        "the median of the days from a lead's first touch to the win, over the deals won in the \
         period (half took longer, half less)",
        Unit::Days,
        (
            Flow(Metric::MedianCycleSeconds),
            "median days from first touch to win over the period's wins",
        ),
        None,
        Closing,
        FieldSales,
        &DIMENSIONS,
    ),
    kpi(
        ("cpl_to_deal_size_ratio", "Cost per lead to deal size"),
        "cost per lead / average deal size × 100, in the period and currency",
        Unit::Percent,
        (CPL, "cost per lead of the period (spend / leads)"),
        Some((
            DEAL_SIZE,
            "average deal size of the period (won amount / deals won)",
        )),
        Closing,
        Marketing,
        &SOURCE_DIMENSIONS,
    ),
    kpi(
        ("customers", "Customers"),
        "customers at the period's end: won leads that have not churned",
        Unit::Count,
        (AtEnd(Metric::Customers), "customers at the period's end"),
        None,
        Retention,
        CustomerSuccess,
        &DIMENSIONS,
    ),
    kpi(
        ("mrr", "Monthly recurring revenue"),
        "monthly recurring revenue of the customers at the period's end, per currency",
        Unit::Money,
        (
            AtEnd(Metric::MrrMinor),
            "MRR of the customers at the period's end",
        ),
        None,
        Retention,
        CustomerSuccess,
        &DIMENSIONS,
    ),
    kpi(
        ("arpa", "ARPA"),
        "monthly recurring revenue / customers paying in that currency, at the period's end",
        Unit::Money,
        (
            AtEnd(Metric::MrrMinor),
            "MRR of the customers at the period's end",
        ),
        Some((
            InCurrency(&AtEnd(Metric::Customers)),
            "customers paying in the currency at the period's end",
        )),
        Retention,
        CustomerSuccess,
        &DIMENSIONS,
    ),
    kpi(
        ("customer_churn_rate", "Customer churn rate"),
        "customers that churned in the period / customers at the period's start × 100",
        Unit::Percent,
        (
            Flow(Metric::Churned),
            "customers that churned in the period",
        ),
        Some((
            AtStart(Metric::Customers),
            "customers at the period's start",
        )),
        Retention,
        CustomerSuccess,
        &DIMENSIONS,
    ),
    kpi(
        ("customer_lifetime_value", "Customer lifetime value"),
        "ARPA / monthly churn rate: the period's churn (churned / customers at its start, of that \
         currency) per average month of 30.436875 days; no value without churn",
        Unit::Money,
        (ARPA, "ARPA at the period's end"),
        Some((
            MonthlyShare(
                &InCurrency(&Flow(Metric::Churned)),
                &InCurrency(&AtStart(Metric::Customers)),
            ),
            "monthly churn as a fraction: churned / customers at the start × month / period \
             length",
        )),
        Retention,
        CustomerSuccess,
        &DIMENSIONS,
    ),
];

/// The catalogue, in the order ListKpis answers.
pub fn catalogue() -> Vec<Kpi> {
    CATALOGUE.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words<T: std::fmt::Debug>(v: T) -> String {
        let camel = format!("{v:?}");
        let mut out = String::new();
        for (i, c) in camel.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                out.push(' ');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    /// The row docs/kpis.md must hold for `k`.
    fn doc_row(k: &Kpi) -> String {
        let unit = match k.unit {
            Unit::Percent => "%".to_owned(),
            u => words(u),
        };
        let denominator = if k.denominator_words.is_empty() {
            "—"
        } else {
            k.denominator_words
        };
        format!(
            "| `{}` | {} | {} | {} | {} | {} |",
            k.key,
            words(k.phase),
            words(k.owner),
            unit,
            k.numerator_words,
            denominator
        )
    }

    #[test]
    fn the_documented_catalogue_is_the_catalogue() {
        let page = include_str!("../../../../../docs/kpis.md");
        let rows: Vec<String> = catalogue().iter().map(doc_row).collect();
        let missing: Vec<&String> = rows.iter().filter(|r| !page.contains(r.as_str())).collect();
        assert!(
            missing.is_empty(),
            "docs/kpis.md must hold these rows (the whole table:)\n{}",
            rows.join("\n")
        );
        let listed = page.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(
            listed,
            rows.len(),
            "docs/kpis.md lists a KPI the catalogue lacks"
        );
    }

    #[test]
    fn keys_are_unique_and_every_dimension_is_known() {
        let keys: std::collections::HashSet<_> = catalogue().iter().map(|k| k.key).collect();
        assert_eq!(keys.len(), catalogue().len());
        for k in catalogue() {
            assert!(k.dimensions.iter().all(|d| DIMENSIONS.contains(d)));
        }
    }
}
