//! Tests of [`super`]: pure codec/parsing tables, fake peers, and the real daemons where named.

use super::*;
use std::process::{Child, Command, Stdio};
use tokio::net::UnixListener;

#[test]
fn header_roundtrip_and_wire_layout() {
    let h = Header::new(0x04, OFPT_ECHO_REPLY, 0x0102, 0xdead_beef);
    let wire = h.encode();
    assert_eq!(wire, [0x04, 0x03, 0x01, 0x02, 0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(Header::decode(&wire), h);
    let hello = encode_hello(7);
    assert_eq!(hello, [6, 0, 0, 16, 0, 0, 0, 7, 0, 1, 0, 8, 0, 0, 0, 0x7e]);
    assert_eq!(encode_echo_request(1, 9), [1, 2, 0, 8, 0, 0, 0, 9]);
}

#[test]
#[rustfmt::skip]
fn negotiation_table() {
    let hdr = |version| Header::new(version, OFPT_HELLO, 8, 0);
    let bitmap = |b: u32| [&[0, 1, 0, 8][..], &b.to_be_bytes()].concat();
    // What vswitchd 3.1 sends with protocols=OpenFlow13: an unknown
    // element first must be skipped by its padded length.
    let after_unknown = [&[0, 9, 0, 5, 0, 0, 0, 0][..], &bitmap(1 << 4)].concat();
    // (peer header version, hello body, negotiated)
    let table: &[(u8, Vec<u8>, Result<u8, ()>)] = &[
        (6, vec![], Ok(6)), (4, vec![], Ok(4)), (1, vec![], Ok(1)), (9, vec![], Ok(6)),
        (0, vec![], Err(())), (4, bitmap(1 << 4), Ok(4)), (9, bitmap(1 << 9), Err(())),
        (6, bitmap((1 << 1) | (1 << 4)), Ok(4)), (4, after_unknown, Ok(4)),
        // A malformed element (length 2) falls back to the header version.
        (5, vec![0, 1, 0, 2], Ok(5)),
    ];
    for (version, body, want) in table {
        let got = negotiate(&hdr(*version), body).map_err(|_| ());
        assert_eq!(&got, want, "{version} {body:?}");
    }
}

/// What a fake switch does after reading our HELLO.
#[derive(Clone, Copy)]
enum Peer {
    Good,
    NotHello,
    CloseEarly,
    SplitHello,
    Silent,
}

async fn serve(listener: UnixListener, peer: Peer) {
    while let Ok((mut s, _)) = listener.accept().await {
        tokio::spawn(async move {
            let (h, _) = read_message(&mut s).await.unwrap();
            assert_eq!(h.msg_type, OFPT_HELLO);
            let hello = Header::new(4, OFPT_HELLO, 8, 5);
            match peer {
                Peer::Good => s.write_all(&hello.encode()).await.unwrap(),
                Peer::NotHello => {
                    let features = Header::new(4, 6, 8, 5); // OFPT_FEATURES_REQUEST
                    s.write_all(&features.encode()).await.unwrap()
                }
                Peer::CloseEarly => {
                    s.write_all(&hello.encode()[..3]).await.unwrap();
                    return;
                }
                Peer::SplitHello => {
                    let wire = hello.encode();
                    for chunk in wire.chunks(3) {
                        s.write_all(chunk).await.unwrap();
                        s.flush().await.unwrap();
                        tokio::task::yield_now().await;
                    }
                }
                Peer::Silent => {
                    let _ = s.read_u8().await;
                    return;
                }
            }
            while let Ok((h, body)) = read_message(&mut s).await {
                if h.msg_type == OFPT_ECHO_REQUEST {
                    assert_eq!(h.version, 4, "echo uses the negotiated version");
                    // Unrelated chatter first: must be skipped.
                    let other = Header::new(4, OFPT_ECHO_REPLY, 8, h.xid ^ 1);
                    s.write_all(&other.encode()).await.unwrap();
                    let reply = Header::new(4, OFPT_ECHO_REPLY, h.length, h.xid);
                    s.write_all(&reply.encode()).await.unwrap();
                    s.write_all(&body).await.unwrap();
                }
            }
        });
    }
}

fn fake_switch(dir: &Path, peer: Peer) -> PathBuf {
    let path = dir.join("br-int.mgmt");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(serve(listener, peer));
    path
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn fake_switch_outcomes() {
    let table = [
        (Peer::Good, "ok"),
        (Peer::SplitHello, "ok"),
        (Peer::NotHello, "protocol"),
        (Peer::CloseEarly, "io"),
        (Peer::Silent, "timeout"),
    ];
    for (peer, want) in table {
        let dir = tempfile::tempdir().unwrap();
        let path = fake_switch(dir.path(), peer);
        let got = match hello(&path, SECOND / 4).await {
            Ok(4) => "ok",
            Ok(v) => panic!("negotiated {v}"),
            Err(OpenFlowError::Protocol { .. }) => "protocol",
            Err(OpenFlowError::Io { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::UnexpectedEof);
                "io"
            }
            Err(OpenFlowError::Timeout { stage, .. }) => {
                assert_eq!(stage, Stage::Hello);
                "timeout"
            }
            Err(e) => panic!("{e}"),
        };
        assert_eq!(got, want);
    }
}

#[tokio::test]
async fn missing_and_stale_sockets_keep_their_errno() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("br-int.mgmt");
    let err = hello(&missing, SECOND).await.unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENOENT));
    let text = err.to_string();
    assert!(text.contains("has not created the bridge"), "{text}");

    // A dead vswitchd leaves its socket file behind.
    let stale = dir.path().join("stale.mgmt");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let err = hello(&stale, SECOND).await.unwrap_err();
    assert!(matches!(err, OpenFlowError::Connect { .. }), "{err:?}");
    assert_eq!(err.errno(), Some(Errno::ECONNREFUSED));
    assert!(err.to_string().contains("stale socket"), "{err}");
}

fn quick() -> Policy {
    Policy::new(Duration::from_millis(5), Duration::from_millis(50)).unwrap()
}

#[tokio::test]
async fn wait_ready_sees_a_late_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("br-int.mgmt");
    let late = path.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let listener = UnixListener::bind(&late).unwrap();
        serve(listener, Peer::Good).await;
    });
    let ready = wait_ready(&path, quick(), Instant::now() + 10 * SECOND, SECOND)
        .await
        .unwrap();
    assert!(ready.attempts > 1, "{ready:?}");
    assert_eq!(ready.version, 4);
    assert!(ready.elapsed >= Duration::from_millis(200), "{ready:?}");
}

#[tokio::test]
async fn wait_ready_gives_up_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never.mgmt");
    let start = Instant::now();
    let err = wait_ready(&path, quick(), start + SECOND / 4, SECOND)
        .await
        .unwrap_err();
    assert!(start.elapsed() < 2 * SECOND);
    let OpenFlowError::Deadline { attempts, last, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(*attempts >= 2, "{attempts}");
    assert!(matches!(**last, OpenFlowError::Connect { .. }));
    assert_eq!(err.errno(), Some(Errno::ENOENT));
    let text = err.to_string();
    let want = format!("after {attempts} attempts; last error: {last}");
    assert!(
        text.contains(&want) && text.contains("bridge yet"),
        "{text}"
    );

    let bad = Policy {
        cap: SECOND,
        ..quick()
    };
    let bad = Policy {
        base: Duration::ZERO,
        ..bad
    };
    let err = wait_ready(&path, bad, start, SECOND).await.unwrap_err();
    assert!(matches!(err, OpenFlowError::Policy { .. }), "{err:?}");
}

/// Real daemons under a tempdir; killed (TERM, then KILL) on drop.
struct Ovs {
    dir: tempfile::TempDir,
    children: Vec<Child>,
}

impl Drop for Ovs {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        for child in self.children.iter_mut().rev() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = kill(pid, Signal::SIGTERM);
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn find_bin(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Ovs {
    /// `line` is split on whitespace after `{D}` becomes the tempdir
    /// (tempdir paths have no spaces).
    fn cmd(&self, line: &str) -> Command {
        let d = self.dir.path();
        let line = line.replace("{D}", d.to_str().unwrap());
        let mut words = line.split_whitespace();
        let mut c = Command::new(find_bin(words.next().unwrap()).unwrap());
        // Keep every daemon file in the tempdir, never /var/run/openvswitch.
        c.args(words)
            .env("OVS_RUNDIR", d)
            .env("OVS_DBDIR", d)
            .env("OVS_LOGDIR", d);
        c
    }

    fn run(&self, line: &str) {
        let out = self.cmd(line).output().unwrap();
        assert!(out.status.success(), "{line}: {out:?}");
    }

    fn spawn(&mut self, line: &str) {
        let mut c = self.cmd(line);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.children.push(c.spawn().unwrap());
    }
}

#[tokio::test]
async fn real_vswitchd_answers_on_bridge_mgmt() {
    let tools = ["ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-vswitchd"];
    let schema = "/usr/share/openvswitch/vswitch.ovsschema";
    // scripts/install-deps.sh installs these; a missing one is a broken set-up, not a skip.
    for t in tools {
        assert!(
            find_bin(t).is_some(),
            "{t} not installed: run scripts/install-deps.sh"
        );
    }
    assert!(
        Path::new(schema).exists(),
        "{schema} missing: run scripts/install-deps.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut ovs = Ovs {
        dir,
        children: vec![],
    };
    ovs.run(&format!("ovsdb-tool create {{D}}/conf.db {schema}"));
    ovs.spawn(
        "ovsdb-server {D}/conf.db --remote=punix:{D}/db.sock \
         --pidfile={D}/o.pid --unixctl={D}/o.ctl",
    );
    // --retry is the readiness wait: it keeps connecting until the
    // server's socket answers (bounded by --timeout).
    ovs.run("ovs-vsctl --db=unix:{D}/db.sock --retry --timeout=20 --no-wait init");
    ovs.run(
        "ovs-vsctl --db=unix:{D}/db.sock --no-wait add-br br0 \
         -- set bridge br0 datapath_type=netdev fail_mode=secure",
    );
    ovs.spawn(
        "ovs-vswitchd unix:{D}/db.sock --pidfile={D}/v.pid --enable-dummy=override \
         --disable-system --log-file={D}/v.log",
    );
    let d = ovs.dir.path();
    let policy = Policy::new(Duration::from_millis(20), Duration::from_millis(500)).unwrap();
    let deadline = Instant::now() + 30 * SECOND;
    let result = wait_ready(&d.join("br0.mgmt"), policy, deadline, 2 * SECOND).await;
    let ready = result.unwrap_or_else(|e| {
        let log = std::fs::read_to_string(d.join("v.log")).unwrap_or_default();
        panic!("{e}\nvswitchd log:\n{log}")
    });
    eprintln!("real ovs-vswitchd: {ready:?}");
    // Empty `protocols` column: vswitchd 3.1 enables OpenFlow 1.0 to 1.5.
    assert_eq!(ready.version, 0x06);
}
