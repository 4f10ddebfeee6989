//! `baton report kpis|funnel|plan`: the KPIs, the funnel and a plan's progress of a running suite
//! as tables in the terminal, each KPI value beside its numerator and denominator.

use std::collections::HashMap;

use anyhow::Context;
use baton_proto::{
    capture::v1::Money,
    reporting::v1::{
        Funnel, GetFunnelRequest, GetKpisRequest, GetPlanProgressRequest, Granularity, KpiSeries,
        KpiUnit, PlanProgress, PlanStage, kpi_service_client::KpiServiceClient,
        planning_service_client::PlanningServiceClient,
        reporting_service_client::ReportingServiceClient,
    },
};
use baton_shared::{ServiceName, Settings, time};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use comfy_table::{Table, presets::UTF8_FULL};

/// What to report.
#[derive(Debug, Clone, Default)]
pub struct KpiReport {
    pub kpis: Vec<String>,
    /// RFC 3339, or a date (midnight in `time_zone`).
    pub from: String,
    pub to: String,
    /// day, week, month, quarter or whole.
    pub granularity: String,
    /// IANA; empty = UTC.
    pub time_zone: String,
    pub group_by: Vec<String>,
    /// `dimension=value` each.
    pub filters: Vec<String>,
}

fn instant(raw: &str, zone: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .with_context(|| format!("{raw:?} is neither RFC 3339 nor YYYY-MM-DD"))?;
    let tz: chrono_tz::Tz = if zone.is_empty() {
        chrono_tz::UTC
    } else {
        zone.parse()
            .map_err(|_| anyhow::anyhow!("{zone:?} is not an IANA time zone"))?
    };
    tz.from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{raw} has no midnight in {zone}"))
}

fn granularity(raw: &str) -> anyhow::Result<Granularity> {
    Ok(match raw.to_ascii_lowercase().as_str() {
        "day" => Granularity::Day,
        "week" => Granularity::Week,
        "month" => Granularity::Month,
        "quarter" => Granularity::Quarter,
        "" | "whole" => Granularity::Whole,
        other => anyhow::bail!("granularity {other:?}: day, week, month, quarter or whole"),
    })
}

/// The request `report` stands for.
pub fn request(report: &KpiReport) -> anyhow::Result<GetKpisRequest> {
    let mut filters = HashMap::new();
    for f in &report.filters {
        let (dimension, value) = f
            .split_once('=')
            .with_context(|| format!("filter {f:?}: write dimension=value"))?;
        filters.insert(dimension.trim().to_owned(), value.trim().to_owned());
    }
    Ok(GetKpisRequest {
        kpis: report.kpis.clone(),
        start_time: Some(time::to_proto(instant(&report.from, &report.time_zone)?)),
        end_time: Some(time::to_proto(instant(&report.to, &report.time_zone)?)),
        granularity: granularity(&report.granularity)? as i32,
        time_zone: report.time_zone.clone(),
        group_by: report.group_by.clone(),
        filters,
    })
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The series as a table: one row per KPI, group and period.
pub fn render(series: &[KpiSeries], time_zone: &str) -> String {
    let tz: chrono_tz::Tz = time_zone.parse().unwrap_or(chrono_tz::UTC);
    let mut table = Table::new();
    table.load_style(UTF8_FULL).set_header(vec![
        "KPI",
        "group",
        "period from",
        "value",
        "numerator",
        "denominator",
    ]);
    for s in series {
        let mut group: Vec<String> = s.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
        group.sort();
        let unit = match KpiUnit::try_from(s.unit) {
            Ok(KpiUnit::Percent) => " %".to_owned(),
            Ok(KpiUnit::Money) => format!(" {}", s.currency_code),
            Ok(KpiUnit::Days) => " d".to_owned(),
            Ok(KpiUnit::Seconds) => " s".to_owned(),
            _ => String::new(),
        };
        for p in &s.points {
            let from = p
                .period_start
                .as_ref()
                .and_then(time::from_proto)
                .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default();
            table.add_row(vec![
                s.kpi.clone(),
                group.join(", "),
                from,
                p.value
                    .map_or_else(|| "no value".to_owned(), |v| format!("{}{unit}", number(v))),
                number(p.numerator),
                p.denominator.map(number).unwrap_or_default(),
            ]);
        }
    }
    format!("{table}\n")
}

/// A channel to the reporting service the settings name, with the CLI's token.
async fn reporting(settings: &Settings) -> anyhow::Result<baton_shared::peer::AuthChannel> {
    let endpoint = &settings.service(ServiceName::Reporting).endpoint;
    crate::access::connect(settings, endpoint)
        .await
        .with_context(|| format!("reporting at {endpoint}"))
}

/// Asks reporting (at the settings' endpoint) and renders the answer.
pub async fn kpis(settings: &Settings, report: &KpiReport) -> anyhow::Result<String> {
    let request = request(report)?;
    let mut client = KpiServiceClient::new(reporting(settings).await?);
    let answer = client
        .get_kpis(request)
        .await
        .map_err(|s| anyhow::anyhow!("GetKpis: {}", s.message()))?
        .into_inner();
    Ok(render(&answer.series, &report.time_zone))
}

/// The funnel as a table: one row per group (or one for all), a column per step.
pub fn render_funnel(f: &Funnel) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_FULL).set_header(vec![
        "group",
        "leads",
        "MQLs",
        "assigned",
        "SQLs",
        "opportunities",
        "won",
    ]);
    let mut row = |group: String, counts: [i64; 6]| {
        let mut cells = vec![group];
        cells.extend(counts.iter().map(i64::to_string));
        table.add_row(cells);
    };
    for g in &f.groups {
        let mut group: Vec<String> = g.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
        group.sort();
        row(
            group.join(", "),
            [
                g.leads,
                g.mqls,
                g.assignments,
                g.sqls,
                g.opportunities,
                g.won,
            ],
        );
    }
    row(
        "all".to_owned(),
        [
            f.leads,
            f.mqls,
            f.assignments,
            f.sqls,
            f.opportunities,
            f.won,
        ],
    );
    format!("{table}\n")
}

/// Asks reporting for the funnel of `[from, to)` and renders it.
pub async fn funnel(
    settings: &Settings,
    (from, to): (&str, &str),
    time_zone: &str,
    group_by: &[String],
) -> anyhow::Result<String> {
    let mut client = ReportingServiceClient::new(reporting(settings).await?);
    let answer = client
        .get_funnel(GetFunnelRequest {
            start_time: Some(time::to_proto(instant(from, time_zone)?)),
            end_time: Some(time::to_proto(instant(to, time_zone)?)),
            group_by: group_by.to_vec(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("GetFunnel: {}", s.message()))?
        .into_inner();
    Ok(render_funnel(&answer))
}

fn money(m: Option<&Money>) -> String {
    m.map(|m| {
        let exponent = iso_currency::Currency::from_code(&m.currency_code)
            .and_then(|c| c.exponent())
            .unwrap_or(2);
        let major = m.amount_minor as f64 / 10f64.powi(i32::from(exponent));
        format!("{} {}", number(major), m.currency_code)
    })
    .unwrap_or_default()
}

fn stage_name(stage: i32) -> String {
    PlanStage::try_from(stage)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("PLAN_STAGE_")
                .to_ascii_lowercase()
                .replace('_', " ")
        })
        .unwrap_or_default()
}

/// A plan's progress: a line about the plan, a table per stage, the bottleneck, stagnation.
pub fn render_plan(p: &PlanProgress) -> String {
    let plan = p.plan.clone().unwrap_or_default();
    let mut out = format!(
        "plan {} v{} \"{}\": {:.1} % of the period elapsed\n",
        plan.plan_id,
        plan.version,
        plan.name,
        p.elapsed * 100.0
    );
    let mut table = Table::new();
    table.load_style(UTF8_FULL).set_header(vec![
        "stage",
        "target",
        "expected to date",
        "actual",
        "fill rate",
        "projected",
        "allowable cost",
        "actual cost",
    ]);
    let optional = |v: Option<f64>, unit: &str| v.map(|v| format!("{}{unit}", number(v)));
    for s in &p.stages {
        table.add_row(vec![
            stage_name(s.stage),
            s.target.to_string(),
            number(s.expected_to_date),
            s.actual.to_string(),
            optional(s.fill_rate, " %").unwrap_or_else(|| "—".to_owned()),
            optional(s.projected, "").unwrap_or_else(|| "—".to_owned()),
            money(s.allowable_cost.as_ref()),
            money(s.actual_cost.as_ref()),
        ]);
    }
    out.push_str(&format!("{table}\n"));
    match &p.bottleneck {
        Some(b) => {
            let starves: Vec<String> = b.starves.iter().map(|s| stage_name(*s)).collect();
            out.push_str(&format!(
                "bottleneck: {} at {} % (threshold {} %), starving {}\n",
                stage_name(b.stage),
                number(b.fill_rate),
                number(b.alert_threshold),
                starves.join(", ")
            ));
        }
        None => out.push_str("no bottleneck: every stage fills its threshold\n"),
    }
    if !p.stagnation.is_empty() {
        let mut table = Table::new();
        table.load_style(UTF8_FULL).set_header(vec![
            "stage",
            "max days",
            "owner team",
            "leads",
            "oldest (days)",
        ]);
        for s in &p.stagnation {
            table.add_row(vec![
                s.stage.clone(),
                number(s.max_days),
                s.owner_team.clone(),
                s.leads.to_string(),
                number(s.oldest_days),
            ]);
        }
        out.push_str(&format!("stagnating leads:\n{table}\n"));
    }
    out
}

/// Asks reporting for plan `plan_id`'s progress and renders it.
pub async fn plan(
    settings: &Settings,
    plan_id: &str,
    as_of: Option<&str>,
) -> anyhow::Result<String> {
    let mut client = PlanningServiceClient::new(reporting(settings).await?);
    let as_of = as_of.map(|t| instant(t, "")).transpose()?;
    let answer = client
        .get_plan_progress(GetPlanProgressRequest {
            plan_id: plan_id.to_owned(),
            as_of: as_of.map(time::to_proto),
        })
        .await
        .map_err(|s| anyhow::anyhow!("GetPlanProgress: {}", s.message()))?
        .into_inner();
    Ok(render_plan(&answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_midnights_in_the_zone_and_bad_input_is_named() {
        assert_eq!(
            instant("2026-12-01", "Asia/Tokyo").unwrap().to_rfc3339(),
            "2026-11-30T15:00:00+00:00"
        );
        assert!(instant("yesterday", "").is_err());
        assert!(instant("2026-12-01", "Mars/Base").is_err());
        assert!(granularity("fortnight").is_err());
        let bad = KpiReport {
            kpis: vec!["leads".into()],
            from: "2026-12-01".into(),
            to: "2026-12-02".into(),
            filters: vec!["channel".into()],
            ..Default::default()
        };
        assert!(request(&bad).is_err());
    }
}
