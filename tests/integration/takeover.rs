//! Rolling-update takeover on the real daemons: a second instance on the same directory takes
//! the node over; never two ovsdb-servers on one conf.db nor two vswitchds on one run dir; the
//! old instance idles and exits 0 on SIGTERM without touching the new one's daemons. The time
//! br-int's OpenFlow table is unreachable or empty is printed for the notes. Through a
//! takeover the readiness marker and `probe readiness` agree on every sample; a flow save on a
//! full run dir fails loudly and the successor does not restore what it left.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);

#[test]
fn a_second_instance_takes_the_node_over_without_overlap() {
    let mut old = Node::new();
    old.start(&[("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")]);
    old.wait_ready(READY);
    let dir = old.path().to_path_buf();
    let system_id = old.file("etc/openvswitch/system-id.conf");
    let old_pids = old.daemon_pids();

    let conf_db = dir.join("etc/openvswitch/conf.db").display().to_string();
    let db_sock = dir.join("run/openvswitch/db.sock").display().to_string();
    let mgmt = br_int_mgmt(&dir);
    let sampler = Sampler::start(&conf_db, &db_sock, &mgmt);

    let t0 = Instant::now();
    let mut new = instance_on(&dir, &[("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")]);
    let new_pid = new.child.as_ref().unwrap().id() as i64;
    old.wait_owner(new_pid, READY, Some(&mut new), || {});
    let took = t0.elapsed();
    // Let the sampler see the settled node for a moment, then stop it.
    std::thread::sleep(Duration::from_millis(300));
    let Sampled {
        max_servers: servers,
        max_switches: switches,
        gap,
        longest,
    } = sampler.finish();
    eprintln!("takeover: ready after {} ms; br-int flow table unreachable or empty for {} ms in all (longest {} ms)", took.as_millis(), gap.as_millis(), longest.as_millis());
    assert_eq!(servers, 1, "two ovsdb-servers on one conf.db at once");
    assert_eq!(switches, 1, "two vswitchds on one run dir at once");

    // The old instance handed over: its daemons are gone, it idles, and exits 0 touching nothing.
    for (name, pid) in &old_pids {
        assert!(!exists(*pid), "old {name} still runs");
    }
    assert!(old.log().contains("handed the node over"), "{}", old.log());
    assert!(new.log().contains("restored br-int flows"), "{}", new.log());
    let new_pids = old.daemon_pids();
    assert!(old.stop().0.success());
    assert_eq!(old.daemon_pids(), new_pids);
    for (name, pid) in &new_pids {
        assert!(exists(*pid), "new {name} was touched by the old instance");
    }
    assert_eq!(
        old.probe("readiness").0,
        0,
        "node not ready after the old instance left"
    );
    assert_eq!(old.file("etc/openvswitch/system-id.conf"), system_id);
    let frw = Command::new("ovs-vsctl")
        .args([
            &format!("--db=unix:{db_sock}"),
            "get",
            "Open_vSwitch",
            ".",
            "other_config",
        ])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&frw.stdout).contains("flow-restore-wait"),
        "flow-restore-wait left set"
    );
    // The new instance stops cleanly too.
    let mut new = new;
    new.signal("TERM");
    assert!(new.wait_exit(Duration::from_secs(30)).0.success());
}

/// A node that died while flow-restore-wait was set (a takeover cut short, a power loss during
/// the wait for br-int's table): a vswitchd started with the flag left in conf.db would never
/// handle a new packet. The next start clears it, and the node is ready.
#[test]
fn a_flow_restore_wait_left_by_a_dead_node_is_cleared_at_the_next_start() {
    let mut node = Node::new();
    node.start(&[]);
    node.wait_ready(Duration::from_secs(30));
    node.vsctl(&[
        "set",
        "Open_vSwitch",
        ".",
        "other_config:flow-restore-wait=true",
    ]);
    node.power_loss();
    node.start(&[]);
    node.wait_ready(Duration::from_secs(30));
    let other = node.vsctl(&["get", "Open_vSwitch", ".", "other_config"]);
    assert!(!other.contains("flow-restore-wait"), "left set: {other}");
    assert!(node.stop().0.success());
}

/// The readiness marker, sampled with `probe readiness` through a takeover: the old instance's
/// marker goes when it stops, the successor's comes when its probe passes — after
/// flow-restore-wait is cleared, not at its first health check. Before the fix the successor's
/// marker stood while its probe said "flow-restore-wait" (and vswitchd "starting").
#[test]
fn the_marker_and_probe_readiness_agree_through_a_takeover() {
    let mut old = Node::new();
    let marker = old.path().join("marker/ready");
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    let env = [
        ("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200"),
        ("OVS_OVN_SUPERVISOR_READY_FILE", marker.to_str().unwrap()),
    ];
    old.start(&env);
    old.wait_ready(READY);
    wait_for("the old instance's marker", READY, || marker.exists());
    let sampler = MarkerSampler::start(old.path(), &marker);
    let mut new = instance_on(old.path(), &env);
    let new_pid = new.child.as_ref().unwrap().id() as i64;
    old.wait_owner(new_pid, READY, Some(&mut new), || {});
    wait_for("the successor's marker", READY, || marker.exists());
    let seen = sampler.finish();
    eprintln!("takeover: marker and probe sampled together {seen:?}");
    assert!(seen.disagreements.is_empty(), "{seen:?}");
    assert!(seen.not_ready > 0, "the takeover was not sampled: {seen:?}");
    assert!(old.stop().0.success());
    assert!(
        marker.exists(),
        "the old instance removed the successor's marker"
    );
    new.signal("TERM");
    assert!(new.wait_exit(READY).0.success());
    assert!(!marker.exists(), "marker left after the stop");
}

/// A tmpfs of `size` at `at`, in a mount namespace of the calling thread's own (and of what it
/// spawns from now on): nothing of the machine's sees it. Unmounted on drop.
struct PrivateTmpfs(PathBuf);

impl PrivateTmpfs {
    fn mount(at: &Path, size: &str) -> PrivateTmpfs {
        use nix::libc;
        let c = |s: &str| CString::new(s).unwrap();
        let (root, dir, fs) = (c("/"), c(at.to_str().unwrap()), c("tmpfs"));
        let opts = c(&format!("size={size},mode=0755"));
        // SAFETY: plain syscalls on NUL-terminated strings that outlive them. unshare moves
        // this thread alone (its fs_struct is copied) into a copy of the mount namespace;
        // making every mount private there keeps ours from propagating to the machine's.
        unsafe {
            assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0, "unshare");
            let none = std::ptr::null();
            let private = libc::MS_REC | libc::MS_PRIVATE;
            assert_eq!(
                libc::mount(none, root.as_ptr(), none, private, std::ptr::null()),
                0
            );
            let data = opts.as_ptr().cast();
            assert_eq!(
                libc::mount(fs.as_ptr(), dir.as_ptr(), fs.as_ptr(), 0, data),
                0
            );
        }
        PrivateTmpfs(at.to_path_buf())
    }

    /// Fills it: a file written until the filesystem refuses (ENOSPC).
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let page = [0u8; 4096];
        loop {
            match f.write(&page) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", self.0.display()),
            }
        }
        let st = nix::sys::statvfs::statvfs(&self.0).unwrap();
        assert_eq!(st.blocks_available(), 0, "{} not full", self.0.display());
    }
}

impl Drop for PrivateTmpfs {
    fn drop(&mut self) {
        let dir = CString::new(self.0.to_str().unwrap()).unwrap();
        // SAFETY: a plain syscall on a NUL-terminated path that outlives it.
        unsafe { nix::libc::umount2(dir.as_ptr(), nix::libc::MNT_DETACH) };
    }
}

/// br-int's flow count; 0 while no switch answers.
fn aggregate(node: &Node) -> usize {
    flow_count(node.path()).unwrap_or(0)
}

/// A handover on a full disk: the old instance's run dir is a tmpfs with not one page left, so
/// `ovs-ofctl dump-flows > file` exits 0 having written nothing. The save fails loudly, naming
/// the file and the saved vs expected counts (from `dump-aggregate`), leaves no file, and hands
/// over without flows; the successor does not restore an empty table (no `restore-flows`
/// stage, no flow-restore-wait held for it: on a kernel datapath it would keep the kernel's
/// flows instead, `restore_wait::worth_keeping`) and is ready. Before the fix the old instance
/// logged `flows=0` at INFO and the successor restored the empty table.
#[test]
fn a_flow_save_on_a_full_run_dir_fails_loudly_and_is_not_restored() {
    in_own_process(|| {
        let mut old = Node::new();
        let run = old.path().join("run/openvswitch");
        std::fs::create_dir_all(&run).unwrap();
        let tmpfs = PrivateTmpfs::mount(&run, "1m");
        let env = [("OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS", "200")];
        old.start(&env);
        old.wait_ready(READY);
        wait_for("ovn-controller's flows in br-int", READY, || {
            aggregate(&old) > 0
        });
        let flows = aggregate(&old);
        tmpfs.fill();

        let mut new = instance_on(old.path(), &env);
        let new_pid = new.child.as_ref().unwrap().id() as i64;
        old.wait_owner(new_pid, READY, Some(&mut new), || {});
        let status = old.status().expect("the successor answers");
        let stages: Vec<&str> = (status["timeline"].as_array().unwrap().iter())
            .filter_map(|s| s[0].as_str())
            .collect();
        assert!(!stages.contains(&"restore-flows"), "restored: {stages:?}");
        assert_eq!(status["flow_restore_wait"], false, "{status}");
        let left: Vec<String> = (std::fs::read_dir(&run).unwrap().flatten())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("takeover"))
            .collect();
        assert!(left.is_empty(), "the failed save left {left:?}");
        let log = old.log();
        let loud = log.lines().find(|l| l.contains("cannot save br-int flows"));
        let loud = loud.unwrap_or_else(|| panic!("no failed save:\n{log}"));
        let want = format!("br-int.flows.takeover: saved 0 flows, but br-int holds {flows}");
        assert!(loud.contains("ERROR") && loud.contains(&want), "{loud}");
        assert!(loud.contains("dump-aggregate"), "{loud}");

        assert!(old.stop().0.success());
        new.signal("TERM");
        assert!(new.wait_exit(READY).0.success());
        drop(new);
        drop(old);
        drop(tmpfs);
    });
}
