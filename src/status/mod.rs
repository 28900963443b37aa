//! What the node looks like: the snapshot the supervisor publishes and the verdicts the probes
//! answer with.

pub mod probe;
pub mod skew;
