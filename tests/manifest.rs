//! The Kubernetes manifest in images/ validates offline against a current Kubernetes, strictly
//! (unknown fields are errors), with `kubernetes-validate` from PyPI (installed by
//! scripts/install-deps.sh). Fails, never skips, when the validator is missing.
//!
//! Also checks the few relations between the manifest and the supervisor that a schema cannot:
//! the grace period covers the stop budget, the probes call our binary, the rolling update
//! surges by one without taking the node down.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The newest Kubernetes whose schemas kubernetes-validate 1.37.0 ships.
const KUBERNETES_VERSION: &str = "1.37.0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifests() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("images"))
        .expect("images/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no manifest in images/");
    v
}

/// `kubernetes-validate` on PATH, else `python3 -m kubernetes_validate`.
fn validator() -> Command {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("kubernetes-validate").is_file()))
        .unwrap_or(false);
    if on_path {
        return Command::new("kubernetes-validate");
    }
    let module = Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        module,
        "kubernetes-validate is not installed: run scripts/install-deps.sh \
         (python3 -m pip install kubernetes-validate==1.37.0)"
    );
    let mut c = Command::new("python3");
    c.args(["-m", "kubernetes_validate"]);
    c
}

fn validate(files: &[&Path]) -> Output {
    let mut cmd = validator();
    cmd.args(["--strict", "--kubernetes-version", KUBERNETES_VERSION]);
    cmd.args(files);
    cmd.output().expect("run kubernetes-validate")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn manifests_validate_strictly_against_current_kubernetes() {
    let files = manifests();
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let out = validate(&refs);
    let msg = text(&out);
    assert!(out.status.success(), "kubernetes-validate failed:\n{msg}");
    for resource in ["daemonset/ovs-ovn", "serviceaccount/ovs-ovn"] {
        assert!(
            msg.contains(&format!("passed for resource {resource}")),
            "{resource} was not validated:\n{msg}"
        );
    }
}

/// The validator really is strict here: an unknown field and a wrong type are both rejected.
/// Guards against a validator that silently accepts everything (e.g. a version without schemas).
#[test]
fn validator_rejects_a_broken_copy() {
    let good = std::fs::read_to_string(root().join("images/ovs-ovn.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, from, to) in [
        (
            "unknown-field.yaml",
            "maxUnavailable: 0",
            "maxUnavailable: 0\n      maxSurprise: 1",
        ),
        (
            "wrong-type.yaml",
            "terminationGracePeriodSeconds: 30",
            "terminationGracePeriodSeconds: thirty",
        ),
    ] {
        assert!(good.contains(from), "{from:?} not in the manifest");
        let bad = dir.path().join(name);
        std::fs::write(&bad, good.replacen(from, to, 1)).unwrap();
        let out = validate(&[&bad]);
        assert!(
            !out.status.success(),
            "{name} passed validation:\n{}",
            text(&out)
        );
    }
}

/// The integer after `key:` on the first line that has it.
fn int_after(doc: &str, key: &str) -> i64 {
    let line = doc
        .lines()
        .find(|l| l.trim_start().starts_with(key))
        .unwrap_or_else(|| panic!("{key} not in the manifest"));
    line.split_once(':')
        .unwrap()
        .1
        .split('#')
        .next()
        .unwrap()
        .trim()
        .trim_matches('"')
        .parse()
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// The value of the env entry `name` (the `value:` line right after `- name: NAME`).
fn env_value(doc: &str, name: &str) -> String {
    let lines: Vec<&str> = doc.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.trim() == format!("- name: {name}"))
        .unwrap_or_else(|| panic!("env {name} not in the manifest"));
    let v = lines[i + 1].trim();
    v.strip_prefix("value:")
        .unwrap_or_else(|| panic!("env {name} has no value: {v}"))
        .trim()
        .trim_matches('"')
        .to_string()
}

#[test]
fn manifest_matches_the_supervisor() {
    let doc = std::fs::read_to_string(root().join("images/ovs-ovn.yaml")).unwrap();
    let budget_ms: i64 = env_value(&doc, "OVS_OVN_SUPERVISOR_STOP_BUDGET_MS")
        .parse()
        .unwrap();
    let grace_s = int_after(&doc, "terminationGracePeriodSeconds:");
    assert!(
        budget_ms < grace_s * 1000,
        "stop budget {budget_ms} ms must stay below terminationGracePeriodSeconds {grace_s}"
    );
    assert_eq!(budget_ms, 25_000, "the README's stop budget");
    assert_eq!(int_after(&doc, "maxSurge:"), 1);
    assert_eq!(int_after(&doc, "maxUnavailable:"), 0);
    for kind in ["startup", "liveness", "readiness"] {
        let probe = format!("command: [\"/usr/bin/ovs-ovn-supervisor\", \"probe\", \"{kind}\"]");
        assert!(doc.contains(&probe), "no {kind} probe: {probe}");
    }
    assert!(doc.contains("hostNetwork: true") && doc.contains("hostPID: true"));
    assert!(
        !doc.lines()
            .any(|l| l.trim_start().starts_with("initialDelaySeconds")),
        "the startupProbe gates the others: no initialDelaySeconds"
    );
    assert_eq!(
        env_value(&doc, "OVS_OVN_SUPERVISOR_READY_FILE"),
        "/var/run/openvswitch/ovs-ready"
    );
    for (host, mount) in [
        ("/run/openvswitch", "/var/run/openvswitch"),
        ("/run/ovn", "/var/run/ovn"),
        ("/etc/origin/openvswitch", "/etc/openvswitch"),
        ("/var/log/openvswitch", "/var/log/openvswitch"),
        ("/var/log/ovn", "/var/log/ovn"),
        ("/lib/modules", "/lib/modules"),
    ] {
        assert!(doc.contains(&format!("path: {host}\n")), "host path {host}");
        assert!(
            doc.contains(&format!("mountPath: {mount}\n")),
            "mount {mount}"
        );
    }
}
