//! Who may change the node through the control socket. Read-only methods (`status`, the
//! probes) answer whoever can connect; `handover`, which stops every daemon, is served only to
//! another `ovs-ovn-supervisor`, judged by what the kernel says of the peer (`SO_PEERCRED`,
//! `/proc`), never by what the request says alone. Before, any client of the socket could stop
//! the node.
//!
//! The rules, in order; each refusal names its reason, and nothing stops:
//! - **uid**: the peer's effective uid is ours. The socket is 0600, so only our uid and root
//!   can connect at all. A root peer while we run as another uid is refused: old and new pods
//!   of one DaemonSet run as one `runAsUser`, so a root client is something else (another pod
//!   with the host path mounted, an operator's tool), and the kernel would not show us its
//!   program anyway (`/proc/PID/exe` of a more privileged process is hidden).
//! - **pid**: the pid the request names (`params[1].pid`, the process we then watch) is the
//!   peer's own, as the kernel reports it in our pid namespace. Both pods are `hostPID`; a
//!   peer in a pid namespace we cannot see reports pid 0 and is refused.
//! - **program**: the peer's executable (`/proc/PID/exe`) is named `ovs-ovn-supervisor`, or as
//!   our own executable is named (` (deleted)` ignored: a binary replaced on disk). By name,
//!   not by inode or content: a rolling update brings a new binary from another image, which
//!   nothing of ours can recognize by identity. When the kernel hides the executable (EACCES
//!   or EPERM: a peer that is not dumpable, or holds a capability we lack), the name it was
//!   started as (`/proc/PID/comm`, cut to 15 bytes) is judged instead; a successor of this
//!   release marks itself dumpable before it asks, so between releases of ours that share
//!   their capabilities the executable is what counts.
//!
//! Limit: a name is not a secret. A process of our uid can copy any program under that name
//! (or set its comm) and pass; it could as well kill the daemons outright, so the uid is the
//! boundary, and the program check keeps the other clients of that uid (scripts, tools, a bug)
//! from stopping the node. What an impostor gains is bounded after the handover: the old
//! instance takes the node back unless the asker holds the instance lock and its daemons
//! answer (`takeover::handback`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use serde_json::Value;

use crate::process::procfs;

/// The name we are built and shipped as.
pub const PROGRAM: &str = env!("CARGO_PKG_NAME");

/// The instance that asked for the node: its pid and start time, so a pid reused after it died
/// is never taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Successor {
    pub pid: i32,
    pub start: u64,
}

impl Successor {
    /// True while the very process that asked runs (not a zombie, not a reused pid).
    pub fn alive(&self, proc_root: &Path) -> bool {
        procfs::identity(proc_root, self.pid).is_some_and(|i| i.live && i.start == self.start)
    }
}

/// The peer as the kernel recorded it when it connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// 0 when the peer is in a pid namespace we cannot see.
    pub pid: i32,
    pub uid: u32,
}

/// What `/proc` shows of the peer's program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// The executable's file name.
    Exe(OsString),
    /// The kernel hides the executable from us: the peer's comm, if readable.
    Hidden { comm: Option<String> },
    /// No such process any more.
    Gone,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the peer runs as uid {peer}, not as ours ({ours})")]
    OtherUser { peer: u32, ours: u32 },
    #[error("the peer's pid is not visible in our pid namespace")]
    NoPid,
    #[error("the request names pid {asked}, but the peer is pid {peer}")]
    NotTheCaller { asked: String, peer: i32 },
    #[error("pid {pid} runs {program:?}, not {PROGRAM}")]
    NotOurProgram { pid: i32, program: String },
    #[error("pid {pid} exited while asking")]
    Gone { pid: i32 },
}

/// The file name `p` ends with, without the ` (deleted)` the kernel appends to a replaced binary.
fn file_name(p: &Path) -> Option<OsString> {
    let b = p.file_name()?.as_bytes();
    let b = b.strip_suffix(b" (deleted)").unwrap_or(b);
    Some(OsStr::from_bytes(b).to_os_string())
}

/// Whether `program` is one of `names` (a comm is a name cut to 15 bytes).
fn is_ours(program: &Program, names: &[OsString]) -> bool {
    match program {
        Program::Exe(name) => names.iter().any(|n| n == name),
        Program::Hidden { comm: Some(comm) } => names.iter().any(|n| {
            let n = n.as_bytes();
            comm.as_bytes() == &n[..n.len().min(15)]
        }),
        Program::Hidden { comm: None } | Program::Gone => false,
    }
}

/// The decision, pure: `Ok` when `peer` may ask for the node with the request's `asked` pid.
pub fn judge(
    peer: Peer,
    ours: u32,
    asked: Option<&Value>,
    program: &Program,
    names: &[OsString],
) -> Result<(), Refused> {
    if peer.uid != ours {
        return Err(Refused::OtherUser {
            peer: peer.uid,
            ours,
        });
    }
    if peer.pid <= 0 {
        return Err(Refused::NoPid);
    }
    if asked.and_then(Value::as_i64) != Some(i64::from(peer.pid)) {
        return Err(Refused::NotTheCaller {
            asked: asked.map_or("nothing".into(), Value::to_string),
            peer: peer.pid,
        });
    }
    if *program == Program::Gone {
        return Err(Refused::Gone { pid: peer.pid });
    }
    if !is_ours(program, names) {
        let program = match program {
            Program::Exe(n) => n.to_string_lossy().into_owned(),
            Program::Hidden { comm } => format!("{} (comm)", comm.as_deref().unwrap_or("?")),
            Program::Gone => String::new(),
        };
        return Err(Refused::NotOurProgram {
            pid: peer.pid,
            program,
        });
    }
    Ok(())
}

/// The peer's program as `/proc` (under `proc_root`) shows it to us.
fn program(proc_root: &Path, pid: i32) -> Program {
    let dir = proc_root.join(pid.to_string());
    match std::fs::read_link(dir.join("exe")) {
        Ok(exe) => file_name(&exe).map_or(Program::Gone, Program::Exe),
        Err(e)
            if matches!(
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                Errno::EACCES | Errno::EPERM
            ) =>
        {
            let comm = std::fs::read_to_string(dir.join("comm")).ok();
            Program::Hidden {
                comm: comm.map(|c| c.trim_end_matches('\n').to_string()),
            }
        }
        Err(_) => Program::Gone,
    }
}

/// The names a successor's executable may have: ours as shipped, and ours as installed.
fn names() -> Vec<OsString> {
    let mut v = vec![OsString::from(PROGRAM)];
    if let Some(n) = std::fs::read_link("/proc/self/exe")
        .ok()
        .as_deref()
        .and_then(file_name)
    {
        v.push(n);
    }
    v
}

/// Admits a `handover` from `peer` with the request's `params`, or says why not: the
/// successor to watch is the peer itself.
pub fn admit(peer: Peer, params: &Value, proc_root: &Path) -> Result<Successor, Refused> {
    let asked = params.get(1).and_then(|p| p.get("pid"));
    let ours = nix::unistd::geteuid().as_raw();
    judge(peer, ours, asked, &program(proc_root, peer.pid), &names())?;
    procfs::identity(proc_root, peer.pid)
        .filter(|i| i.live)
        .map(|i| Successor {
            pid: peer.pid,
            start: i.start,
        })
        .ok_or(Refused::Gone { pid: peer.pid })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_our_own_program_of_our_uid_naming_itself_may_ask() {
        let names = [OsString::from(PROGRAM), OsString::from("oos")];
        let exe = |n: &str| Program::Exe(n.into());
        let comm = |c: &str| Program::Hidden {
            comm: Some(c.into()),
        };
        let me = Peer { pid: 40, uid: 1000 };
        let root = Peer { pid: 40, uid: 0 };
        let unseen = Peer { pid: 0, uid: 1000 };
        let refused = |r: Refused| Err::<(), _>(r);
        let not_ours = |p: &str| {
            refused(Refused::NotOurProgram {
                pid: 40,
                program: p.into(),
            })
        };
        // (peer, asked pid, program, expected)
        let table = [
            (me, json!(40), exe(PROGRAM), Ok(())),
            (me, json!(40), exe("oos"), Ok(())),
            // The kernel hides the executable: the comm (15 bytes of the name) counts.
            (me, json!(40), comm("ovs-ovn-supervi"), Ok(())),
            (me, json!(40), comm("python3"), not_ours("python3 (comm)")),
            (
                me,
                json!(40),
                Program::Hidden { comm: None },
                not_ours("? (comm)"),
            ),
            (me, json!(40), exe("socat"), not_ours("socat")),
            (
                me,
                json!(40),
                exe("ovs-ovn-supervisor-old"),
                not_ours("ovs-ovn-supervisor-old"),
            ),
            (
                root,
                json!(40),
                exe(PROGRAM),
                refused(Refused::OtherUser {
                    peer: 0,
                    ours: 1000,
                }),
            ),
            (unseen, json!(0), exe(PROGRAM), refused(Refused::NoPid)),
            (
                me,
                json!(41),
                exe(PROGRAM),
                refused(Refused::NotTheCaller {
                    asked: "41".into(),
                    peer: 40,
                }),
            ),
            (
                me,
                json!("40"),
                exe(PROGRAM),
                refused(Refused::NotTheCaller {
                    asked: "\"40\"".into(),
                    peer: 40,
                }),
            ),
            (
                me,
                json!(40),
                Program::Gone,
                refused(Refused::Gone { pid: 40 }),
            ),
        ];
        for (i, (peer, asked, program, want)) in table.into_iter().enumerate() {
            let got = judge(peer, 1000, Some(&asked), &program, &names);
            assert_eq!(got, want, "row {i}");
        }
        assert_eq!(
            judge(me, 1000, None, &exe(PROGRAM), &names),
            refused(Refused::NotTheCaller {
                asked: "nothing".into(),
                peer: 40
            })
        );
    }

    #[test]
    fn a_replaced_binary_keeps_its_name() {
        let p = Path::new("/usr/bin/ovs-ovn-supervisor (deleted)");
        assert_eq!(file_name(p), Some(OsString::from(PROGRAM)));
        assert_eq!(file_name(Path::new("/")), None);
    }

    #[test]
    fn our_own_process_is_read_from_proc() {
        let me = std::process::id() as i32;
        let proc_root = Path::new("/proc");
        let peer = Peer {
            pid: me,
            uid: nix::unistd::geteuid().as_raw(),
        };
        // This test binary is named as our own executable is: it may ask, naming itself.
        let start = procfs::identity(proc_root, me).unwrap().start;
        let got = admit(peer, &json!([1000, {"pid": me}]), proc_root);
        assert_eq!(got, Ok(Successor { pid: me, start }));
        let e = admit(peer, &json!([1000, {"pid": me + 1}]), proc_root).unwrap_err();
        assert!(matches!(e, Refused::NotTheCaller { .. }), "{e}");
        assert!(Successor { pid: me, start }.alive(proc_root));
        let reused = Successor {
            pid: me,
            start: start + 1,
        };
        assert!(!reused.alive(proc_root));
    }
}
