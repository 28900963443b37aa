//! Keeping packets flowing while our daemons restart: br-int's OpenFlow state saved and
//! restored across a takeover ([`flows`]), and the kernel datapath's flows kept through an
//! ovs-vswitchd start with `flow-restore-wait` until ovn-controller's table is complete
//! ([`restore_wait`]); and for an uninstall, the tunnel ports removed so vswitchd takes their
//! devices away ([`tunnels`]). What a save or restore moved: [`tally`].

pub mod flows;
pub mod restore_wait;
pub mod tally;
pub mod tunnels;
