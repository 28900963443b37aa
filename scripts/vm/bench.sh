# Sourced by inside.sh: `bench` mode. One node (node1) on the kernel datapath with two pods;
# `ping -i 0.01` from pod1 to pod2 during each event (see `measure` for the figures). ready_ms = from
# the event's first action to the node ready again: ours by `probe readiness` (after the
# replaced daemon wrote its new pidfile, or the new instance logged `node ready`); the baselines
# when ovsdb-server and vswitchd answer and ovn-controller reports `connected`.
# Every event: 1 s of pings before it, the event, replies flowing again (deadline 120 s), 3 s.
# BENCH_RUNS (default 1) runs per event; BENCH_EVENTS (default: every ours_ and baseline_
# event below) a space-separated list, which may also name the fix_ and naive_ events (the knobs
# set by hand around our supervisor, from before it set them itself), both_kill9_vswitchd and
# check_frw_running.
# BENCH_SCALE=1: br-int loaded with ~100,000 OpenFlow rules through the NB first (scale_load).
# BENCH_WBC_MS: our supervisor's ovn-ofctrl-wait-before-clear.
# BENCH_CONNECTS (default 1): also a new TCP connection every 10 ms from pod1 to a listener in
# pod2 through each event (tcpprobe.py: failed = not established within 1 s, or refused); the
# result line gains its `connects= failed= slow= max_ms=`. 0: pings only.

N=node1
D=$W/node1
# BENCH_WBC_MS: our supervisor's ovn-ofctrl-wait-before-clear (its default: 2000 ms).
if [ -n "${BENCH_WBC_MS:-}" ]; then NODE_EXTRA_ENV="${NODE_EXTRA_ENV:-} OVS_OVN_SUPERVISOR_OFCTRL_WAIT_BEFORE_CLEAR_MS=$BENCH_WBC_MS"; fi
ORUN=$D/run/openvswitch
NRUN=$D/run/ovn

pidof_file() { cat "$1" 2>/dev/null; }
# new_pid PIDFILE OLD: the pidfile names a live process other than OLD.
new_pid() {
  local p
  p=$(pidof_file "$1")
  [ -n "$p" ] && [ "$p" != "$2" ] && kill -0 "$p" 2>/dev/null
}

# ---- ours ---------------------------------------------------------------------------------
ours_kill9() { # PIDFILE
  local old
  old=$(pidof_file "$1")
  kill -9 "$old"
  wait_for "a new process for $1" 120 new_pid "$1" "$old"
  node_wait_ready $N 1 120
}
# instance_ready PID: the instance PID answers at the control socket and is ready (a new
# instance that starts not ready, its ovn-controller still loading the Southbound, logs no
# `node ready` line: its readiness comes later).
instance_ready() {
  [ "$(sup $N 1 status --output json 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin).get("pid"))' 2>/dev/null)" = "$1" ] &&
    ready $N 1
}
ev_ours_takeover() {
  local old
  old=$(cat "$D/supervisor.pid")
  node_start $N 1 geneve
  wait_for "the new instance ready (takeover)" 180 instance_ready "$(cat "$D/supervisor.pid")"
  echo "$old" >"$W/handed-over.pid"
}
# ours_takeover runs the new instance's default (auto: keep-or-restore on the kernel datapath,
# the saved table restored only if ovn-controller puts none); these set
# OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS: keep (nothing saved, the kernel datapath's flows kept until
# ovn-controller's table is in) and restore (the saved table restored before ovn-controller
# starts, the default before keep-or-restore).
takeover_with_flows() {
  local extra=${NODE_EXTRA_ENV:-}
  NODE_EXTRA_ENV="$extra OVS_OVN_SUPERVISOR_TAKEOVER_FLOWS=$1"
  ev_ours_takeover
  NODE_EXTRA_ENV=$extra
}
ev_ours_takeover_keep() { takeover_with_flows keep; }
ev_ours_takeover_restore() { takeover_with_flows restore; }
ev_ours_kill9_ovsdb() { ours_kill9 "$ORUN/ovsdb-server.pid"; }
ev_ours_kill9_controller() { ours_kill9 "$NRUN/ovn-controller.pid"; }
ev_ours_kill9_vswitchd() { ours_kill9 "$ORUN/ovs-vswitchd.pid"; }
ev_ours_stop_start() {
  node_stop $N
  node_start $N 1 geneve
  node_wait_ready $N 1 180
}

# ---- what the fix would do, by hand around our supervisor (knob checks) --------------------
# flow_count: OpenFlow rules in br-int.
flow_count() { OVS_RUNDIR=$ORUN ovs-ofctl dump-aggregate br-int 2>/dev/null | grep -o 'flow_count=[0-9]*' | cut -d= -f2; }
# table_settled BASE: br-int holds at least BASE rules and the count did not change in 0.5 s.
table_settled() {
  local a b
  a=$(flow_count)
  sleep 0.5
  b=$(flow_count)
  [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" -ge "$1" ]
}
frw() { vsctl $N set open_vswitch . other_config:flow-restore-wait="$1"; }
ev_fix_kill9_vswitchd() {
  local base=$FLOWS
  frw true
  ours_kill9 "$ORUN/ovs-vswitchd.pid"
  wait_for "br-int's table settled" 120 table_settled "$base"
  frw false
}
ev_fix_stop_start() {
  local base=$FLOWS
  frw true
  node_stop $N
  node_start $N 1 geneve
  node_wait_ready $N 1 180
  wait_for "br-int's table settled" 120 table_settled "$base"
  frw false
}
# The takeover's own criterion (takeover::settled: the same count in 3 reads 50 ms apart, any
# count) instead of "at least as many rules as before": is it enough after a cold start?
# The counts seen are kept in $OUT/flowcounts.EVENT.txt.
settled_naive() {
  local a b c
  a=$(flow_count); sleep 0.05; b=$(flow_count); sleep 0.05; c=$(flow_count)
  echo "$(now_ms) $a $b $c" >>"$OUT/flowcounts.$NAIVE.txt"
  [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ]
}
ev_naive_kill9_vswitchd() {
  NAIVE=kill9_vswitchd
  frw true
  ours_kill9 "$ORUN/ovs-vswitchd.pid"
  wait_for "br-int's table settled (naive)" 120 settled_naive
  frw false
}
ev_naive_stop_start() {
  NAIVE=stop_start
  frw true
  node_stop $N
  node_start $N 1 geneve
  node_wait_ready $N 1 180
  wait_for "br-int's table settled (naive)" 120 settled_naive
  frw false
}
# Both knobs at once around a vswitchd crash: does ovn-ofctrl-wait-before-clear also delay
# ovn-controller's reinstall after it reconnects to a new vswitchd (and so the clear)?
ev_both_kill9_vswitchd() {
  local base=$FLOWS
  vsctl $N set open_vswitch . external_ids:ovn-ofctrl-wait-before-clear=3000
  frw true
  ours_kill9 "$ORUN/ovs-vswitchd.pid"
  wait_for "br-int's table settled" 120 table_settled "$base"
  frw false
  vsctl $N remove open_vswitch . external_ids ovn-ofctrl-wait-before-clear
}
# check_*: not measured with ping. flow-restore-wait=true set on a running vswitchd: does a
# flow that is not in the kernel yet (pod1 resolving pod2's address again) still pass?
ev_check_frw_running() {
  frw true
  ip -n pod1 neigh del $SUBNET.12 dev pod1
  if try_for 15 ping1 pod1 $SUBNET.12; then res "check frw_on_running_vswitchd new_flow=passes"; else res "check frw_on_running_vswitchd new_flow=blocked"; fi
  frw false
  if try_for 30 ping1 pod1 $SUBNET.12; then res "check frw_cleared new_flow=passes"; else res "check frw_cleared new_flow=blocked"; fi
  pods_static_neighbours
}
ev_fix_kill9_controller() {
  local base=$FLOWS
  vsctl $N set open_vswitch . external_ids:ovn-ofctrl-wait-before-clear=3000
  ours_kill9 "$NRUN/ovn-controller.pid"
  sleep 3.5 # the new ovn-controller replaces br-int's flows only after waiting 3 s
  wait_for "br-int's table settled" 120 table_settled "$base"
}

# ---- baselines: Debian's ovs-ctl / ovn-ctl on the same directories ---------------------------
OVS_CTL=/usr/share/openvswitch/scripts/ovs-ctl
OVN_CTL=/usr/share/ovn/scripts/ovn-ctl
actl() { # ovs-ctl or ovn-ctl in the node's namespace, with the node's directories
  # shellcheck disable=SC2046
  ip netns exec $N env -i $(node_env $N 1 geneve) "$@" >>"$D/ctl.log" 2>&1
}
baseline_ready() {
  # shellcheck disable=SC2046
  env -i $(node_env $N 1 geneve) bash -c 'ovs-vsctl --timeout=2 show >/dev/null &&
    ovs-appctl --timeout=2 -t ovs-vswitchd version >/dev/null &&
    [ "$(ovn-appctl --timeout=2 -t ovn-controller connection-status)" = connected ]'
}
baseline_start() {
  actl $OVS_CTL start --system-id=random || fail "ovs-ctl start: $(tail -5 "$D/ctl.log")"
  actl $OVN_CTL start_controller || fail "ovn-ctl start_controller: $(tail -5 "$D/ctl.log")"
  wait_for "baseline node ready" 180 baseline_ready
}
# A flow of the bench's own in br-int (table 253, never one of OVN's tables): `ovs-ctl restart`
# saves and restores it with the rest, and ovn-controller's first table after it reconnects
# deletes every flow. Still there after the restart: the restore landed after ovn-controller's
# own table, on top of it (flows of the saved table left in br-int that ovn-controller does not
# know of). Runs I and J (docs/benchmarks.md §7.1): every time.
TABLE_MARK="table=253,priority=1,cookie=0x62656e63686d6b"
table_mark_add() { OVS_RUNDIR=$ORUN ovs-ofctl -O OpenFlow15 add-flow br-int "$TABLE_MARK,actions=drop"; }
table_mark_gone() {
  local out
  out=$(OVS_RUNDIR=$ORUN ovs-ofctl -O OpenFlow15 dump-flows br-int "table=253,cookie=0x62656e63686d6b/-1" 2>/dev/null) || return 1
  ! grep -q cookie= <<<"$out"
}
ev_baseline_ovs_ctl_restart() {
  table_mark_add || fail "cannot add the bench's mark flow to br-int"
  actl $OVS_CTL restart --system-id=random || fail "ovs-ctl restart: $(tail -5 "$D/ctl.log")"
  wait_for "baseline node ready" 180 baseline_ready
  READY_AT=$(now_ms)
  if try_for 10 table_mark_gone; then EXTRA=" saved_mark_left=0"; else EXTRA=" saved_mark_left=1"; fi
}
ev_baseline_stop_start() {
  actl $OVN_CTL --restart stop_controller
  actl $OVS_CTL stop
  baseline_start
}
ev_baseline_kill9_vswitchd_start() {
  local old
  old=$(pidof_file "$ORUN/ovs-vswitchd.pid")
  kill -9 "$old"
  try_for 30 bash -c "! kill -0 $old"
  actl $OVS_CTL start --system-id=random || fail "ovs-ctl start: $(tail -5 "$D/ctl.log")"
  wait_for "baseline node ready" 180 baseline_ready
}

# ---- BENCH_SCALE=1: br-int loaded through the NB before the events ----------------------------
# BENCH_SCALE_PORTS (1000) logical switch ports on ls1 that no chassis binds (their L2/ARP/port
# security flows still land on node1, which has ls1 as a local datapath), one port group holding
# them and pod1/pod2, and ACLs on that port group added in batches of BENCH_SCALE_BATCH (50),
# each `inport == @pg_scale && ip4.dst == <its own address> && tcp.dst == {V values}`
# (BENCH_SCALE_VALUES, 100) -> about V OpenFlow rules per ACL, until br-int holds
# BENCH_SCALE_FLOWS (100000) rules or BENCH_SCALE_LOAD_S (600) seconds have passed. Every batch
# is one ovn-nbctl transaction with --wait=hv (node1's ovn-controller has installed it). The
# ACLs `allow` TCP only, and none is stateful: pod1 -> pod2 ICMP takes the same path as without.
scale_batch_acls() { # FIRST COUNT: the ovn-nbctl arguments for ACLs FIRST..FIRST+COUNT-1
  local a v vals
  for ((a = $1; a < $1 + $2; a++)); do
    vals=$(seq -s, 1000 $((1000 + ${BENCH_SCALE_VALUES:-100} - 1)))
    printf '%s\0' -- --type=port-group acl-add pg_scale from-lport 1001 \
      "inport == @pg_scale && ip4.dst == 10.18.$((a / 250)).$((a % 250 + 1)) && tcp.dst == {$vals}" allow
  done
}
scale_load() {
  local t0 t1 ports=${BENCH_SCALE_PORTS:-1000} target=${BENCH_SCALE_FLOWS:-100000}
  local batch=${BENCH_SCALE_BATCH:-50} secs=${BENCH_SCALE_LOAD_S:-600} i args=() pnames=() acls=0 f
  t0=$(now_ms)
  for ((i = 1; i <= ports; i++)); do
    args+=(-- lsp-add $LS "sp$i" -- lsp-set-addresses "sp$i" \
      "$(printf '0a:58:0a:11:%02x:%02x' $((i / 256)) $((i % 256))) 10.17.$((i / 250)).$((i % 250 + 1))")
    pnames+=("sp$i")
  done
  nbctl --timeout=600 --wait=hv "${args[@]:1}" -- pg-add pg_scale pod1 pod2 "${pnames[@]}" ||
    fail "scale: adding $ports logical switch ports"
  t1=$(now_ms)
  res "scale_ports=$ports ports_load_ms=$((t1 - t0)) br_int_flows=$(flow_count)"
  while :; do
    mapfile -d '' args < <(scale_batch_acls "$acls" "$batch")
    nbctl --timeout=600 --wait=hv "${args[@]:1}" || fail "scale: ACLs $acls..$((acls + batch))"
    acls=$((acls + batch))
    f=$(flow_count)
    log "scale: $acls ACLs, br-int $f rules, $(($(now_ms) - t0)) ms"
    [ "${f:-0}" -ge "$target" ] && break
    (($(now_ms) - t0 > secs * 1000)) && break
  done
  wait_for "br-int's table settled after the load" 300 table_settled 1
  FLOWS=$(flow_count)
  res "scale_acls=$acls acl_values=${BENCH_SCALE_VALUES:-100} acls_load_ms=$(($(now_ms) - t1)) load_ms=$(($(now_ms) - t0)) br_int_flows=$FLOWS"
  # One full recompute of ovn-controller, timed by its own stopwatch: what a new ovn-controller
  # needs before it can replace br-int's rules (ovn-ofctrl-wait-before-clear).
  OVN_RUNDIR=$NRUN ovn-appctl -t ovn-controller stopwatch/reset >/dev/null 2>&1
  t1=$(now_ms)
  OVN_RUNDIR=$NRUN ovn-appctl --timeout=300 -t ovn-controller inc-engine/recompute >/dev/null 2>&1
  res "recompute_wall_ms=$(($(now_ms) - t1))"
  OVN_RUNDIR=$NRUN ovn-appctl -t ovn-controller stopwatch/show >"$OUT/stopwatch.txt" 2>&1
  res "recompute_$(OVN_RUNDIR=$NRUN ovn-appctl -t ovn-controller stopwatch/show flow-generation 2>/dev/null |
    awk '/Maximum/ {gsub(/[^0-9.]/, "", $2); print "flow_generation_max_ms=" $2; exit}')"
  wait_for "br-int's table settled after the recompute" 300 table_settled "$((FLOWS * 9 / 10))"
  wait_for "ping after the load" 120 ping1 pod1 $SUBNET.12
}

# replies_flowing FILE: ping's output grew by more than 5 replies in 0.5 s.
replies_flowing() {
  local a b
  a=$(grep -c 'bytes from' "$1")
  sleep 0.5
  b=$(grep -c 'bytes from' "$1")
  [ "$b" -gt $((a + 5)) ]
}

# measure IMPL EVENT FN: ping during FN; one result line: lost, gap_ms, back_ms (lib.sh's
# ping_summary, from the event's first action) and
#   ready_ms  from the event's first action to the node ready again (see the top)
#   flowing_ms from the event's first action to replies flowing again after ready
measure() {
  local impl=$1 ev=$2 fn=$3 f=$W/ping.$1.$2.$RUN_I.txt pp t0 ready flowing st
  local fc=$W/connects.$1.$2.$RUN_I.txt connects=
  ip netns exec pod1 ping -i 0.01 -D $SUBNET.12 >"$f" 2>&1 &
  pp=$!
  if [ "${BENCH_CONNECTS:-1}" = 1 ]; then
    ip netns exec pod1 $CONNECT_PROBE connect $SUBNET.12 $CONNECT_PORT 10 1000 200 "$fc" >"$fc.sum" 2>&1 &
    pp+=" $!"
  fi
  wait_for "pings flowing before $ev" 30 grep -q 'bytes from' "$f"
  sleep 1 # baseline window
  t0=$(now_ms)
  READY_AT="" EXTRA=""
  $fn
  ready=$((${READY_AT:-$(now_ms)} - t0))
  if try_for 120 replies_flowing "$f"; then flowing=$(($(now_ms) - t0)); else flowing=never; fi
  sleep 3 # tail window
  # shellcheck disable=SC2086
  kill -INT $pp
  # shellcheck disable=SC2086
  wait $pp
  cp "$f" "$OUT/" 2>/dev/null
  if [ "${BENCH_CONNECTS:-1}" = 1 ]; then
    cp "$fc" "$OUT/" 2>/dev/null
    connects=" $(cat "$fc.sum")"
  fi
  st=$(ping_summary "$f" "$t0")
  res "bench impl=$impl event=$ev run=$RUN_I $st ready_ms=$ready flowing_ms=$flowing$EXTRA$connects"
}

# The TCP listener in pod2 that `measure`'s connects reach (BENCH_CONNECTS=1).
CONNECT_PROBE="/usr/bin/python3 $HERE/tcpprobe.py"
CONNECT_PORT=7001
connect_listener_start() {
  [ "${BENCH_CONNECTS:-1}" = 1 ] || return 0
  ip netns exec pod2 $CONNECT_PROBE listen $CONNECT_PORT >"$W/connect-listener.log" 2>&1 &
  wait_for "the TCP listener in pod2" 60 ip netns exec pod1 timeout 2 bash -c "echo >/dev/tcp/$SUBNET.12/$CONNECT_PORT"
}

bench() {
  local t0 ev
  t0=$(now_ms)
  central_start
  node_net $N 1
  node_start $N 1 geneve
  node_wait_ready $N 1 180
  node_encap $N 192.168.101.2
  pod_add $N pod1 11
  pod_add $N pod2 12
  # Permanent neighbour entries: a pod's ARP entry for its peer otherwise goes stale every
  # 15-45 s (ICMP replies do not confirm it), and its re-resolution is a new flow that needs
  # vswitchd and ovn-controller: a probe that falls inside an event turned a 3 s outage into
  # 12 s ("Destination Host Unreachable"). With them, every event measures what it does to the
  # established flows. BENCH_ARP=1 keeps ARP dynamic.
  if [ "${BENCH_ARP:-0}" != 1 ]; then
    pods_static_neighbours
  fi
  res "static_neighbours=$([ "${BENCH_ARP:-0}" != 1 ] && echo yes || echo no)"
  wait_for "pod1 and pod2 up" 180 lsp_up pod1 pod2
  wait_for "first ping pod1 -> pod2" 180 ping1 pod1 $SUBNET.12
  connect_listener_start
  FLOWS=$(flow_count)
  [ -n "$FLOWS" ] || fail "could not count br-int's OpenFlow rules"
  res "setup_ms=$(($(now_ms) - t0)) br_int_flows=$FLOWS"
  if [ "${BENCH_SCALE:-0}" = 1 ]; then scale_load; fi
  local events=${BENCH_EVENTS:-ours_takeover ours_kill9_ovsdb ours_kill9_controller ours_stop_start ours_kill9_vswitchd baseline_ovs_ctl_restart baseline_stop_start baseline_kill9_vswitchd_start}
  local baselineed=0
  for ev in $events; do
    if [[ $ev == baseline_* ]] && ((!baselineed)); then
      # From here on Debian's scripts run the node: ours stops (graceful), theirs start.
      node_stop $N
      baseline_start
      wait_for "ping after ovs-ctl/ovn-ctl start" 120 ping1 pod1 $SUBNET.12
      baselineed=1
    fi
    for RUN_I in $(seq "${BENCH_RUNS:-1}"); do
      wait_for "ping before $ev" 120 ping1 pod1 $SUBNET.12
      if [[ $ev == check_* ]]; then "ev_$ev"; continue; fi
      measure "${ev%%_*}" "${ev#*_}" "ev_$ev"
      if [ -s "$W/handed-over.pid" ]; then
        kill -TERM "$(cat "$W/handed-over.pid")" 2>/dev/null
        try_for 60 bash -c "! kill -0 $(cat "$W/handed-over.pid")"
        rm -f "$W/handed-over.pid"
      fi
    done
    [[ $ev == fix_kill9_controller ]] && vsctl $N remove open_vswitch . external_ids ovn-ofctrl-wait-before-clear
  done
  # Our supervisor's log (every instance appends to it), for where the time of an event went.
  cp "$D/supervisor.log" "$OUT/supervisor.log" 2>/dev/null
  res "bench_ms=$(($(now_ms) - t0))"
}
