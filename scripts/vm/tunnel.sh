# Sourced by inside.sh: `tunnel` mode. Two nodes, each in its own network namespace with its
# own supervisor and directories, joined by a veth (10.0.0.1 <-> 10.0.0.2, their ovn-encap-ip);
# pod1 on node-a, pod2 on node-b, one logical switch; ping across the tunnel, geneve then vxlan.
# Each node's INPUT policy is DROP, with "another CNI's" rules: loopback and established
# traffic accepted (appended before the supervisor starts), and one inserted at the head of
# INPUT after ours. Tunnel packets pass only through the rule the supervisor keeps.

# fw_foreign NODE: the other CNI's rules, our rule filtered out.
fw_foreign() { ipt "$1" -S INPUT | grep -v 'ovs-ovn-supervisor'; }
fw_ours() { ipt "$1" -S INPUT | grep 'ovs-ovn-supervisor' || true; }
# fw_first NODE: the comment of the first rule of INPUT.
fw_first() { ipt "$1" -S INPUT | sed -n 2p | grep -o -- '--comment "[^"]*"' | cut -d'"' -f2; }
# cni_head NODE: the other CNI (re)asserts its rule at the head of INPUT, as Calico's felix
# does: deleted by its spec when present, inserted at position 1.
cni_head() {
  local spec=(INPUT -p tcp --dport 9099 -m comment --comment "other-cni: head" -j ACCEPT)
  ipt "$1" -D "${spec[@]}" 2>/dev/null
  ipt "$1" -I "${spec[@]:0:1}" 1 "${spec[@]:1}"
}
# fw_counter NODE: packets our rule accepted.
fw_counter() { ipt "$1" -L INPUT -v -n -x | awk '/ovs-ovn-supervisor/ {print $1}'; }

# tunnel_case TYPE: ping across the TYPE tunnel, then remove our rule in both nodes (ping must
# fail), restore it (node-a by `firewall ensure`, node-b by `run`: a rolling-update takeover, which
# re-runs the host preparation), ping again; the other CNI's rules unchanged throughout.
tunnel_case() {
  local t=$1 port st n spec old
  [ "$t" = geneve ] && port=6081 || port=4789
  TUNNEL=$t
  wait_for "first ping across $t" 180 ping1 pod1 $SUBNET.12
  [ -n "$(vsctl node-a --bare --columns=name find interface type="$t")" ] || fail "$t: no $t port on node-a's br-int"
  st=$(ping_stats pod1 $SUBNET.12 20 0.05)
  res "${t}_ping_sent=${st% *} ${t}_ping_received=${st#* }"
  [ "${st#* }" -ge 19 ] || fail "$t: ping across the tunnel: $st"
  for n in node-a node-b; do
    [ "$(fw_ours $n | wc -l)" = 1 ] || fail "$t: $n: not exactly one rule of ours: $(fw_ours $n)"
    fw_ours $n | grep -q -- "--dport $port " || fail "$t: $n: our rule is not for port $port: $(fw_ours $n)"
    [ "$(fw_counter $n)" -gt 0 ] || fail "$t: $n: our rule accepted no packet"
    [ "$(fw_first $n)" = "other-cni: head" ] || fail "$t: $n: first rule is $(fw_first $n)"
    fw_foreign $n >"$W/$n.foreign.before"
  done
  res "${t}_rule=$(fw_ours node-a)"
  res "${t}_rule_packets_node-a=$(fw_counter node-a) ${t}_rule_packets_node-b=$(fw_counter node-b)"
  res "${t}_first_rule=other-cni: head (both nodes)"
  # With our rule present, `firewall ensure` changes nothing: it never moves ours back above
  # the other CNI's.
  env -i PATH="$PATH" TUNNEL_TYPE="$t" OVS_OVN_SUPERVISOR_FIREWALL_IPV6=false \
    "$BIN" firewall ensure --netns node-a >"$W/ensure.out" 2>&1 || fail "$t: firewall ensure: $(cat "$W/ensure.out")"
  res "${t}_ensure_when_present=$(tr '\n' ' ' <"$W/ensure.out")"
  [ "$(fw_first node-a)" = "other-cni: head" ] || fail "$t: firewall ensure moved our rule above the other CNI's"
  fw_foreign node-a | diff "$W/node-a.foreign.before" - >/dev/null || fail "$t: firewall ensure changed the other CNI's rules"

  # Our rule gone: the tunnel stops.
  for n in node-a node-b; do
    spec=$(fw_ours $n)
    eval "ipt $n ${spec/#-A/-D}" || fail "$t: $n: could not delete $spec"
  done
  st=$(ping_stats pod1 $SUBNET.12 10 0.2)
  res "${t}_without_rule_sent=${st% *} ${t}_without_rule_received=${st#* }"
  [ "${st#* }" = 0 ] || fail "$t: ping passed without our rule: $st"

  # Restored: node-a by `firewall ensure`, node-b by a second `run` taking over from the first.
  local t0
  t0=$(now_ms)
  env -i PATH="$PATH" TUNNEL_TYPE="$t" OVS_OVN_SUPERVISOR_FIREWALL_IPV6=false \
    "$BIN" firewall ensure --netns node-a >"$W/ensure.out" 2>&1 || fail "$t: firewall ensure: $(cat "$W/ensure.out")"
  res "${t}_ensure=$(tr '\n' ' ' <"$W/ensure.out")"
  old=$(cat "$W/node-b/supervisor.pid")
  node_start node-b 2 "$t"
  node_wait_ready node-b 2 180
  res "${t}_takeover_ready_ms=$(($(now_ms) - t0))"
  kill -TERM "$old" 2>/dev/null
  try_for 60 bash -c "! kill -0 $old" || fail "$t: the handed-over supervisor did not exit"
  for n in node-a node-b; do
    [ "$(fw_ours $n | wc -l)" = 1 ] || fail "$t: $n: not exactly one rule of ours after restoring"
    fw_foreign $n | diff "$W/$n.foreign.before" - >/dev/null || fail "$t: $n: the other CNI's rules changed"
  done
  res "${t}_restored_first_rule_node-a=$(fw_first node-a) ${t}_restored_first_rule_node-b=$(fw_first node-b)"
  res "${t}_foreign_rules_unchanged=yes"
  wait_for "ping across $t after restoring our rule" 120 ping1 pod1 $SUBNET.12
  st=$(ping_stats pod1 $SUBNET.12 20 0.05)
  res "${t}_restored_ping_sent=${st% *} ${t}_restored_ping_received=${st#* }"
  [ "${st#* }" -ge 19 ] || fail "$t: ping after restoring our rule: $st"
}

tunnel() {
  local n t0
  t0=$(now_ms)
  central_start
  node_net node-a 1
  node_net node-b 2
  ip link add tA type veth peer name tB
  ip link set tA netns node-a
  ip link set tB netns node-b
  ip -n node-a addr add 10.0.0.1/24 dev tA
  ip -n node-b addr add 10.0.0.2/24 dev tB
  ip -n node-a link set tA up
  ip -n node-b link set tB up
  for n in node-a node-b; do
    ipt $n -P INPUT DROP
    ipt $n -A INPUT -i lo -m comment --comment "other-cni: loopback" -j ACCEPT
    ipt $n -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -m comment --comment "other-cni: established" -j ACCEPT
  done
  node_start node-a 1 geneve
  node_start node-b 2 geneve
  node_wait_ready node-a 1 180
  node_wait_ready node-b 2 180
  res "nodes_ready_ms=$(($(now_ms) - t0))"
  node_encap node-a 10.0.0.1
  node_encap node-b 10.0.0.2
  # Another CNI inserts its rule at the head of INPUT, above ours.
  for n in node-a node-b; do cni_head $n; done
  pod_add node-a pod1 11
  pod_add node-b pod2 12
  wait_for "pod1 and pod2 up in the Northbound" 180 lsp_up pod1 pod2
  tunnel_case geneve

  # The same with vxlan: both nodes stopped (SIGTERM) and started with TUNNEL_TYPE=vxlan.
  node_stop node-a
  node_stop node-b
  t0=$(now_ms)
  node_start node-a 1 vxlan
  node_start node-b 2 vxlan
  node_wait_ready node-a 1 180
  node_wait_ready node-b 2 180
  res "vxlan_nodes_ready_ms=$(($(now_ms) - t0))"
  wait_for "both chassis' encaps vxlan in the Southbound" 120 \
    test "$(sbctl --bare --columns=type list encap | sort -u | tr -d '\n ')" = vxlan
  for n in node-a node-b; do
    ipt $n -S INPUT | grep -q 'ovs-ovn-supervisor: geneve' && fail "vxlan: $n still has our geneve rule"
  done
  res "vxlan_geneve_rule_removed=yes"
  # Our vxlan rule was absent, so it went to the head; the other CNI takes the head back.
  for n in node-a node-b; do cni_head $n; done
  tunnel_case vxlan
}
