//! The filesystem, attacked on purpose against the real binary and daemons: a redirected run
//! directory, ten starts at the same instant on one directory, and conf.db lost or damaged;
//! hostile node files ([`node_files`]) and the readiness marker ([`marker`]) in their own
//! files. Waiting is on real conditions with deadlines.

mod marker;
mod node_files;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

/// Every file under `dir` with its content (sockets and dirs as markers).
fn listing(dir: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let content = std::fs::read_to_string(e.path()).unwrap_or_else(|_| "<not text>".into());
        m.insert(name, content);
    }
    m
}

/// Runs `run --sandbox` on `node` and waits for its exit, up to 20 s (a start that was not
/// refused runs on: then the node's guard stops it and `None` is returned). The output goes
/// outside the sandbox, so the sandbox shows exactly what the supervisor created.
fn run_once(node: &mut Node, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("out.log");
    let log = std::fs::File::create(&log_path).unwrap();
    node.child = Some(
        base_command(node.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    let code = loop {
        if let Some(st) = node.child.as_mut().unwrap().try_wait().unwrap() {
            node.child = None;
            break st.code();
        }
        if t0.elapsed() > Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (code, std::fs::read_to_string(&log_path).unwrap_or_default())
}

#[test]
fn a_world_writable_or_foreign_sandbox_is_refused_creating_nothing() {
    let mut node = Node::new();
    let dir = node.path().to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, out) = run_once(&mut node, &[]);
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("world-writable"), "{out}");
    assert!(listing(&dir).is_empty(), "created {:?}", listing(&dir));

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let (code, out) = run_once(&mut node, &[]);
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("uid 65534"), "{out}");
    assert!(listing(&dir).is_empty(), "created {:?}", listing(&dir));
}

#[test]
fn a_planted_run_dir_symlink_is_refused_and_its_target_untouched() {
    let victim = tempfile::tempdir().unwrap();
    // A live process's pidfile (nobody holds its lock: the old code judged it stale) and a file.
    let mut sleeper = Command::new("sleep").arg("600").spawn().unwrap();
    std::fs::write(
        victim.path().join("ovsdb-server.pid"),
        format!("{}\n", sleeper.id()),
    )
    .unwrap();
    std::fs::write(victim.path().join("precious.txt"), "keep me\n").unwrap();
    let before = listing(victim.path());

    let mut node = Node::new();
    std::fs::create_dir(node.path().join("run")).unwrap();
    std::os::unix::fs::symlink(victim.path(), node.path().join("run/openvswitch")).unwrap();
    let (code, out) = run_once(&mut node, &[]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("symlink inside the sandbox"), "{out}");
    assert_eq!(
        listing(victim.path()),
        before,
        "the link's target was changed"
    );
    assert!(
        !node.path().join("etc").exists(),
        "created files before refusing"
    );
}

#[test]
fn ten_simultaneous_starts_leave_one_node_with_its_control_socket() {
    let node_dir = tempfile::Builder::new().prefix("oos").tempdir().unwrap();
    let dir = node_dir.path().to_path_buf();
    let logs = tempfile::tempdir().unwrap();
    let db_sock = dir.join("run/openvswitch/db.sock").display().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let needle = db_sock.clone();
    let sampler = std::thread::spawn(move || {
        let mut most = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            most = most.max(count("ovs-vswitchd", &needle));
            std::thread::sleep(Duration::from_millis(5));
        }
        most
    });
    let mut children: Vec<_> = (0..10)
        .map(|i| {
            let log = std::fs::File::create(logs.path().join(format!("{i}.log"))).unwrap();
            base_command(&dir)
                .env("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap()
        })
        .collect();
    let log_of = |i: usize| std::fs::read_to_string(logs.path().join(format!("{i}.log"))).unwrap();
    // Wait until nine have exited.
    let t0 = Instant::now();
    let mut exited = BTreeMap::new();
    while exited.len() < 9 {
        for (i, c) in children.iter_mut().enumerate() {
            if let std::collections::btree_map::Entry::Vacant(slot) = exited.entry(i) {
                if let Some(st) = c.try_wait().unwrap() {
                    slot.insert(st);
                }
            }
        }
        assert!(t0.elapsed() < READY, "only {} of 10 exited", exited.len());
        std::thread::sleep(Duration::from_millis(10));
    }
    let winner = (0..10).find(|i| !exited.contains_key(i)).unwrap();
    let mut node = Node {
        dir: node_dir,
        child: Some(children.remove(winner)),
    };
    let winner_pid = node.child.as_ref().unwrap().id();
    for (i, st) in &exited {
        let log = log_of(*i);
        assert!(!st.success(), "loser {i} exited 0:\n{log}");
        assert!(
            log.contains("ovs-ovn-supervisor.lock") && log.contains(&format!("pid {winner_pid}")),
            "loser {i} does not name the lock and the winner (pid {winner_pid}):\n{log}"
        );
    }
    // Fails here before the fix: a loser removed the winner's control socket on its way out.
    let t0 = Instant::now();
    while node.probe("readiness").0 != 0 {
        assert!(
            t0.elapsed() < READY,
            "winner not ready: {:?}\n{}",
            node.probe("readiness"),
            log_of(winner)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dir.join("run/openvswitch/ovs-ovn-supervisor.sock").exists());
    assert_eq!(node.status().unwrap()["pid"], winner_pid as i64);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(sampler.join().unwrap(), 1, "two vswitchds on one run dir");
    assert!(node.stop().0.success(), "{}", log_of(winner));
}

/// A directory holding an `ovsdb-tool` whose `create` writes half a file and fails, as on a
/// full disk, and which runs the real tool otherwise.
fn failing_create_tool() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v ovsdb-tool"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = create ]; then printf 'OVSDB JSON 5' > \"$2\"; echo 'ovsdb-tool: {{}}: No space left on device' >&2; exit 1; fi\nexec {} \"$@\"\n",
        real.trim()
    );
    let p = d.path().join("ovsdb-tool");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

#[test]
fn a_failed_create_leaves_no_partial_conf_db_and_the_next_start_works() {
    let fake = failing_create_tool();
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut node = Node::new();
    node.start(&[("PATH", &path)]);
    let (st, _) = node.wait_exit(READY);
    assert_eq!(st.code(), Some(1), "{}", node.log());
    let etc = node.path().join("etc/openvswitch");
    let left: Vec<String> = listing(&etc)
        .into_keys()
        .filter(|n| n.contains("conf.db"))
        .collect();
    assert!(left.is_empty(), "a failed create left {left:?}");
    node.start(&[]);
    node.wait_ready(READY);
}

fn add_port(node: &Node, port: &str) {
    node.vsctl(&[
        "add-port",
        "br-int",
        port,
        "--",
        "set",
        "Interface",
        port,
        "type=internal",
    ]);
}

#[test]
fn conf_db_deleted_under_a_running_server_keeps_its_ports_through_a_restart() {
    let mut node = Node::new();
    node.start(&[("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")]);
    node.wait_ready(READY);
    add_port(&node, "p1");
    let db = node.path().join("etc/openvswitch/conf.db");
    std::fs::remove_file(&db).unwrap();
    let t0 = Instant::now();
    while !db.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "conf.db not written again:\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let old = pid_of(&node, "ovsdb-server.pid").unwrap();
    kill("KILL", old);
    let t0 = Instant::now();
    while pid_of(&node, "ovsdb-server.pid").is_none_or(|p| p == old)
        || node.probe("readiness").0 != 0
    {
        assert!(t0.elapsed() < READY, "no ready restart:\n{}", node.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let ports = node.vsctl(&["list-ports", "br-int"]);
    assert!(
        ports.lines().any(|p| p == "p1"),
        "ports after the restart: {ports:?}"
    );
    assert!(
        node.log()
            .contains("database deleted while ovsdb-server runs"),
        "{}",
        node.log()
    );
}

#[test]
fn a_truncated_conf_db_is_kept_as_a_copy_and_reported_at_error_level() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(READY);
    add_port(&node, "p1");
    assert!(node.stop().0.success());
    let db = node.path().join("etc/openvswitch/conf.db");
    let len = std::fs::metadata(&db).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    f.set_len(len - 40).unwrap();
    drop(f);
    node.start(&[]);
    node.wait_ready(READY);
    let etc = node.path().join("etc/openvswitch");
    let copies: Vec<String> = listing(&etc)
        .into_keys()
        .filter(|n| n.starts_with("conf.db.corrupt-"))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(
        std::fs::metadata(etc.join(&copies[0])).unwrap().len(),
        len - 40
    );
    let log = node.log();
    let line = log
        .lines()
        .find(|l| l.contains(&copies[0]))
        .unwrap_or_else(|| panic!("no line names the copy:\n{log}"));
    assert!(line.contains("ERROR"), "{line}");
}

/// `preflight` of a real (non-sandbox) node whose directories are all under `d`.
fn host_preflight(d: &Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(host_dirs(d))
        .env("OVN_SB_ADDR", "tcp:127.0.0.1:6642")
        .env("OVS_OVN_SUPERVISOR_RUNDIR_LINK", d.join("link"))
        .env("OVS_OVN_SUPERVISOR_FIREWALL", "false")
        .env("OVS_OVN_SUPERVISOR_DATAPATH_TYPE", "netdev")
        .arg("preflight")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_real_nodes_dirs_owned_by_kube_ovns_pod_uid_are_trusted_even_as_root() {
    // Kube-OVN's hostpath-init chowns the host paths to 65534, also when the container then
    // runs as root (its IPsec mode): refusing them would break those nodes.
    let dir = tempfile::Builder::new().prefix("oos").tempdir().unwrap();
    let d = dir.path();
    for (_, p) in host_dirs(d) {
        std::fs::create_dir_all(&p).unwrap();
    }
    let chown =
        |rel: &str, uid: u32| std::os::unix::fs::chown(d.join(rel), Some(uid), Some(uid)).unwrap();
    for rel in [
        "run/openvswitch",
        "run/ovn",
        "etc/openvswitch",
        "log/openvswitch",
        "log/ovn",
    ] {
        chown(rel, 65534);
    }
    let (code, table) = host_preflight(d);
    assert_eq!(code, Some(0), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("directories") && l.contains(" ok ")),
        "{table}"
    );
    // Any other user's directory is still refused.
    chown("run/ovn", 4242);
    let (code, table) = host_preflight(d);
    assert_eq!(code, Some(4), "{table}");
    assert!(table.contains("owned by uid 4242"), "{table}");
}
