#!/usr/bin/env bash
# What a probe costs the node, paid the way kubelet pays it: an exec probe goes through the
# container runtime (`podman exec NAME ovs-ovn-supervisor probe readiness`: podman, conmon,
# runc, a new process in the container), an httpGet probe is one HTTP request to the
# supervisor's /readyz. Both against the same ready container, in alternated batches, in one run.
#
#   scripts/bench-probe-cost.sh [BATCHES] [PER_BATCH]      (default 10 batches of 10)
#
# A third variant, Kube-OVN's own exec probe (`bash /kube-ovn/ovs-healthcheck.sh`: ovsdb-client
# list-dbs, ovs-ctl status, ovn-ctl status_controller, a tail of ovn-controller's log), is
# measured when KUBE_OVN_HEALTHCHECK names Kube-OVN's script. It is not in this repository; take
# it from a Kube-OVN checkout at the release you compare with:
#
#   git -C KUBE_OVN_REPO show v1.15.24:dist/images/ovs-healthcheck.sh > /tmp/ovs-healthcheck.sh
#   KUBE_OVN_HEALTHCHECK=/tmp/ovs-healthcheck.sh scripts/bench-probe-cost.sh 10 10
#
# It is copied into the container at run time (over the image's /kube-ovn/ovs-healthcheck.sh, in
# this throwaway container only), and the sandbox's run and log directories are linked at the
# default paths it reads inside the container (/var/run/openvswitch, /var/run/ovn,
# /var/log/ovn), so it runs unmodified and does all its work, as on a real node. It must pass
# once before the batches (its output is printed: what it checked), and every run after.
#
# Per probe: wall time (median of the batches' means) and the machine's CPU time (all
# processes: /proc/stat's user+nice+system+irq+softirq over the batch, divided by its probes;
# 10 ms clock ticks, so batches). The machine must be otherwise idle for the CPU figures to mean
# anything; the script prints its load average next to them. Needs root and the image that
# scripts/container-test.sh builds (IMAGE, default localhost/ovs-ovn-supervisor:container-test-trixie).
set -euo pipefail
cd "$(dirname "$0")/.."

BATCHES=${1:-10}
PER=${2:-10}
IMAGE=${IMAGE:-localhost/ovs-ovn-supervisor:container-test-trixie}
NAME=oos-probe-cost-$$
PORT=${PORT:-18668}

die() { echo "bench-probe-cost: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (podman as root)"
podman image exists "$IMAGE" || die "no image $IMAGE: run scripts/container-test.sh first"
command -v curl >/dev/null || die "curl is needed"
HEALTHCHECK=${KUBE_OVN_HEALTHCHECK:-}
[ -z "$HEALTHCHECK" ] || [ -f "$HEALTHCHECK" ] || die "KUBE_OVN_HEALTHCHECK=$HEALTHCHECK: no such file"
trap 'podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true' EXIT

# Host network so that the HTTP request is what kubelet's would be (no port forwarding).
podman run -d --name "$NAME" --network host --user 0 \
  --cap-add NET_ADMIN,NET_BIND_SERVICE,NET_RAW,SYS_NICE,SYS_ADMIN \
  -e OVS_OVN_SUPERVISOR_SANDBOX=/sandbox -e OVS_OVN_SUPERVISOR_SANDBOX_NET=dummy \
  -e OVS_OVN_SUPERVISOR_HTTP_ADDR="127.0.0.1:$PORT" "$IMAGE" >/dev/null
for _ in $(seq 300); do
  podman exec "$NAME" ovs-ovn-supervisor probe readiness >/dev/null 2>&1 \
    && curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
podman exec "$NAME" ovs-ovn-supervisor probe readiness >/dev/null || die "container not ready"

KINDS="exec http"
if [ -n "$HEALTHCHECK" ]; then
  podman cp "$HEALTHCHECK" "$NAME:/kube-ovn/ovs-healthcheck.sh"
  # Kube-OVN's script reads the default paths; the sandbox keeps its files under /sandbox.
  podman exec "$NAME" sh -ec 'for d in run/openvswitch run/ovn log/ovn; do
      rm -rf "/var/$d"; ln -s "/sandbox/$d" "/var/$d"; done'
  hc_out=$(podman exec "$NAME" bash /kube-ovn/ovs-healthcheck.sh 2>&1) \
    || die "Kube-OVN's ovs-healthcheck.sh fails in the container, not measured: $hc_out"
  KINDS="exec kubeovn http"
fi

cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
now_ns() { date +%s%N; }

# batch KIND: PER probes of KIND; prints "wall_ms_per_probe cpu_ms_per_probe".
batch() {
  local kind=$1 c0 c1 t0 t1 i
  c0=$(cpu_ticks); t0=$(now_ns)
  for ((i = 0; i < PER; i++)); do
    case "$kind" in
      exec) podman exec "$NAME" ovs-ovn-supervisor probe readiness >/dev/null ;;
      http) curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null ;;
      kubeovn) podman exec "$NAME" bash /kube-ovn/ovs-healthcheck.sh >/dev/null ;;
    esac
  done
  t1=$(now_ns); c1=$(cpu_ticks)
  awk -v t=$((t1 - t0)) -v c=$((c1 - c0)) -v n="$PER" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.3f %.3f\n", t / 1e6 / n, c * 1000 / hz / n }'
}

declare -A wall cpu
for ((b = 0; b < BATCHES; b++)); do
  for kind in $KINDS; do
    read -r w c < <(batch "$kind")
    wall[$kind]+="$w "
    cpu[$kind]+="$c "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "probe cost, $BATCHES alternated batches of $PER; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %12s %14s\n' "probe" "wall ms" "CPU ms (all)"
for kind in $KINDS; do
  case "$kind" in
    exec) label="exec: podman exec ... probe readiness" ;;
    kubeovn) label="exec: podman exec ... bash ovs-healthcheck.sh" ;;
    http) label="httpGet: GET /readyz (curl)" ;;
  esac
  printf '%-44s %12s %14s\n' "$label" "$(echo "${wall[$kind]}" | median)" "$(echo "${cpu[$kind]}" | median)"
done
if [ -n "$HEALTHCHECK" ]; then
  echo "Kube-OVN's ovs-healthcheck.sh ($(sha256sum <"$HEALTHCHECK" | cut -c1-12), from $HEALTHCHECK) passed before and in every batch; it checked:"
  printf '%s\n' "$hc_out" | sed 's/^/  /'
else
  echo "Kube-OVN's ovs-healthcheck.sh not measured: set KUBE_OVN_HEALTHCHECK=FILE (see this script's header)"
fi
