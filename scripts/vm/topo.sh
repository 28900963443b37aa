# Sourced by inside.sh: two nodes wired as a Kube-OVN cluster wires them (pkg/daemon of
# kube-ovn: configureNic / configureNodeNic / setupVethPair), over geneve.
#
#   node1, node2   network namespaces, each running our supervisor (datapath_type=system), joined
#                  by a veth (10.0.0.1 <-> 10.0.0.2: their ovn-encap-ip, as in tunnel.sh)
#   ls1            the pods' logical switch 10.16.0.0/24, gateway 10.16.0.1
#   join           Kube-OVN's join switch 100.64.0.0/16, gateway 100.64.0.1
#   ovn-cluster    the logical router between them (east-west only: no gateway chassis)
#   ovn0           on each node, an OVS internal port in the NODE's namespace bound to the join
#                  switch's port node-NODE (100.64.0.2 on node1, .3 on node2), MTU 1400, with
#                  the route to the pods' subnet via 100.64.0.1 (configureNodeNic)
#   pod1, pod3 (node1), pod2 (node2)
#                  BENCH_TOPOLOGY=veth (the default; what kube-ovn-cni does): a veth pair <12 hex>_h / <12 hex>_c,
#                  MTU 1400, the host end up (txqueuelen 1000) on br-int with external_ids
#                  iface-id, vendor=kube-ovn, pod_name, pod_namespace, pod_netns, ip; the
#                  container end moved into the pod's namespace and renamed eth0, the LSP's MAC,
#                  its address, default route via 10.16.0.1.
#                  BENCH_TOPOLOGY=internal (the older bed): an OVS internal port of br-int named after
#                  the pod, moved into the pod's namespace (same MAC, address, MTU, route).
# Neighbour entries are permanent (pods: the peer and the gateway; nodes: the join gateway) so
# that no ARP re-resolution falls into a measured event.

TOPOLOGY=${BENCH_TOPOLOGY:-veth}
case "$TOPOLOGY" in veth | internal) ;; *) fail "BENCH_TOPOLOGY=$TOPOLOGY: want veth or internal" ;; esac
MTU=1400
JOIN=100.64.0
GW_MAC_LS=0a:58:0a:10:00:01
GW_MAC_JOIN=0a:58:64:40:00:01

pod_mac() { printf '0a:58:0a:10:00:%02x' "$1"; }
ovn0_mac() { printf '0a:58:64:40:00:%02x' "$1"; }
# veth_host POD: the host end's name, kube-ovn-cni's `<containerID[0:12]>_h`.
veth_host() { echo "$(printf %s "$1" | sha256sum | cut -c1-12)_h"; }
# pod_nic POD: the pod's interface inside its namespace.
pod_nic() { if [ "$TOPOLOGY" = veth ]; then echo eth0; else echo "$1"; fi; }

# topo_router: ovn-cluster joining ls1 and join (what kube-ovn-controller creates).
topo_router() {
  nbctl lr-add ovn-cluster \
    -- lrp-add ovn-cluster ovn-cluster-$LS $GW_MAC_LS $SUBNET.1/24 \
    -- lsp-add $LS $LS-ovn-cluster -- lsp-set-type $LS-ovn-cluster router \
    -- lsp-set-addresses $LS-ovn-cluster router \
    -- lsp-set-options $LS-ovn-cluster router-port=ovn-cluster-$LS \
    -- ls-add join \
    -- lrp-add ovn-cluster ovn-cluster-join $GW_MAC_JOIN $JOIN.1/16 \
    -- lsp-add join join-ovn-cluster -- lsp-set-type join-ovn-cluster router \
    -- lsp-set-addresses join-ovn-cluster router \
    -- lsp-set-options join-ovn-cluster router-port=ovn-cluster-join ||
    fail "creating ovn-cluster and join"
}

# ovn0_add NODE K: the node's ovn0 (configureNodeNic): internal port in the node's namespace.
ovn0_add() {
  local n=$1 k=$2 mac
  mac=$(ovn0_mac "$k")
  nbctl lsp-add join "node-$n" -- lsp-set-addresses "node-$n" "$mac $JOIN.$k"
  vsctl "$n" --may-exist add-port br-int ovn0 -- set interface ovn0 type=internal \
    external_ids:iface-id="node-$n" external_ids:ip="$JOIN.$k"
  wait_for "ovn0 in $n" 30 ip -n "$n" link show ovn0
  ip -n "$n" link set ovn0 address "$mac" mtu $MTU txqueuelen 1000
  ip -n "$n" addr add "$JOIN.$k/16" dev ovn0
  ip -n "$n" link set ovn0 up
  ip -n "$n" route replace $SUBNET.0/24 via $JOIN.1 dev ovn0
  ip -n "$n" neigh replace $JOIN.1 lladdr $GW_MAC_JOIN dev ovn0 nud permanent
}

# pod_wire NODE POD K: the pod's logical switch port and its interface, per TOPOLOGY.
pod_wire() {
  local node=$1 pod=$2 k=$3 mac ip nic h
  mac=$(pod_mac "$k")
  ip=$SUBNET.$k
  nic=$(pod_nic "$pod")
  nbctl lsp-add $LS "$pod" -- lsp-set-addresses "$pod" "$mac $ip"
  ip netns add "$pod"
  if [ "$TOPOLOGY" = veth ]; then
    h=$(veth_host "$pod")
    ip -n "$node" link add "$h" mtu $MTU type veth peer name "${h%_h}_c" mtu $MTU
    ip -n "$node" link set "$h" up txqueuelen 1000
    vsctl "$node" --may-exist add-port br-int "$h" -- set interface "$h" \
      external_ids:iface-id="$pod" external_ids:vendor=kube-ovn external_ids:pod_name="$pod" \
      external_ids:pod_namespace=default external_ids:pod_netns="/var/run/netns/$pod" \
      external_ids:ip="$ip"
    ip -n "$node" link set "${h%_h}_c" netns "$pod"
    ip -n "$pod" link set "${h%_h}_c" name eth0
  else
    vsctl "$node" add-port br-int "$pod" -- set interface "$pod" type=internal \
      external_ids:iface-id="$pod" external_ids:ip="$ip"
    wait_for "$pod's internal port in $node" 30 ip -n "$node" link show "$pod"
    ip -n "$node" link set "$pod" netns "$pod"
  fi
  ip -n "$pod" link set "$nic" address "$mac" mtu $MTU
  ip -n "$pod" addr add "$ip/24" dev "$nic"
  ip -n "$pod" link set "$nic" up
  ip -n "$pod" link set lo up
  ip -n "$pod" route add default via $SUBNET.1 dev "$nic"
  ip -n "$pod" neigh replace $SUBNET.1 lladdr $GW_MAC_LS dev "$nic" nud permanent
}

# pod_peer POD K PEER_K: a permanent entry for the other pod.
pod_peer() { ip -n "$1" neigh replace "$SUBNET.$3" lladdr "$(pod_mac "$3")" dev "$(pod_nic "$1")" nud permanent; }

# topo_up: the whole cluster above, both nodes ready, pod1 reaching pod2, pod3 and node1's ovn0.
topo_up() {
  local t0 n
  t0=$(now_ms)
  central_start
  topo_router
  node_net node1 1
  node_net node2 2
  ip link add tA type veth peer name tB
  ip link set tA netns node1
  ip link set tB netns node2
  ip -n node1 addr add 10.0.0.1/24 dev tA
  ip -n node2 addr add 10.0.0.2/24 dev tB
  ip -n node1 link set tA up
  ip -n node2 link set tB up
  node_start node1 1 geneve
  node_start node2 2 geneve
  node_wait_ready node1 1 180
  node_wait_ready node2 2 180
  res "topology=$TOPOLOGY nodes_ready_ms=$(($(now_ms) - t0))"
  node_encap node1 10.0.0.1
  node_encap node2 10.0.0.2
  ovn0_add node1 2
  ovn0_add node2 3
  pod_wire node1 pod1 11
  pod_wire node2 pod2 12
  pod_wire node1 pod3 13
  pod_peer pod1 11 12
  pod_peer pod1 11 13
  pod_peer pod2 12 11
  pod_peer pod3 13 11
  wait_for "pods and ovn0s up" 180 lsp_up pod1 pod2 pod3 node-node1 node-node2
  wait_for "genev_sys_6081 in node1" 120 ip -n node1 link show genev_sys_6081
  wait_for "first ping pod1 -> pod2 (across geneve)" 180 ping1 pod1 $SUBNET.12
  wait_for "first ping pod1 -> pod3 (same node)" 120 ping1 pod1 $SUBNET.13
  wait_for "first ping pod1 -> node1's ovn0" 120 ping1 pod1 $JOIN.2
  wait_for "first ping node1 -> pod1 (ovn0)" 60 ip netns exec node1 ping -c 1 -W 1 $SUBNET.11
  res "topology_ready_ms=$(($(now_ms) - t0))"
}

# links NODE POD...: what must not change on the node across an event (kube-ovn#2291): ovn0's
# link (ifindex, flags, MTU, MAC, state) and its addresses, each pod's port (the veth host end
# with its ifindex and master; an internal port in its pod's namespace), the tunnel device, and
# the kernel datapath's port numbers (a port deleted and added again gets a new one).
links() {
  local n=$1 p
  shift
  ip -n "$n" -o link show dev ovn0 | sed 's/ qlen [0-9]*//'
  ip -n "$n" -o -4 addr show dev ovn0
  ip -n "$n" -o link show dev genev_sys_6081 | sed 's/ qlen [0-9]*//'
  for p in "$@"; do
    if [ "$TOPOLOGY" = veth ]; then ip -n "$n" -o link show dev "$(veth_host "$p")"; else ip -n "$p" -o link show dev "$p"; fi
  done
  ip netns exec "$n" ovs-dpctl show | grep -E '^ +port [0-9]+:' | sort
}

# ovs_recreates_tunnel_backer: this vswitchd deletes the kernel datapath's tunnel backing device
# (genev_sys_6081) when it starts on a datapath that has one, and creates it again: it took every
# datapath port not named like an OVSDB interface for a stale one. Fixed upstream by
# openvswitch/ovs b5313a8ce "ofproto: Fix re-creation of tunnel backing interfaces on restart"
# (v3.2.0; backported to v3.1.1, v3.0.4, v2.17.6). Debian 12 ships 3.1.0.
ovs_recreates_tunnel_backer() {
  local v
  v=$(ovs-vswitchd --version | awk 'NR==1 {print $NF}')
  case "$v" in
    2.17.[0-5] | 3.0.[0-3] | 3.1.0 | 2.1[0-6].* | 2.[0-9].*) return 0 ;;
    *) return 1 ;;
  esac
}
