#!/usr/bin/env bash
# Start-to-ready of a sandbox node: ovs-ovn-supervisor vs Debian's ovs-ctl + ovn-ctl doing the
# same work (local SB ovsdb-server, conf.db, ovsdb-server, vswitchd, netdev br-int, settings,
# ovn-controller), alternated, in one run. Ready = ovn-controller reports `connected` to the SB
# and its log shows `br-int.mgmt: connected`; both sides are polled the same way (10 ms).
# Each run is in its own temp dir and private network namespace. Usage: compare-start.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
cargo build --release -q
BIN=$PWD/target/release/ovs-ovn-supervisor
SHIM=$(mktemp -d); printf '#!/bin/sh\nexit 0\n' >"$SHIM/modprobe"; chmod +x "$SHIM/modprobe"
now_ms() { date +%s%3N; }

wait_ready() { # $1 = ovn rundir, $2 = ovn-controller log
  local t0=$3
  while :; do
    for ctl in "$1"/ovn-controller.*.ctl; do
      if [ -S "$ctl" ] && [ "$(ovn-appctl -t "$ctl" connection-status 2>/dev/null)" = connected ] \
         && grep -q 'br-int.mgmt: connected' "$2" 2>/dev/null; then return 0; fi
    done
    (( $(now_ms) - t0 > 60000 )) && { echo "not ready after 60 s" >&2; return 1; }
    sleep 0.01
  done
}

ours() {
  local d; d=$(mktemp -d /tmp/cmp-ours.XXXX)
  local t0; t0=$(now_ms)
  "$BIN" run --sandbox "$d" 2>"$d/supervisor.log" & local pid=$!
  wait_ready "$d/run/ovn" "$d/log/ovn/ovn-controller.log" "$t0"
  local t1; t1=$(now_ms)
  local fails; fails=$(grep -c 'br-int.mgmt: connection failed' "$d/log/ovn/ovn-controller.log" || true)
  kill -TERM $pid; wait $pid
  rm -rf "$d"; echo "$((t1 - t0)) $fails"
}

anchor_inner() { # runs inside `unshare -n`
  local d=$1 t0=$2
  export OVS_RUNDIR=$d/run OVS_DBDIR=$d/db OVS_LOGDIR=$d/log OVS_SYSCONFDIR=$d/etc OVS_PKGDATADIR=/usr/share/openvswitch
  export OVN_RUNDIR=$d/ovnrun OVN_LOGDIR=$d/log OVN_DBDIR=$d/ovndb OVN_SYSCONFDIR=$d/etc
  mkdir -p "$OVS_RUNDIR" "$OVS_DBDIR" "$OVS_LOGDIR" "$OVS_SYSCONFDIR/openvswitch" "$OVN_RUNDIR" "$OVN_DBDIR"
  PATH=$SHIM:$PATH
  ovsdb-tool create "$OVN_DBDIR/sb.db" /usr/share/ovn/ovn-sb.ovsschema
  ovsdb-server "$OVN_DBDIR/sb.db" --remote="punix:$OVN_RUNDIR/sb.sock" --pidfile="$OVN_RUNDIR/sb.pid" \
    --unixctl="$OVN_RUNDIR/sb.ctl" --log-file="$d/log/sb.log" --detach
  ovn-sbctl --db="unix:$OVN_RUNDIR/sb.sock" init
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random --no-mlockall >/dev/null
  # What Kube-OVN's start-ovs.sh sets, one ovs-vsctl call at a time.
  local V="ovs-vsctl --db=unix:$OVS_RUNDIR/db.sock"
  $V --no-wait set open . external_ids:ovn-remote="unix:$OVN_RUNDIR/sb.sock"
  $V --no-wait set open . external_ids:ovn-encap-type=geneve external_ids:ovn-encap-ip=127.0.0.1
  $V --no-wait set open . external_ids:ovn-remote-probe-interval=10000
  $V --no-wait set open . external_ids:ovn-openflow-probe-interval=180
  $V --no-wait set open . external_ids:hostname="$(hostname)"
  /usr/share/ovn/scripts/ovn-ctl --no-monitor start_controller >/dev/null
  $V --may-exist add-br br-int -- set Bridge br-int datapath_type=netdev fail_mode=secure
  wait_ready "$OVN_RUNDIR" "$d/log/ovn-controller.log" "$t0"
  local t1; t1=$(now_ms)
  local fails; fails=$(grep -c 'br-int.mgmt: connection failed' "$d/log/ovn-controller.log" || true)
  /usr/share/ovn/scripts/ovn-ctl stop_controller >/dev/null 2>&1 || true
  /usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null 2>&1 || true
  ovs-appctl -t "$OVN_RUNDIR/sb.ctl" exit 2>/dev/null || true
  echo "$((t1 - t0)) $fails"
}

anchor() {
  local d; d=$(mktemp -d /tmp/cmp-anchor.XXXX)
  local t0; t0=$(now_ms)
  export -f anchor_inner wait_ready now_ms; export SHIM
  unshare -n bash -c 'anchor_inner "$0" "$1"' "$d" "$t0" 2>"$d.err" | tail -1
  rm -rf "$d" "$d.err"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] " (min " a[1] ", max " a[NR] ")"}'; }
o=(); a=(); of=0; af=0
for i in $(seq "$N"); do
  read -r ms f < <(ours); o+=("$ms"); of=$((of + f))
  read -r ms f < <(anchor); a+=("$ms"); af=$((af + f))
done
om=$(printf '%s\n' "${o[@]}" | median); am=$(printf '%s\n' "${a[@]}" | median)
echo "runs: $N each, alternated; machine: $(nproc) cores, $(uname -r)"
echo "ovs-ovn-supervisor start-to-ready ms: median $om; br-int.mgmt connection failed lines: $of"
echo "ovs-ctl + ovn-ctl   start-to-ready ms: median $am; br-int.mgmt connection failed lines: $af"
o1=${om%% *}; a1=${am%% *}
awk -v a="$a1" -v o="$o1" 'BEGIN { printf "ratio (anchor / ours, medians): %.1fx\n", a / o }'
rm -rf "$SHIM"
