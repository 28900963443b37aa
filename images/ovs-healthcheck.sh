#!/bin/bash
# Kube-OVN's ovs-ovn DaemonSet runs `bash /kube-ovn/ovs-healthcheck.sh` as BOTH its liveness and
# its readiness probe; this wrapper lets such a DaemonSet run this image unchanged.
# Kube-OVN's script asks only the node (ovsdb-client list-dbs on the local db, ovs-ctl status,
# ovn-ctl status_controller), never the Southbound, so it maps to `probe liveness`, which never
# depends on the Southbound either: a central database outage must not restart every node.
# `probe startup` first: liveness passes while the node is still starting, Kube-OVN's script
# does not (its daemons are not up yet), and as a readiness probe it must not mark a starting
# pod Ready (a rolling update would then delete the old pod too early). Each prints its reason.
/usr/bin/ovs-ovn-supervisor probe startup "$@" && exec /usr/bin/ovs-ovn-supervisor probe liveness "$@"
