//! The tunnel port rule's state in the published snapshot: whether the start could set it,
//! and each recheck's attempt, shown by `status` and counted by the metrics.
//!
//! Invariant: readiness never depends on the rule, so these publications bypass the readiness
//! marker's judgement ([`super::marker::Published::unjudged`]).

use super::Supervisor;
use crate::status;

impl Supervisor {
    /// Shows in `status` whether the start could set the tunnel port rule.
    pub fn with_firewall(self, at_start: &crate::host::prep::RuleAtStart) -> Self {
        use crate::host::prep::RuleAtStart;
        let result = match at_start {
            RuleAtStart::Unmanaged => return self,
            RuleAtStart::InPlace => Ok(0),
            RuleAtStart::Missing(e) => Err(e.to_string()),
        };
        self.firewall_report()(result);
        self
    }

    /// Publishes one attempt at the tunnel port rule (the start's, or a recheck's).
    /// `Ok(n)`: the rule is in place, `n` rules put back this time after someone else removed
    /// them (counted for the metrics).
    pub(super) fn firewall_report(&self) -> impl Fn(Result<usize, String>) + Send + 'static {
        // Readiness never depends on the rule, so the marker need not follow this.
        let snap = self.snap.unjudged();
        move |result| {
            snap.send_modify(|s| {
                if let Ok(n) = result {
                    s.firewall_restores += n as u64;
                }
                let prev = s.firewall.as_ref();
                s.firewall = Some(status::FirewallState::after(
                    prev,
                    result.map(|_| ()),
                    status::unix_ms(),
                ));
            })
        }
    }

    /// The error of the last attempt at the tunnel port rule, if it failed.
    pub(super) fn firewall_failing(&self) -> Option<String> {
        match &self.snap.borrow().firewall {
            Some(status::FirewallState::Missing { error, .. }) => Some(error.clone()),
            _ => None,
        }
    }
}
