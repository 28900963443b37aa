//! Is ovn-controller's Southbound session alive, beyond `connection-status`?
//!
//! `connected` says only that the TCP (or TLS) connection is up: a server that accepts and
//! never answers (a hung ovsdb-server, a proxy or load balancer in front of a dead one) is
//! `connected` for all but the few seconds around each inactivity-probe reconnect. What a
//! live session leaves behind is data: ovn-controller's `memory/show` counts the cells its IDL
//! holds per database (`idl-cells-OVN_Southbound:N`), and the entry is absent until the first
//! monitor reply has arrived. Measured on OVN 23.03 against a listener that accepts and stays
//! silent: `connected`, and `memory/show` = `idl-cells-Open_vSwitch:100` only.
//!
//! Invariant: pure; a `memory/show` we cannot read says nothing either way (the caller then
//! trusts `connection-status` as before).

/// The number of Southbound cells in a `memory/show` reply, 0 when the entry is absent.
pub fn southbound_cells(memory_show: &str) -> u64 {
    memory_show
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("idl-cells-OVN_Southbound:")?.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_from_the_real_replies() {
        // OVN 23.03, a live Southbound (sandbox), then one that accepts and never answers.
        let live = "idl-cells-OVN_Southbound:23 idl-cells-Open_vSwitch:100 ofctrl_desired_flow_usage-KB:3 ofctrl_installed_flow_usage-KB:2 ofctrl_sb_flow_ref_usage-KB:1";
        assert_eq!(southbound_cells(live), 23);
        assert_eq!(southbound_cells("idl-cells-Open_vSwitch:100"), 0);
        assert_eq!(southbound_cells(""), 0);
        assert_eq!(southbound_cells("idl-cells-OVN_Southbound:x"), 0);
        assert_eq!(
            southbound_cells("idl-cells-OVN_Southbound:18446744073709551615"),
            u64::MAX
        );
    }
}
