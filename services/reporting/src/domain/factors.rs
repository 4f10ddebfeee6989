//! Win factors: the win rate and lift of handed-off leads by segment, each with its sample size and
//! a Wilson score interval, small samples flagged, so a manager is not misled by five deals.
//! Pure; no I/O.

/// z of a two-sided 95 % interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval of `wins` of `n` at `z`, as fractions (0..1); None when n is 0.
pub fn wilson(wins: i64, n: i64, z: f64) -> Option<(f64, f64)> {
    if n <= 0 {
        return None;
    }
    let (n, p) = (n as f64, wins as f64 / n as f64);
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let margin = z * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt();
    let denominator = 1.0 + z2 / n;
    Some((
        ((centre - margin) / denominator).max(0.0),
        ((centre + margin) / denominator).min(1.0),
    ))
}

/// One handed-off lead: its segment values and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// (dimension, value) pairs, e.g. ("industry", "retail").
    pub segments: Vec<(String, String)>,
    pub won: bool,
}

/// One segment's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Factor {
    pub dimension: String,
    pub value: String,
    pub won: i64,
    pub decided: i64,
    pub win_rate: Option<f64>,
    /// Segment win rate / overall win rate.
    pub lift: Option<f64>,
    pub interval: Option<(f64, f64)>,
    pub small_sample: bool,
}

/// The factors of `leads`: per (dimension, value), sorted by dimension then by lift (highest
/// first). Segments with fewer than `min_sample` decided leads are flagged.
pub fn factors(leads: &[Decided], min_sample: i64) -> (i64, i64, Vec<Factor>) {
    let won = leads.iter().filter(|l| l.won).count() as i64;
    let decided = leads.len() as i64;
    let overall = (decided > 0).then(|| won as f64 / decided as f64);
    let mut groups: std::collections::BTreeMap<(String, String), (i64, i64)> =
        std::collections::BTreeMap::new();
    for lead in leads {
        for (d, v) in &lead.segments {
            let g = groups.entry((d.clone(), v.clone())).or_default();
            g.1 += 1;
            if lead.won {
                g.0 += 1;
            }
        }
    }
    let mut out: Vec<Factor> = groups
        .into_iter()
        .map(|((dimension, value), (won, decided))| {
            let rate = (decided > 0).then(|| won as f64 / decided as f64);
            Factor {
                dimension,
                value,
                won,
                decided,
                win_rate: rate,
                lift: rate.zip(overall.filter(|o| *o > 0.0)).map(|(r, o)| r / o),
                interval: wilson(won, decided, Z95),
                small_sample: decided < min_sample,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        a.dimension
            .cmp(&b.dimension)
            .then(b.lift.unwrap_or(0.0).total_cmp(&a.lift.unwrap_or(0.0)))
            .then(a.value.cmp(&b.value))
    });
    (won, decided, out)
}

/// A lead attribute qualification scores on, and the condition a segment value becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Equals {
        field: &'static str,
        value: String,
    },
    Range {
        field: &'static str,
        gte: f64,
        lt: Option<f64>,
    },
}

/// The condition of a segment, if qualification can score on its dimension.
pub fn condition_of(dimension: &str, value: &str) -> Option<Condition> {
    let equals = |field: &'static str| {
        Some(Condition::Equals {
            field,
            value: value.to_owned(),
        })
    };
    match dimension {
        "industry" => equals("company.industry"),
        "country" => equals("company.country"),
        "channel" => equals("source.channel"),
        "lead_magnet" => equals("source.lead_magnet"),
        "funnel_position" => equals("source.funnel_position"),
        "employee_band" => {
            let field = "company.employees";
            if let Some(low) = value.strip_suffix('+') {
                return Some(Condition::Range {
                    field,
                    gte: low.parse().ok()?,
                    lt: None,
                });
            }
            let (low, high) = value.split_once('-')?;
            Some(Condition::Range {
                field,
                gte: low.parse().ok()?,
                lt: Some(high.parse::<f64>().ok()? + 1.0),
            })
        }
        _ => None,
    }
}

/// A scoring rule drafted from a factor.
#[derive(Debug, Clone, PartialEq)]
pub struct Drafted {
    pub key: String,
    pub factor: Factor,
    pub condition: Condition,
    pub points: i64,
}

/// Prefix of every drafted rule's key (a new draft replaces the earlier drafted rules).
pub const DRAFTED_PREFIX: &str = "outcome_";

/// How a draft turns lift into points: the lowest lift kept (its inverse the highest penalised),
/// points per unit of lift above 1, and the most points a rule gives or takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DraftScale {
    pub min_lift: f64,
    pub points_per_lift: i64,
    pub max_points: i64,
}

/// The rules `factors` suggest: segments qualification scores on, not small samples, with a lift
/// of at least `scale.min_lift` (or at most its inverse, negative points).
pub fn draft(factors: &[Factor], scale: DraftScale) -> Vec<Drafted> {
    let DraftScale {
        min_lift,
        points_per_lift,
        max_points,
    } = scale;
    factors
        .iter()
        .filter(|f| !f.small_sample)
        .filter_map(|f| {
            let lift = f.lift?;
            if lift < min_lift && lift > 1.0 / min_lift {
                return None;
            }
            let condition = condition_of(&f.dimension, &f.value)?;
            let points = (((lift - 1.0) * points_per_lift as f64).round() as i64)
                .clamp(-max_points, max_points);
            if points == 0 {
                return None;
            }
            let slug: String = format!("{}_{}", f.dimension, f.value)
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            Some(Drafted {
                key: format!("{DRAFTED_PREFIX}{slug}"),
                factor: f.clone(),
                condition,
                points,
            })
        })
        .collect()
}

/// The score band of a score at handoff, in bands of `width` (20: "0-19", "20-39", …; negative
/// "<0").
pub fn score_band(score: i64, width: i64) -> String {
    if score < 0 {
        return "<0".into();
    }
    let width = width.max(1);
    let low = score / width * width;
    format!("{low}-{}", low + width - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_the_textbook_values() {
        // 5 of 10 at 95 %: 0.2366 .. 0.7634.
        let (lo, hi) = wilson(5, 10, Z95).unwrap();
        assert!(
            (lo - 0.2366).abs() < 1e-4 && (hi - 0.7634).abs() < 1e-4,
            "{lo} {hi}"
        );
        // 0 of 5: 0 .. 0.4345.
        let (lo, hi) = wilson(0, 5, Z95).unwrap();
        assert!(lo.abs() < 1e-9 && (hi - 0.4345).abs() < 1e-4, "{lo} {hi}");
        assert_eq!(wilson(0, 0, Z95), None);
    }

    #[test]
    fn lift_compares_a_segment_with_all_and_small_samples_are_flagged() {
        let lead = |industry: &str, won: bool| Decided {
            segments: vec![("industry".into(), industry.into())],
            won,
        };
        let leads = vec![
            lead("retail", true),
            lead("retail", true),
            lead("retail", false),
            lead("finance", false),
        ];
        let (won, decided, f) = factors(&leads, 3);
        assert_eq!((won, decided), (2, 4));
        assert_eq!(f[0].value, "retail");
        assert!((f[0].lift.unwrap() - (2.0 / 3.0) / 0.5).abs() < 1e-9);
        assert!(!f[0].small_sample);
        assert!(f[1].small_sample && f[1].lift == Some(0.0));
    }

    #[test]
    fn a_draft_keeps_strong_segments_on_fields_qualification_scores() {
        let f = |dimension: &str, value: &str, lift: f64, small: bool| Factor {
            dimension: dimension.into(),
            value: value.into(),
            won: 0,
            decided: 40,
            win_rate: None,
            lift: Some(lift),
            interval: None,
            small_sample: small,
        };
        let factors = vec![
            f("industry", "retail", 1.5, false),
            f("industry", "finance", 0.5, false),
            f("country", "JP", 1.1, false),
            f("employee_band", "50-249", 2.0, false),
            f("rank", "hot", 3.0, false),
            f("channel", "seo", 4.0, true),
        ];
        let scale = DraftScale {
            min_lift: 1.2,
            points_per_lift: 20,
            max_points: 50,
        };
        let d = draft(&factors, scale);
        let got: Vec<(&str, i64)> = d.iter().map(|r| (r.key.as_str(), r.points)).collect();
        assert_eq!(
            got,
            vec![
                ("outcome_industry_retail", 10),
                ("outcome_industry_finance", -10),
                ("outcome_employee_band_50_249", 20)
            ]
        );
        assert_eq!(
            d[2].condition,
            Condition::Range {
                field: "company.employees",
                gte: 50.0,
                lt: Some(250.0)
            }
        );
    }

    #[test]
    fn scores_fall_in_bands_of_the_width_asked() {
        assert_eq!(score_band(0, 20), "0-19");
        assert_eq!(score_band(45, 20), "40-59");
        assert_eq!(score_band(45, 10), "40-49");
        assert_eq!(score_band(-5, 20), "<0");
    }
}
