//! Which roles may call which RPC: data (the built-in `policy.toml`, or a file that replaces it),
//! validated when a service starts.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::{Identity, Role};

/// The built-in policy (docs/security.md).
pub const DEFAULT_POLICY_TOML: &str = include_str!("policy.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: u32,
    rpc: BTreeMap<String, Vec<String>>,
}

/// Who may call a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// Any authenticated caller.
    Anyone,
    Roles(Vec<Role>),
}

/// RPC (`package.Service/Method`, or `package.Service/*`) → who may call it.
#[derive(Debug, Clone)]
pub struct Policy {
    pub version: u32,
    rules: HashMap<String, Allowed>,
}

/// Why a caller may not call a method.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No rule names the method.
    Unlisted,
    /// The caller has none of these roles.
    NeedsOneOf(Vec<Role>),
}

impl Policy {
    pub fn builtin() -> Policy {
        Policy::parse(DEFAULT_POLICY_TOML).unwrap_or_else(|e| {
            // The built-in policy is checked by a unit test; this cannot happen in a release.
            tracing::error!(error = %e, "built-in policy does not parse; every call is refused");
            Policy {
                version: 0,
                rules: HashMap::new(),
            }
        })
    }

    /// Parses a policy document; every problem is reported at once.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| format!("policy: {e}"))?;
        let mut problems = Vec::new();
        let mut rules = HashMap::new();
        for (method, roles) in file.rpc {
            if !valid_key(&method) {
                problems.push(format!(
                    "{method:?}: expected package.Service/Method or package.Service/*"
                ));
            }
            let allowed = if roles.iter().any(|r| r == "*") {
                Allowed::Anyone
            } else {
                let mut parsed = Vec::new();
                for r in &roles {
                    match r.parse::<Role>() {
                        Ok(role) => parsed.push(role),
                        Err(e) => problems.push(format!("{method}: {e}")),
                    }
                }
                if parsed.is_empty() && !roles.is_empty() {
                    continue;
                }
                if roles.is_empty() {
                    problems.push(format!("{method}: no role; list roles or \"*\""));
                }
                Allowed::Roles(parsed)
            };
            rules.insert(method, allowed);
        }
        if problems.is_empty() {
            Ok(Policy {
                version: file.version,
                rules,
            })
        } else {
            Err(format!("policy: {}", problems.join("; ")))
        }
    }

    /// The rule for `path` (`/package.Service/Method`): the method's own, else its service's.
    pub fn rule(&self, path: &str) -> Option<&Allowed> {
        let key = path.trim_start_matches('/');
        self.rules.get(key).or_else(|| {
            let service = key.rsplit_once('/')?.0;
            self.rules.get(&format!("{service}/*"))
        })
    }

    /// Whether `who` may call `path`.
    pub fn check(&self, path: &str, who: &Identity) -> Result<(), Denied> {
        match self.rule(path) {
            None => Err(Denied::Unlisted),
            Some(Allowed::Anyone) => Ok(()),
            Some(Allowed::Roles(roles)) => {
                if roles.iter().any(|r| who.has(*r)) {
                    Ok(())
                } else {
                    Err(Denied::NeedsOneOf(roles.clone()))
                }
            }
        }
    }
}

fn valid_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((service, method)) => {
            service.contains('.')
                && !method.is_empty()
                && !method.contains('/')
                && (method == "*" || method.chars().all(|c| c.is_ascii_alphanumeric()))
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth::Scope, tenant::TenantId};

    fn who(roles: &[Role]) -> Identity {
        Identity {
            sub: "u".into(),
            scope: Scope::Tenant(TenantId::new("t")),
            roles: roles.to_vec(),
        }
    }

    #[test]
    fn the_builtin_policy_parses_and_names_the_documented_defaults() {
        let p = Policy::parse(DEFAULT_POLICY_TOML).unwrap();
        let erase = "/baton.capture.v1.CaptureService/EraseLead";
        assert_eq!(p.check(erase, &who(&[Role::Admin])), Ok(()));
        assert_eq!(
            p.check(erase, &who(&[Role::SalesOps, Role::Marketing])),
            Err(Denied::NeedsOneOf(vec![Role::Admin]))
        );
        let subscribe = "/baton.events.v1.EventLog/Subscribe";
        assert!(p.check(subscribe, &who(&[Role::Admin])).is_err());
        assert_eq!(p.check(subscribe, &who(&[Role::Service])), Ok(()));
        let get = "/baton.capture.v1.CaptureService/GetLead";
        assert_eq!(p.check(get, &who(&[Role::FieldSales])), Ok(()));
        assert_eq!(
            p.check(
                "/baton.capture.v1.CaptureService/Nope",
                &who(&[Role::Admin])
            ),
            Err(Denied::Unlisted)
        );
    }

    #[test]
    fn a_service_wildcard_covers_methods_without_their_own_rule() {
        let p = Policy::parse(
            "version = 2\n[rpc]\n\"a.B/*\" = [\"marketing\"]\n\"a.B/C\" = [\"admin\"]\n",
        )
        .unwrap();
        assert_eq!(p.version, 2);
        assert_eq!(p.check("/a.B/D", &who(&[Role::Marketing])), Ok(()));
        assert!(p.check("/a.B/C", &who(&[Role::Marketing])).is_err());
    }

    #[test]
    fn every_problem_of_a_bad_policy_is_reported() {
        let err = Policy::parse(
            "version = 1\n[rpc]\n\"nope\" = [\"admin\"]\n\"a.B/C\" = [\"wizard\"]\n\"a.B/D\" = []\n",
        )
        .unwrap_err();
        assert!(err.contains("\"nope\""), "{err}");
        assert!(err.contains("wizard"), "{err}");
        assert!(err.contains("a.B/D: no role"), "{err}");
    }
}
