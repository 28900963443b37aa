#!/bin/bash
# Kube-OVN's cleanup.sh runs `kubectl exec <ovs-ovn pod> -- bash /kube-ovn/uninstall.sh` under
# `set -e`: the running supervisor stops the node for good (and restarts nothing until the pod
# is deleted), then Kube-OVN's iptables rules, chains and ipsets, our tunnel port rule, the
# datapath and our files go. Exit 0 when done (again, or with no supervisor, too); 1 naming
# what failed. `ovs-ovn-supervisor uninstall --help` has the details.
exec /usr/bin/ovs-ovn-supervisor uninstall "$@"
