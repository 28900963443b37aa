//! Request counts of the control socket and the HTTP endpoint, for `/metrics`.
//!
//! Invariants: one set per process (there is one control socket and one HTTP endpoint per
//! supervisor), lock-free, and bounded: methods and paths outside the known ones count as
//! `other`, so no client can grow a label set.

use std::sync::atomic::{AtomicU64, Ordering};

/// The control socket's methods, as they are counted.
pub const CONTROL_METHODS: [&str; 7] = [
    "startup",
    "liveness",
    "readiness",
    "status",
    "handover",
    "other",
    "malformed",
];

/// The HTTP paths served, as they are counted.
pub const HTTP_PATHS: [&str; 6] = [
    "/livez",
    "/readyz",
    "/startupz",
    "/status",
    "/metrics",
    "other",
];

/// HTTP status codes counted apart; any other counts as `other`.
pub const HTTP_CODES: [u16; 6] = [200, 404, 405, 406, 500, 503];

static CONTROL: [AtomicU64; CONTROL_METHODS.len()] = [const { AtomicU64::new(0) }; 7];
static HTTP: [[AtomicU64; HTTP_CODES.len() + 1]; HTTP_PATHS.len()] =
    [const { [const { AtomicU64::new(0) }; 7] }; 6];

fn index_of(list: &[&str], name: &str) -> usize {
    list.iter()
        .position(|m| *m == name)
        .unwrap_or_else(|| list.iter().position(|m| *m == "other").unwrap_or(0))
}

/// One request on the control socket (`None`: it never sent a readable request).
pub fn control_request(method: Option<&str>) {
    let i = index_of(&CONTROL_METHODS, method.unwrap_or("malformed"));
    CONTROL[i].fetch_add(1, Ordering::Relaxed);
}

/// One HTTP request answered with `code`.
pub fn http_request(path: &str, code: u16) {
    let p = index_of(&HTTP_PATHS, path);
    let c = HTTP_CODES
        .iter()
        .position(|k| *k == code)
        .unwrap_or(HTTP_CODES.len());
    HTTP[p][c].fetch_add(1, Ordering::Relaxed);
}

/// `(method, count)` for every control method.
pub fn control_counts() -> Vec<(&'static str, u64)> {
    CONTROL_METHODS
        .iter()
        .zip(&CONTROL)
        .map(|(m, c)| (*m, c.load(Ordering::Relaxed)))
        .collect()
}

/// `(path, code, count)` for every path and code seen at least once.
pub fn http_counts() -> Vec<(&'static str, String, u64)> {
    let mut out = Vec::new();
    for (p, row) in HTTP_PATHS.iter().zip(&HTTP) {
        for (i, n) in row.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                let code = HTTP_CODES
                    .get(i)
                    .map_or("other".to_string(), |c| c.to_string());
                out.push((*p, code, n));
            }
        }
    }
    out
}

/// Reloads of the HTTP endpoint's certificate and key: `[applied, failed]`.
static TLS_RELOADS: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

/// One reload of the HTTP endpoint's TLS files: applied, or refused (the old pair kept).
pub fn tls_reload(applied: bool) {
    TLS_RELOADS[usize::from(!applied)].fetch_add(1, Ordering::Relaxed);
}

/// `(applied, failed)` reloads of the HTTP endpoint's TLS files.
pub fn tls_reloads() -> (u64, u64) {
    (
        TLS_RELOADS[0].load(Ordering::Relaxed),
        TLS_RELOADS[1].load(Ordering::Relaxed),
    )
}
