//! The HTTP endpoint (`OVS_OVN_SUPERVISOR_HTTP_ADDR`, default `[::]:10668` on a real node):
//! `/livez`, `/readyz`, `/startupz` for kubelet's `httpGet` probes, `/status` (the JSON of
//! `status --output json`) and `/metrics` (OpenMetrics, or Prometheus text 0.0.4 when that is
//! what the scraper accepts). Served by hyper on the supervisor's runtime.
//!
//! Invariants:
//! - Read-only: only GET and HEAD, only these paths; nothing here can reach a method of the
//!   control socket that changes anything (handover, stop). The verdicts are the control
//!   socket's own ([`crate::control::probe_verdict`]), from the same published snapshot.
//! - Bounded: at most [`MAX_CONNECTIONS`] at once (past that the listener is not polled and the
//!   kernel's backlog holds newcomers), the request head within [`HEADER_DEADLINE`], the whole
//!   exchange within [`REQUEST_DEADLINE`], no keep-alive (kubelet's prober does not reuse a
//!   connection either). A flood can delay an HTTP probe; the exec probe is unaffected.
//! - The port is the node's (host network): if someone else holds it, a warning says so once
//!   and the bind is retried every [`RETRY_BIND`] — the node runs on either way. During a
//!   rolling update the old instance closes its listener when it hands the node over, and the
//!   new one's retry then takes the port.

pub mod metrics;
pub mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{header, Method, Request, Response, StatusCode};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::control::counters;
use crate::status::{unix_ms, Snapshot};

pub const MAX_CONNECTIONS: usize = 32;
pub const HEADER_DEADLINE: Duration = Duration::from_secs(1);
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
pub const RETRY_BIND: Duration = Duration::from_secs(1);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where the endpoint listens, and where `/metrics` reads processes from.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub proc_root: PathBuf,
    /// HTTPS from these files (and only HTTPS: no plain fallback on the port); `None`: HTTP.
    pub tls: Option<crate::config::http::TlsFiles>,
}

/// The address the endpoint listens on while it does (one endpoint per process), for `status`.
static BOUND: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Where the endpoint listens now, if it does.
pub fn bound() -> Option<String> {
    BOUND.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Clears [`BOUND`] when the serving task ends, aborted included (its future is dropped).
struct Listening;

impl Drop for Listening {
    fn drop(&mut self) {
        *BOUND.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Binds `ep.addr` (retrying while it is taken) and serves until the task is aborted; the
/// address actually bound (port 0 picks one) is [`bound`] meanwhile (`status`'s `http_addr`).
pub fn spawn(ep: Endpoint, snap: watch::Receiver<Snapshot>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let tls = match &ep.tls {
            Some(files) => Some(tls_ready(files).await),
            None => None,
        };
        let listener = bind_retrying(ep.addr).await;
        let local = listener.local_addr().ok().map(|a| a.to_string());
        tracing::info!(addr = ?local, "HTTP endpoint: /livez /readyz /startupz /status /metrics");
        let _listening = Listening;
        *BOUND.lock().unwrap_or_else(|p| p.into_inner()) = local;
        serve(listener, snap, Arc::new(ep.proc_root), tls).await;
    })
}

/// The pair to serve, kept current. Checked before the start (exit 2 when bad), so a failure
/// here means the files changed since: nothing is served until they are good again, never
/// plain HTTP in place of HTTPS.
async fn tls_ready(files: &crate::config::http::TlsFiles) -> watch::Receiver<Arc<ServerConfig>> {
    let mut warned = false;
    loop {
        match tls::load(files) {
            Ok(cfg) => return tls::watch(files.clone(), cfg),
            Err(e) => {
                if !warned {
                    tracing::error!("HTTP endpoint not served until its TLS files are good: {e}");
                    warned = true;
                }
                tokio::time::sleep(tls::RELOAD_EVERY).await;
            }
        }
    }
}

async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    let mut warned = false;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            // A kernel without IPv6 (ipv6.disable=1) has no `[::]`: every IPv4 address instead.
            Err(e)
                if addr.ip() == std::net::Ipv6Addr::UNSPECIFIED
                    && e.raw_os_error() == Some(nix::libc::EAFNOSUPPORT) =>
            {
                let v4 = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, addr.port()));
                if let Ok(l) = TcpListener::bind(v4).await {
                    return l;
                }
                tokio::time::sleep(RETRY_BIND).await;
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(
                        %addr,
                        error = %e,
                        "cannot listen for HTTP probes and metrics (OVS_OVN_SUPERVISOR_HTTP_ADDR); \
                         retrying every {RETRY_BIND:?}; the node runs on and exec probes answer"
                    );
                    warned = true;
                }
                tokio::time::sleep(RETRY_BIND).await;
            }
        }
    }
}

async fn serve(
    listener: TcpListener,
    snap: watch::Receiver<Snapshot>,
    proc_root: Arc<PathBuf>,
    tls: Option<watch::Receiver<Arc<ServerConfig>>>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off rather than spin on a listener that stays ready.
                tracing::debug!(error = %e, "HTTP accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (snap, proc_root) = (snap.clone(), proc_root.clone());
        let acceptor = tls
            .as_ref()
            .map(|rx| tokio_rustls::TlsAcceptor::from(rx.borrow().clone()));
        tokio::spawn(async move {
            // The handshake is inside the deadline: a client that never sends its hello holds a
            // slot for REQUEST_DEADLINE at most.
            let _ = tokio::time::timeout(REQUEST_DEADLINE, async move {
                match acceptor {
                    None => exchange(stream, snap, proc_root).await,
                    Some(a) => {
                        if let Ok(s) = a.accept(stream).await {
                            exchange(s, snap, proc_root).await;
                        }
                    }
                }
            })
            .await;
            drop(permit);
        });
    }
}

/// One request and its answer on a connection, plain or TLS.
async fn exchange<S>(io: S, snap: watch::Receiver<Snapshot>, proc_root: Arc<PathBuf>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let resp = respond(&req, &snap.borrow().clone(), unix_ms(), &proc_root);
        async move { Ok::<_, Infallible>(resp) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(false)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_DEADLINE);
    let _ = builder
        .serve_connection(hyper_util::rt::TokioIo::new(io), svc)
        .await;
}

fn text(code: StatusCode, body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

/// The answer to one request: a pure function of the request, the snapshot and the time (and,
/// for `/metrics`, what `/proc` says now).
pub fn respond(
    req: &Request<Incoming>,
    snap: &Snapshot,
    now_ms: u64,
    proc_root: &std::path::Path,
) -> Response<Full<Bytes>> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    route(
        req.method(),
        req.uri().path(),
        accept,
        snap,
        now_ms,
        proc_root,
    )
}

/// [`respond`] on the request's parts, so it can be tested without a connection.
pub fn route(
    method: &Method,
    path: &str,
    accept: &str,
    snap: &Snapshot,
    now_ms: u64,
    proc_root: &std::path::Path,
) -> Response<Full<Bytes>> {
    let plain = "text/plain; charset=utf-8";
    let known = matches!(
        path,
        "/livez" | "/readyz" | "/startupz" | "/status" | "/metrics"
    );
    let resp = if !known {
        text(
            StatusCode::NOT_FOUND,
            format!("no such endpoint {path:?}\n"),
            plain,
        )
    } else if method != Method::GET && method != Method::HEAD {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "read-only: GET or HEAD\n".into(),
            plain,
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        r
    } else {
        match path {
            "/metrics" => {
                let body = metrics::openmetrics(snap, now_ms, proc_root);
                if accept.contains("application/openmetrics-text") {
                    text(StatusCode::OK, body, OPENMETRICS)
                } else {
                    text(
                        StatusCode::OK,
                        metrics::prometheus_text(&body),
                        PROMETHEUS_TEXT,
                    )
                }
            }
            "/status" => match crate::control::answer("status", snap, now_ms) {
                Ok(v) => text(StatusCode::OK, format!("{v}\n"), "application/json"),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"), plain),
            },
            probe => verdict(probe, snap, now_ms),
        }
    };
    counters::http_request(if known { path } else { "other" }, resp.status().as_u16());
    resp
}

/// `/livez`, `/readyz`, `/startupz`: 200 with the reason when the probe would pass, 503 with
/// it when it would fail — `probe`'s verdict, from the same function.
fn verdict(path: &str, snap: &Snapshot, now_ms: u64) -> Response<Full<Bytes>> {
    let method = match path {
        "/livez" => "liveness",
        "/readyz" => "readiness",
        _ => "startup",
    };
    let plain = "text/plain; charset=utf-8";
    let Some(v) = crate::control::probe_verdict(method, snap, now_ms) else {
        return text(StatusCode::NOT_FOUND, format!("no probe {method}\n"), plain);
    };
    let code = if v.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(code, format!("{}\n", v.reason), plain)
}

#[cfg(test)]
mod tests;
