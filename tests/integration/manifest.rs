//! The Kubernetes manifest in images/ validates offline against a current Kubernetes, strictly
//! (unknown fields are errors), with `kubernetes-validate` from PyPI (installed by
//! scripts/install-deps.sh). Fails, never skips, when the validator is missing.
//!
//! Also checks the few relations between the manifest and the supervisor that a schema cannot:
//! the grace period covers the stop budget, the probes call our binary, the rolling update
//! surges by one without taking the node down, and the pod runs as Kube-OVN runs it: uid 65534
//! with exactly Kube-OVN's five capabilities and nothing outside them, file capabilities not
//! disabled by no_new_privs, a root init container that chowns every host path the node writes.
//! The image side of that (the file capabilities, the probe wrapper) is in the Dockerfile;
//! scripts/container-test.sh proves it by running the image.
//!
//! Both Kube-OVN charts: images/ovs-ovn.yaml keeps the v1 chart's (and install.sh's) selector,
//! images/ovs-ovn-v2.yaml the v2 chart's and differs in nothing else; both ask for the
//! runtime's default seccomp profile as Kube-OVN does. The Helm values in images/chart-values/
//! point each chart's own DaemonSet at the Dockerfile's kube-ovn target, which changes only
//! what that DaemonSet runs (/kube-ovn/start-ovs.sh, /kube-ovn/ovs-healthcheck.sh); no Helm
//! here, so they are checked for the exact keys each chart reads and against the Dockerfile.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

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
    // Every probe is a GET of the supervisor's endpoint: an exec through the runtime costs the
    // node ~20x the CPU, and during a rollout's overlap both reach the instance running the node.
    for (kind, path) in [
        ("startupProbe:", "/startupz"),
        ("livenessProbe:", "/livez"),
        ("readinessProbe:", "/readyz"),
    ] {
        let probe = doc.split(kind).nth(1).unwrap();
        let probe: String = probe.lines().take(4).collect::<Vec<_>>().join("\n");
        assert!(
            probe.contains("httpGet:")
                && probe.contains(&format!("path: {path}"))
                && probe.contains("port: 10668"),
            "{kind} is not GET {path} on 10668: {probe}"
        );
    }
    assert!(
        !doc.contains("\"probe\""),
        "an exec probe of the supervisor is left in the manifest"
    );
    assert!(
        doc.contains("containerPort: 10668"),
        "the metrics port is not declared"
    );
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

/// The capabilities Kube-OVN's ovs-ovn DaemonSet adds (install.sh, charts/kube-ovn
/// ovsovn-ds.yaml): the only ones the openvswitch container may hold.
const KUBE_OVN_CAPS: [&str; 5] = [
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SYS_NICE",
    "SYS_ADMIN",
];

/// Every document of a manifest as JSON, parsed by PyYAML (a dependency of kubernetes-validate,
/// so present wherever the validation above runs).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python3 yaml (PyYAML, installed with kubernetes-validate) failed:\n{}",
        text(&out)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("JSON from python3")
}

fn daemonset(file: &str) -> Value {
    yaml_docs(&root().join(file))
        .into_iter()
        .find(|d| d["kind"] == "DaemonSet")
        .unwrap_or_else(|| panic!("no DaemonSet in {file}"))
}

fn pod_spec() -> Value {
    daemonset("images/ovs-ovn.yaml")["spec"]["template"]["spec"].clone()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn container<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("no container list for {name}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

#[test]
fn openvswitch_runs_as_nobody_with_exactly_kube_ovns_capabilities() {
    let spec = pod_spec();
    let c = container(&spec["containers"], "openvswitch");
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsUser"], 65534, "{sc}");
    assert_eq!(sc["runAsGroup"], 65534, "{sc}");
    assert_eq!(sc["runAsNonRoot"], true, "{sc}");
    assert_eq!(sc["privileged"], false, "{sc}");
    // no_new_privs (allowPrivilegeEscalation: false) would make the kernel ignore the image's
    // file capabilities: every daemon would start without them.
    assert_ne!(sc["allowPrivilegeEscalation"], false, "{sc}");
    let add: BTreeSet<String> = strings(&sc["capabilities"]["add"]).into_iter().collect();
    let want: BTreeSet<String> = KUBE_OVN_CAPS.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        add, want,
        "capabilities.add must be exactly Kube-OVN's five"
    );
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{sc}");
    // Every non-init container: no capability outside the five, never privileged.
    for c in spec["containers"].as_array().unwrap() {
        let sc = &c["securityContext"];
        assert_ne!(sc["privileged"], true, "{}", c["name"]);
        for cap in strings(&sc["capabilities"]["add"]) {
            let bare = cap.trim_start_matches("CAP_");
            assert!(
                KUBE_OVN_CAPS.contains(&bare),
                "{} requests {cap}, outside Kube-OVN's capabilities",
                c["name"]
            );
        }
    }
}

#[test]
fn init_containers_prepare_the_host_as_root() {
    let spec = pod_spec();
    let main = container(&spec["containers"], "openvswitch");
    let init = &spec["initContainers"];
    for name in ["hostpath-init", "load-kmod"] {
        let c = container(init, name);
        assert_eq!(
            c["image"], main["image"],
            "{name} uses this image (it has chown and kmod)"
        );
        assert_eq!(c["securityContext"]["runAsUser"], 0, "{name}");
        assert_eq!(c["securityContext"]["privileged"], true, "{name}");
    }
    // hostpath-init: `chown -R 65534:65534` of every host path the node writes, no shell.
    let chown = container(init, "hostpath-init");
    let cmd = strings(&chown["command"]);
    assert_eq!(&cmd[..3], ["chown", "-R", "65534:65534"], "{cmd:?}");
    let mounts: Vec<(String, String)> = main["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["readOnly"] != true)
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["mountPath"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let volumes = spec["volumes"].as_array().unwrap();
    for (name, path) in &mounts {
        let host = volumes.iter().find(|v| v["name"] == name.as_str()).unwrap();
        if host["hostPath"].is_null() {
            continue; // the TLS secret
        }
        assert!(
            cmd.contains(path),
            "hostpath-init does not chown {path} ({name}), which the openvswitch container writes"
        );
        let m = container(&chown["volumeMounts"], name); // same lookup by name
        assert_eq!(m["mountPath"], path.as_str(), "{name}");
    }
    // load-kmod: the datapath module, as Kube-OVN's `ovs-ctl load-kmod`; no shell.
    let kmod = container(init, "load-kmod");
    assert_eq!(strings(&kmod["command"]), ["modprobe", "openvswitch"]);
    assert_eq!(
        container(&kmod["volumeMounts"], "host-modules")["readOnly"],
        true
    );
}

/// Kube-OVN's DaemonSet runs `bash /kube-ovn/ovs-healthcheck.sh` for liveness and readiness; the
/// image ships a wrapper at that path (proven by running it in scripts/container-test.sh).
#[test]
fn kube_ovn_probe_path_is_shipped() {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = root().join("images/ovs-healthcheck.sh");
    let body = std::fs::read_to_string(&wrapper).unwrap();
    assert!(body.starts_with("#!/bin/bash\n"), "{body}");
    let code: Vec<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(
        code,
        ["/usr/bin/ovs-ovn-supervisor probe startup \"$@\" && exec /usr/bin/ovs-ovn-supervisor probe liveness \"$@\""],
        "liveness never asks the Southbound, like Kube-OVN's script"
    );
    let mode = std::fs::metadata(&wrapper).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "executable: {mode:o}");
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile
        .contains("COPY --chmod=0755 images/ovs-healthcheck.sh /kube-ovn/ovs-healthcheck.sh"));
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "!images/ovs-healthcheck.sh"));
}

/// Each manifest keeps the selector of the DaemonSet it replaces in place (immutable), its pod
/// carries those labels plus `app: ovs` (kubectl-ko's), and the pod asks for the runtime's
/// default seccomp profile, as Kube-OVN's DaemonSets do.
#[test]
fn each_chart_keeps_its_selector_and_runtime_default_seccomp() {
    let v1 = serde_json::json!({"app": "ovs"});
    let v2 = serde_json::json!({
        "app.kubernetes.io/name": "kube-ovn-ovs",
        "app.kubernetes.io/part-of": "kube-ovn",
    });
    for (file, selector) in [("images/ovs-ovn.yaml", v1), ("images/ovs-ovn-v2.yaml", v2)] {
        let ds = daemonset(file);
        assert_eq!(ds["metadata"]["name"], "ovs-ovn", "{file}");
        assert_eq!(ds["metadata"]["namespace"], "kube-system", "{file}");
        assert_eq!(ds["spec"]["selector"]["matchLabels"], selector, "{file}");
        let labels = &ds["spec"]["template"]["metadata"]["labels"];
        for (k, v) in selector.as_object().unwrap() {
            assert_eq!(
                &labels[k], v,
                "{file}: pod label {k} must match the selector"
            );
        }
        assert_eq!(
            labels["app"], "ovs",
            "{file}: kubectl-ko finds the pod by app=ovs"
        );
        let pod = &ds["spec"]["template"]["spec"];
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{file}"
        );
        for c in pod["containers"].as_array().unwrap() {
            let profile = &c["securityContext"]["seccompProfile"];
            assert!(
                profile.is_null(),
                "{file}: {} overrides seccomp: {profile}",
                c["name"]
            );
        }
    }
}

/// The v2 manifest is the v1 one with the v2 chart's selector and pod labels: nothing else may
/// drift between them.
#[test]
fn the_v2_manifest_differs_from_v1_only_in_its_labels() {
    let strip = |file: &str| -> Vec<Value> {
        let mut docs = yaml_docs(&root().join(file));
        for d in &mut docs {
            if d["kind"] == "DaemonSet" {
                let spec = d["spec"].as_object_mut().unwrap();
                spec.remove("selector");
                spec["template"]["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("labels");
            }
        }
        docs
    };
    assert_eq!(
        strip("images/ovs-ovn.yaml"),
        strip("images/ovs-ovn-v2.yaml")
    );
}

/// `a.b.c` → value, for every leaf of a values file.
fn leaves(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match v.as_object() {
        Some(map) => {
            for (k, child) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(child, &key, out);
            }
        }
        None => out.push((prefix.to_string(), v.clone())),
    }
}

fn values(file: &str) -> (String, Vec<(String, String)>) {
    let path = root().join("images/chart-values").join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = yaml_docs(&path);
    assert_eq!(docs.len(), 1, "{file}: one document");
    let mut out = Vec::new();
    leaves(&docs[0], "", &mut out);
    let strings = out
        .into_iter()
        .map(|(k, v)| {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("{file}: {k} is not a string: {v}"));
            (k, s.to_string())
        })
        .collect();
    (text, strings)
}

fn get<'a>(kv: &'a [(String, String)], key: &str) -> &'a str {
    &kv.iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("{key} not set"))
        .1
}

/// The Kube-OVN release whose image the Dockerfile's kube-ovn target extends by default.
fn dockerfile_kube_ovn_release() -> String {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let image = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG KUBE_OVN_IMAGE="))
        .expect("ARG KUBE_OVN_IMAGE= in the Dockerfile");
    let (repo, tag) = image.rsplit_once(':').unwrap();
    assert_eq!(repo, "docker.io/kubeovn/kube-ovn", "Kube-OVN's own image");
    tag.to_string()
}

/// The chart values set exactly the keys each chart reads for the ovs-ovn DaemonSet's image
/// (v1: the one global image, v2 from v1.17: ovsOvn.image), naming the layered image of the
/// release the Dockerfile defaults to (v1) and the build and push commands that make it.
#[test]
fn chart_values_point_each_chart_at_the_layered_image() {
    let release = dockerfile_kube_ovn_release();
    let (text, kv) = values("kube-ovn-v1.yaml");
    let keys: BTreeSet<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "global.registry.address",
            "global.images.kubeovn.repository",
            "global.images.kubeovn.tag",
            "global.images.natgateway.tag",
        ]),
        "kube-ovn-v1.yaml: the v1 chart's image keys, nothing else"
    );
    let registry = get(&kv, "global.registry.address").to_string();
    assert_eq!(get(&kv, "global.images.kubeovn.repository"), "kube-ovn");
    let tag = get(&kv, "global.images.kubeovn.tag");
    assert_eq!(tag, format!("{release}-ovs-ovn-supervisor"));
    // An empty natgateway tag falls back to the kube-ovn tag, which no NAT gateway image has.
    assert_eq!(get(&kv, "global.images.natgateway.tag"), release);
    let image = format!("{registry}/kube-ovn:{tag}");
    for cmd in [
        format!("--build-arg KUBE_OVN_IMAGE=docker.io/kubeovn/kube-ovn:{release}"),
        format!("-t {image} ."),
        format!("podman push {image}"),
        "-f images/chart-values/kube-ovn-v1.yaml".to_string(),
    ] {
        assert!(text.contains(&cmd), "kube-ovn-v1.yaml does not say `{cmd}`");
    }

    let (text, kv) = values("kube-ovn-v2.yaml");
    let keys: BTreeSet<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "ovsOvn.image.registry",
            "ovsOvn.image.repository",
            "ovsOvn.image.tag"
        ]),
        "kube-ovn-v2.yaml: the ovs-ovn DaemonSet's own image keys, nothing else"
    );
    assert_eq!(get(&kv, "ovsOvn.image.registry"), registry);
    assert_eq!(get(&kv, "ovsOvn.image.repository"), "kube-ovn");
    let tag = get(&kv, "ovsOvn.image.tag");
    let v2_release = tag
        .strip_suffix("-ovs-ovn-supervisor")
        .unwrap_or_else(|| panic!("kube-ovn-v2.yaml: tag {tag} is not RELEASE-ovs-ovn-supervisor"));
    let image = format!("{registry}/kube-ovn:{tag}");
    for cmd in [
        format!("--build-arg KUBE_OVN_IMAGE=docker.io/kubeovn/kube-ovn:{v2_release}"),
        format!("-t {image} ."),
        format!("podman push {image}"),
        "-f images/chart-values/kube-ovn-v2.yaml".to_string(),
    ] {
        assert!(text.contains(&cmd), "kube-ovn-v2.yaml does not say `{cmd}`");
    }
}

/// The lines of the Dockerfile stage `name`, comments and blanks left out.
fn dockerfile_stage(name: &str) -> Vec<String> {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let mut lines = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let header = format!(" AS {name}");
    lines
        .by_ref()
        .find(|l| l.starts_with("FROM ") && l.ends_with(&header))
        .unwrap_or_else(|| panic!("no stage {name}"));
    lines
        .take_while(|l| !l.starts_with("FROM "))
        .map(String::from)
        .collect()
}

/// What the charts run in the layered image: their `command: ["/kube-ovn/start-ovs.sh"]` is a
/// two-line exec of the supervisor, their probe is the wrapper, and the stage adds the binary
/// with its capability and nothing else: no USER, ENTRYPOINT, CMD or ENV of its own (Kube-OVN's
/// stay), no package installed. scripts/container-test.sh diffs the built image as well.
#[test]
fn the_kube_ovn_target_changes_only_what_the_charts_run() {
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        dockerfile_stage("kube-ovn"),
        [
            "COPY --chmod=0755 images/start-ovs.sh /kube-ovn/start-ovs.sh",
            "COPY --chmod=0755 images/ovs-healthcheck.sh /kube-ovn/ovs-healthcheck.sh",
            "COPY --chmod=0755 images/uninstall.sh /kube-ovn/uninstall.sh",
            "COPY --from=builder /ovs-ovn-supervisor /usr/bin/ovs-ovn-supervisor",
            "RUN setcap cap_sys_nice+ep /usr/bin/ovs-ovn-supervisor",
        ]
    );
    let script = root().join("images/start-ovs.sh");
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        "#!/bin/sh\nexec /usr/bin/ovs-ovn-supervisor run \"$@\"\n"
    );
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "executable: {mode:o}");
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l == "!images/start-ovs.sh"));
    assert!(ignore.lines().any(|l| l == "!images/uninstall.sh"));
    // The standalone image has the same start command, so a chart can run it too.
    assert!(dockerfile_stage("runtime")
        .contains(&"COPY --chmod=0755 images/start-ovs.sh /kube-ovn/start-ovs.sh".to_string()));
    // Kube-OVN's cleanup.sh runs `bash /kube-ovn/uninstall.sh` in this pod, in either image.
    assert!(dockerfile_stage("runtime")
        .contains(&"COPY --chmod=0755 images/uninstall.sh /kube-ovn/uninstall.sh".to_string()));
}
