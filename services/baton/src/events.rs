//! `baton events`: the dead letters of the running services (events a consumer could not apply
//! and skipped) and their replay. Both need a service token: `BATON_TOKEN`, else one the CLI
//! signs with the local key for every tenant.

use std::time::Duration;

use anyhow::Context;
use baton_proto::events::v1::{
    DeadLetter, ListDeadLettersRequest, ReplayDeadLetterRequest,
    dead_letters_client::DeadLettersClient,
};
use baton_shared::{
    ServiceName, Settings,
    auth::{Role, token::TokenSpec},
    peer::AuthChannel,
    time,
};
use comfy_table::{Table, presets::UTF8_FULL};

/// A channel to `service` with the operator's service token.
async fn connect(settings: &Settings, service: ServiceName) -> anyhow::Result<AuthChannel> {
    let token = match std::env::var(crate::access::TOKEN_ENV) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => crate::access::mint(
            settings,
            &TokenSpec {
                sub: "service:cli".into(),
                tenant: "*".into(),
                roles: vec![Role::Service],
                ttl: Duration::from_secs(600),
            },
        )?,
    };
    let endpoint = &settings.service(service).endpoint;
    baton_shared::peer::connect_with_token(endpoint, &settings.tls, &token)
        .await
        .map_err(|e| anyhow::anyhow!("connect to {e}"))
        .with_context(|| format!("{service} at {endpoint}"))
}

/// Every dead letter of `service` (or of every service that follows another's log), as a table.
pub async fn dead_letters(
    settings: &Settings,
    service: Option<ServiceName>,
    include_replayed: bool,
) -> anyhow::Result<String> {
    Ok(render(&list(settings, service, include_replayed).await?))
}

/// The dead letters of `service` (or of every service that follows another's log), oldest first.
async fn list(
    settings: &Settings,
    service: Option<ServiceName>,
    include_replayed: bool,
) -> anyhow::Result<Vec<(ServiceName, DeadLetter)>> {
    let mut rows: Vec<(ServiceName, DeadLetter)> = Vec::new();
    for name in service.map_or(ServiceName::ALL.to_vec(), |s| vec![s]) {
        let mut client = DeadLettersClient::new(connect(settings, name).await?);
        let mut page_token = String::new();
        loop {
            let answer = client
                .list_dead_letters(ListDeadLettersRequest {
                    source: String::new(),
                    include_replayed,
                    page_size: 0,
                    page_token: page_token.clone(),
                })
                .await;
            let page = match answer {
                Ok(page) => page.into_inner(),
                // A service that follows no other log has no dead letters to serve.
                Err(s) if s.code() == tonic::Code::Unimplemented && service.is_none() => break,
                Err(s) => anyhow::bail!("{name}: ListDeadLetters: {}", s.message()),
            };
            rows.extend(page.dead_letters.into_iter().map(|d| (name, d)));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
    }
    Ok(rows)
}

/// Replays every waiting dead letter of `service`, oldest first, with a progress bar. The report
/// lists those that failed again (they keep waiting, with the new error); any failure is an error.
pub async fn replay_waiting(settings: &Settings, service: ServiceName) -> anyhow::Result<String> {
    let waiting = list(settings, Some(service), false).await?;
    let mut client = DeadLettersClient::new(connect(settings, service).await?);
    let bar = crate::progress::counting(waiting.len() as u64, "replay");
    let mut failed = Vec::new();
    for (_, d) in &waiting {
        if let Err(s) = client
            .replay_dead_letter(ReplayDeadLetterRequest { id: d.id })
            .await
        {
            failed.push(format!("  {}: {}\n", d.id, s.message()));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let replayed = waiting.len() - failed.len();
    let report = format!(
        "{service}: {replayed} of {} waiting dead letters replayed\n{}",
        waiting.len(),
        failed.concat()
    );
    if failed.is_empty() {
        Ok(report)
    } else {
        anyhow::bail!("{report}{} failed again", failed.len())
    }
}

/// Replays dead letter `id` of `service`.
pub async fn replay(settings: &Settings, service: ServiceName, id: i64) -> anyhow::Result<String> {
    let mut client = DeadLettersClient::new(connect(settings, service).await?);
    let replayed = client
        .replay_dead_letter(ReplayDeadLetterRequest { id })
        .await
        .map_err(|s| anyhow::anyhow!("{service}: ReplayDeadLetter {id}: {}", s.message()))?
        .into_inner()
        .dead_letter
        .context("an answer without its dead letter")?;
    Ok(format!(
        "{service}: dead letter {id} ({} at position {} of {}) replayed\n",
        short_type(&replayed.type_url),
        replayed.position,
        replayed.source
    ))
}

/// The dead letters as a table (or a line saying there are none).
pub fn render(rows: &[(ServiceName, DeadLetter)]) -> String {
    if rows.is_empty() {
        return "no dead letters\n".to_owned();
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL).set_header(vec![
        "service",
        "id",
        "source",
        "position",
        "event",
        "attempts",
        "dead-lettered",
        "replayed",
        "error",
    ]);
    for (service, d) in rows {
        table.add_row(vec![
            service.to_string(),
            d.id.to_string(),
            d.source.clone(),
            d.position.to_string(),
            short_type(&d.type_url).to_owned(),
            d.attempts.to_string(),
            when(d.dead_lettered_at.as_ref().and_then(time::from_proto)),
            when(d.replayed_at.as_ref().and_then(time::from_proto)),
            d.error.chars().take(120).collect(),
        ]);
    }
    format!("{table}\n")
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn short_type(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}
