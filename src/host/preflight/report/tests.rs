//! Tests of [`super`]: the table an operator reads and the JSON a machine reads.

use super::*;

fn sample() -> Report {
    Report {
        checks: vec![
            Check::ok("kernel", "6.1.0-13-amd64"),
            Check::new("module/geneve", Status::WillFix, "not loaded").with_fix("modprobe geneve"),
            Check::new("module/ip_tables", Status::Warn, "line one\nline two\ttab"),
            Check::new("kernel/conntrack-nat", Status::Fail, "862")
                .with_fix("upgrade the kernel to 3.10.0-898 or later"),
            Check::new("cni/primary", Status::WillFix, "not a module"),
        ],
    }
}

#[test]
fn table_has_every_check_status_and_aligned_columns() {
    let table = sample().render_table();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 1 + 5 + 1, "{table}");
    assert!(lines[0].starts_with("CHECK"), "{table}");
    let col = |word: &str| lines[0].find(word).unwrap();
    let (status, detail, fix) = (col("STATUS"), col("DETAIL"), col("FIX"));
    for (line, c) in lines[1..6].iter().zip(&sample().checks) {
        assert!(line.starts_with(&c.name), "{line}");
        assert_eq!(
            &line[status..status + c.status.as_str().len()],
            c.status.as_str(),
            "{line}"
        );
        assert!(
            line[detail..].starts_with(&c.detail.replace(['\n', '\t'], " ")),
            "{line}"
        );
        assert!(
            line[fix..].starts_with(c.fix.as_deref().unwrap_or("-")),
            "{line}"
        );
        assert_eq!(line.trim_end(), *line, "no trailing blanks");
    }
    for word in ["ok", "warn", "fail", "will-fix"] {
        assert!(table.contains(&format!("  {word} ")), "{word}: {table}");
    }
    assert!(
        lines[6].starts_with("1 ok, 1 warn, 1 fail, 2 will-fix"),
        "{table}"
    );
}

#[test]
fn json_round_trips_fields() {
    let report = sample();
    let json = report.to_json();
    assert_eq!(json["failed"], true);
    let checks = json["checks"].as_array().unwrap();
    assert_eq!(checks.len(), report.checks.len());
    for (j, c) in checks.iter().zip(&report.checks) {
        assert_eq!(j["name"], c.name.as_str());
        assert_eq!(j["status"], c.status.as_str());
        assert_eq!(j["detail"], c.detail.as_str());
        assert_eq!(j["fix"].as_str(), c.fix.as_deref());
    }
    let text = serde_json::to_string(&json).unwrap();
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, json);
}

#[test]
fn failed_and_modules_to_load() {
    let mut report = sample();
    assert!(report.failed());
    assert_eq!(
        report.modules_to_load(),
        ["geneve"],
        "only module checks count"
    );
    report.checks.retain(|c| c.status != Status::Fail);
    assert!(!report.failed());
    assert!(!Report { checks: vec![] }.failed());
}
