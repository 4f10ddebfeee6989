//! nurture's HTTP edge for what mails link to: the open pixel, the click redirect (only to a link
//! that was in that mail: no open redirect) and the one-click unsubscribe (RFC 8058: POST
//! unsubscribes, GET only shows the button). Tokens are HMAC-signed. Hits are queued and recorded
//! in batches by one writer; an unsubscribe is answered only once it is stored.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, Method, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use baton_shared::time;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::token::{Signer, Target},
    store::{
        Store,
        touches::{self, TrackedHit},
    },
};

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];
/// Links of sent mails kept in memory for redirects (cleared when full).
const LINK_CACHE_MAX: usize = 100_000;
/// Hits waiting for the writer; a full queue makes handlers wait (nothing is dropped).
const QUEUE: usize = 65_536;
/// Tries of one batch before it is given up.
const WRITE_ATTEMPTS: u32 = 4;

type Queued = (TrackedHit, Option<oneshot::Sender<bool>>);

#[derive(Clone)]
struct Tracker {
    signer: Signer,
    db: DatabaseConnection,
    queue: mpsc::Sender<Queued>,
    links: Arc<Mutex<HashMap<String, Arc<Vec<String>>>>>,
}

/// The tracking endpoint and its batch writer, until `shutdown`.
pub async fn serve(
    store: Store,
    signer: Signer,
    listener: tokio::net::TcpListener,
    batch_max: usize,
    flush: Duration,
    shutdown: CancellationToken,
) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let writer = tokio::spawn(write_batches(store.clone(), rx, batch_max.max(1), flush));
    let tracker = Tracker {
        signer,
        db: store.db.clone(),
        queue: tx,
        links: Arc::new(Mutex::new(HashMap::new())),
    };
    let app = Router::new()
        .route("/t/o/{token}", get(open))
        .route("/t/c/{token}", get(click))
        .route("/t/u/{token}", get(unsubscribe_page).post(unsubscribe))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(tracker);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "nurture tracking endpoint failed");
    }
    // The router (and with it every sender) is gone: the writer drains the queue and stops.
    let _ = writer.await;
}

async fn write_batches(store: Store, mut rx: mpsc::Receiver<Queued>, max: usize, flush: Duration) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + flush;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(hit)) => batch.push(hit),
                _ => break,
            }
        }
        let hits: Vec<TrackedHit> = batch.iter().map(|(h, _)| h.clone()).collect();
        let ok = record(&store, &hits).await;
        store.log.notify_committed();
        for (_, ack) in batch {
            if let Some(ack) = ack {
                let _ = ack.send(ok);
            }
        }
    }
}

/// Records a batch, trying again a few times while the database is unavailable; a batch that
/// still fails is logged with its size (those hits are lost, and an unsubscribe among them is
/// answered 503 so the mail client tries again).
async fn record(store: &Store, hits: &[TrackedHit]) -> bool {
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=WRITE_ATTEMPTS {
        match touches::record_hits(&store.db, hits).await {
            Ok(_) => return true,
            Err(e) if attempt == WRITE_ATTEMPTS => {
                tracing::error!(error = %e, hits = hits.len(), "nurture: tracking hits not recorded");
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "nurture: tracking batch failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
    false
}

fn client_addr(headers: &HeaderMap, peer: SocketAddr) -> Option<IpAddr> {
    // Behind an ingress the first X-Forwarded-For entry is the client.
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.trim().parse().ok())
        .or(Some(peer.ip()))
}

fn hit(
    claim_tenant: String,
    touch_id: String,
    target: Target,
    method: &Method,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> TrackedHit {
    TrackedHit {
        tenant: claim_tenant,
        sent_touch_id: touch_id,
        target,
        at: time::now(),
        head: method == Method::HEAD,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(500)
            .collect(),
        addr: client_addr(headers, peer),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

async fn open(
    State(t): State<Tracker>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let token = token.strip_suffix(".gif").unwrap_or(&token);
    if let Some(c) = t.signer.verify(token)
        && c.target == Target::Open
    {
        let _ = t
            .queue
            .send((
                hit(c.tenant, c.touch_id, c.target, &method, &headers, peer),
                None,
            ))
            .await;
    }
    // The pixel is served whatever the token: a mail client shows no broken image.
    (
        [
            (header::CONTENT_TYPE, "image/gif"),
            (
                header::CACHE_CONTROL,
                "no-store, no-cache, must-revalidate, private",
            ),
        ],
        PIXEL,
    )
        .into_response()
}

async fn click(
    State(t): State<Tracker>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Some(c) = t.signer.verify(&token) else {
        return not_found();
    };
    let Target::Click(n) = c.target else {
        return not_found();
    };
    let Some(url) = t.link(&c.tenant, &c.touch_id, n).await else {
        return not_found();
    };
    let _ = t
        .queue
        .send((
            hit(c.tenant, c.touch_id, c.target, &method, &headers, peer),
            None,
        ))
        .await;
    // 302: what mail links have always answered.
    (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
}

impl Tracker {
    /// The n-th link of the sent mail `touch_id`, if it had one.
    async fn link(&self, tenant: &str, touch_id: &str, n: usize) -> Option<String> {
        let cached = self
            .links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(touch_id)
            .cloned();
        let links = match cached {
            Some(l) => l,
            None => {
                let sent = touches::find(&self.db, tenant, touch_id).await.ok()??;
                let links: Arc<Vec<String>> =
                    Arc::new(serde_json::from_str(&sent.links).unwrap_or_default());
                let mut map = self.links.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() >= LINK_CACHE_MAX {
                    map.clear();
                }
                map.insert(touch_id.to_owned(), links.clone());
                links
            }
        };
        links.get(n).cloned()
    }
}

async fn unsubscribe_page(State(t): State<Tracker>, Path(token): Path<String>) -> Response {
    match t.signer.verify(&token) {
        Some(c) if c.target == Target::Unsubscribe => Html(
            "<!doctype html><meta charset=utf-8><title>Unsubscribe</title>\
             <form method=post><p>Stop receiving these e-mails?</p>\
             <input type=hidden name=List-Unsubscribe value=One-Click>\
             <button type=submit>Unsubscribe</button></form>",
        )
        .into_response(),
        _ => not_found(),
    }
}

async fn unsubscribe(
    State(t): State<Tracker>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Some(c) = t.signer.verify(&token) else {
        return not_found();
    };
    if c.target != Target::Unsubscribe {
        return not_found();
    }
    let (ack, stored) = oneshot::channel();
    let h = hit(c.tenant, c.touch_id, c.target, &method, &headers, peer);
    if t.queue.send((h, Some(ack))).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
    }
    match stored.await {
        Ok(true) => {
            Html("<!doctype html><meta charset=utf-8><p>You are unsubscribed.</p>").into_response()
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "not stored; try again").into_response(),
    }
}
