#!/bin/bash
# The half of the daemons' open-file rule this machine cannot show (its hard limit is 20000
# and tests lack CAP_SYS_RESOURCE): in a virtme-ng VM, root raises the hard limit, and a
# sandbox node started under `prlimit` shows its limits in /proc/PID/limits.
#   vng --run /boot/vmlinuz-6.1.0-*-amd64 --user root --disable-kvm --memory 2G --rwdir OUT \
#       -- "bash scripts/vm/limits-check.sh OUT path/to/ovs-ovn-supervisor"
# (a stripped binary copies in far faster over 9p). Results: OUT/limits.txt.
# Seen (2026-12-03, kernel 6.1.0-57, TCG): hard 1048576 → every daemon soft 65535; soft=hard
# 200000 → kept at 200000; core 7 MiB → 7340032; 0 → 0.
OUT=$1
cp "$2" /run/oos-sup
one() { # PRLIMIT_ARGS CORE_MB
  local d=/run/sb-$RANDOM
  echo "== prlimit $1 OVS_OVN_SUPERVISOR_CORE_LIMIT_MB=$2"
  # dummy devices: the guest has no /dev/net/tun for the userspace datapath
  prlimit $1 env -i PATH="$PATH" OVS_OVN_SUPERVISOR_SANDBOX_NET=dummy \
    OVS_OVN_SUPERVISOR_CORE_LIMIT_MB="$2" /run/oos-sup run --sandbox $d >"$OUT/sup-$2.log" 2>&1 &
  local sup=$!
  for _ in $(seq 300); do
    kill -0 $sup 2>/dev/null || { echo "supervisor exited"; return; }
    /run/oos-sup probe readiness --sandbox $d >/dev/null 2>&1 && break
    sleep 1
  done
  echo "readiness: $(/run/oos-sup probe readiness --sandbox $d)"
  for p in $sup $(cat $d/run/*/*.pid); do
    echo "$(cat /proc/$p/comm) files $(grep 'open files' /proc/$p/limits | awk '{print $4, $5}')" \
      "core $(grep 'core' /proc/$p/limits | awk '{print $5, $6}')"
  done
  kill -TERM $sup
  wait $sup
  echo "exit $?"
}
{
  uname -r
  one "--nofile=1024:1048576 --core=0:unlimited" 7
  one "--nofile=200000:200000 --core=0:unlimited" 0
} >>"$OUT/limits.txt" 2>&1
