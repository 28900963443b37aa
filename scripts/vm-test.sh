#!/usr/bin/env bash
# The kernel-datapath test bed: boots Debian's own kernel (openvswitch, geneve, vxlan modules)
# in QEMU with virtme-ng, on the host's root file system, and runs a whole OVN cluster in it
# (scripts/vm/): NB + SB + ovn-northd, our supervisor as the node (datapath_type=system, real
# modprobe), pods as network namespaces.
#
#   scripts/vm-test.sh [smoke|tunnel|bench|loss]
#     smoke   boot, two nodes wired as Kube-OVN wires them (scripts/vm/topo.sh: veth pods,
#             ovn0, join switch, router, geneve), kill -9 ovs-vswitchd on node1 with one vCPU
#             busy: 0 pings lost pod to pod and pod to ovn0, 0 failed TCP connects, no node link
#             changed; then `uninstall` (the tunnel device and the datapath gone) (CI; ~2 min)
#     tunnel  two nodes in their own namespaces, one pod each, ping across geneve then vxlan;
#             INPUT policy DROP in each node, our tunnel-port rule removed and restored, another
#             CNI's rules left alone
#     bench   packets lost (ping every 10 ms, pod to pod) on each supervisor event, and on
#             Debian's ovs-ctl/ovn-ctl doing the same (baselines); writes the table into
#             docs/benchmarks.md, section 7 (VM_BENCH_DOC=FILE elsewhere, =none not at all)
#     loss    the smoke's measurement for every supervisor event, BENCH_RUNS (5) times each, on
#             BENCH_TOPOLOGY (veth | internal), one vCPU busy unless BENCH_LOAD=0
#             (scripts/vm/loss.sh); `loss_summary` lines give min/median/max per event
#
# Prints the VM's key=value results and exits non-zero when the run failed. The results (and
# the daemons' logs on failure) stay in VM_OUT (default: a new /tmp/oos-vm.* directory).
# KVM cannot be used here (QEMU aborts: "failed to set MSR 0x10a"), so the VM runs under TCG
# emulation, ~10x slower than the host. Environment: VM_CPUS (2), VM_MEMORY (2G),
# VM_TIMEOUT (seconds for the whole VM; per mode below), VM_OUT; for bench (scripts/vm/bench.sh):
# BENCH_RUNS (runs per event, 1), BENCH_EVENTS (a subset), BENCH_ARP=1 (pods resolve ARP),
# BENCH_SCALE=1 (br-int loaded with ~100,000 rules first: BENCH_SCALE_* in scripts/vm/bench.sh),
# BENCH_WBC_MS (our supervisor's OVS_OVN_SUPERVISOR_OFCTRL_WAIT_BEFORE_CLEAR_MS); for loss,
# LOSS_TRACE=1 (node1's kernel datapath sampled every 0.2 s through each event into
# VM_OUT/trace.*: flow count, ports, flow-restore-wait); VM_OVS (host:
# the machine's OVS/OVN packages; trixie: scripts/trixie-root.sh's OVS 3.5 / OVN 25.03, for
# loss and bench: the smoke's uid-65534 ovs-dpctl step cannot read that root's libraries over
# the VM's 9p share, and the topology takes ~2x longer to come up from it).
set -euo pipefail
mode=${1:-smoke}
case "$mode" in
  smoke) budget=${VM_TIMEOUT:-300} ;;
  tunnel) budget=${VM_TIMEOUT:-900} ;;
  bench | loss) budget=${VM_TIMEOUT:-2400} ;;
  *) echo "usage: $0 [smoke|tunnel|bench|loss]" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
root=$PWD
t0=$(date +%s%N)

scripts/install-deps.sh --vm
export PATH=${VNG_VENV:-/var/cache/ovs-ovn-supervisor/vng}/bin:$PATH
cargo build --release --quiet
# The binary just built, wherever CARGO_TARGET_DIR puts it.
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/ovs-ovn-supervisor

# Debian's kernel from linux-image-amd64: the newest /boot/vmlinuz-* that has the openvswitch
# module (the machine's own kernel may be anything).
kernel=""
for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
  v=${k#/boot/vmlinuz-}
  if find "/lib/modules/$v" -name 'openvswitch.ko*' 2>/dev/null | grep -q .; then kernel=$k; break; fi
done
[ -n "$kernel" ] || { echo "vm-test: no /boot/vmlinuz-* with the openvswitch module (install-deps.sh --vm)" >&2; exit 1; }

out=${VM_OUT:-$(mktemp -d /tmp/oos-vm.XXXXXX)}
mkdir -p "$out"
rm -f "$out/result"

# vng (and the qemu it starts) in a process group of their own, killed on any exit.
vng_pid=""
cleanup() {
  if [ -n "$vng_pid" ]; then
    kill -TERM -- "-$vng_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 -- "-$vng_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$vng_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The knobs of the VM's scripts, passed on through the kernel command line.
vm_env=""
for v in BENCH_RUNS BENCH_EVENTS BENCH_TOPOLOGY BENCH_LOAD LOSS_TRACE BENCH_ARP BENCH_SCALE BENCH_SCALE_PORTS BENCH_SCALE_FLOWS BENCH_SCALE_VALUES BENCH_SCALE_BATCH BENCH_SCALE_LOAD_S BENCH_WBC_MS; do
  if [ -n "${!v:-}" ]; then vm_env+=" $v=$(printf %q "${!v}")"; fi
done
# VM_OVS=trixie: the VM's OVN cluster runs the trixie root's OVS 3.5 / OVN 25.03 (the versions
# Kube-OVN ships) on Debian 12's kernel module, through scripts/in-root.sh inside the VM. The
# host's file system is read-only in the VM: the bind mount points are made here.
vng_dirs=(--rwdir "$out")
case "${VM_OVS:-host}" in
  host) ;;
  trixie)
    vroot=$(scripts/trixie-root.sh)
    mkdir -p "$vroot$root" "$vroot$(dirname "$bin")" "$vroot/lib/modules"
    vm_env+=" VM_ROOT=$vroot VM_BINDIR=$(dirname "$bin")"
    # The VM's /var is its own: the root is shared explicitly.
    vng_dirs+=(--rodir "$vroot")
    ;;
  *) echo "vm-test: VM_OVS is host or trixie, not '$VM_OVS'" >&2; exit 2 ;;
esac
echo "vm-test: $mode on $(basename "$kernel"), TCG, ${VM_CPUS:-2} vCPUs, OVS ${VM_OVS:-host}; output in $out"
setsid vng --run "$kernel" --user root --disable-kvm --cpus "${VM_CPUS:-2}" --memory "${VM_MEMORY:-2G}" \
  "${vng_dirs[@]}" -- "env$vm_env bash $root/scripts/vm/inside.sh $mode $out $bin" \
  </dev/null >"$out/console.log" 2>&1 &
vng_pid=$!
deadline=$(($(date +%s) + budget))
while kill -0 "$vng_pid" 2>/dev/null; do
  if (($(date +%s) > deadline)); then
    echo "vm-test: the VM did not finish within ${budget}s" >&2
    echo "status=fail" >>"$out/result"
    break
  fi
  sleep 1
done
wait "$vng_pid" 2>/dev/null || true
vng_pid=""

wall_ms=$((($(date +%s%N) - t0) / 1000000))
if [ ! -s "$out/result" ]; then
  echo "vm-test: no result from the VM; its console:" >&2
  tail -40 "$out/console.log" >&2
  exit 1
fi
cat "$out/result"
echo "wall_ms=$wall_ms"
if [ "$(tail -1 "$out/result")" != "status=pass" ]; then
  echo "vm-test: $mode FAILED; console: $out/console.log, logs: $out/logs/" >&2
  tail -20 "$out/console.log" >&2
  exit 1
fi
if [ "$mode" = bench ]; then
  # The loss table, also written into docs/benchmarks.md (section 7) unless VM_BENCH_DOC=none.
  doc=${VM_BENCH_DOC:-docs/benchmarks.md}
  [ "$doc" = none ] && doc=""
  python3 scripts/vm/bench-table.py "$out/result" $doc
fi
echo "vm-test: $mode passed in $((wall_ms / 1000)) s"
