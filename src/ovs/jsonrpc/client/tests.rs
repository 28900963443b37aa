//! Tests for [`super::Client`] against deliberately awkward fake servers.
//!
//! Each fake server is a script run on a tokio `UnixListener` in a temporary
//! directory; it serves exactly one connection. Delays appear only where the
//! timing itself is under test (split writes, a server that never answers).

use super::*;
use crate::ovs::jsonrpc::codec::{encode_error, encode_response, Decoder, Message};
use serde_json::json;
use std::future::Future;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

const T: Duration = Duration::from_secs(5);

struct Fake {
    _dir: tempfile::TempDir,
    path: PathBuf,
    server: JoinHandle<()>,
}

/// Starts a one-connection server running `script`, returning once the
/// socket is bound so the client can connect without retrying.
fn fake<F, Fut>(script: F) -> Fake
where
    F: FnOnce(Conn) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = tokio::task::spawn_local(async move {
        let (stream, _) = listener.accept().await.unwrap();
        script(Conn {
            stream,
            dec: Decoder::new(),
            queued: Vec::new(),
        })
        .await;
    });
    Fake {
        _dir: dir,
        path,
        server,
    }
}

struct Conn {
    stream: UnixStream,
    dec: Decoder,
    queued: Vec<Message>,
}

impl Conn {
    async fn next(&mut self) -> Option<Message> {
        let mut buf = [0u8; 4096];
        while self.queued.is_empty() {
            let n = self.stream.read(&mut buf).await.unwrap();
            if n == 0 {
                return None;
            }
            self.queued.extend(self.dec.feed(&buf[..n]).unwrap());
        }
        Some(self.queued.remove(0))
    }

    /// Reads the next request, returning its id and method.
    async fn request(&mut self) -> (Value, String) {
        match self.next().await {
            Some(Message::Request { id, method, .. }) => (id, method),
            other => panic!("expected request, got {other:?}"),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }
}

fn ok(id: &Value, result: Value) -> Vec<u8> {
    encode_response(id, &result)
}

/// Runs a test body on a `LocalSet` so fake servers can use `spawn_local`
/// while the client still relies on plain `tokio::spawn`.
async fn local<F: Future<Output = ()>>(f: F) {
    tokio::task::LocalSet::new().run_until(f).await;
}

#[tokio::test(flavor = "current_thread")]
async fn replies_out_of_order_are_matched_by_id() {
    local(async {
        let f = fake(|mut c| async move {
            let (a, _) = c.request().await;
            let (b, _) = c.request().await;
            c.send(&ok(&b, json!("second"))).await;
            c.send(&ok(&a, json!("first"))).await;
        });
        let client = Client::connect(&f.path, T).await.unwrap();
        let (r1, r2) = tokio::join!(
            client.call("one", json!([]), T),
            client.call("two", json!([]), T)
        );
        assert_eq!(r1.unwrap(), json!("first"));
        assert_eq!(r2.unwrap(), json!("second"));
        f.server.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn two_replies_in_one_write() {
    local(async {
        let f = fake(|mut c| async move {
            let (a, _) = c.request().await;
            let (b, _) = c.request().await;
            let mut both = ok(&a, json!(1));
            both.extend(b"\n");
            both.extend(ok(&b, json!(2)));
            c.send(&both).await;
        });
        let client = Client::connect(&f.path, T).await.unwrap();
        let (r1, r2) = tokio::join!(
            client.call("a", json!([]), T),
            client.call("b", json!([]), T)
        );
        assert_eq!((r1.unwrap(), r2.unwrap()), (json!(1), json!(2)));
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn reply_split_across_delayed_writes() {
    local(async {
        let f = fake(|mut c| async move {
            let (id, _) = c.request().await;
            let bytes = ok(&id, json!({"s": "snow ☃ crab 🦀"}));
            let crab = bytes.windows(4).position(|w| w == "🦀".as_bytes()).unwrap();
            for part in [&bytes[..5], &bytes[5..crab + 2], &bytes[crab + 2..]] {
                c.send(part).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let client = Client::connect(&f.path, T).await.unwrap();
        let r = client.call("x", json!([]), T).await.unwrap();
        assert_eq!(r, json!({"s": "snow ☃ crab 🦀"}));
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn answers_echo_before_getting_reply() {
    local(async {
        let f = fake(|mut c| async move {
            let (id, _) = c.request().await;
            c.send(br#"{"id":"echo","method":"echo","params":["ping",1]}"#)
                .await;
            match c.next().await {
                Some(Message::Response { id, result, error }) => {
                    assert_eq!(id, json!("echo"));
                    assert_eq!(result, json!(["ping", 1]));
                    assert_eq!(error, Value::Null);
                }
                other => panic!("expected echo reply, got {other:?}"),
            }
            c.send(&ok(&id, json!("after echo"))).await;
        });
        let client = Client::connect(&f.path, T).await.unwrap();
        let r = client.call("x", json!([]), T).await.unwrap();
        assert_eq!(r, json!("after echo"));
        f.server.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn string_and_object_errors_become_remote() {
    local(async {
        let f = fake(|mut c| async move {
            let (a, _) = c.request().await;
            c.send(&encode_error(&a, &json!("unknown method"))).await;
            let (b, _) = c.request().await;
            // Real servers may omit "result" when "error" is set.
            let reply = json!({"id": b, "error": {"error": "syntax error", "details": "bad"}});
            c.send(reply.to_string().as_bytes()).await;
        });
        let client = Client::connect(&f.path, T).await.unwrap();
        let e = client.call("nope", json!([]), T).await.unwrap_err();
        match &e {
            RpcError::Remote { method, error, .. } => {
                assert_eq!(method, "nope");
                assert_eq!(error, &json!("unknown method"));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            e.to_string().ends_with("server error: unknown method"),
            "{e}"
        );
        let e = client.call("bad", json!([]), T).await.unwrap_err();
        match &e {
            RpcError::Remote { error, .. } => {
                assert_eq!(error, &json!({"error": "syntax error", "details": "bad"}))
            }
            other => panic!("{other:?}"),
        }
        assert!(
            e.to_string()
                .ends_with(r#"server error: {"details":"bad","error":"syntax error"}"#),
            "{e}"
        );
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn notification_is_delivered() {
    local(async {
        let f = fake(|mut c| async move {
            let (id, _) = c.request().await;
            let mut out = br#"{"id":null,"method":"update","params":["mon",{"t":{}}]}"#.to_vec();
            out.extend(ok(&id, json!({})));
            c.send(&out).await;
        });
        let client = Client::connect(&f.path, T).await.unwrap();
        let mut rx = client.notifications().unwrap();
        assert!(client.notifications().is_none());
        client.call("monitor", json!([]), T).await.unwrap();
        let (method, params) = timeout(T, rx.recv()).await.unwrap().unwrap();
        assert_eq!(method, "update");
        assert_eq!(params, json!(["mon", {"t": {}}]));
        f.server.await.unwrap();
        // The stream ends once the server has gone.
        assert!(timeout(T, rx.recv()).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn close_mid_message_fails_pending_call_promptly() {
    local(async {
        let f = fake(|mut c| async move {
            let (id, _) = c.request().await;
            let bytes = ok(&id, json!("never finished"));
            c.send(&bytes[..10]).await;
        });
        let client = Client::connect(&f.path, T).await.unwrap();
        let start = Instant::now();
        let e = client.call("x", json!([]), T).await.unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(
            matches!(
                e,
                RpcError::Codec {
                    source: CodecError::Truncated { bytes: 10 },
                    ..
                }
            ),
            "{e:?}"
        );
        // Later calls fail at once with the same cause.
        let e = client.call("y", json!([]), T).await.unwrap_err();
        assert!(matches!(e, RpcError::Codec { .. }), "{e:?}");
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn clean_close_gives_closed() {
    local(async {
        let f = fake(|mut c| async move {
            c.request().await;
        });
        let client = Client::connect(&f.path, T).await.unwrap();
        let e = client.call("exit", json!([]), T).await.unwrap_err();
        match e {
            RpcError::Closed { method, path } => {
                assert_eq!(method, "exit");
                assert_eq!(path, f.path);
            }
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn silent_server_times_out_and_leaves_no_pending_entry() {
    local(async {
        let (hold_tx, hold_rx) = oneshot::channel::<()>();
        let f = fake(|mut c| async move {
            c.request().await;
            let _ = hold_rx.await;
        });
        let client = Client::connect(&f.path, T).await.unwrap();
        let limit = Duration::from_millis(200);
        let start = Instant::now();
        // A call that never times out fails here instead of hanging the suite; how much later
        // than `limit` it returns depends on the machine's load, so only the floor is asserted.
        let e = tokio::time::timeout(Duration::from_secs(30), client.call("slow", json!([]), limit))
            .await
            .expect("the call's own timeout never fired")
            .unwrap_err();
        let took = start.elapsed();
        assert!(took >= limit, "{took:?}");
        assert!(
            matches!(&e, RpcError::Timeout { method, after, .. } if method == "slow" && *after == limit),
            "{e:?}"
        );
        assert!(lock(&client.inner.shared.pending).waiters.is_empty());
        drop(hold_tx);
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn unknown_id_is_ignored() {
    local(async {
        let f = fake(|mut c| async move {
            let (id, _) = c.request().await;
            c.send(&ok(&json!(999), json!("stray"))).await;
            c.send(&ok(&json!("text-id"), json!("stray"))).await;
            c.send(&ok(&id, json!("mine"))).await;
        });
        let client = Client::connect(&f.path, T).await.unwrap();
        assert_eq!(client.call("x", json!([]), T).await.unwrap(), json!("mine"));
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn missing_socket_keeps_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.sock");
    match Client::connect(&path, T).await.unwrap_err() {
        RpcError::Connect { source, path: p } => {
            assert_eq!(source.raw_os_error(), Some(nix::libc::ENOENT));
            assert_eq!(p, path);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_last_client_closes_connection() {
    local(async {
        let (saw_eof_tx, saw_eof_rx) = oneshot::channel();
        let f = fake(|mut c| async move {
            let (id, _) = c.request().await;
            c.send(&ok(&id, json!(true))).await;
            let _ = saw_eof_tx.send(c.next().await.is_none());
        });
        let client = Client::connect(&f.path, T).await.unwrap();
        let second = client.clone();
        assert_eq!(second.call("x", json!([]), T).await.unwrap(), json!(true));
        drop(client);
        drop(second);
        assert!(timeout(T, saw_eof_rx).await.unwrap().unwrap());
    })
    .await;
}
