//! The text save (`ovs-ofctl`, the fallback when the binary one fails) carries br-int's Geneve
//! TLV map, as `ovs-save` does: the library's save and restore run against two real sandboxes,
//! one whose ovn-controller mapped `tun_metadata0`, the other whose ovn-controller never
//! started (so its br-int has no map, as a new vswitchd after a takeover).
//!
//! The reaper owns `waitpid(-1)` once started, so the test runs in a process of its own and
//! waits on nothing through std after that (see `reaper`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ovs_ovn_supervisor::config::cli::PathArgs;
use ovs_ovn_supervisor::config::paths::Layout;
use ovs_ovn_supervisor::dataplane::flows::text;
use ovs_ovn_supervisor::process::Reaper;

use crate::harness::*;

const READY: Duration = Duration::from_secs(30);
const TUNNEL_FLOW: &str = "table=77,priority=4321,cookie=0x5eed0f,tun_metadata0=0x7,actions=drop";

fn layout(dir: &Path) -> Layout {
    let args = PathArgs {
        sandbox: Some(dir.to_path_buf()),
        ..Default::default()
    };
    Layout::resolve(&args, Path::new("/")).unwrap().0
}

/// `ovs-ofctl ARGS` on `dir`'s br-int, through the reaper.
async fn ofctl(reaper: &Reaper, dir: &Path, cmd: &str) -> String {
    let mut c = Command::new("ovs-ofctl");
    c.args(["-O", "OpenFlow15", cmd, &br_int_mgmt(dir)]);
    let out = reaper.output("ovs-ofctl", c, READY).await.unwrap();
    assert!(out.status.success(), "ovs-ofctl {cmd}: {out:?}");
    out.stdout
}

/// Ends a node whose supervisor the reaper (not std) waits for.
fn end(mut node: Node) {
    let pid = node.child.as_ref().unwrap().id() as i32;
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    wait_for("the supervisor's exit", READY, || !exists(pid));
    // Reaped by the reaper: std's wait would find no child (so its Drop need not try).
    drop(node.child.take());
}

#[test]
fn a_text_save_restores_a_flow_using_tun_metadata_into_a_switch_without_the_map() {
    in_own_process(|| {
        let mut src = Node::new();
        src.start(&[]);
        src.wait_ready(READY);
        run_ok(Command::new("ovs-ofctl").args([
            "-O",
            "OpenFlow15",
            "add-flow",
            &br_int_mgmt(src.path()),
            TUNNEL_FLOW,
        ]));
        let mut dst = Node::new();
        let hold = hold_wrapper(dst.path(), "ovn-controller");
        dst.start(&[("DEBUG_WRAPPER", hold.as_str())]);
        wait_for("the held node's br-int.mgmt", READY, || {
            flow_count(dst.path()).is_some()
        });

        let reaper = Reaper::global().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let saved = text::save(reaper, &layout(src.path())).await.unwrap();
            assert_eq!(saved.tlv_maps.len(), 1, "{saved:?}");
            let dst_l = layout(dst.path());
            assert!(
                !ofctl(reaper, dst.path(), "dump-tlv-map")
                    .await
                    .contains("tun_metadata"),
                "the held node's br-int has a map already"
            );
            // Without its map the switch refuses the table whole: what the map is for.
            let unmapped = text::TextSave {
                tlv_maps: Vec::new(),
                ..saved.clone()
            };
            let e = text::restore(reaper, &dst_l, &unmapped).await.unwrap_err();
            assert!(e.to_string().contains("add-flows"), "{e}");

            let tally = text::restore(reaper, &dst_l, &saved).await.unwrap();
            assert_eq!(tally.flows as usize, saved.flow_count);
            let map = ofctl(reaper, dst.path(), "dump-tlv-map").await;
            assert!(
                map.contains("0x102") && map.contains("0x80") && map.contains("tun_metadata0"),
                "no TLV map in the restored br-int: {map}"
            );
            let flows = ofctl(reaper, dst.path(), "dump-flows").await;
            assert!(
                flows.contains("cookie=0x5eed0f") && flows.contains("tun_metadata0=0x7"),
                "the flow using tun_metadata0 was not restored: {flows}"
            );
            // Restoring into a switch that has the map already adds nothing twice.
            ofctl(reaper, dst.path(), "del-flows").await;
            text::restore(reaper, &dst_l, &saved).await.unwrap();
        });
        end(dst);
        end(src);
    });
}
