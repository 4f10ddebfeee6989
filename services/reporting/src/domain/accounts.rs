//! Target accounts: whether a lead's company matches the tenant's condition. Pure.

/// A tenant's target-account condition (lower-cased, trimmed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    pub web_domains: Vec<String>,
    pub industries: Vec<String>,
    pub countries: Vec<String>,
    pub min_employees: Option<i64>,
}

/// The facts of a company the condition reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Company<'a> {
    pub web_domain: &'a str,
    pub industry: &'a str,
    pub country: &'a str,
    pub employees: Option<i64>,
}

impl Condition {
    /// Nothing set: no lead is a target-account lead.
    pub fn is_empty(&self) -> bool {
        self.web_domains.is_empty()
            && self.industries.is_empty()
            && self.countries.is_empty()
            && self.min_employees.is_none()
    }

    /// A named account (its web domain is listed), or every criterion that is set holds.
    pub fn matches(&self, c: &Company<'_>) -> bool {
        let domain = c.web_domain.trim().to_ascii_lowercase();
        if !domain.is_empty() && self.web_domains.contains(&domain) {
            return true;
        }
        let criteria = !self.industries.is_empty()
            || !self.countries.is_empty()
            || self.min_employees.is_some();
        let any = |list: &[String], v: &str| {
            list.is_empty() || list.contains(&v.trim().to_ascii_lowercase())
        };
        criteria
            && any(&self.industries, c.industry)
            && any(&self.countries, c.country)
            && self
                .min_employees
                .is_none_or(|min| c.employees.is_some_and(|e| e >= min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_domain_or_every_criterion_set_makes_a_target() {
        let c = Condition {
            web_domains: vec!["big.example".into()],
            industries: vec!["manufacturing".into()],
            countries: vec!["jp".into()],
            min_employees: Some(500),
        };
        let company = |web_domain, industry, country, employees| Company {
            web_domain,
            industry,
            country,
            employees,
        };
        assert!(c.matches(&company("BIG.example", "", "", None)));
        assert!(c.matches(&company("", "Manufacturing", "JP", Some(500))));
        assert!(!c.matches(&company("", "Manufacturing", "JP", Some(499))));
        assert!(!c.matches(&company("", "Manufacturing", "US", Some(900))));
        assert!(!c.matches(&company("", "Manufacturing", "JP", None)));
        assert!(!Condition::default().matches(&company("big.example", "x", "y", Some(1))));
    }
}
