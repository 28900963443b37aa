//! The node settings: our ONE transaction (`settings::apply` over our JSON-RPC client) vs the
//! `ovs-vsctl` calls Kube-OVN's start-ovs.sh (and the ovs-ctl it calls) makes for the same
//! keys, against one real ovsdb-server in a temp dir, alternated run by run.
//!
//! Both sides write the same keys: external_ids system-id, rundir, hostname, ovn-remote,
//! ovn-encap-type, ovn-encap-ip, ovn-remote-probe-interval, ovn-openflow-probe-interval,
//! ovn-bridge-remote-probe-interval; other_config n-handler-threads, n-revalidator-threads,
//! hw-offload; br-int (netdev, fail_mode=secure). Every baseline call has `--no-wait` (no vswitchd
//! runs here; start-ovs.sh's calls without it would also wait for vswitchd to reconfigure, so
//! the baseline is measured at its cheapest).
//!
//! Run: `RUNS=50 cargo bench --bench settings` (scripts/bench.sh). Prints a markdown table.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ovs_ovn_supervisor::config::cli::{NodeArgs, PathArgs};
use ovs_ovn_supervisor::config::Config;
use ovs_ovn_supervisor::ovs::jsonrpc::Client;
use ovs_ovn_supervisor::settings;
use ovs_ovn_supervisor::settings::tuning::Threads;

const T: Duration = Duration::from_secs(10);

fn run(cmd: &mut Command) {
    let out = cmd.stderr(Stdio::piped()).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The ovs-vsctl calls for our keys, in start-ovs.sh's order and grouping.
fn baseline_calls(sock: &Path, sid: &str, rundir: &str, remote: &str) -> Vec<Vec<String>> {
    let db = format!("--db=unix:{}", sock.display());
    let c = |args: &[&str]| -> Vec<String> {
        let mut v = vec![db.clone(), "--no-wait".to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };
    vec![
        // ovs-ctl start --system-id=random: set_system_ids (one call) and set_hostname.
        c(&[
            "set",
            "Open_vSwitch",
            ".",
            &format!("external-ids:system-id=\"{sid}\""),
            &format!("external-ids:rundir=\"{rundir}\""),
        ]),
        c(&[
            "add",
            "Open_vSwitch",
            ".",
            "external-ids",
            "hostname=bench-node",
        ]),
        // start-ovs.sh (thread counts: only when nproc > 12; we always write them).
        c(&[
            "set",
            "Open_vSwitch",
            ".",
            "other_config:n-revalidator-threads=1",
        ]),
        c(&[
            "set",
            "Open_vSwitch",
            ".",
            "other_config:n-handler-threads=1",
        ]),
        c(&["set", "open_vswitch", ".", "other_config:hw-offload=false"]),
        c(&[
            "set",
            "Open_vSwitch",
            ".",
            "external-ids:ovn-encap-type=geneve",
        ]),
        c(&[
            "set",
            "open",
            ".",
            &format!("external-ids:ovn-remote={remote}"),
        ]),
        c(&[
            "set",
            "open",
            ".",
            "external-ids:ovn-remote-probe-interval=10000",
        ]),
        c(&[
            "set",
            "open",
            ".",
            "external-ids:ovn-openflow-probe-interval=180",
        ]),
        c(&["set", "open", ".", "external-ids:ovn-encap-type=geneve"]),
        c(&["set", "open", ".", "external-ids:hostname=bench-node"]),
        // Not in start-ovs.sh; needed for the same keys (OVN >= 24.03 reads it) and the sandbox.
        c(&[
            "set",
            "open",
            ".",
            "external-ids:ovn-bridge-remote-probe-interval=180000",
        ]),
        c(&["set", "open", ".", "external-ids:ovn-encap-ip=127.0.0.1"]),
        // ovn-controller creates br-int on a real node; here the script does it.
        c(&[
            "--may-exist",
            "add-br",
            "br-int",
            "--",
            "set",
            "Bridge",
            "br-int",
            "datapath_type=netdev",
            "fail_mode=secure",
        ]),
    ]
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[0]), ms(v[v.len() - 1]))
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs bench targets too (test =
    // false does not stop it), and this one starts real daemons for seconds to minutes.
    if !std::env::args().any(|a| a == "--bench") {
        println!("skipped: run through `cargo bench` (scripts/bench.sh)");
        return;
    }
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let tmp = tempfile::Builder::new().prefix("oosset").tempdir().unwrap();
    let dir = tmp.path();
    let db = dir.join("conf.db");
    let sock = dir.join("db.sock");
    run(Command::new("ovsdb-tool")
        .arg("create")
        .arg(&db)
        .arg("/usr/share/openvswitch/vswitch.ovsschema"));
    let mut server = Command::new("ovsdb-server")
        .arg(&db)
        .arg(format!("--remote=punix:{}", sock.display()))
        .arg(format!(
            "--unixctl={}",
            dir.join("ovsdb-server.ctl").display()
        ))
        .arg("--no-chdir")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let sandbox: PathBuf = dir.join("sandbox");
    let args = NodeArgs {
        paths: PathArgs {
            sandbox: Some(sandbox),
            ..Default::default()
        },
        node_name: Some("bench-node".into()),
        ..Default::default()
    };
    let cfg = Config::resolve(&args, "bench-node", Path::new("/")).unwrap();
    let threads = Threads {
        handlers: 1,
        revalidators: 1,
    };
    let sid = "5b3c1e4a-0000-4000-8000-000000000001";
    let owned = settings::owned(&cfg, sid, threads);
    let rundir = cfg.layout.ovs_rundir.display().to_string();
    let calls = baseline_calls(&sock, sid, &rundir, &cfg.southbound.remote);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Wait for the server, then one apply of each kind so both start from the same state.
    let t0 = Instant::now();
    let kept = loop {
        match rt.block_on(Client::connect(&sock, T)) {
            Ok(c) => break c,
            Err(_) if t0.elapsed() < T => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("ovsdb-server: {e}"),
        }
    };
    rt.block_on(settings::apply(&kept, &cfg, &owned, T))
        .unwrap();
    for c in &calls {
        run(Command::new("ovs-vsctl").args(c));
    }

    let (mut fresh, mut open, mut baseline, mut baseline_calls_each) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        // The three take turns going first, so no side always follows the 14 forks.
        for k in 0..3 {
            match (i + k) % 3 {
                0 => {
                    // Ours as the supervisor runs it on a (re)start: connect, read, 1 transaction.
                    let t = Instant::now();
                    rt.block_on(async {
                        let c = Client::connect(&sock, T).await.unwrap();
                        settings::apply(&c, &cfg, &owned, T).await.unwrap();
                    });
                    fresh.push(t.elapsed());
                }
                1 => {
                    let t = Instant::now();
                    for c in &calls {
                        let t1 = Instant::now();
                        run(Command::new("ovs-vsctl").args(c));
                        baseline_calls_each.push(t1.elapsed());
                    }
                    baseline.push(t.elapsed());
                }
                _ => {
                    // Ours on the connection the supervisor already holds (a daemon restart).
                    let t = Instant::now();
                    rt.block_on(settings::apply(&kept, &cfg, &owned, T))
                        .unwrap();
                    open.push(t.elapsed());
                }
            }
        }
    }
    drop(kept);
    drop(rt);
    let _ = server.kill();
    let _ = server.wait();

    let (f, fmin, fmax) = stats(fresh);
    let (o, omin, omax) = stats(open);
    let (a, amin, amax) = stats(baseline);
    let (c, cmin, cmax) = stats(baseline_calls_each);
    println!(
        "settings: {runs} runs each, alternated, one ovsdb-server (vswitch schema), same keys"
    );
    println!("| settings | median ms | min–max ms |");
    println!("| --- | --- | --- |");
    println!("| ours: connect + read + 1 transaction | {f:.2} | {fmin:.2}–{fmax:.2} |");
    println!("| ours: read + 1 transaction on an open connection | {o:.2} | {omin:.2}–{omax:.2} |");
    println!(
        "| Kube-OVN: {} ovs-vsctl --no-wait calls | {a:.2} | {amin:.2}–{amax:.2} |",
        calls.len()
    );
    println!("| (one ovs-vsctl call) | {c:.2} | {cmin:.2}–{cmax:.2} |");
    println!(
        "ratio Kube-OVN / ours (fresh connection, medians): {:.1}x",
        a / f
    );
    println!(
        "@settings runs={runs} calls={} ours={f:.3} ours_min={fmin:.3} ours_max={fmax:.3} open={o:.3} baseline={a:.3} baseline_min={amin:.3} baseline_max={amax:.3} call={c:.3}",
        calls.len()
    );
}
