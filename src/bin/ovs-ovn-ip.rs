//! `ip` for a non-root ovs-ovn pod: installed as `/usr/sbin/ip` in the image (ahead of the real
//! `/usr/bin/ip` in PATH), so `kubectl exec … -- ip maddr add …` and `ip netns exec NS …`
//! (kubectl-ko's `perf`) work as uid 65534.
//!
//! Why it exists: iproute2 drops every capability when it starts as a non-root user unless
//! `CAP_NET_ADMIN` is in its *inheritable* set (`drop_cap()` in iproute2's lib/utils.c), and a
//! Kubernetes exec leaves the inheritable set empty (containerd and CRI-O since
//! CVE-2022-24769). So a file capability on `ip` alone, Kube-OVN's `cap_net_admin+eip`, is
//! dropped again by `ip` itself: `ip maddr add` fails with EPERM. This program holds
//! `cap_net_admin,cap_sys_admin` as *permitted* file capabilities (`+p`: nothing effective, it
//! makes no privileged call but `capset` on itself), copies them into its inheritable set and
//! execs the real `ip`, whose `+ei` file capabilities then grant them and which keeps them.
//! `CAP_SYS_ADMIN` is what `ip netns exec` needs (setns, a private mount namespace, sysfs).
//!
//! Invariants: raises only capabilities its own permitted set holds, and only these two; never
//! touches the ambient set, so a program `ip netns exec` runs gets nothing unless it carries
//! file capabilities itself; execs exactly [`REAL_IP`], no path from the environment; when
//! there is nothing to raise (root, or no file capabilities, e.g. under no_new_privs) it execs
//! `ip` unchanged.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use nix::errno::Errno;
use nix::libc;

/// The real iproute2 binary (Debian 12 and 13: `/usr/bin/ip`, `/usr/sbin/ip` links to it).
const REAL_IP: &str = "/usr/bin/ip";

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
/// The capabilities `ip` needs as a non-root user; both sit in the first 32-bit word.
const WANT: u32 = (1 << CAP_NET_ADMIN) | (1 << CAP_SYS_ADMIN);
/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`, one 32-bit word of each set.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Word {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[derive(Debug, thiserror::Error)]
enum CapError {
    #[error("capget: {0}")]
    Get(Errno),
    #[error("capset (inheritable += {0:#x}): {1}")]
    Set(u32, Errno),
}

/// The sets with [`WANT`] ∩ permitted added to the inheritable set; `None` when that adds
/// nothing.
fn raised(sets: [Word; 2]) -> Option<[Word; 2]> {
    let add = sets[0].permitted & WANT & !sets[0].inheritable;
    if add == 0 {
        return None;
    }
    let mut out = sets;
    out[0].inheritable |= add;
    Some(out)
}

fn raise_inheritable() -> Result<(), CapError> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut sets = [Word::default(); 2];
    // SAFETY: capget(2) with a version-3 header writes two `Word`s, which `sets` holds; both
    // pointers are valid for the call.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut header, sets.as_mut_ptr()) };
    if r != 0 {
        return Err(CapError::Get(Errno::last()));
    }
    let Some(new) = raised(sets) else {
        return Ok(());
    };
    // SAFETY: capset(2) reads a version-3 header (pid 0: this thread) and two `Word`s; both
    // pointers are valid for the call and nothing else is touched.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, new.as_ptr()) };
    if r != 0 {
        let add = new[0].inheritable & !sets[0].inheritable;
        return Err(CapError::Set(add, Errno::last()));
    }
    Ok(())
}

fn main() -> ExitCode {
    if let Err(e) = raise_inheritable() {
        // ip still runs: reading (`ip link`, `ip maddr`) needs no capability.
        eprintln!("ovs-ovn-ip: {e}: {REAL_IP} runs without capabilities");
    }
    let err = Command::new(REAL_IP)
        .arg0("ip")
        .args(std::env::args_os().skip(1))
        .exec();
    eprintln!("ovs-ovn-ip: exec {REAL_IP}: {err}");
    ExitCode::from(if err.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(permitted: u32, inheritable: u32) -> [Word; 2] {
        [
            Word {
                effective: 0,
                permitted,
                inheritable,
            },
            Word::default(),
        ]
    }

    #[test]
    fn raises_only_what_is_permitted_and_wanted() {
        let na = 1 << CAP_NET_ADMIN;
        let sa = 1 << CAP_SYS_ADMIN;
        let raw = 1 << 13; // CAP_NET_RAW: permitted to root, never raised
        let cases: &[(&str, [Word; 2], Option<u32>)] = &[
            ("file caps +p: both raised", w(na | sa, 0), Some(na | sa)),
            ("no_new_privs / no file caps", w(0, 0), None),
            ("bounding set without SYS_ADMIN", w(na, 0), Some(na)),
            ("root: only the two", w(na | sa | raw, 0), Some(na | sa)),
            ("already inheritable", w(na | sa, na | sa), None),
            ("one already inheritable", w(na | sa, na), Some(na | sa)),
        ];
        for (what, sets, want) in cases {
            let got = raised(*sets);
            assert_eq!(got.map(|s| s[0].inheritable), *want, "{what}");
            if let Some(s) = got {
                assert_eq!(
                    s[0].permitted, sets[0].permitted,
                    "{what}: permitted unchanged"
                );
                assert_eq!(
                    s[0].effective, sets[0].effective,
                    "{what}: effective unchanged"
                );
                assert_eq!(s[1], sets[1], "{what}: upper word unchanged");
            }
        }
    }
}
