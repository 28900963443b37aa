#!/usr/bin/env bash
# Runs inside the VM booted by scripts/vm-test.sh: inside.sh MODE OUT BIN
#   MODE  smoke | tunnel | bench
#   OUT   the --rwdir directory shared with the host: `result` (key=value lines, ending with
#         status=pass|fail) and, on failure, logs/logs.tgz
#   BIN   the ovs-ovn-supervisor built on the host
set -uo pipefail
MODE=$1 OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/vm/lib.sh
. "$HERE/lib.sh"
: >"$RESULT"
mkdir -p "$W"
chmod 755 "$W"
# The host's file system is 9p: a copy on tmpfs starts faster and cannot change under us.
cp "$3" "$W/ovs-ovn-supervisor"
BIN=$W/ovs-ovn-supervisor
res "kernel=$(uname -r)"
res "ovs=$(ovs-vswitchd --version | awk 'NR==1 {print $NF}') ovn=$(ovn-controller --version | awk 'NR==1 {print $NF}')"

smoke() {
  local t0
  t0=$(now_ms)
  grep -q '^openvswitch ' /proc/modules && fail "openvswitch already loaded before the supervisor ran"
  central_start
  res "central_ms=$(($(now_ms) - t0))"
  node_net node1 1
  node_start node1 1 geneve
  node_wait_ready node1 1 120
  res "node_ready_ms=$(($(now_ms) - t0))"
  node_encap node1 192.168.101.2
  res "supervisor_$(grep -o 'ready_ms=[0-9]*' "$W/node1/supervisor.log" | head -1)"
  grep -q '^openvswitch ' /proc/modules || fail "openvswitch not loaded by the supervisor"
  res "modprobe_by_supervisor=$(grep -oE '^(openvswitch|geneve|ip_tables) ' /proc/modules | sort | tr -d ' ' | paste -sd,)"
  local dp
  dp=$(vsctl node1 get bridge br-int datapath_type)
  [ "$dp" = system ] || fail "br-int datapath_type is $dp"
  ip netns exec node1 ovs-dpctl show | grep -q 'system@ovs-system' || fail "no system@ovs-system datapath"
  res "datapath=$(ip netns exec node1 ovs-dpctl show | head -1 | tr -d ':')"
  pod_add node1 pod1 11
  pod_add node1 pod2 12
  wait_for "pod1 and pod2 up in the Northbound" 120 lsp_up pod1 pod2
  wait_for "first ping pod1 -> pod2" 120 ping1 pod1 $SUBNET.12
  ip netns exec node1 ovs-dpctl show | grep -q 'port [0-9]*: pod1 (internal)' || fail "pod1 is not a port of the kernel datapath"
  # The supervisor counts the kernel's flows with `ovs-dpctl show` to decide whether to keep
  # them through a vswitchd start (flow-restore-wait). Kube-OVN's pod runs as uid 65534:
  # opening the datapath needs CAP_NET_ADMIN, which our image (like Kube-OVN's) gives
  # ovs-dpctl as a file capability; here an ambient capability stands in for it.
  local as65534=(setpriv --reuid 65534 --regid 65534 --clear-groups)
  local unpriv
  unpriv=$(ip netns exec node1 "${as65534[@]}" --inh-caps=+net_admin --ambient-caps=+net_admin \
    ovs-dpctl show system@ovs-system 2>&1) || fail "ovs-dpctl show as uid 65534 with CAP_NET_ADMIN: $unpriv"
  grep -q 'flows: [1-9]' <<<"$unpriv" || fail "ovs-dpctl show as uid 65534 counts no flows: $unpriv"
  res "dpctl_as_65534_net_admin=$(grep -o 'flows: [0-9]*' <<<"$unpriv" | tr -d ' ')"
  if ip netns exec node1 "${as65534[@]}" --inh-caps=-all ovs-dpctl show system@ovs-system >/dev/null 2>&1; then
    res "dpctl_as_65534_no_caps=allowed"
  else
    res "dpctl_as_65534_no_caps=refused"
  fi
  local st
  st=$(ping_stats pod1 $SUBNET.12 20 0.05)
  res "ping_sent=${st% *} ping_received=${st#* }"
  [ "${st#* }" -ge 19 ] || fail "pod-to-pod ping: $st"
  no_loss_through_a_vswitchd_crash
  flow_restore_wait_metric
  uninstall_for_good
  res "inside_ms=$(($(now_ms) - t0))"
}

# `uninstall` (Kube-OVN's cleanup.sh runs it as /kube-ovn/uninstall.sh) on the kernel datapath,
# which no test outside a VM can have: a second chassis in the Southbound makes ovn-controller
# add a geneve tunnel port, for which vswitchd creates the genev_sys_6081 device. After it the
# device and the ovs-system datapath are gone, no daemon runs, the supervisor idles, and it
# exits 0 on SIGTERM.
uninstall_for_good() {
  local pid out rc
  pid=$(cat "$W/node1/supervisor.pid")
  sbctl chassis-add fake-node geneve 192.168.101.9
  wait_for "genev_sys_6081 in node1" 60 ip -n node1 link show genev_sys_6081
  # shellcheck disable=SC2046
  out=$(ip netns exec node1 env -i $(node_env node1 1 geneve) "$BIN" uninstall 2>&1)
  rc=$?
  [ "$rc" = 0 ] || fail "uninstall exited $rc: $(tr '\n' ' ' <<<"$out")"
  ip -n node1 link show genev_sys_6081 >/dev/null 2>&1 && fail "genev_sys_6081 is still there after uninstall"
  ip -n node1 link show ovs-system >/dev/null 2>&1 && fail "ovs-system is still there after uninstall"
  [ -z "$(ip netns exec node1 ovs-dpctl dump-dps 2>/dev/null)" ] || fail "a kernel datapath is left: $(ip netns exec node1 ovs-dpctl dump-dps)"
  kill -0 "$pid" 2>/dev/null || fail "the supervisor exited after uninstall"
  pgrep -f "$W/node1/run/" >/dev/null && fail "a daemon runs after uninstall: $(pgrep -af "$W/node1/run/")"
  res "uninstall=ok"
  kill -TERM "$pid"
  wait "$pid"
  rc=$?
  [ "$rc" = 0 ] || fail "the uninstalled supervisor exited $rc on SIGTERM"
}

# kill -9 ovs-vswitchd under 10 ms pings: the kernel keeps forwarding, the new vswitchd starts
# with flow-restore-wait and the flag is cleared only once br-int's table is complete, so not
# one packet is lost (without it: 250-430 here). Permanent neighbour entries, as in the bench,
# so an ARP re-resolution cannot fall into the event.
no_loss_through_a_vswitchd_crash() {
  # shellcheck source=scripts/vm/bench.sh
  . "$HERE/bench.sh"
  pods_static_neighbours
  RUN_I=1
  measure ours kill9_vswitchd ev_ours_kill9_vswitchd
  local lost
  lost=$(grep -o 'event=kill9_vswitchd run=1 lost=[0-9]*' "$RESULT" | grep -o '[0-9]*$')
  [ "${lost:-x}" = 0 ] || fail "kill -9 ovs-vswitchd lost ${lost:-?} pod-to-pod packets"
}

# The flow_restore_wait metric through a vswitchd crash on the kernel datapath (the sandbox's
# userspace datapath keeps no flows, so only a takeover shows it there): 1 while the new
# vswitchd keeps the kernel's flows, 0 once br-int's table is complete. Sampled from /metrics
# (port 10668 in the node's namespace) after the loss measurement, so the sampling never
# competes with the pings; the flag cleared is vswitchd back in service, so no wait follows.
frw_metric() {
  ip netns exec node1 curl -s --max-time 2 http://127.0.0.1:10668/metrics |
    awk '$1 == "ovs_ovn_supervisor_flow_restore_wait" {print $2}'
}
frw_set_then_clear() { # SAMPLES
  local v
  v=$(frw_metric)
  echo "${v:-none}" >>"$1"
  grep -qx 1 "$1" && [ "$v" = 0 ]
}
flow_restore_wait_metric() {
  local samples=$W/node1/frw.samples v
  v=$(frw_metric)
  [ "$v" = 0 ] || fail "flow_restore_wait before the crash: ${v:-not served}"
  : >"$samples"
  kill -9 "$(cat "$W/node1/run/openvswitch/ovs-vswitchd.pid")"
  try_for 120 frw_set_then_clear "$samples" ||
    fail "flow_restore_wait not 1 then 0 through a vswitchd crash: $(uniq "$samples" | paste -sd,)"
  res "flow_restore_wait_metric=$(uniq "$samples" | paste -sd,)"
}

case "$MODE" in
  smoke) smoke ;;
  tunnel) . "$HERE/tunnel.sh"; tunnel ;;
  bench) . "$HERE/bench.sh"; bench ;;
  *) fail "unknown mode $MODE" ;;
esac
collect_logs
res "status=pass"
