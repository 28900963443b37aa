# Shared by the scripts that run inside the VM (sourced, never run). Everything here runs as
# root in a virtme-ng guest booted by scripts/vm-test.sh: the host's root filesystem is mounted
# read-only over 9p, so every run dir, database, log and socket lives on the guest's own tmpfs
# ($W, under /run), and results leave through the --rwdir directory $OUT.
#
# A whole OVN cluster: the central side (NB + SB ovsdb-server, ovn-northd: Debian's ovn-central
# binaries run directly) in the guest's root network namespace, SB listening on tcp 6642; each
# node in a network namespace of its own (nodeN), reaching the central side over a veth
# (192.168.10N.2 -> 192.168.10N.1); "pods" are network namespaces holding an OVS internal port
# of that node's br-int, bound to a logical switch port by external_ids:iface-id.
#
# Under TCG everything is ~10x slower than on the host: deadlines are generous, and every wait
# polls a real condition under a deadline.

W=/run/oos
RESULT=$OUT/result
OVN_SCHEMAS=/usr/share/ovn
LS=ls1
SUBNET=10.16.0

res() { echo "$*" >>"$RESULT"; echo "vm: $*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
log() { echo "vm[$(date +%T.%3N)]: $*"; }

collect_logs() {
  mkdir -p "$OUT/logs"
  (cd "$W" && find . -name '*.log' -print0 | tar --null -czf "$OUT/logs/logs.tgz" -T - 2>/dev/null) || true
}

fail() {
  res "error=$*"
  res "status=fail"
  collect_logs
  exit 1
}

# wait_for DESC SECONDS CMD...: polls CMD every 100 ms until it succeeds; fails the run naming
# DESC after SECONDS.
wait_for() {
  local desc=$1 secs=$2
  shift 2
  local t0
  t0=$(now_ms)
  until "$@" >/dev/null 2>&1; do
    (($(now_ms) - t0 > secs * 1000)) && fail "timeout after ${secs}s: $desc"
    sleep 0.1
  done
}

# try_for SECONDS CMD...: like wait_for, but returns 1 instead of failing the run.
try_for() {
  local secs=$1
  shift
  local t0
  t0=$(now_ms)
  until "$@" >/dev/null 2>&1; do
    (($(now_ms) - t0 > secs * 1000)) && return 1
    sleep 0.1
  done
}

nbctl() { ovn-nbctl --db=unix:$W/central/nb.sock --timeout=30 "$@"; }
sbctl() { ovn-sbctl --db=unix:$W/central/sb.sock --timeout=30 "$@"; }

sb_global_exists() { [ -n "$(sbctl --bare --columns=_uuid list SB_Global 2>/dev/null)" ]; }

central_start() {
  local c=$W/central
  mkdir -p "$c"
  ovsdb-tool create "$c/nb.db" $OVN_SCHEMAS/ovn-nb.ovsschema
  ovsdb-tool create "$c/sb.db" $OVN_SCHEMAS/ovn-sb.ovsschema
  ovsdb-server "$c/nb.db" --remote=punix:"$c/nb.sock" --unixctl="$c/nb.ctl" \
    --pidfile="$c/nb.pid" --log-file="$c/nb.log" --detach --no-chdir ||
    fail "NB ovsdb-server did not start"
  # The SB listens through a Connection row, as Kube-OVN's start-db.sh sets it: its
  # inactivity_probe is PROBE_INTERVAL (180000 ms in Kube-OVN's charts). A command-line
  # --remote=ptcp:6642 probes every 5 s and drops an ovn-controller that computes a large table
  # for longer than that, which then computes it all again after reconnecting.
  ovsdb-server "$c/sb.db" --remote=punix:"$c/sb.sock" --remote=db:OVN_Southbound,SB_Global,connections --unixctl="$c/sb.ctl" \
    --pidfile="$c/sb.pid" --log-file="$c/sb.log" --detach --no-chdir ||
    fail "SB ovsdb-server did not start"
  nbctl init || fail "ovn-nbctl init"
  ovn-northd --ovnnb-db=unix:"$c/nb.sock" --ovnsb-db=unix:"$c/sb.sock" --unixctl="$c/northd.ctl" \
    --pidfile="$c/northd.pid" --log-file="$c/northd.log" --detach --no-chdir ||
    fail "ovn-northd did not start"
  wait_for "ovn-northd filling SB_Global" 60 sb_global_exists || fail "ovn-northd wrote no SB_Global"
  sbctl set-connection ptcp:6642 -- set connection . inactivity_probe="${CENTRAL_PROBE_MS:-180000}" ||
    fail "ovn-sbctl set-connection"
  wait_for "the SB listening on 6642" 30 sh -c 'ss -Hltn | grep -q ":6642 "' || fail "the SB does not listen on 6642"
  nbctl ls-add $LS
}

# node_net NAME IDX: the node's network namespace and its veth to the central side.
node_net() {
  local n=$1 i=$2
  ip netns add "$n"
  ip link add "c$i" type veth peer name eth0 netns "$n"
  ip addr add "192.168.10$i.1/24" dev "c$i"
  ip link set "c$i" up
  ip -n "$n" addr add "192.168.10$i.2/24" dev eth0
  ip -n "$n" link set eth0 up
  ip -n "$n" link set lo up
}

# node_env NAME IDX TUNNEL: the environment of the node's supervisor, as Kube-OVN's pod sets it
# (tests/fixtures/kube-ovn-ovs-ovn.env), with its own directories.
node_env() {
  local n=$1 i=$2 t=$3 d=$W/$1
  echo PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    OVS_RUNDIR=$d/run/openvswitch OVS_DBDIR=$d/etc/openvswitch OVS_LOGDIR=$d/log/openvswitch \
    OVS_SYSCONFDIR=$d/etc OVN_RUNDIR=$d/run/ovn OVN_LOGDIR=$d/log/ovn \
    OVS_OVN_SUPERVISOR_RUNDIR_LINK=$d/usr-local-var-run-openvswitch \
    ENABLE_SSL=false HW_OFFLOAD=false TUNNEL_TYPE=$t NODE_NAME=$n POD_NAME=ovs-ovn-$n \
    POD_NAMESPACE=kube-system OVN_DB_IPS=192.168.10$i.1 KUBE_OVN_SB_PORT=6642 \
    OVN_REMOTE_PROBE_INTERVAL=10000 OVN_REMOTE_OPENFLOW_INTERVAL=180 \
    OVS_OVN_SUPERVISOR_FIREWALL_IPV6=false ${NODE_EXTRA_ENV:-}
}

# node_start NAME IDX TUNNEL: `ovs-ovn-supervisor run` inside the node's namespace, kernel
# datapath (the default outside a sandbox). Its pid goes to $W/NAME/supervisor.pid.
node_start() {
  local n=$1 i=$2 t=$3
  mkdir -p "$W/$n"
  # shellcheck disable=SC2046
  ip netns exec "$n" env -i $(node_env "$n" "$i" "$t") "$BIN" run >>"$W/$n/supervisor.log" 2>&1 &
  echo $! >"$W/$n/supervisor.pid"
}

# sup NAME IDX ARGS...: the supervisor's CLI with the node's environment (probes, status).
sup() {
  local n=$1 i=$2
  shift 2
  # shellcheck disable=SC2046
  env -i $(node_env "$n" "$i" "${TUNNEL:-geneve}") "$BIN" "$@"
}

ready() { sup "$1" "$2" probe readiness --timeout-ms 3000 >/dev/null; }

# node_wait_ready NAME IDX SECONDS: until `probe readiness` passes, or the supervisor exits.
node_wait_ready() {
  local n=$1 i=$2 secs=$3 t0 pid
  t0=$(now_ms)
  pid=$(cat "$W/$n/supervisor.pid")
  until ready "$n" "$i" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || fail "$n: supervisor exited: $(tail -5 "$W/$n/supervisor.log" | tr '\n' ' ')"
    (($(now_ms) - t0 > secs * 1000)) && fail "$n: not ready within ${secs}s: $(sup "$n" "$i" probe readiness 2>&1 | tr '\n' ' ')"
    sleep 0.1
  done
}

# node_stop NAME: SIGTERM to the supervisor, and wait (deadline 60 s) for its exit.
node_stop() {
  local pid
  pid=$(cat "$W/$1/supervisor.pid")
  kill -TERM "$pid" 2>/dev/null || return 0
  try_for 60 bash -c "! kill -0 $pid" || fail "$1: supervisor did not stop within 60s"
}

vsctl() { ovs-vsctl --db=unix:$W/$1/run/openvswitch/db.sock --timeout=30 "${@:2}"; }

# node_encap NAME IP: what kube-ovn-cni does on a real node (the supervisor owns every other
# key of the chassis): the tunnel endpoint address.
node_encap() { vsctl "$1" set open_vswitch . external_ids:ovn-encap-ip="$2"; }

# pod_add NODE POD IDX: a logical switch port and a pod namespace holding its OVS internal port.
# Permanent neighbour entries between pod1 and pod2: a pod's ARP entry otherwise goes stale
# every 15-45 s and its re-resolution is a new flow, which waits for vswitchd and
# ovn-controller; measured events must measure what they do to established flows.
pods_static_neighbours() {
  ip -n pod1 neigh replace $SUBNET.12 lladdr 0a:58:0a:10:00:0c dev pod1 nud permanent
  ip -n pod2 neigh replace $SUBNET.11 lladdr 0a:58:0a:10:00:0b dev pod2 nud permanent
}

pod_add() {
  local node=$1 pod=$2 k=$3
  local mac ip
  mac=$(printf '0a:58:0a:10:00:%02x' "$k")
  ip=$SUBNET.$k
  nbctl lsp-add $LS "$pod" -- lsp-set-addresses "$pod" "$mac $ip"
  ip netns add "$pod"
  vsctl "$node" add-port br-int "$pod" -- set interface "$pod" type=internal \
    external_ids:iface-id="$pod"
  wait_for "$pod's internal port in $node" 30 ip -n "$node" link show "$pod"
  ip -n "$node" link set "$pod" netns "$pod"
  ip -n "$pod" link set "$pod" address "$mac"
  ip -n "$pod" addr add "$ip/24" dev "$pod"
  ip -n "$pod" link set "$pod" up
  ip -n "$pod" link set lo up
}

# lsp_up PORT...: every port is up (its Port_Binding claimed by a chassis).
lsp_up() {
  local p
  for p in "$@"; do [ "$(nbctl get logical_switch_port "$p" up 2>/dev/null)" = true ] || return 1; done
}
ping1() { ip netns exec "$1" ping -c 1 -W 1 "$2"; }

# ping_stats POD DST COUNT INTERVAL: "sent received" of a short ping.
ping_stats() {
  ip netns exec "$1" ping -q -c "$3" -i "$4" -W 1 "$2" 2>/dev/null |
    awk '/packets transmitted/ {print $1, $4}'
}

# iptables of a node namespace.
ipt() { ip netns exec "$1" iptables -w "${@:2}"; }

# ping_summary FILE T0: the figures of a `ping -D` output FILE around an event that began at T0
# (ms): "lost=N sent=N received=N gap_ms=N back_ms=N".
#   lost    sequence numbers sent and never answered (from 1 to the last one sent, that last
#           one not counted if it was still in flight when ping was stopped)
#   gap_ms  the longest time between two consecutive replies (the outage; ~15 ms normally)
#   back_ms from T0 to the reply that ended that gap (0 if no gap > 250 ms)
ping_summary() {
  awk -v t0="$2" '
    /bytes from/ && /icmp_seq=/ && !/DUP/ {
      match($0, /icmp_seq=[0-9]+/); s = substr($0, RSTART + 9, RLENGTH - 9) + 0
      match($0, /^\[[0-9.]+\]/); ts = substr($0, 2, RLENGTH - 2) * 1000
      if (!(s in seen)) { seen[s] = ts; n++ } }
    /packets transmitted/ { tx = $1 }
    END {
      lost = 0
      for (i = 1; i <= tx; i++) if (!(i in seen)) lost++
      if (tx > 1 && !(tx in seen) && ((tx - 1) in seen)) lost--
      gap = 0; back = 0; prev = -1
      for (i = 1; i <= tx; i++) if (i in seen) {
        if (prev >= 0 && seen[i] - prev > gap) { gap = seen[i] - prev; end = seen[i] }
        prev = seen[i] }
      if (gap > 250) back = end - t0
      printf "lost=%d sent=%d received=%d gap_ms=%d back_ms=%d", lost, tx, n, gap, back }' "$1"
}
