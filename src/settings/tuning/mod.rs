//! How many ovs-vswitchd handler and revalidator threads to ask for, derived
//! from the CPUs this container may really use.
//!
//! Why: vswitchd sizes its thread pools from the CPUs it sees
//! (`T = max(cores, 2)`, `revalidators = T/4 + 1`, `handlers = T - revalidators`),
//! and the CPUs it sees ignore the CFS quota, so a pod limited to 2 CPUs on a
//! 96-core node starts ~96 threads. Kube-OVN's shell answer pins 4/10 only
//! when `nproc > 12`, a cliff where 13 and 96 cores get the same. We instead
//! use a smooth, monotone non-decreasing rule on the usable CPU count `c`:
//! `T = c` up to 12, `12 + round(2 * sqrt(c - 12))` beyond (13 -> 14 -> 4/10,
//! same as Kube-OVN; 96 -> 30 -> 8/22), then vswitchd's own split.
//!
//! Note: on kernels whose datapath dispatches upcalls per CPU
//! (`OVS_DP_F_DISPATCH_UPCALL_PER_CPU`, Linux >= 5.14) vswitchd overrides
//! `n-handler-threads` with its own per-CPU count; only the revalidator
//! setting then takes effect.
//!
//! Usable CPUs are the minimum of the limits that exist: online CPUs, the
//! cgroup cpuset, and the CFS quota rounded up. Every host path is read under
//! an injected root so tests can fake /proc and /sys in a tempdir.
//!
//! Assumption: the container's own cgroup is mounted at `sys/fs/cgroup` (true
//! inside a pod with a cgroup namespace or the runtime's bind mount). On a
//! host, outside a container, `/proc/self/cgroup` would point at a nested
//! cgroup elsewhere; we then read the root cgroup, which has no limits, and
//! fall back to the online CPUs. Only the container's own cgroup is read, not
//! its ancestors: Kubernetes sets the same limits on the container cgroup.
//!
//! Invariants: `usable >= 1`; absent files mean "no limit"; a present file we
//! cannot read or parse is an error naming path and content, never a guess.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

/// A single file's text did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("bad cpu list {value:?}: {reason}")]
    CpuList { value: String, reason: &'static str },
    #[error("bad cpu.max {value:?}: {reason}")]
    CpuMax { value: String, reason: &'static str },
    #[error("bad integer {value:?}")]
    Integer { value: String },
    #[error("bad CFS quota/period {quota:?}/{period:?}: {reason}")]
    Cfs {
        quota: String,
        period: String,
        reason: &'static str,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TuningError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot parse {} (content {content:?})", path.display())]
    Parse {
        path: PathBuf,
        content: String,
        #[source]
        source: ParseError,
    },
}

/// What limits the CPUs this process may use.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuBudget {
    pub online: u32,
    pub cpuset: Option<u32>,
    /// CFS quota in CPUs (quota / period), before rounding.
    pub quota: Option<f64>,
    pub usable: u32,
    /// Which limit won: "online", "cpuset" or "quota". On a tie the broader
    /// one is named, since the narrower one did not change anything.
    pub source: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads {
    pub handlers: u32,
    pub revalidators: u32,
}

impl fmt::Display for Threads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} handlers, {} revalidators",
            self.handlers, self.revalidators
        )
    }
}

/// Counts the CPUs in a kernel cpu list ("0-3,8,10-11" -> 7). An empty list
/// (cgroup files may be empty, meaning "inherit") counts 0. Overlapping
/// ranges are merged so no CPU is counted twice.
pub fn parse_cpu_list(s: &str) -> Result<u32, ParseError> {
    let bad = |reason| ParseError::CpuList {
        value: s.to_string(),
        reason,
    };
    let text = s.trim();
    if text.is_empty() {
        return Ok(0);
    }
    let mut ranges = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        let (lo, hi) = match item.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (item, item),
        };
        let lo: u32 = lo.trim().parse().map_err(|_| bad("not a number"))?;
        let hi: u32 = hi.trim().parse().map_err(|_| bad("not a number"))?;
        if lo > hi {
            return Err(bad("range end below start"));
        }
        ranges.push((lo, hi));
    }
    ranges.sort_unstable();
    let mut count: u64 = 0;
    let mut next_free: u64 = 0; // first CPU id not yet counted
    for (lo, hi) in ranges {
        let (lo, hi) = (u64::from(lo).max(next_free), u64::from(hi) + 1);
        if hi > lo {
            count += hi - lo;
            next_free = hi;
        }
    }
    u32::try_from(count).map_err(|_| bad("too many CPUs"))
}

/// Parses cgroup v2 `cpu.max` ("max 100000" or "150000 100000") into CPUs.
/// `None` means no quota.
pub fn parse_cpu_max(s: &str) -> Result<Option<f64>, ParseError> {
    let bad = |reason| ParseError::CpuMax {
        value: s.to_string(),
        reason,
    };
    let mut fields = s.split_whitespace();
    let quota = fields.next().ok_or_else(|| bad("empty"))?;
    let period = fields.next();
    if fields.next().is_some() {
        return Err(bad("more than two fields"));
    }
    if quota == "max" {
        return Ok(None);
    }
    let quota: u64 = quota.parse().map_err(|_| bad("quota not a number"))?;
    // The kernel always writes the period; without it the ratio is unknown.
    let period: u64 = period
        .ok_or_else(|| bad("missing period"))?
        .parse()
        .map_err(|_| bad("period not a number"))?;
    if period == 0 {
        return Err(bad("zero period"));
    }
    Ok(Some(quota as f64 / period as f64))
}

/// Parses cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` into CPUs.
/// A negative quota (the kernel writes -1) means no quota.
pub fn parse_cfs_quota(quota: &str, period: &str) -> Result<Option<f64>, ParseError> {
    let bad = |reason| ParseError::Cfs {
        quota: quota.to_string(),
        period: period.to_string(),
        reason,
    };
    let q: i64 = quota
        .trim()
        .parse()
        .map_err(|_| bad("quota not a number"))?;
    if q < 0 {
        return Ok(None);
    }
    let p: i64 = period
        .trim()
        .parse()
        .map_err(|_| bad("period not a number"))?;
    if p <= 0 {
        return Err(bad("period not positive"));
    }
    Ok(Some(q as f64 / p as f64))
}

/// Counts `processor : N` lines of /proc/cpuinfo.
pub fn count_cpuinfo_processors(s: &str) -> u32 {
    let n = s
        .lines()
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(key, _)| key.trim() == "processor")
        })
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Rounds a fractional CPU quota up to whole CPUs, never below 1: 1.5 CPUs
/// of quota still lets threads run on 2 CPUs at once.
pub fn quota_cpus(quota: f64) -> u32 {
    if quota.is_nan() || quota <= 1.0 {
        return 1;
    }
    // `as` saturates, so absurd quotas become u32::MAX, not garbage.
    quota.ceil() as u32
}

/// Combines the limits into a budget. Pure, so the arithmetic is tested
/// without files.
pub fn budget(online: u32, cpuset: Option<u32>, quota: Option<f64>) -> CpuBudget {
    let online = online.max(1);
    let mut usable = online;
    let mut source = "online";
    if let Some(c) = cpuset.filter(|&c| c > 0 && c < usable) {
        usable = c;
        source = "cpuset";
    }
    if let Some(q) = quota.map(quota_cpus).filter(|&q| q < usable) {
        usable = q;
        source = "quota";
    }
    CpuBudget {
        online,
        cpuset,
        quota,
        usable,
        source,
    }
}

/// Reads the online CPUs, cpuset and CFS quota under `root` ("/" in
/// production).
pub fn read_cpu_budget(root: &Path) -> Result<CpuBudget, TuningError> {
    let online = read_online(root)?;
    let cpuset = read_cpuset(root)?;
    let quota = read_quota(root)?;
    Ok(budget(online, cpuset, quota))
}

fn read_online(root: &Path) -> Result<u32, TuningError> {
    let path = root.join("sys/devices/system/cpu/online");
    if let Some(text) = read_optional(&path)? {
        let n = parse_at(&path, &text, parse_cpu_list)?;
        if n > 0 {
            return Ok(n);
        }
    }
    let path = root.join("proc/cpuinfo");
    Ok(read_optional(&path)?
        .map(|text| count_cpuinfo_processors(&text))
        .filter(|&n| n > 0)
        .unwrap_or(1))
}

fn read_cpuset(root: &Path) -> Result<Option<u32>, TuningError> {
    const CANDIDATES: [&str; 3] = [
        "sys/fs/cgroup/cpuset.cpus.effective",
        "sys/fs/cgroup/cpuset/cpuset.effective_cpus",
        "sys/fs/cgroup/cpuset/cpuset.cpus",
    ];
    for rel in CANDIDATES {
        let path = root.join(rel);
        if let Some(text) = read_optional(&path)? {
            let n = parse_at(&path, &text, parse_cpu_list)?;
            // Empty means "no restriction here"; a later file may still say more.
            if n > 0 {
                return Ok(Some(n));
            }
        }
    }
    Ok(None)
}

fn read_quota(root: &Path) -> Result<Option<f64>, TuningError> {
    let v2 = root.join("sys/fs/cgroup/cpu.max");
    if let Some(text) = read_optional(&v2)? {
        return parse_at(&v2, &text, parse_cpu_max);
    }
    // Runtimes mount the v1 cpu controller under either name.
    for dir in ["sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpu"] {
        let qpath = root.join(dir).join("cpu.cfs_quota_us");
        let ppath = root.join(dir).join("cpu.cfs_period_us");
        let (Some(q), Some(p)) = (read_optional(&qpath)?, read_optional(&ppath)?) else {
            continue;
        };
        return parse_cfs_quota(&q, &p).map_err(|source| TuningError::Parse {
            path: qpath,
            content: format!("{} / {}", q.trim(), p.trim()),
            source,
        });
    }
    Ok(None)
}

fn parse_at<T>(
    path: &Path,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<T, TuningError> {
    parse(text).map_err(|source| TuningError::Parse {
        path: path.to_path_buf(),
        content: text.to_string(),
        source,
    })
}

/// `Ok(None)` when the file (or a directory on its way) does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, TuningError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) => match e.raw_os_error().map(Errno::from_raw) {
            // ENODEV: some cgroup files exist but refuse reads when the
            // controller is not enabled for this group; that is "no limit".
            Some(Errno::ENOENT | Errno::ENOTDIR | Errno::ENODEV) => Ok(None),
            _ => Err(TuningError::Read {
                path: path.to_path_buf(),
                source: e,
            }),
        },
    }
}

/// Our effective thread total for `usable` CPUs: linear up to 12, then
/// growing with the square root so large nodes do not spawn dozens of
/// threads that mostly contend for the same flow table.
pub fn effective_threads(usable: u32) -> u32 {
    let c = usable.max(1);
    let t = if c <= 12 {
        c
    } else {
        let extra = (2.0 * f64::from(c - 12).sqrt()).round() as u32;
        12 + extra
    };
    t.max(2)
}

/// Handlers and revalidators for `usable` CPUs, no overrides.
pub fn threads_for(usable: u32) -> Threads {
    split(effective_threads(usable), None, None)
}

/// Applies per-setting overrides the way vswitchd's `ofproto_set_threads`
/// does, with our total in place of its core count: 0 means "not set", and
/// a set value for one pool sizes the other from what is left.
pub fn resolve(
    budget: &CpuBudget,
    handlers_override: Option<u32>,
    revalidators_override: Option<u32>,
) -> Threads {
    split(
        effective_threads(budget.usable),
        handlers_override.filter(|&n| n > 0),
        revalidators_override.filter(|&n| n > 0),
    )
}

fn split(total: u32, handlers: Option<u32>, revalidators: Option<u32>) -> Threads {
    let revalidators = revalidators.unwrap_or(match handlers {
        Some(h) => total.saturating_sub(h).max(1),
        None => total / 4 + 1,
    });
    let handlers = handlers.unwrap_or(total.saturating_sub(revalidators).max(1));
    Threads {
        handlers,
        revalidators,
    }
}

#[cfg(test)]
mod tests;
