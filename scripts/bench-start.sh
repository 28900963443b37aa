#!/usr/bin/env bash
# Start-to-ready of a sandbox node, ours vs Debian's ovs-ctl + ovn-ctl doing the same work (local
# SB ovsdb-server, conf.db, ovsdb-server, vswitchd with the
# userspace datapath, netdev br-int, Kube-OVN's settings, ovn-controller), alternated run by
# run. Ready = ovn-controller says `connected` to the SB and its log shows `br-int.mgmt:
# connected`; both sides are polled the same way (every 10 ms). Each run has its own temp dir
# and network namespace. Prints one raw line per run: SIDE DELAY_S MS FAILED_LINES, where
# FAILED_LINES counts `br-int.mgmt: connection failed` in that run's ovn-controller log.
#
#   bench-start.sh cold N            ours vs baseline, N runs each
#   bench-start.sh slow N D1 D2 ...  vswitchd delayed by D seconds, N runs each per delay:
#     ours        DEBUG_WRAPPER=wrapper that sleeps D only for ovs-vswitchd, then execs it
#     baseline      ovs-vswitchd shim on PATH that sleeps D then execs the real one: ovs-ctl
#                 waits for it (vswitchd is slow to start; --detach returns after the sleep)
#     baseline-bg   the shim returns at once and starts the real one after D in the background:
#                 vswitchd is slow after ovs-ctl has returned (a slow bridge), and
#                 ovn-controller starts while br-int.mgmt is not there yet
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:?cold|slow}; N=${2:-5}; shift 2 || true
cargo build --release -q
BIN=$PWD/target/release/ovs-ovn-supervisor
VSWITCHD=$(command -v ovs-vswitchd || echo /usr/sbin/ovs-vswitchd)
WORK=$(mktemp -d /tmp/bench-start.XXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/shim"
printf '#!/bin/sh\nexit 0\n' >"$WORK/shim/modprobe"; chmod +x "$WORK/shim/modprobe"
now_ms() { date +%s%3N; }

wait_ready() { # $1 = ovn rundir, $2 = ovn-controller log, $3 = t0
  local t0=$3
  while :; do
    for ctl in "$1"/ovn-controller.*.ctl; do
      if [ -S "$ctl" ] && [ "$(ovn-appctl -t "$ctl" connection-status 2>/dev/null)" = connected ] \
         && grep -q 'br-int.mgmt: connected' "$2" 2>/dev/null; then return 0; fi
    done
    (( $(now_ms) - t0 > 90000 )) && { echo "not ready after 90 s" >&2; return 1; }
    sleep 0.01
  done
}

# A DEBUG_WRAPPER for ours that delays only ovs-vswitchd.
wrapper() { # $1 = delay
  local w="$WORK/wrap-$1"
  [ -x "$w" ] || { printf '#!/bin/sh\ncase "$1" in */ovs-vswitchd|ovs-vswitchd) sleep %s;; esac\nexec "$@"\n' "$1" >"$w"; chmod +x "$w"; }
  echo "$w"
}

# A PATH dir for the baseline: modprobe shim plus, with a delay, an ovs-vswitchd shim.
shimdir() { # $1 = delay, $2 = wait|bg
  local s="$WORK/shim-$1-$2"
  if [ ! -d "$s" ]; then
    mkdir -p "$s"; cp "$WORK/shim/modprobe" "$s/"
    # Only the daemon is delayed: ovs-ctl also runs `ovs-vswitchd --version`.
    if [ "$2" = wait ]; then
      printf '#!/bin/sh\ncase " $* " in *" --detach "*) sleep %s;; esac\nexec %s "$@"\n' "$1" "$VSWITCHD" >"$s/ovs-vswitchd"
    else
      printf '#!/bin/sh\ncase " $* " in *" --detach "*) (sleep %s; exec %s "$@") </dev/null >/dev/null 2>&1 & exit 0;; esac\nexec %s "$@"\n' "$1" "$VSWITCHD" "$VSWITCHD" >"$s/ovs-vswitchd"
    fi
    chmod +x "$s/ovs-vswitchd"
  fi
  echo "$s"
}

ours() { # $1 = delay (0: none)
  local d; d=$(mktemp -d /tmp/bench-ours.XXXX)
  local w=""; [ "$1" = 0 ] || w=$(wrapper "$1")
  local t0; t0=$(now_ms)
  DEBUG_WRAPPER="$w" "$BIN" run --sandbox "$d" 2>"$d/supervisor.log" & local pid=$!
  wait_ready "$d/run/ovn" "$d/log/ovn/ovn-controller.log" "$t0"
  local t1; t1=$(now_ms)
  local fails; fails=$(grep -c 'br-int.mgmt: connection failed' "$d/log/ovn/ovn-controller.log" || true)
  kill -TERM $pid; wait $pid
  rm -rf "$d"; echo "$((t1 - t0)) $fails"
}

baseline_inner() { # runs inside `unshare -n`; $1 dir, $2 t0, $3 PATH prefix
  local d=$1 t0=$2
  export OVS_RUNDIR=$d/run OVS_DBDIR=$d/db OVS_LOGDIR=$d/log OVS_SYSCONFDIR=$d/etc OVS_PKGDATADIR=/usr/share/openvswitch
  export OVN_RUNDIR=$d/ovnrun OVN_LOGDIR=$d/log OVN_DBDIR=$d/ovndb OVN_SYSCONFDIR=$d/etc
  mkdir -p "$OVS_RUNDIR" "$OVS_DBDIR" "$OVS_LOGDIR" "$OVS_SYSCONFDIR/openvswitch" "$OVN_RUNDIR" "$OVN_DBDIR"
  PATH=$3:$PATH
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
  $V --timeout=90 --may-exist add-br br-int -- set Bridge br-int datapath_type=netdev fail_mode=secure
  wait_ready "$OVN_RUNDIR" "$d/log/ovn-controller.log" "$t0"
  local t1; t1=$(now_ms)
  local fails; fails=$(grep -c 'br-int.mgmt: connection failed' "$d/log/ovn-controller.log" || true)
  /usr/share/ovn/scripts/ovn-ctl stop_controller >/dev/null 2>&1 || true
  /usr/share/openvswitch/scripts/ovs-ctl stop >/dev/null 2>&1 || true
  ovs-appctl -t "$OVN_RUNDIR/sb.ctl" exit 2>/dev/null || true
  echo "$((t1 - t0)) $fails"
}

baseline() { # $1 = delay (0: none), $2 = wait|bg
  local d; d=$(mktemp -d /tmp/bench-baseline.XXXX)
  local p="$WORK/shim"; [ "$1" = 0 ] || p=$(shimdir "$1" "$2")
  local t0; t0=$(now_ms)
  export -f baseline_inner wait_ready now_ms
  unshare -n bash -c 'baseline_inner "$0" "$1" "$2"' "$d" "$t0" "$p" 2>"$d.err" | tail -1
  # Anything the baseline left running in this dir (a failed stop) is ended by its pidfile.
  local f pid
  for f in "$d"/run/*.pid "$d"/ovnrun/*.pid; do
    pid=$(cat "$f" 2>/dev/null) || continue
    grep -qF "$d" "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$d" "$d.err"
}

case $MODE in
  cold)
    for _ in $(seq "$N"); do
      echo "ours 0 $(ours 0)"
      echo "baseline 0 $(baseline 0 wait)"
    done ;;
  slow)
    for _ in $(seq "$N"); do
      for delay in "$@"; do
        echo "ours $delay $(ours "$delay")"
        echo "baseline $delay $(baseline "$delay" wait)"
        echo "baseline-bg $delay $(baseline "$delay" bg)"
      done
    done ;;
  *) echo "usage: $0 cold N | slow N DELAY..." >&2; exit 2 ;;
esac
