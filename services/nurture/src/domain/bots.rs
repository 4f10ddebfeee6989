//! People versus machines: which opens and clicks were made by mail privacy proxies, image caches
//! and link scanners. The rules are data (the tenant's nurture settings); a machine-made hit is
//! kept, flagged with the rule that caught it. Pure.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotRules {
    /// Case-insensitive substrings of a User-Agent.
    pub user_agents: Vec<String>,
    /// CIDR ranges.
    pub networks: Vec<String>,
    pub min_seconds_after_delivery: u32,
    pub all_links_count: u32,
    pub all_links_seconds: u32,
}

impl Default for BotRules {
    /// Agents of the common mail privacy proxies, image caches and security scanners; Apple's
    /// 17.0.0.0/8 (Mail Privacy Protection fetches from it); a click within 10 s of delivery; 3
    /// links of one mail within 5 s.
    fn default() -> Self {
        let agents = [
            "GoogleImageProxy",
            "ggpht.com",
            "YahooMailProxy",
            "Outlook-iOS",
            "Barracuda",
            "Mimecast",
            "Proofpoint",
            "ppops",
            "MessageLabs",
            "Symantec",
            "Trend Micro",
            "Sophos",
            "Forcepoint",
            "Zscaler",
            "Cisco",
            "SafeLinks",
            "bot",
            "crawler",
            "spider",
            "preview",
            "python-requests",
            "curl/",
            "Go-http-client",
            "Java/",
            "HeadlessChrome",
        ];
        BotRules {
            user_agents: agents.iter().map(|a| (*a).to_owned()).collect(),
            networks: vec!["17.0.0.0/8".to_owned()],
            min_seconds_after_delivery: 10,
            all_links_count: 3,
            all_links_seconds: 5,
        }
    }
}

/// One hit on the tracking endpoint.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub is_click: bool,
    /// A HEAD request (scanners check links without fetching them).
    pub head: bool,
    pub user_agent: &'a str,
    pub addr: Option<IpAddr>,
    pub at: DateTime<Utc>,
}

/// Why a hit is a machine's, or `None` for a person's. `delivered_at` is when the mail was
/// delivered; `other_clicks` are the earlier clicks on the same mail (link index, time).
pub fn machine_reason(
    rules: &BotRules,
    hit: &Hit<'_>,
    delivered_at: Option<DateTime<Utc>>,
    link: Option<usize>,
    other_clicks: &[(usize, DateTime<Utc>)],
) -> Option<String> {
    if hit.head {
        return Some("head_request".to_owned());
    }
    let agent = hit.user_agent.to_ascii_lowercase();
    if agent.trim().is_empty() {
        return Some("no_user_agent".to_owned());
    }
    if let Some(a) = rules
        .user_agents
        .iter()
        .find(|a| !a.is_empty() && agent.contains(&a.to_ascii_lowercase()))
    {
        return Some(format!("user_agent:{a}"));
    }
    if let Some(addr) = hit.addr
        && let Some(net) = rules
            .networks
            .iter()
            .find(|n| n.parse::<IpNet>().is_ok_and(|n| n.contains(&addr)))
    {
        return Some(format!("network:{net}"));
    }
    if !hit.is_click {
        return None;
    }
    if let Some(delivered) = delivered_at {
        let after = (hit.at - delivered).num_milliseconds();
        if after < i64::from(rules.min_seconds_after_delivery) * 1000 {
            return Some(format!("too_soon:{}s_after_delivery", after.max(0) / 1000));
        }
    }
    let window = chrono::Duration::seconds(i64::from(rules.all_links_seconds));
    let mut links: Vec<usize> = other_clicks
        .iter()
        .filter(|(_, at)| (hit.at - *at).abs() <= window)
        .map(|(l, _)| *l)
        .chain(link)
        .collect();
    links.sort_unstable();
    links.dedup();
    if rules.all_links_count > 1 && links.len() >= rules.all_links_count as usize {
        return Some(format!(
            "all_links:{}_links_in_{}s",
            links.len(),
            rules.all_links_seconds
        ));
    }
    None
}

/// Whether every network of the rules parses (for validation).
pub fn bad_networks(rules: &BotRules) -> Vec<&str> {
    rules
        .networks
        .iter()
        .filter(|n| n.parse::<IpNet>().is_err())
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

    fn hit(is_click: bool, ua: &'static str, addr: &str, at: DateTime<Utc>) -> Hit<'static> {
        Hit {
            is_click,
            head: false,
            user_agent: ua,
            addr: addr.parse().ok(),
            at,
        }
    }

    #[test]
    fn a_person_in_a_browser_is_a_person() {
        let rules = BotRules::default();
        let delivered = Utc::now() - chrono::Duration::minutes(5);
        let h = hit(true, BROWSER, "203.0.113.7", Utc::now());
        assert_eq!(
            machine_reason(&rules, &h, Some(delivered), Some(0), &[]),
            None
        );
    }

    #[test]
    fn proxies_and_scanners_are_machines_with_the_rule_that_caught_them() {
        let rules = BotRules::default();
        let now = Utc::now();
        let delivered = now - chrono::Duration::minutes(5);
        let proxy = hit(
            false,
            "Mozilla/5.0 (via ggpht.com GoogleImageProxy)",
            "66.249.1.1",
            now,
        );
        assert_eq!(
            machine_reason(&rules, &proxy, Some(delivered), None, &[]).as_deref(),
            Some("user_agent:GoogleImageProxy")
        );
        let apple = hit(false, BROWSER, "17.58.1.2", now);
        assert_eq!(
            machine_reason(&rules, &apple, Some(delivered), None, &[]).as_deref(),
            Some("network:17.0.0.0/8")
        );
        let soon = hit(true, BROWSER, "203.0.113.7", now);
        assert_eq!(
            machine_reason(
                &rules,
                &soon,
                Some(now - chrono::Duration::seconds(3)),
                Some(0),
                &[]
            )
            .as_deref(),
            Some("too_soon:3s_after_delivery")
        );
        let every = [(0, now), (1, now - chrono::Duration::seconds(1))];
        assert_eq!(
            machine_reason(&rules, &soon, Some(delivered), Some(2), &every).as_deref(),
            Some("all_links:3_links_in_5s")
        );
        let head = Hit { head: true, ..soon };
        assert_eq!(
            machine_reason(&rules, &head, Some(delivered), Some(0), &[]).as_deref(),
            Some("head_request")
        );
    }
}
