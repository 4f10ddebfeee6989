//! How the CLI calls a running suite: the token (`--token` / `BATON_TOKEN`, else one it signs
//! with the local key, as an admin of the default tenant) and the transport (TLS per settings).

use std::time::Duration;

use anyhow::Context;
use baton_shared::{
    Settings,
    auth::{
        Role,
        token::{Signer, TokenSpec},
    },
    peer::AuthChannel,
};

/// The environment variable the CLI takes its token from.
pub const TOKEN_ENV: &str = "BATON_TOKEN";

/// Signs a token with the local key the settings name (`auth.signing_key_file`, else the
/// development HS256 secret).
pub fn mint(settings: &Settings, spec: &TokenSpec) -> anyhow::Result<String> {
    let signer = Signer::from_settings(&settings.auth)?.context(
        "no local signing key: set auth.signing_key_file, or run `baton up` once to create the development key",
    )?;
    signer.mint(spec).map_err(|e| anyhow::anyhow!("sign: {e}"))
}

/// The token the CLI sends: `BATON_TOKEN` if set, else an admin token of the default tenant it
/// signs with the local key (the embedded default).
pub fn cli_token(settings: &Settings) -> anyhow::Result<String> {
    if let Ok(token) = std::env::var(TOKEN_ENV)
        && !token.trim().is_empty()
    {
        return Ok(token.trim().to_owned());
    }
    mint(
        settings,
        &TokenSpec {
            sub: "cli".into(),
            tenant: settings.tenancy.default_tenant.clone(),
            roles: vec![Role::Admin],
            ttl: Duration::from_secs(600),
        },
    )
    .with_context(|| format!("no token: set {TOKEN_ENV} (see `baton token --help`)"))
}

/// A channel to `endpoint` carrying the CLI's token.
pub async fn connect(settings: &Settings, endpoint: &str) -> anyhow::Result<AuthChannel> {
    let token = cli_token(settings)?;
    baton_shared::peer::connect_with_token(endpoint, &settings.tls, &token)
        .await
        .map_err(|e| anyhow::anyhow!("connect to {e}"))
}

/// A duration such as `90s`, `15m`, `1h` or `7d`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and a unit (s, m, h, d), e.g. 1h"))?;
    let seconds = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    let total = n
        .checked_mul(seconds)
        .filter(|s| (1..=366 * 86_400).contains(s))
        .ok_or_else(|| format!("{text:?}: a token lives between 1 second and 366 days"))?;
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse_with_their_units_and_bounds() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_ttl("0h").is_err());
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("400d").is_err());
        assert!(parse_ttl("99999999999999999999h").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
