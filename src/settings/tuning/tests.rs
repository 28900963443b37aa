//! Tests of [`super`]: pure codec/parsing tables, fake peers, and the real daemons where named.

use super::*;
use std::fs;

#[test]
#[rustfmt::skip]
fn cpu_lists() {
    let table: &[(&str, u32)] = &[
        ("0", 1), ("0-3", 4), ("0-3,8,10-11", 7), ("", 0), ("\n", 0), ("0-63\n", 64),
        ("2,0-3", 4), ("0-3,2-5", 6), ("5-5", 1),
    ];
    for &(text, want) in table {
        assert_eq!(parse_cpu_list(text), Ok(want), "{text:?}");
    }
    for bad in ["x", "0-", "-3", "3-1", "0,,1", "0-3,a", "1.5"] {
        let err = parse_cpu_list(bad).unwrap_err();
        assert!(err.to_string().contains(bad), "{bad:?}: {err}");
    }
}

#[test]
#[rustfmt::skip]
fn cpu_max_and_cfs_variants() {
    let table: &[(&str, Option<f64>)] = &[
        ("max 100000", None), ("max 100000\n", None), ("max", None),
        ("150000 100000", Some(1.5)), ("200000 100000\n", Some(2.0)), ("50000 100000", Some(0.5)),
    ];
    for &(text, want) in table {
        assert_eq!(parse_cpu_max(text), Ok(want), "{text:?}");
    }
    for bad in ["", "150000", "x 100000", "1 0", "1 2 3", "-1 100000"] {
        assert!(parse_cpu_max(bad).is_err(), "{bad:?}");
    }
    let v1: &[(&str, &str, Option<f64>)] = &[
        ("-1\n", "100000\n", None), ("-1", "garbage", None),
        ("150000\n", "100000\n", Some(1.5)), ("400000", "100000", Some(4.0)),
    ];
    for &(q, p, want) in v1 {
        assert_eq!(parse_cfs_quota(q, p), Ok(want), "{q:?}/{p:?}");
    }
    for (q, p) in [("x", "100000"), ("100", "0"), ("100", ""), ("", "100")] {
        assert!(parse_cfs_quota(q, p).is_err(), "{q:?}/{p:?}");
    }
    for (q, want) in [(0.1, 1), (1.0, 1), (1.5, 2), (2.0, 2), (7.01, 8), (f64::NAN, 1)] {
        assert_eq!(quota_cpus(q), want, "{q}");
    }
}

/// Builds a fake root from "relative/path: content" lines (`\n` in the
/// content for line breaks); each file gets the kernel's trailing newline.
fn host(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for line in spec.lines().filter(|l| !l.trim().is_empty()) {
        let (rel, text) = line.trim().split_once(':').unwrap();
        let text = text.strip_prefix(' ').unwrap_or(text);
        let path = dir.path().join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("{}\n", text.replace("\\n", "\n"))).unwrap();
    }
    dir
}

#[test]
#[rustfmt::skip]
fn fake_hosts() {
    let online = "sys/devices/system/cpu/online";
    let (cg, v1cpu) = ("sys/fs/cgroup", "sys/fs/cgroup/cpu,cpuacct");
    // (online, cpuset, quota, usable, source)
    type Want<'a> = (u32, Option<u32>, Option<f64>, u32, &'a str);
    let cases: &[(String, Want)] = &[
        (format!("{online}: 0-7\n{cg}/cpu.max: 150000 100000\n{cg}/cpuset.cpus.effective: 0-7"),
         (8, Some(8), Some(1.5), 2, "quota")),
        (format!("{online}: 0-15\n{cg}/cpuset/cpuset.effective_cpus: 0-3\n\
                  {v1cpu}/cpu.cfs_quota_us: -1\n{v1cpu}/cpu.cfs_period_us: 100000"),
         (16, Some(4), None, 4, "cpuset")),
        (format!("{online}: 0-15\n{cg}/cpuset/cpuset.cpus: 0-5\n\
                  {cg}/cpu/cpu.cfs_quota_us: 250000\n{cg}/cpu/cpu.cfs_period_us: 100000"),
         (16, Some(6), Some(2.5), 3, "quota")),
        (format!("{online}: 0-11"), (12, None, None, 12, "online")),
        (format!("{online}: 0-3\n{cg}/cpu.max: max 100000\n{cg}/cpuset.cpus.effective: "),
         (4, None, None, 4, "online")),
        ("proc/cpuinfo: processor\t: 0\\nmodel\t: x\\n\\nprocessor\t: 1".into(),
         (2, None, None, 2, "online")),
        (String::new(), (1, None, None, 1, "online")),
    ];
    for (spec, (online, cpuset, quota, usable, source)) in cases {
        let dir = host(spec);
        let want = CpuBudget {
            online: *online, cpuset: *cpuset, quota: *quota, usable: *usable, source,
        };
        assert_eq!(read_cpu_budget(dir.path()).unwrap(), want, "{spec}");
    }
}

#[test]
fn unparseable_file_names_path_and_content() {
    let dir = host("sys/fs/cgroup/cpu.max: lots 100000");
    let err = read_cpu_budget(dir.path()).unwrap_err();
    let TuningError::Parse { path, content, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(path.ends_with("sys/fs/cgroup/cpu.max"));
    assert_eq!(content, "lots 100000\n");
    assert!(err.to_string().contains("cpu.max"), "{err}");
}

fn t(handlers: u32, revalidators: u32) -> Threads {
    Threads {
        handlers,
        revalidators,
    }
}

#[test]
#[rustfmt::skip]
fn thread_table_is_monotone() {
    // (usable CPUs, handlers, revalidators)
    let table: &[(u32, u32, u32)] = &[
        (1, 1, 1), (2, 1, 1), (3, 2, 1), (4, 2, 2), (8, 5, 3), (12, 8, 4), (13, 10, 4),
        (16, 11, 5), (24, 14, 5), (32, 15, 6), (64, 19, 7), (96, 22, 8), (128, 25, 9),
    ];
    let mut prev_total = 0;
    for &(c, handlers, revalidators) in table {
        let got = threads_for(c);
        assert_eq!(got, t(handlers, revalidators), "c={c}");
        assert!(handlers + revalidators >= prev_total, "total drops at {c}");
        prev_total = handlers + revalidators;
    }
    // Kube-OVN pins 10 handlers / 4 revalidators above 12 cores; we agree
    // at its threshold instead of jumping there from 12.
    assert_eq!(threads_for(13), t(10, 4));
    let mut prev = threads_for(0);
    for c in (1..=4096).chain([u32::MAX]) {
        let now = threads_for(c);
        assert!(now.handlers >= prev.handlers && now.revalidators >= prev.revalidators, "{c}");
        prev = now;
    }
}

#[test]
#[rustfmt::skip]
fn overrides() {
    let b = budget(96, None, None);
    // (handlers override, revalidators override, handlers, revalidators)
    let table: &[(Option<u32>, Option<u32>, u32, u32)] = &[
        (None, None, 22, 8), (Some(0), Some(0), 22, 8), (Some(4), None, 4, 26),
        (None, Some(2), 28, 2), (Some(3), Some(1), 3, 1), (Some(40), None, 40, 1),
    ];
    for &(h, r, handlers, revalidators) in table {
        assert_eq!(resolve(&b, h, r), t(handlers, revalidators), "{h:?}/{r:?}");
    }
    let small = resolve(&budget(2, None, None), None, None);
    assert_eq!(small.to_string(), "1 handlers, 1 revalidators");
}
