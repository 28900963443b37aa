//! [`TookOver`]: this instance took a running node over — from whom, how long it took, and
//! br-int's flows saved and restored on the way; shown by `status` and the metrics alike.
//!
//! Invariants: plain data, set by the supervisor where the figures are produced; a takeover
//! is published as soon as it begins (`duration_ms` is `None` until the node runs on our
//! daemons with flow-restore-wait cleared), so a count never waits for the end.

use serde::{Deserialize, Serialize};

use crate::dataplane::tally::FlowTally;

/// Who ran the node before this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TakeoverFrom {
    /// A previous instance of ours handed it over (a rolling update).
    #[serde(rename = "supervisor")]
    Supervisor,
    /// Daemons with no supervisor of ours: Kube-OVN's `start-ovs.sh` (`ovs-ctl`/`ovn-ctl`).
    #[serde(rename = "start-ovs")]
    StartOvs,
}

impl TakeoverFrom {
    pub const ALL: [TakeoverFrom; 2] = [TakeoverFrom::Supervisor, TakeoverFrom::StartOvs];

    /// The metrics' label value, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            TakeoverFrom::Supervisor => "supervisor",
            TakeoverFrom::StartOvs => "start-ovs",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TookOver {
    pub from: TakeoverFrom,
    /// Unix ms when this instance set out to take the node (after the ovn-northd check): the
    /// handover request to the old instance, or the decision to stop `ovs-ctl`'s daemons.
    pub requested_at_ms: u64,
    /// From then until the start finished and flow-restore-wait was cleared (br-int's table
    /// complete); `None` while under way.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// br-int's flows saved before the old daemons stopped: by the old instance (from its
    /// answer) or by us of `start-ovs.sh`'s switch; `None` when nothing was saved.
    #[serde(default)]
    pub saved: Option<FlowTally>,
    /// What this instance put back into its new switch; `None` when nothing was restored.
    #[serde(default)]
    pub restored: Option<FlowTally>,
}

impl TookOver {
    /// `took over from supervisor in 812 ms; flows saved 40 (2 groups) in 31 ms, restored 40
    /// (2 groups) in 25 ms`.
    pub fn line(&self) -> String {
        let took = match self.duration_ms {
            Some(ms) => format!("in {ms} ms"),
            None => "(under way)".into(),
        };
        let tally = |t: &Option<FlowTally>| match t {
            Some(t) => format!("{} ({} groups) in {} ms", t.flows, t.groups, t.elapsed_ms),
            None => "none".into(),
        };
        format!(
            "took over from {} {took}; flows saved {}, restored {}",
            self.from.as_str(),
            tally(&self.saved),
            tally(&self.restored)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_every_figure() {
        let t = |flows, groups, elapsed_ms| FlowTally {
            flows,
            groups,
            elapsed_ms,
        };
        let rows = [
            (
                TookOver {
                    from: TakeoverFrom::Supervisor,
                    requested_at_ms: 1,
                    duration_ms: Some(812),
                    saved: Some(t(40, 2, 31)),
                    restored: Some(t(39, 1, 25)),
                },
                "took over from supervisor in 812 ms; flows saved 40 (2 groups) in 31 ms, restored 39 (1 groups) in 25 ms",
            ),
            (
                TookOver {
                    from: TakeoverFrom::StartOvs,
                    requested_at_ms: 1,
                    duration_ms: None,
                    saved: None,
                    restored: None,
                },
                "took over from start-ovs (under way); flows saved none, restored none",
            ),
        ];
        for (took, want) in rows {
            assert_eq!(took.line(), want);
        }
    }

    #[test]
    fn the_label_is_the_serialized_name() {
        for f in TakeoverFrom::ALL {
            assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
        }
    }
}
