//! Kube-OVN's ipsets destroyed (its `uninstall.sh`'s `ipset destroy ovn40subnets ...`), by name
//! from `ipset list -n`, every family and felix's temporary copies included.
//!
//! Invariants: only names [`is_kube_ovn_set`] accepts are destroyed; a set still referenced
//! by a rule ("in use by a kernel component": the kernel may release a deleted nft rule's
//! reference a moment later, which is why Kube-OVN's script sleeps a second) is retried with
//! backoff for [`IN_USE_WAIT`], then reported; a set gone meanwhile is no error. Without an
//! `ipset` program, or when listing fails, the kernel's `ip_set` module decides: absent, there
//! is nothing to destroy; present, it is an error naming the program.

use std::time::{Duration, Instant};

use crate::host::firewall::kubeovn::owner::is_kube_ovn_set;
use crate::host::firewall::kubeovn::Kernel;
use crate::host::firewall::{Output, RunError, Runner};
use crate::process::backoff;
use crate::process::bounded::BoundedError;

/// How long a set still referenced by a rule is retried.
pub const IN_USE_WAIT: Duration = Duration::from_secs(3);
const RETRY: backoff::Policy = backoff::Policy {
    base: Duration::from_millis(20),
    cap: Duration::from_millis(500),
};

#[derive(Debug, thiserror::Error)]
pub enum IpsetError {
    #[error("cannot run `ipset {args}`: {source}")]
    Run { args: String, source: RunError },
    #[error("`ipset {args}` failed ({}): {}", code.map_or("killed by a signal".into(), |c| format!("exit status {c}")), stderr.trim())]
    Failed {
        args: String,
        code: Option<i32>,
        stderr: String,
    },
}

/// What [`destroy`] did.
#[derive(Debug, Default)]
pub struct Destroyed {
    pub destroyed: Vec<String>,
    /// Why nothing could be there (no `ip_set` in the kernel), if so.
    pub skipped: Option<&'static str>,
    pub errors: Vec<IpsetError>,
}

fn run(r: &dyn Runner, args: &[&str]) -> Result<Output, IpsetError> {
    r.run("ipset", args).map_err(|source| IpsetError::Run {
        args: args.join(" "),
        source,
    })
}

fn failed(args: &[&str], out: Output) -> IpsetError {
    IpsetError::Failed {
        args: args.join(" "),
        code: out.code,
        stderr: out.stderr,
    }
}

/// Destroys every Kube-OVN ipset.
pub fn destroy(r: &dyn Runner, k: &Kernel) -> Destroyed {
    let mut d = Destroyed::default();
    let listed = run(r, &["list", "-n"]);
    let names = match listed {
        Ok(out) if out.code == Some(0) => out.stdout,
        _ if !k.may_have("ip_set") => {
            d.skipped = Some("the kernel has no ip_set");
            return d;
        }
        Err(IpsetError::Run {
            source: RunError::Bounded(BoundedError::Spawn { source, .. }),
            ..
        }) if source.kind() == std::io::ErrorKind::NotFound => {
            d.errors.push(IpsetError::Failed {
                args: "list -n".into(),
                code: None,
                stderr: "ipset is not installed, so Kube-OVN's ipsets cannot be removed".into(),
            });
            return d;
        }
        Err(e) => {
            d.errors.push(e);
            return d;
        }
        Ok(out) => {
            d.errors.push(failed(&["list", "-n"], out));
            return d;
        }
    };
    for name in names.lines().map(str::trim).filter(|n| is_kube_ovn_set(n)) {
        match destroy_one(r, name) {
            Ok(true) => d.destroyed.push(name.to_string()),
            Ok(false) => {}
            Err(e) => d.errors.push(e),
        }
    }
    d
}

/// `Ok(false)`: it was gone already.
fn destroy_one(r: &dyn Runner, name: &str) -> Result<bool, IpsetError> {
    let args = ["destroy", name];
    let end = Instant::now() + IN_USE_WAIT;
    let mut attempt = 0;
    loop {
        let out = run(r, &args)?;
        if out.code == Some(0) {
            return Ok(true);
        }
        if out.stderr.contains("does not exist") {
            return Ok(false);
        }
        let in_use = out.stderr.contains("in use by a kernel component");
        if !in_use || Instant::now() >= end {
            return Err(failed(&args, out));
        }
        std::thread::sleep(RETRY.delay_random(attempt));
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::host::preflight::modules::Facts;

    /// `ipset` with `sets`; `busy` destroys of a name fail as in use before they succeed.
    struct Fake {
        sets: RefCell<Vec<String>>,
        busy: RefCell<Vec<(String, u32)>>,
    }

    fn out(code: i32, stdout: String, stderr: &str) -> Result<Output, RunError> {
        let stderr = stderr.to_string();
        Ok(Output {
            code: Some(code),
            stdout,
            stderr,
        })
    }

    impl Runner for Fake {
        fn run(&self, program: &str, args: &[&str]) -> Result<Output, RunError> {
            assert_eq!(program, "ipset");
            match args {
                ["list", "-n"] => out(0, self.sets.borrow().join("\n") + "\n", ""),
                ["destroy", name] => {
                    let mut busy = self.busy.borrow_mut();
                    if let Some((_, n)) = busy.iter_mut().find(|(b, n)| b == name && *n > 0) {
                        *n -= 1;
                        return out(1, String::new(), "ipset v7.17: Set cannot be destroyed: it is in use by a kernel component\n");
                    }
                    let mut sets = self.sets.borrow_mut();
                    match sets.iter().position(|s| s == name) {
                        Some(i) => {
                            sets.remove(i);
                            out(0, String::new(), "")
                        }
                        None => out(
                            1,
                            String::new(),
                            "ipset v7.17: The set with the given name does not exist\n",
                        ),
                    }
                }
                _ => panic!("unexpected ipset {args:?}"),
            }
        }
    }

    #[test]
    fn only_kube_ovn_sets_go_and_a_briefly_busy_one_is_retried() {
        let all = [
            "ovn40subnets",
            "KUBE-CLUSTER-IP",
            "ovn60services",
            "ovn41subnets-nat",
            "cali40all-hosts-net",
        ];
        let f = Fake {
            sets: RefCell::new(all.iter().map(|s| s.to_string()).collect()),
            busy: RefCell::new(vec![("ovn40subnets".into(), 2)]),
        };
        let k = Kernel::from_facts(Facts::default());
        let d = destroy(&f, &k);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        assert_eq!(
            d.destroyed,
            ["ovn40subnets", "ovn60services", "ovn41subnets-nat"]
        );
        assert_eq!(*f.sets.borrow(), ["KUBE-CLUSTER-IP", "cali40all-hosts-net"]);
        let again = destroy(&f, &k);
        assert!(again.destroyed.is_empty() && again.errors.is_empty());
    }

    #[test]
    fn a_set_that_stays_in_use_is_an_error_naming_it() {
        let f = Fake {
            sets: RefCell::new(vec!["ovn40subnets".into(), "ovn40services".into()]),
            busy: RefCell::new(vec![("ovn40subnets".into(), u32::MAX)]),
        };
        let d = destroy(&f, &Kernel::from_facts(Facts::default()));
        assert_eq!(d.destroyed, ["ovn40services"]);
        assert_eq!(d.errors.len(), 1);
        let e = d.errors[0].to_string();
        assert!(
            e.contains("destroy ovn40subnets") && e.contains("in use"),
            "{e}"
        );
    }
}
