//! Probe latency: `ovs-ovn-supervisor probe` vs a Kube-OVN-style shell probe (`ovsdb-client
//! list-dbs`, `ovs-appctl version`, `ovn-appctl connection-status`) against the same ready
//! sandbox, alternated run by run so machine noise hits both; plus our probe's peak RSS.
//! Prints medians, min–max and the ratio. Run: `scripts/bench-probe.sh [RUNS]`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ovs-ovn-supervisor");

fn timed(cmd: &mut Command) -> (Duration, bool) {
    let t0 = Instant::now();
    let ok = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    (t0.elapsed(), ok)
}

fn ours(dir: &Path, kind: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["probe", kind, "--sandbox"]).arg(dir);
    c
}

fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[v.len() / 2]), ms(v[0]), ms(v[v.len() - 1]))
}

fn ctl(dir: &Path, pidfile: &str, name: &str) -> String {
    let pid = std::fs::read_to_string(dir.join(pidfile)).expect(pidfile);
    dir.parent()
        .unwrap()
        .join(Path::new(dir.file_name().unwrap()))
        .join(format!("{name}.{}.ctl", pid.trim()))
        .display()
        .to_string()
}

fn main() {
    // `cargo test --all-targets` runs harness-less benches too; only `cargo bench` passes this.
    if !std::env::args().any(|a| a == "--bench") {
        println!("probe benchmark: run it with scripts/bench-probe.sh");
        return;
    }
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200);
    let tmp = tempfile::Builder::new().prefix("oosb").tempdir().unwrap();
    let dir = tmp.path();
    let mut node = Command::new(BIN)
        .args(["run", "--sandbox"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !timed(&mut ours(dir, "readiness")).1 {
        assert!(t0.elapsed() < Duration::from_secs(30), "sandbox not ready");
        std::thread::sleep(Duration::from_millis(20));
    }

    // Peak RSS first, while our probes are the only children ever waited for.
    for _ in 0..50 {
        timed(&mut ours(dir, "readiness"));
    }
    let rss_kb = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(0);

    let run = dir.join("run/openvswitch");
    let ovn = dir.join("run/ovn");
    let script = format!(
        "ovsdb-client list-dbs unix:{db} >/dev/null && ovs-appctl -t {vs} version >/dev/null && ovn-appctl -t {oc} connection-status | grep -q '^connected$'",
        db = run.join("db.sock").display(),
        vs = ctl(&run, "ovs-vswitchd.pid", "ovs-vswitchd"),
        oc = ctl(&ovn, "ovn-controller.pid", "ovn-controller"),
    );
    assert!(
        timed(Command::new("sh").arg("-c").arg(&script)).1,
        "shell probe fails: {script}"
    );
    let (mut ready, mut live, mut shell, mut floor) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // The cost of starting any process here: what no exec probe can go below.
        floor.push(timed(&mut Command::new("true")).0);
        let (d, ok) = timed(&mut ours(dir, "readiness"));
        assert!(ok);
        ready.push(d);
        let (d, ok) = timed(Command::new("sh").arg("-c").arg(&script));
        assert!(ok);
        shell.push(d);
        let (d, ok) = timed(&mut ours(dir, "liveness"));
        assert!(ok);
        live.push(d);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status();
    let _ = node.wait();

    let (r, rmin, rmax) = stats(ready);
    let (l, lmin, lmax) = stats(live);
    let (s, smin, smax) = stats(shell);
    let (f, fmin, fmax) = stats(floor);
    println!(
        "probe benchmark: {runs} runs each, alternated, on one ready sandbox ({} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("| probe | median ms | min–max ms |");
    println!("| --- | --- | --- |");
    println!("| ovs-ovn-supervisor probe readiness | {r:.2} | {rmin:.2}–{rmax:.2} |");
    println!("| ovs-ovn-supervisor probe liveness | {l:.2} | {lmin:.2}–{lmax:.2} |");
    println!("| shell: ovsdb-client list-dbs + ovs-appctl version + ovn-appctl connection-status | {s:.2} | {smin:.2}–{smax:.2} |");
    println!("| exec floor: /bin/true | {f:.2} | {fmin:.2}–{fmax:.2} |");
    println!("ratio shell / ours (readiness, medians): {:.1}x", s / r);
    println!(
        "ratio above the exec floor (shell - floor) / (ours - floor): {:.1}x",
        (s - f) / (r - f).max(0.001)
    );
    println!(
        "ovs-ovn-supervisor probe peak RSS: {:.1} MB",
        rss_kb as f64 / 1024.0
    );
}
