//! Saving and restoring br-int's table at scale, text (`ovs-ofctl`, what releases before 2026-12
//! did) against binary (our OpenFlow session, `dataplane::flows::binary`), on two running
//! switches that `scripts/bench-flows.sh` starts and loads: SRC holds the table, DST starts
//! empty and is cleared after each restore. The variants take turns going first.
//!
//! Env: FLOWS_SRC, FLOWS_DST (the bridges' `.mgmt` sockets), FLOWS_DIR (a directory of ours for
//! the saved files), FLOWS_METERS (SRC's meters, one `add-meter` argument a line), RUNS
//! (default 5). Prints a markdown table of medians (min–max), ms.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ovs_ovn_supervisor::dataplane::flows::binary;

fn env(name: &str) -> PathBuf {
    PathBuf::from(
        std::env::var_os(name)
            .unwrap_or_else(|| panic!("{name} not set: run scripts/bench-flows.sh")),
    )
}

fn ofctl(args: &[&str], stdout: Option<&Path>) -> Duration {
    let t0 = Instant::now();
    let mut cmd = Command::new("ovs-ofctl");
    cmd.args(["-O", "OpenFlow15"]).args(args);
    if let Some(p) = stdout {
        cmd.stdout(std::fs::File::create(p).unwrap());
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "ovs-ofctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    t0.elapsed()
}

fn count(sock: &str) -> String {
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow15", "dump-aggregate", sock])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    s.split_whitespace()
        .find(|w| w.starts_with("flow_count="))
        .unwrap_or("?")
        .to_string()
}

fn clear(dst: &str) {
    ofctl(&["del-flows", dst], None);
    ofctl(&["del-groups", dst], None);
    ofctl(&["del-meters", dst], None);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(v: &mut [f64]) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    format!("{:.0} ({:.0}–{:.0})", v[v.len() / 2], v[0], v[v.len() - 1])
}

/// One text save of `s` and restore into `d`: what `flows::text` runs (its aggregate counts
/// left out); (save, restore) ms.
fn text_run(s: &str, d: &str, flows: &Path, groups: &Path, meters: &str) -> (f64, f64) {
    let t0 = Instant::now();
    ofctl(&["dump-flows", "--no-names", "--no-stats", s], Some(flows));
    ofctl(&["dump-groups", "--no-names", s], Some(groups));
    // The reply header off, as `flows::text` keeps only the entries.
    let g = std::fs::read_to_string(groups).unwrap();
    let entries: String = g
        .lines()
        .filter(|l| l.starts_with(' '))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(groups, entries).unwrap();
    let save = ms(t0.elapsed());
    // The text save has no meters (ovs-ofctl 3.1 has no dump that add-meter reads back); the
    // flows using them need them, so they are added first, untimed.
    for m in meters.lines().filter(|m| !m.trim().is_empty()) {
        ofctl(&["add-meter", d, m], None);
    }
    let t0 = Instant::now();
    ofctl(&["add-groups", d, groups.to_str().unwrap()], None);
    ofctl(&["--bundle", "add-flows", d, flows.to_str().unwrap()], None);
    (save, ms(t0.elapsed()))
}

fn main() {
    let (src, dst, dir) = (env("FLOWS_SRC"), env("FLOWS_DST"), env("FLOWS_DIR"));
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let (s, d) = (
        format!("unix:{}", src.display()),
        format!("unix:{}", dst.display()),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(300);
    let (text_flows, text_groups) = (dir.join("flows.txt"), dir.join("groups.txt"));
    let table = dir.join("br-int.table");
    let mut t = [vec![], vec![], vec![], vec![]];
    clear(&d);
    let want = count(&s);
    let meters = std::env::var("FLOWS_METERS")
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap_or_default();
    for run in 0..runs {
        for variant in [run % 2, 1 - run % 2] {
            if variant == 0 {
                let (save, restore) = text_run(&s, &d, &text_flows, &text_groups, &meters);
                t[0].push(save);
                t[1].push(restore);
            } else {
                let t0 = Instant::now();
                let c = rt.block_on(binary::save(&src, &table, deadline())).unwrap();
                t[2].push(ms(t0.elapsed()));
                let bytes = std::fs::read(&table).unwrap();
                let t0 = Instant::now();
                rt.block_on(binary::restore(&dst, &table, &bytes, deadline()))
                    .unwrap();
                t[3].push(ms(t0.elapsed()));
                assert_eq!(
                    c.flow_count.to_string(),
                    want.trim_start_matches("flow_count=")
                );
            }
            assert_eq!(count(&d), want, "restored table");
            clear(&d);
        }
    }
    let size = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.len() as f64 / 1048576.0)
            .unwrap_or(0.0)
    };
    println!("flows: {runs} runs each, alternated, {want} in SRC; ms, median (min–max)\n");
    println!("| way | save | restore | saved size |\n| --- | --- | --- | --- |");
    let tx = size(&text_flows) + size(&text_groups);
    println!("| ovs-ofctl text (dump-flows + dump-groups; add-groups + add-flows --bundle) | {} | {} | {tx:.1} MiB |", summary(&mut t[0]), summary(&mut t[1]));
    println!("| binary, our OpenFlow session (meters, groups, flows; one bundle) | {} | {} | {:.1} MiB |", summary(&mut t[2]), summary(&mut t[3]), size(&table));
}
