//! Keeping packets flowing while our daemons restart: br-int's OpenFlow state saved and
//! restored across a takeover ([`flows`]), and the kernel datapath's flows kept through an
//! ovs-vswitchd start with `flow-restore-wait` until ovn-controller's table is complete
//! ([`restore_wait`], when the kernel has some: [`kernel_flows`]; held as long as
//! ovn-controller shows progress: [`patience`]; the saved table restored then only if
//! ovn-controller put nothing: [`late_restore`]); and for an uninstall, the tunnel ports
//! removed so vswitchd takes their devices away ([`tunnels`]). What a save or restore moved:
//! [`tally`].

pub mod flows;
pub mod kernel_flows;
pub mod late_restore;
pub mod patience;
pub mod restore_wait;
pub mod tally;
pub mod tunnels;
