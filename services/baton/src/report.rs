//! `baton report kpis`: the KPIs of a running suite as a table in the terminal, each value beside
//! its numerator and denominator.

use std::collections::HashMap;

use anyhow::Context;
use baton_proto::reporting::v1::{
    GetKpisRequest, Granularity, KpiSeries, KpiUnit, kpi_service_client::KpiServiceClient,
};
use baton_shared::time;
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
        let unit = if s.unit == KpiUnit::Percent as i32 {
            " %"
        } else {
            ""
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

/// Asks reporting at `endpoint` and renders the answer.
pub async fn kpis(endpoint: &str, report: &KpiReport) -> anyhow::Result<String> {
    let request = request(report)?;
    let mut client = KpiServiceClient::connect(endpoint.to_owned())
        .await
        .with_context(|| format!("connect to reporting at {endpoint}"))?;
    let answer = client
        .get_kpis(request)
        .await
        .map_err(|s| anyhow::anyhow!("GetKpis: {}", s.message()))?
        .into_inner();
    Ok(render(&answer.series, &report.time_zone))
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
