//! [`FlowTally`]: what one save or restore of br-int's OpenFlow state moved, and how long it
//! took — the figures `status` and the metrics show for a takeover.
//!
//! Invariants: produced by the code that saved or restored (never parsed back out of a log
//! line or a tool's output), so whatever mechanism moves the flows, the figures keep their
//! meaning; plain data, carried across a handover in the old instance's answer.

use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FlowTally {
    /// OpenFlow rules (flows) saved or restored.
    pub flows: u64,
    /// OpenFlow groups saved or restored.
    #[serde(default)]
    pub groups: u64,
    /// How long the save or the restore took, ms.
    pub elapsed_ms: u64,
}

impl FlowTally {
    /// The figures of a step that began at `t0` and has just ended.
    pub fn since(t0: Instant, flows: usize, groups: usize) -> FlowTally {
        FlowTally {
            flows: flows as u64,
            groups: groups as u64,
            elapsed_ms: elapsed_ms(t0),
        }
    }
}

/// Milliseconds since `t0`, rounded up: a step that ran never reads 0 (a binary save or
/// restore of a small table takes well under one, and 0 reads as "nothing was done").
pub fn elapsed_ms(t0: Instant) -> u64 {
    (t0.elapsed().as_micros() as u64).div_ceil(1000)
}
