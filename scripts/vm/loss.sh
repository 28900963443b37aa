# Sourced by inside.sh: `loss` mode (and the smoke's zero-loss check). The Kube-OVN topology of
# topo.sh (TOPOLOGY=veth|internal, from BENCH_TOPOLOGY), the events of bench.sh on node1, each
# BENCH_RUNS times (default 5), with one vCPU busy (BENCH_LOAD=1, the default: a shell busy
# loop pinned to vCPU 1 with taskset, beside everything else), and through every event:
#   - ping -i 0.01 pod1 -> pod2 (across geneve to node2), pod1 -> pod3 (same node) and pod1 ->
#     node1's ovn0 (routed by ovn-cluster from ls1 to join);
#   - a new TCP connection every 10 ms from pod1 to a listener in pod2 (tcpprobe.py): FAILED
#     when not established within 1 s (a lost SYN waits for the 1 s initial RTO) or refused,
#     SLOW when established after more than 200 ms;
#   - node1's and node2's links (topo.sh `links`) compared before and after: ovn0's ifindex,
#     flags, MTU, MAC and address, the pods' ports (same ifindex, still on br-int), the tunnel
#     device genev_sys_6081 (same ifindex), the datapath's port numbers.
# Result lines: `loss topo=T event=E run=N pod_lost=.. local_lost=.. ovn0_lost=.. connects=..
# failed=.. slow=.. max_ms=.. pod_gap_ms=.. local_gap_ms=.. ovn0_gap_ms=.. pod_sent=..
# ready_ms=.. links=same|changed`, then
# one `loss_summary` line per event with min/median/max.

# shellcheck source=scripts/vm/topo.sh
. "$HERE/topo.sh"
# shellcheck source=scripts/vm/bench.sh
. "$HERE/bench.sh"
PROBE="/usr/bin/python3 $HERE/tcpprobe.py"
PORT=7000

# load_start: one vCPU busy for the rest of the run (BENCH_LOAD=0: none).
load_start() {
  if [ "${BENCH_LOAD:-1}" = 0 ]; then res "load=none"; return; fi
  [ "$(nproc)" -ge 2 ] || fail "BENCH_LOAD needs 2 vCPUs, the VM has $(nproc)"
  taskset -c 1 bash -c 'while :; do :; done' &
  echo $! >"$W/load.pid"
  res "load=busy loop pinned to vCPU 1 of $(nproc)"
}

listener_start() {
  ip netns exec pod2 $PROBE listen $PORT >"$W/listener.log" 2>&1 &
  wait_for "the listener in pod2" 60 ip netns exec pod1 timeout 2 bash -c "echo >/dev/tcp/$SUBNET.12/$PORT"
}

all_flowing() { local f; for f in "$@"; do replies_flowing "$f" || return 1; done; }

# loss_measure EVENT FN: one result line (see the top); the links' difference, if any, in
# $OUT/links.EVENT.RUN.diff.
loss_measure() {
  local ev=$1 fn=$2 tag=$TOPOLOGY.$1.$RUN_I
  local fp=$W/ping-pod.$tag.txt fl=$W/ping-local.$tag.txt fo=$W/ping-ovn0.$tag.txt fc=$W/connects.$tag.txt
  local pids t0 ready st_p st_l st_o lk=same
  { links node1 pod1 pod3; links node2 pod2; } >"$W/links.before"
  ip netns exec pod1 ping -i 0.01 -D $SUBNET.12 >"$fp" 2>&1 &
  pids=$!
  ip netns exec pod1 ping -i 0.01 -D $SUBNET.13 >"$fl" 2>&1 &
  pids+=" $!"
  ip netns exec pod1 ping -i 0.01 -D $JOIN.2 >"$fo" 2>&1 &
  pids+=" $!"
  ip netns exec pod1 $PROBE connect $SUBNET.12 $PORT 10 1000 200 "$fc" >"$fc.sum" 2>&1 &
  pids+=" $!"
  wait_for "pings flowing before $ev" 30 all_flowing "$fp" "$fl" "$fo"
  sleep 1 # baseline window
  t0=$(now_ms)
  [ "${LOSS_TRACE:-0}" = 1 ] && { trace_datapath "$OUT/trace.$tag.txt" & pids+=" $!"; }
  $fn
  ready=$(($(now_ms) - t0))
  try_for 120 all_flowing "$fp" "$fl" "$fo"
  sleep 3 # tail window
  # shellcheck disable=SC2086
  kill -INT $pids
  # shellcheck disable=SC2086
  wait $pids
  { links node1 pod1 pod3; links node2 pod2; } >"$W/links.after"
  if ! diff "$W/links.before" "$W/links.after" >"$OUT/links.$tag.diff"; then lk=changed; else rm -f "$OUT/links.$tag.diff"; fi
  cp "$fp" "$fl" "$fo" "$fc" "$OUT/" 2>/dev/null
  st_p=$(ping_summary "$fp" "$t0")
  st_l=$(ping_summary "$fl" "$t0")
  st_o=$(ping_summary "$fo" "$t0")
  res "loss topo=$TOPOLOGY event=$ev run=$RUN_I pod_$(field lost "$st_p") local_$(field lost "$st_l")" \
    "ovn0_$(field lost "$st_o") $(cat "$fc.sum") pod_$(field gap_ms "$st_p") local_$(field gap_ms "$st_l")" \
    "ovn0_$(field gap_ms "$st_o") pod_$(field sent "$st_p") ready_ms=$ready links=$lk"
}
# LOSS_TRACE=1: node1's kernel datapath every 0.2 s through the event (its flow count, its
# ports, flow-restore-wait), to see what a lost window is made of. Ends on SIGINT with the pings.
trace_datapath() {
  trap 'exit 0' INT TERM
  while :; do
    {
      echo "t=$(now_ms) frw=$(vsctl node1 --if-exists get open_vswitch . other_config:flow-restore-wait 2>/dev/null)"
      ip netns exec node1 ovs-dpctl show 2>&1 | grep -E 'flows:|port '
      ip netns exec node1 ovs-dpctl dump-flows 2>/dev/null | grep -c . | sed 's/^/dump_flows=/'
    } >>"$1"
    sleep 0.2
  done
}

# kill -9 ovs-vswitchd while pod1 has to resolve pod3's address again (its neighbour entry
# deleted right after the kill, as a real pod's dynamic entry may go stale at any time): a new
# flow that needs the new vswitchd while flow-restore-wait holds it (not in BENCH_EVENTS by
# default; measures what the window costs a flow the kernel does not have yet).
ev_ours_kill9_vswitchd_arp() {
  local old
  old=$(pidof_file "$ORUN/ovs-vswitchd.pid")
  kill -9 "$old"
  ip -n pod1 neigh del $SUBNET.13 dev "$(pod_nic pod1)"
  wait_for "a new vswitchd" 120 new_pid "$ORUN/ovs-vswitchd.pid" "$old"
  node_wait_ready $N 1 120
}

# A takeover while node1 cannot reach the Southbound (a central outage in the middle of a
# rolling update; the successor is told not to match northd's version, which it could not
# read): the new ovn-controller puts no table, so flow-restore-wait is cleared once nothing
# has moved for the stage deadline: on the saved table with keep-or-restore (the kernel
# datapath's default), on an empty one with keep (a flush that cuts the pods off). The
# Southbound comes back once the flag is cleared; the event ends when the node is ready again.
# Not in BENCH_EVENTS by default.
frw_set() { [ "$(vsctl $N --if-exists get open_vswitch . other_config:flow-restore-wait 2>/dev/null)" = '"true"' ]; }
frw_clear() { ! frw_set; }
takeover_sb_lost() {
  local old new extra=${NODE_EXTRA_ENV:-} rule=(OUTPUT -p tcp --dport 6642 -j REJECT --reject-with tcp-reset)
  old=$(cat "$D/supervisor.pid")
  ipt $N -I "${rule[@]}"
  NODE_EXTRA_ENV="$extra OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS=$1 OVS_OVN_SUPERVISOR_MATCH_NORTHD_VERSION=false"
  node_start $N 1 geneve
  NODE_EXTRA_ENV=$extra
  echo "$old" >"$W/handed-over.pid"
  new=$(cat "$D/supervisor.pid")
  wait_for "flow-restore-wait set by the new instance" 180 frw_set
  wait_for "flow-restore-wait cleared without the Southbound" 240 frw_clear
  ipt $N -D "${rule[@]}"
  wait_for "the new instance ready (Southbound back)" 240 instance_ready "$new"
}
ev_ours_takeover_sb_lost() { takeover_sb_lost keep-or-restore; }
ev_ours_takeover_sb_lost_keep() { takeover_sb_lost keep; }

# field KEY "k=v ...": "KEY=value".
field() { grep -o "\b$1=[^ ]*" <<<"$2"; }

# handed_over_exit: after a takeover, the old instance (which handed over) is told to go.
handed_over_exit() {
  [ -s "$W/handed-over.pid" ] || return 0
  kill -TERM "$(cat "$W/handed-over.pid")" 2>/dev/null
  try_for 60 bash -c "! kill -0 $(cat "$W/handed-over.pid")"
  rm -f "$W/handed-over.pid"
}

# loss_summary: per event, min/median/max over its runs of each count.
loss_summary() {
  awk '$1 == "loss" {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      e = f["event"]; if (!(e in n)) order[++ne] = e; k = ++n[e]
      pl[e, k] = f["pod_lost"]; ll[e, k] = f["local_lost"]; ol[e, k] = f["ovn0_lost"]; fl[e, k] = f["failed"]; sl[e, k] = f["slow"]
      if (f["links"] != "same") lc[e]++; topo = f["topo"] }
    function mmm(a, e, m,   i, j, t, v) {
      for (i = 1; i <= m; i++) v[i] = a[e, i] + 0
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      return v[1] "/" v[int((m + 1) / 2)] "/" v[m] }
    END { for (x = 1; x <= ne; x++) { e = order[x]; m = n[e]
      printf "loss_summary topo=%s event=%s runs=%d pod_lost=%s local_lost=%s ovn0_lost=%s failed=%s slow=%s links_changed=%d\n",
        topo, e, m, mmm(pl, e, m), mmm(ll, e, m), mmm(ol, e, m), mmm(fl, e, m), mmm(sl, e, m), lc[e] + 0 } }' "$RESULT" |
    while read -r l; do res "$l"; done
}

loss() {
  local t0 ev
  t0=$(now_ms)
  topo_up
  listener_start
  FLOWS=$(flow_count)
  res "setup_ms=$(($(now_ms) - t0)) br_int_flows=$FLOWS"
  load_start
  local events=${BENCH_EVENTS:-ours_takeover ours_kill9_controller ours_kill9_ovsdb ours_kill9_vswitchd ours_stop_start}
  for ev in $events; do
    for RUN_I in $(seq "${BENCH_RUNS:-5}"); do
      wait_for "ping before $ev" 120 ping1 pod1 $SUBNET.12
      loss_measure "${ev#ours_}" "ev_$ev"
      handed_over_exit
      pod_peer pod1 11 13
    done
  done
  loss_summary
  [ -s "$W/load.pid" ] && kill "$(cat "$W/load.pid")"
  cp "$D/supervisor.log" "$OUT/supervisor.log" 2>/dev/null
  res "loss_ms=$(($(now_ms) - t0))"
}
