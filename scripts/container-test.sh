#!/usr/bin/env bash
# Builds the real Dockerfile's two images with podman and runs them, offline: the standalone
# Debian image (default target) and Kube-OVN's image with the supervisor layered on (kube-ovn).
#
#  1. Installs podman, runc and debootstrap if missing; makes podman usable here (runc runtime,
#     no default ulimits) through a drop-in it owns: /etc/containers/containers.conf.d/.
#  2. No registry is reachable, so the base image is made here: `debootstrap --variant=minbase
#     SUITE` from the Debian mirror apt already uses, slimmed like the official -slim variant
#     (dpkg path excludes, no apt lists), `podman import`ed as docker.io/library/debian:SUITE-slim,
#     the name the Dockerfile's runtime stage uses. SUITE is CONTAINER_TEST_BASE: trixie (the
#     default, the Dockerfile's: OVS 3.5 / OVN 25.03) or bookworm (OVS 3.1 / OVN 23.03, built with
#     `--build-arg BASE_IMAGE=...bookworm-slim`). Kept between runs (delete it with
#     `podman rmi docker.io/library/debian:SUITE-slim` to start cold).
#  3. Builds the binaries on this machine (`cargo build --release --locked`: the supervisor and
#     the image's ip wrapper, ovs-ovn-ip) and the image from the
#     Dockerfile with `--build-context builder=DIR`: that named context takes the builder
#     stage's place, so the rust image is never needed, and the runtime stage built is the one
#     users get. (The host binary is glibc-dynamic, linked on Debian 12: it runs on bookworm and
#     on trixie.)
#  4. Runs the image twice in sandbox mode (a whole node inside the sandbox directory: userspace
#     datapath, a local OVN Southbound, vswitchd dummy devices), with the supervisor as PID 1 and
#     `--network none`, each time polling `podman exec NAME ovs-ovn-supervisor probe readiness`
#     until it passes, then `podman stop`: exit 0, under the 25 s stop budget, the ordered stop
#     in the logs (ovn-controller, ovs-vswitchd, ovsdb-server, then the clean stop).
#     a. as root (`--user 0`, the five capabilities added to podman's defaults);
#     b. as Kube-OVN runs it: `--user 65534 --cap-drop=all --cap-add=NET_ADMIN,NET_BIND_SERVICE,
#        NET_RAW,SYS_NICE,SYS_ADMIN`, no `--security-opt no-new-privileges`. Checks every
#        process's uid, CapEff/CapPrm (exactly its file capabilities), CapAmb (none), CapBnd
#        (the five) and NoNewPrivs (0); that no file in the image carries a capability outside
#        the five; that `bash /kube-ovn/ovs-healthcheck.sh` (Kube-OVN's probe command) passes,
#        fails while ovs-vswitchd is SIGSTOPped and passes again after SIGCONT; that
#        `ovs-ovn-supervisor firewall ensure` works from file capabilities alone; and that what
#        kubectl-ko execs in this pod works as 65534 (ko_tools: tcpdump, ip link, ip maddr,
#        ip netns exec), run as a Kubernetes exec runs it (kexec).
#  5. Builds a stand-in for Kube-OVN's image (scripts/kube-ovn-stand-in.Dockerfile), tagged as
#     the Dockerfile's default KUBE_OVN_IMAGE, then the kube-ovn target on it; checks that the
#     layered image changes three files and nothing else (layers, `podman image diff`, config);
#     runs it as Kube-OVN's charts do (`/kube-ovn/start-ovs.sh`, uid 65534, the five, the
#     charts' env and host paths), a real node (userspace datapath on /dev/net/tun) joined to a
#     Southbound in a second container, ready by the charts' probe, then `probe readiness`;
#     checks PID 1, processes and capabilities, the tunnel rule, kubectl-ko's commands with
#     Kube-OVN's own tools, and the ordered stop.
#
# The last line printed is the summary:
#   container-test: PASS image=... size=...MB ready_ms=... (root) ... nonroot_ready_ms=...
#     kube_ovn_image=... kube_ovn_started_ms=... kube_ovn_ready_ms=... ... total_ms=...
# CONTAINER_TEST_IMAGE / CONTAINER_TEST_KO_IMAGE name the two images built.
# Needs root (podman as root with runc). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=${CONTAINER_TEST_BASE:-trixie}
case "$SUITE" in trixie | bookworm) ;; *)
  echo "container-test: CONTAINER_TEST_BASE=$SUITE: expected trixie or bookworm" >&2
  exit 2
  ;;
esac
BASE_IMAGE=docker.io/library/debian:$SUITE-slim
IMAGE=${CONTAINER_TEST_IMAGE:-localhost/ovs-ovn-supervisor:container-test-$SUITE}
NAME=ovs-ovn-supervisor-test-$$
NR_NAME=$NAME-nonroot
SANDBOX=/sandbox
STOP_BUDGET_MS=25000
STOP_TIMEOUT_S=30 # podman stop -t: above the stop budget, like terminationGracePeriodSeconds
READY_DEADLINE_S=60

say() { echo "container-test: $*"; }
die() {
  echo "container-test: FAIL: $*" >&2
  exit 1
}
now_ms() { date +%s%3N; }

[ "$(id -u)" -eq 0 ] || die "run as root (podman as root with the runc runtime)"
t_start=$(now_ms)

work=$(mktemp -d /tmp/ovs-container-test.XXXXXX)
cleanup() {
  local rc=$? c
  for c in "$NAME" "$NR_NAME" "$NAME-kube-ovn" "$NAME-sb"; do
    podman container exists "$c" 2>/dev/null || continue
    if [ "$rc" -ne 0 ]; then
      echo "---- podman logs $c (last 60 lines) ----" >&2
      podman logs "$c" 2>&1 | tail -n 60 >&2 || true
    fi
    podman rm -f -t 0 "$c" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# ---- 1. tools --------------------------------------------------------------------------------
missing=()
for p in podman runc debootstrap debian-archive-keyring; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A drop-in (read after containers.conf, podman >= 4.x) leaves any existing config untouched.
# default_ulimits = []: podman's default RLIMIT_NOFILE cannot be set in this sandboxed kernel
# ("error setting rlimit type 7: operation not permitted").
dropin=/etc/containers/containers.conf.d/50-ovs-ovn-supervisor-test.conf
want_conf=$'# Written by ovs-ovn-supervisor scripts/container-test.sh\n[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n'
if [ ! -f "$dropin" ] || [ "$(cat "$dropin")" != "${want_conf%$'\n'}" ]; then
  mkdir -p "$(dirname "$dropin")"
  printf '%s' "$want_conf" >"$dropin"
fi

# ---- 2. base image ---------------------------------------------------------------------------
t_base=$(now_ms)
if podman image exists "$BASE_IMAGE"; then
  say "base image $BASE_IMAGE present (cached)"
  base_ms=0
else
  # The Debian mirror apt is configured with on this machine (deb822 or one-line sources), for
  # SUITE (this machine is bookworm: its bookworm, -updates and -security sites, renamed).
  mapfile -t targets < <(apt-get indextargets --format '$(SITE) $(RELEASE) $(COMPONENT)' \
    'Identifier: Packages' | sort -u)
  mirror=""
  sources=""
  for t in "${targets[@]}"; do
    read -r site release component <<<"$t"
    [ "$component" = main ] || continue
    case "$release" in
      bookworm) mirror=$site ;;
      bookworm-updates | bookworm-security) ;;
      *) continue ;;
    esac
    sources+="deb $site ${release/bookworm/$SUITE} main"$'\n'
  done
  [ -n "$mirror" ] || die "no 'bookworm main' source in apt's configuration (/etc/apt/sources.list*)"
  say "debootstrap --variant=minbase $SUITE from $mirror"
  rootfs=$work/rootfs
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    {
      tail -n 30 "$work/debootstrap.log" >&2
      die "debootstrap failed"
    }
  # Slim it the way the official -slim image is (debuerreotype's minimizing config).
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf '%s' "$sources" >"$rootfs/etc/apt/sources.list"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda}/* "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/* \
    "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  tar --numeric-owner --xattrs -C "$rootfs" -c . |
    podman import --quiet --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  base_ms=$(($(now_ms) - t_base))
  say "imported $BASE_IMAGE in ${base_ms} ms"
fi

# ---- 3. binary and image ---------------------------------------------------------------------
t_build=$(now_ms)
cargo build --release --locked --quiet --bin ovs-ovn-supervisor --bin ovs-ovn-ip
cargo_ms=$(($(now_ms) - t_build))
mkdir -p "$work/builder"
for b in ovs-ovn-supervisor ovs-ovn-ip; do
  install -m 0755 "${CARGO_TARGET_DIR:-target}/release/$b" "$work/builder/$b"
done
t_image=$(now_ms)
say "podman build (builder stage replaced by the host binary through --build-context)"
podman build --pull=never --network host --layers \
  --build-context builder="$work/builder" --build-arg BASE_IMAGE="$BASE_IMAGE" \
  -t "$IMAGE" -f Dockerfile . >"$work/build.log" 2>&1 ||
  {
    tail -n 40 "$work/build.log" >&2
    die "podman build failed"
  }
build_ms=$(($(now_ms) - t_image))
size_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
size_mb=$(awk -v b="$size_bytes" 'BEGIN { printf "%.1f", b / 1000000 }')
say "built $IMAGE (${size_mb} MB) in ${build_ms} ms (cargo build ${cargo_ms} ms before it)"
# The image must hold the binary just built: a build cache that kept an older one would make
# every check below test old code.
want_sum=$(sha256sum <"$work/builder/ovs-ovn-supervisor" | cut -d' ' -f1)
got_sum=$(podman run --rm --network none --entrypoint sha256sum "$IMAGE" /usr/bin/ovs-ovn-supervisor | cut -d' ' -f1)
[ "$want_sum" = "$got_sum" ] || die "the image holds a stale binary ($got_sum, built $want_sum)"

# Nothing in the start path is a shell script: the entrypoint is our binary, run as nobody.
entry=$(podman image inspect --format '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.User}}' "$IMAGE")
[ "$entry" = '["/usr/bin/ovs-ovn-supervisor"] ["run"] 65534:65534' ] || die "unexpected entrypoint/cmd/user: $entry"

# ---- 4. run, ready, stop: as root, then as Kube-OVN runs it ----------------------------------
# start_node NAME SANDBOX PODMAN-RUN-ARGS...: runs the image in sandbox mode with vswitchd's dummy
# devices (`auto` would take a private netns, since the container has CAP_SYS_ADMIN, and the
# userspace datapath then waits for a tap device: see the README), polls `podman exec NAME
# ovs-ovn-supervisor probe readiness` until it passes; sets ready_ms.
start_node() {
  local name=$1 sandbox=$2 t0 out=""
  shift 2
  t0=$(now_ms)
  podman run -d --name "$name" --network none \
    -e OVS_OVN_SUPERVISOR_SANDBOX="$sandbox" -e OVS_OVN_SUPERVISOR_SANDBOX_NET=dummy \
    -e OVS_OVN_SUPERVISOR_STOP_BUDGET_MS="$STOP_BUDGET_MS" "$@" "$IMAGE" >/dev/null
  ready_ms=""
  while (($(now_ms) - t0 < READY_DEADLINE_S * 1000)); do
    if out=$(podman exec "$name" ovs-ovn-supervisor probe readiness 2>&1); then
      ready_ms=$(($(now_ms) - t0))
      return 0
    fi
    [ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] ||
      die "$name exited before it was ready: $out"
    sleep 0.1
  done
  die "$name not ready within ${READY_DEADLINE_S} s: $out"
}

# stop_node NAME: `podman stop`, exit 0 under the stop budget, the ordered stop in the logs (each
# daemon's "stopped" line, in order, then the supervisor's clean stop); sets stop_ms, order.
# Lines look like: 2025-01-01T00:00:00.000000Z  INFO stopped daemon="ovn-controller" pid=23 ...
stop_node() {
  local name=$1 t0 code logs
  t0=$(now_ms)
  podman stop -t "$STOP_TIMEOUT_S" "$name" >/dev/null
  stop_ms=$(($(now_ms) - t0))
  code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
  logs=$(podman logs "$name" 2>&1)
  [ "$code" = 0 ] || die "$name exited $code after podman stop (expected 0)"
  ((stop_ms < STOP_BUDGET_MS)) || die "$name: podman stop took ${stop_ms} ms, over the ${STOP_BUDGET_MS} ms stop budget"
  order=$(grep -E '^[^ ]+ +INFO stopped daemon=' <<<"$logs" | sed -E 's/.*daemon="?([a-z_-]+).*/\1/' | tr '\n' ' ')
  case "$order" in
    "ovn-controller ovs-vswitchd ovsdb-server"*) ;;
    *) die "$name: shutdown order in the logs is '$order', expected ovn-controller, ovs-vswitchd, ovsdb-server" ;;
  esac
  grep -qE '^[^ ]+ +INFO stopped signal=.*clean=true' <<<"$logs" || die "$name: no clean stop line in the logs"
}

# proc_caps NAME: uid, capabilities and no_new_privs of every process in the container but our
# own `podman exec` (sh and awk), one line each: "COMMAND uid=U eff=HEX prm=HEX amb=HEX bnd=HEX
# nnp=N sec=M", sorted. sec is the seccomp mode: 2, a filter (podman's default profile, which
# stands in for the manifests' RuntimeDefault).
proc_caps() {
  podman exec -i "$1" sh -s <<'SH' | grep -vE '^(sh|awk) ' | sort
for s in /proc/[0-9]*/status; do
  awk '/^Name:/ { n = $2 } /^Uid:/ { u = $2 } /^CapEff:/ { e = $2 } /^CapPrm:/ { p = $2 }
       /^CapAmb:/ { a = $2 } /^CapBnd:/ { b = $2 } /^NoNewPrivs:/ { nn = $2 } /^Seccomp:/ { sc = $2 }
       END { if (n != "") printf "%s uid=%s eff=%s prm=%s amb=%s bnd=%s nnp=%s sec=%s\n", n, u, e, p, a, b, nn, sc }' "$s" 2>/dev/null
done
SH
}

# daemon_nices NAME: "COMMAND NICE" of each OVS/OVN daemon (field 19 of /proc/PID/stat).
daemon_nices() {
  podman exec "$1" sh -c 'for s in /proc/[0-9]*/stat; do
    c=$(cat "${s%stat}comm" 2>/dev/null) || continue
    case "$c" in ovsdb-server|ovs-vswitchd|ovn-controller)
      echo "$c $(sed "s/.*) //" "$s" | cut -d" " -f17)";; esac; done'
}

# kexec NAME CMD...: `podman exec` as a Kubernetes exec runs a command in a non-root pod: the
# container's user, inheritable and ambient sets empty (podman fills both for a non-root user,
# Kubernetes neither: containerd and CRI-O since CVE-2022-24769), so a program holds only what
# its file capabilities grant.
kexec() {
  local name=$1
  shift
  podman exec "$name" setpriv --inh-caps=-all --ambient-caps=-all "$@"
}

# ko_tools NAME debian|kube-ovn: the commands kubectl-ko execs in the ovs-ovn pod, as 65534
# through kexec, on state: `tcpdump -c` on an interface (ko tcpdump, host-network pods),
# `ip link show` (ko trace on VLAN subnets), `ip maddr add/show/del` on a NIC and `ip netns exec
# NS ip maddr add` (ko perf's multicast test, host and pod). Root first makes a veth pair in the
# container's network namespace and a named one, ko-pod, holding the other end as eth0.
# debian: every command works (the image's ip wrapper), and the real ip run directly cannot add
# (the control: this exec really has no inheritable capabilities). kube-ovn: Kube-OVN's tools
# unchanged: tcpdump, ip link and ip maddr show work; ip's capabilities are dropped by ip
# itself as 65534 (cap_net_admin+eip, no inheritable): maddr add and netns exec fail, exactly
# as in Kube-OVN's own image. Sets ko_summary.
ko_tools() {
  local name=$1 kind=$2 out rc mac=01:00:5e:00:00:64
  podman exec --user 0 "$name" sh -ec 'ip link add ko-veth0 type veth peer name ko-veth1
    ip link set ko-veth0 up; ip netns add ko-pod; ip link set ko-veth1 netns ko-pod
    ip -n ko-pod link set ko-veth1 name eth0; ip -n ko-pod link set eth0 up' ||
    die "$kind: could not make the veth pair and the ko-pod netns as root"
  # tcpdump on lo, one packet: a connection attempt from bash, repeated until tcpdump has one.
  out=$(kexec "$name" bash -c 'tcpdump -c 1 -nn -i lo "tcp port 9" 2>/tmp/ko-tcpdump.err & p=$!
    for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; (: >/dev/tcp/127.0.0.1/9) 2>/dev/null; sleep 0.05; done
    kill "$p" 2>/dev/null; wait "$p"; rc=$?; cat /tmp/ko-tcpdump.err >&2; exit "$rc"' 2>&1) ||
    die "$kind: tcpdump -c 1 -i lo as 65534 failed: $out"
  grep -q '^1 packet captured' <<<"$out" || die "$kind: tcpdump captured nothing: $out"
  grep -qE ' 127\.0\.0\.1\.[0-9]+ > 127\.0\.0\.1\.9: ' <<<"$out" || die "$kind: tcpdump printed no packet: $out"
  out=$(kexec "$name" ip -o link show dev ko-veth0 2>&1) && grep -q 'ko-veth0@' <<<"$out" ||
    die "$kind: ip link show as 65534 failed: $out"
  out=$(kexec "$name" ip maddr show dev ko-veth0 2>&1) && grep -q '01:00:5e:00:00:01' <<<"$out" ||
    die "$kind: ip maddr show as 65534 failed: $out"
  rc=0
  out=$(kexec "$name" ip maddr add "$mac" dev ko-veth0 2>&1) || rc=$?
  local added=no in_ns=no
  podman exec --user 0 "$name" ip maddr show dev ko-veth0 | grep -q "$mac static" && added=yes
  if [ "$kind" = debian ]; then
    [ "$rc" = 0 ] && [ "$added" = yes ] || die "$kind: ip maddr add as 65534: exit $rc, added=$added: $out"
    out=$(kexec "$name" ip maddr del "$mac" dev ko-veth0 2>&1) || die "$kind: ip maddr del as 65534: $out"
    ! podman exec --user 0 "$name" ip maddr show dev ko-veth0 | grep -q "$mac" ||
      die "$kind: $mac still on ko-veth0 after ip maddr del"
    # The control: iproute2 itself, without the wrapper, drops its capabilities as 65534.
    rc=0
    out=$(kexec "$name" /usr/bin/ip maddr add 01:00:5e:00:00:65 dev ko-veth0 2>&1) || rc=$?
    [ "$rc" != 0 ] && ! podman exec --user 0 "$name" ip maddr show dev ko-veth0 | grep -q 01:00:5e:00:00:65 ||
      die "$kind: /usr/bin/ip maddr add worked as 65534 without the wrapper: the exec is not Kubernetes-like"
  else
    [ "$rc" != 0 ] && [ "$added" = no ] && grep -q 'Operation not permitted' <<<"$out" ||
      die "$kind: ip maddr add as 65534 with Kube-OVN's ip: exit $rc, added=$added, expected EPERM: $out"
  fi
  ko_summary="tcpdump:ok,ip-link:ok,ip-maddr-show:ok,ip-maddr-add:$([ "$rc" = 0 ] && echo ok || echo EPERM)"
  [ "$kind" = debian ] && ko_summary="tcpdump:ok,ip-link:ok,ip-maddr-show:ok,ip-maddr-add:ok,ip-maddr-del:ok,real-ip-without-wrapper:EPERM"
  rc=0
  out=$(kexec "$name" ip netns exec ko-pod ip maddr add "$mac" dev eth0 2>&1) || rc=$?
  podman exec --user 0 "$name" ip -n ko-pod maddr show dev eth0 | grep -q "$mac static" && in_ns=yes
  if [ "$kind" = debian ]; then
    [ "$rc" = 0 ] && [ "$in_ns" = yes ] || die "$kind: ip netns exec ko-pod ip maddr add as 65534: exit $rc, added=$in_ns: $out"
    ko_summary+=",ip-netns-exec:ok"
  else
    [ "$rc" != 0 ] && [ "$in_ns" = no ] && grep -q 'Operation not permitted' <<<"$out" ||
      die "$kind: ip netns exec as 65534 with Kube-OVN's ip: exit $rc, added=$in_ns, expected EPERM: $out"
    ko_summary+=",ip-netns-exec:EPERM"
  fi
}

# Kube-OVN's capabilities (capabilities.add of its ovs-ovn DaemonSet); the image needs them in the
# bounding set whoever runs it: an `e` file capability outside the bounding set makes exec fail.
CAPS=NET_ADMIN,NET_BIND_SERVICE,NET_RAW,SYS_NICE,SYS_ADMIN

# 4a. Root (runAsUser: 0 with the five added to the runtime's defaults, as Kube-OVN's root mode).
# The image's directories belong to 65534; root writes them through CAP_DAC_OVERRIDE.
start_node "$NAME" "$SANDBOX" --user 0 --cap-add "$CAPS"
root_ready=$ready_ms
pid1=$(podman exec "$NAME" readlink /proc/1/exe)
[ "$pid1" = /usr/bin/ovs-ovn-supervisor ] || die "PID 1 is $pid1, not /usr/bin/ovs-ovn-supervisor"
supervisor_ready_ms=$(podman logs "$NAME" 2>&1 | sed -n 's/.*node ready.*ready_ms=\([0-9]*\).*/\1/p' | head -n 1)
say "root: ready ${root_ready} ms after podman run (supervisor's own ready_ms=${supervisor_ready_ms:-?})"
podman exec "$NAME" ovs-ovn-supervisor status
stop_node "$NAME"
root_stop=$stop_ms
say "root: stopped in ${stop_ms} ms, exit 0, order: ${order% }"

# 4b. Non-root, exactly as Kube-OVN's DaemonSet: uid 65534, nothing but the five capabilities,
# not privileged, no_new_privs off (allowPrivilegeEscalation unset). Unlike Kubernetes, podman
# also puts the capabilities in the ambient set of a non-root process; the kernel clears the
# ambient set when it execs a file with capabilities, which the supervisor is, so from PID 1 down
# every process holds only what its own file grants: checked below (CapAmb 0, CapEff exact).
# The sandbox lives in /tmp (65534 cannot write /). A 500 ms health interval makes the
# liveness check below quick (the manifest's is 2 s).
# The xtables lock is the host's file, chowned to 65534 by the manifest's hostpath-init.
install -o 65534 -g 65534 -m 0600 /dev/null "$work/xtables.lock"
start_node "$NR_NAME" /tmp/sandbox --user 65534 --cap-drop=all --cap-add="$CAPS" \
  -v "$work/xtables.lock:/run/xtables.lock" -e OVS_OVN_SUPERVISOR_HEALTH_INTERVAL_MS=500
nr_ready=$ready_ms
nr_supervisor_ready=$(podman logs "$NR_NAME" 2>&1 | sed -n 's/.*node ready.*ready_ms=\([0-9]*\).*/\1/p' | head -n 1)

# uid, capabilities and no_new_privs of every process in the container but our own `podman exec`
# (sh and awk, which podman gives ambient capabilities): "COMMAND uid=U eff=HEX prm=HEX amb=HEX bnd=HEX nnp=N".
procs=$(proc_caps "$NR_NAME")
# Each daemon: exactly its file capabilities (Kube-OVN's Dockerfile.base for ovsdb-server and
# ovs-vswitchd), as uid 65534, nothing ambient, the bounding set exactly the five, nnp off.
# ovsdb-server runs twice: the node's and the sandbox's local Southbound.
declare -A want=(
  [ovs-ovn-supervi]=0000000000800000 # sys_nice: renices the daemons
  [ovsdb-server]=0000000000000400    # net_bind_service
  [ovs-vswitchd]=0000000000201400    # net_admin net_bind_service sys_admin
  [ovn-controller]=0000000000001000  # net_admin
)
for comm in "${!want[@]}"; do
  line="$comm uid=65534 eff=${want[$comm]} prm=${want[$comm]} amb=0000000000000000 bnd=0000000000a03400 nnp=0 sec=2"
  grep -qxF "$line" <<<"$procs" || die "non-root: no process '$line'; the container has:"$'\n'"$procs"
done
bad=$(grep -vE '^(ovs-ovn-supervi|ovsdb-server|ovs-vswitchd|ovn-controller) uid=65534 ' <<<"$procs" || true)
[ -z "$bad" ] || die "non-root: unexpected processes:"$'\n'"$bad"
[ "$(grep -c '^ovsdb-server ' <<<"$procs")" = 2 ] || die "non-root: expected two ovsdb-server:"$'\n'"$procs"

# The daemons run at nice -10 as under ovs-ctl: the supervisor's CAP_SYS_NICE, used in each
# child before exec (field 19 of /proc/PID/stat is the nice value).
nices=$(daemon_nices "$NR_NAME")
[ -n "$nices" ] && ! grep -qv ' -10$' <<<"$nices" ||
  die "non-root: daemons not at nice -10:"$'\n'"$nices"

# No file in the image carries a capability outside the five: any that did could not be exec'd.
fcaps=$(podman exec "$NR_NAME" getcap -r /usr /kube-ovn 2>/dev/null || true)
[ -n "$fcaps" ] || die "non-root: getcap found no file capabilities"
while read -r path spec; do
  for c in $(tr ',' ' ' <<<"${spec%=*}"); do
    case "$c" in
      cap_net_admin | cap_net_bind_service | cap_net_raw | cap_sys_nice | cap_sys_admin) ;;
      *) die "non-root: $path carries $c, outside Kube-OVN's capabilities ($spec)" ;;
    esac
  done
  # +ep everywhere but the two halves of `ip` (the Dockerfile says why).
  case "$path=${spec#*=}" in
    /usr/bin/ip=ei | /usr/sbin/ip=p | *=ep) ;;
    *) die "non-root: $path has '$spec', expected +ep (no inheritable)" ;;
  esac
done <<<"$fcaps"
for want_cap in '/usr/bin/tcpdump cap_net_raw=ep' '/usr/bin/ip cap_net_admin,cap_sys_admin=ei' \
  '/usr/sbin/ip cap_net_admin,cap_sys_admin=p'; do
  grep -qxF "$want_cap" <<<"$fcaps" || die "non-root: no '$want_cap' in:"$'\n'"$fcaps"
done
# ovs-dpctl opens the kernel datapath (counting its flows before a vswitchd start): as uid
# 65534 only with NET_ADMIN as its file capability, as in Kube-OVN's image.
grep -qE 'ovs-dpctl cap_net_admin=ep$' <<<"$fcaps" ||
  die "non-root: ovs-dpctl lacks cap_net_admin:"$'\n'"$fcaps"
nfcaps=$(wc -l <<<"$fcaps")

# Kube-OVN's probe path, run the way its DaemonSet runs it: passes on a ready node...
hc=$(podman exec "$NR_NAME" bash /kube-ovn/ovs-healthcheck.sh 2>&1) ||
  die "non-root: bash /kube-ovn/ovs-healthcheck.sh failed on a ready node: $hc"
# ...and fails when the supervisor says the node is not alive: ovs-vswitchd stopped (SIGSTOP)
# stops answering its control socket, liveness fails at the next health check; SIGCONT (well
# before the supervisor's 6 s hang threshold would restart it) makes it pass again.
vsw=$(podman exec "$NR_NAME" cat /tmp/sandbox/run/openvswitch/ovs-vswitchd.pid)
podman exec "$NR_NAME" sh -c 'kill -STOP "$1"' sh "$vsw"
t_hc=$(now_ms)
hc_rc=0
until [ "$hc_rc" != 0 ]; do
  (($(now_ms) - t_hc < 5000)) || die "non-root: ovs-healthcheck.sh still passes 5 s after SIGSTOP of ovs-vswitchd: $hc"
  sleep 0.1
  hc_rc=0
  hc=$(podman exec "$NR_NAME" bash /kube-ovn/ovs-healthcheck.sh 2>&1) || hc_rc=$?
done
hc_fail_ms=$(($(now_ms) - t_hc))
hc_fail="exit $hc_rc: $(tail -n 1 <<<"$hc")"
podman exec "$NR_NAME" sh -c 'kill -CONT "$1"' sh "$vsw"
until podman exec "$NR_NAME" bash /kube-ovn/ovs-healthcheck.sh >/dev/null 2>&1; do
  (($(now_ms) - t_hc < 10000)) || die "non-root: ovs-healthcheck.sh still fails after SIGCONT of ovs-vswitchd"
  sleep 0.1
done
[ "$(podman exec "$NR_NAME" cat /tmp/sandbox/run/openvswitch/ovs-vswitchd.pid)" = "$vsw" ] ||
  die "non-root: ovs-vswitchd was restarted; the check must finish inside the hang threshold"
say "non-root: ovs-healthcheck.sh failed ${hc_fail_ms} ms after SIGSTOP of ovs-vswitchd ($hc_fail), passes again after SIGCONT"

# The tunnel port rule as on a real node (the sandbox leaves the firewall alone): `firewall
# ensure` as 65534 with no capability of its own, its inheritable and ambient sets cleared as
# in a Kubernetes exec, so iptables works from its file capabilities alone; in the container's
# own network namespace (--network none), never the machine's.
fw=$(podman exec "$NR_NAME" setpriv --inh-caps=-all --ambient-caps=-all sh -c \
  'ovs-ovn-supervisor firewall ensure && iptables-nft -C INPUT -p udp --dport 6081 \
     -m comment --comment "ovs-ovn-supervisor: geneve tunnel" -j ACCEPT && iptables-legacy -S INPUT' 2>&1) ||
  die "non-root: the tunnel port rule failed as 65534 with file capabilities only: $fw"

# What kubectl-ko execs in this pod, as 65534 the way a Kubernetes exec runs it.
ko_tools "$NR_NAME" debian
nr_ko=$ko_summary

stop_node "$NR_NAME"
nr_stop=$stop_ms
say "non-root (uid 65534, --cap-drop=all --cap-add=$CAPS): ready ${nr_ready} ms (supervisor's own ready_ms=${nr_supervisor_ready:-?}), stopped in ${nr_stop} ms, exit 0"
say "non-root processes: $(sed -E 's/ (prm|amb|bnd|nnp|sec)=[^ ]*//g' <<<"$procs" | tr '\n' ';')"
say "non-root file capabilities ($nfcaps files): $(tr '\n' ';' <<<"$fcaps")"
say "non-root firewall ensure (nft backend) and iptables-legacy with the 65534-owned lock: ok"

# ---- 5. Kube-OVN's image with the supervisor layered on: the Dockerfile's kube-ovn target ------
# Its base is a stand-in for Kube-OVN's image (scripts/kube-ovn-stand-in.Dockerfile: its
# layout, file capabilities and defaults, Debian's OVS/OVN, every Kube-OVN script a stand-in
# that fails with "kube-ovn stand-in"), tagged with the Dockerfile's default KUBE_OVN_IMAGE so
# the target builds exactly as users build it. Never over a real image: the tag must be absent
# or carry the stand-in's label.
t_ko=$(now_ms)
KO_BASE=$(sed -n 's/^ARG KUBE_OVN_IMAGE=//p' Dockerfile)
[ -n "$KO_BASE" ] || die "no 'ARG KUBE_OVN_IMAGE=' default in the Dockerfile"
KO_IMAGE=${CONTAINER_TEST_KO_IMAGE:-localhost/ovs-ovn-supervisor:container-test-kube-ovn-$SUITE}
STANDIN_LABEL=io.github.ovs-ovn-supervisor.stand-in
if podman image exists "$KO_BASE"; then
  label=$(podman image inspect --format "{{index .Labels \"$STANDIN_LABEL\"}}" "$KO_BASE")
  [ "$label" = kube-ovn ] ||
    die "$KO_BASE is on this machine and is not the test's stand-in (no label $STANDIN_LABEL=kube-ovn): refusing to overwrite it"
fi
t0=$(now_ms)
mkdir -p "$work/empty"
podman build --pull=never --network host --layers --build-arg BASE_IMAGE="$BASE_IMAGE" \
  -t "$KO_BASE" -f scripts/kube-ovn-stand-in.Dockerfile "$work/empty" >"$work/standin.log" 2>&1 ||
  {
    tail -n 40 "$work/standin.log" >&2
    die "podman build of the Kube-OVN stand-in failed"
  }
standin_ms=$(($(now_ms) - t0))
t0=$(now_ms)
podman build --pull=never --network host --layers --target kube-ovn \
  --build-context builder="$work/builder" -t "$KO_IMAGE" -f Dockerfile . >"$work/ko-build.log" 2>&1 ||
  {
    tail -n 40 "$work/ko-build.log" >&2
    die "podman build --target kube-ovn failed"
  }
ko_build_ms=$(($(now_ms) - t0))
ko_size=$(podman image inspect --format '{{.Size}}' "$KO_IMAGE")
ko_base_size=$(podman image inspect --format '{{.Size}}' "$KO_BASE")
ko_added_mb=$(awk -v a="$ko_size" -v b="$ko_base_size" 'BEGIN { printf "%.1f", (a - b) / 1000000 }')
say "built $KO_BASE (stand-in) in ${standin_ms} ms, then $KO_IMAGE (+${ko_added_mb} MB) in ${ko_build_ms} ms"

# Nothing of Kube-OVN's image changed. Its layers are the image's first layers, untouched...
base_layers=$(podman image inspect --format '{{json .RootFS.Layers}}' "$KO_BASE")
ko_layers=$(podman image inspect --format '{{json .RootFS.Layers}}' "$KO_IMAGE")
case "$ko_layers" in "${base_layers%]},"*) ;; *)
  die "the kube-ovn image does not start with its base's layers: $ko_layers vs $base_layers" ;;
esac
# ...the layers on top hold four files and their directories, nothing else...
changed=$(podman image diff --format json "$KO_IMAGE" "$KO_BASE" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for kind in ("added", "changed", "deleted"):
    for p in d.get(kind) or []:
        print(kind, p)' | sort)
files=$(grep -vE '^changed (/|/usr|/usr/bin|/kube-ovn)$' <<<"$changed" || true)
want_files=$'added /usr/bin/ovs-ovn-supervisor\nchanged /kube-ovn/ovs-healthcheck.sh\nchanged /kube-ovn/start-ovs.sh\nchanged /kube-ovn/uninstall.sh'
[ "$files" = "$want_files" ] || die "the kube-ovn image changes more than its four files:"$'\n'"$changed"
# ...and its configuration is Kube-OVN's: user (root), entrypoint, cmd, env, workdir, labels.
cfg='{{json .Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Env}} {{json .Config.WorkingDir}} {{json .Config.Labels}} {{json .Config.StopSignal}}'
[ "$(podman image inspect --format "$cfg" "$KO_IMAGE")" = "$(podman image inspect --format "$cfg" "$KO_BASE")" ] ||
  die "the kube-ovn image's config differs from its base's: $(podman image inspect --format "$cfg" "$KO_IMAGE")"
# The four files are ours: the scripts as in images/, the binary just built, with cap_sys_nice.
got=$(podman run --rm --network none --entrypoint sh "$KO_IMAGE" -c 'cd /kube-ovn &&
  sha256sum start-ovs.sh ovs-healthcheck.sh uninstall.sh && getcap /usr/bin/ovs-ovn-supervisor &&
  sha256sum </usr/bin/ovs-ovn-supervisor')
want=$(cd images && sha256sum start-ovs.sh ovs-healthcheck.sh uninstall.sh)
want+=$'\n/usr/bin/ovs-ovn-supervisor cap_sys_nice=ep\n'"$want_sum  -"
[ "$got" = "$want" ] || die "the kube-ovn image's files are not ours:"$'\n'"$got"$'\nexpected:\n'"$want"

# Run it as both Kube-OVN charts run this container, as a real node (no sandbox):
# `command: ["/kube-ovn/start-ovs.sh"]` (the image's entrypoint and cmd replaced), uid 65534, not
# privileged, the five capabilities, the charts' environment (v1's; v2's is the same less
# KUBE_OVN_SB_PORT) and host paths, chowned to 65534 as the charts' hostpath-init leaves them.
# Two things differ, for this machine only: no kernel datapath (no module support), so
# OVS_OVN_SUPERVISOR_DATAPATH_TYPE=netdev and /dev/net/tun for br-int's tap device; and the
# Southbound is ovn-central in miniature, in a container of its own from the same image (as a
# cluster's ovn-central runs Kube-OVN's image): NB and SB ovsdb-servers and ovn-northd, which
# writes SB_Global and its internal version, so ovn-match-northd-version (on, as start-ovs.sh
# set it) finds them equal. The node joins its network namespace, so OVN_DB_IPS=127.0.0.1.
# Everything, the firewall rule included, happens in that private namespace, never the machine's.
[ -c /dev/net/tun ] || die "kube-ovn: /dev/net/tun is missing: the userspace datapath needs it"
KO_NAME=$NAME-kube-ovn
SB_NAME=$NAME-sb
podman run -d --name "$SB_NAME" --network none --entrypoint sh "$KO_BASE" -c \
  'ovsdb-tool create /tmp/sb.db /usr/share/ovn/ovn-sb.ovsschema &&
   ovsdb-tool create /tmp/nb.db /usr/share/ovn/ovn-nb.ovsschema &&
   ovsdb-server --detach --remote=punix:/tmp/nb.sock --unixctl=/tmp/nb.ctl --pidfile=/tmp/nb.pid \
     --log-file=/tmp/nb.log /tmp/nb.db &&
   ovn-northd --detach --ovnnb-db=unix:/tmp/nb.sock --ovnsb-db=tcp:127.0.0.1:6642 \
     --unixctl=/tmp/northd.ctl --pidfile=/tmp/northd.pid --log-file=/tmp/northd.log &&
   exec ovsdb-server --remote=ptcp:6642:127.0.0.1 --unixctl=/tmp/sb.ctl --pidfile=/tmp/sb.pid /tmp/sb.db' >/dev/null
t0=$(now_ms)
until podman exec "$SB_NAME" ovn-sbctl --db=tcp:127.0.0.1:6642 --timeout=2 \
  get SB_Global . options:northd_internal_version >/dev/null 2>&1; do
  (($(now_ms) - t0 < 20000)) ||
    die "kube-ovn: no ovn-northd version in the Southbound on 127.0.0.1:6642 within 20 s"
  sleep 0.1
done
host=$work/kube-ovn-host
ko_volumes=()
for v in run-ovs:/var/run/openvswitch run-ovn:/var/run/ovn etc-ovs:/etc/openvswitch \
  etc-ovn:/etc/ovn log-ovs:/var/log/openvswitch log-ovn:/var/log/ovn; do
  install -d -o 65534 -g 65534 -m 0755 "$host/${v%%:*}"
  ko_volumes+=(-v "$host/${v%%:*}:${v#*:}")
done
t0=$(now_ms)
podman run -d --name "$KO_NAME" --network "container:$SB_NAME" --device /dev/net/tun \
  --user 65534 --cap-drop=all --cap-add="$CAPS" --entrypoint /kube-ovn/start-ovs.sh "${ko_volumes[@]}" \
  -e ENABLE_SSL=false -e POD_IP=192.0.2.21 -e POD_NAME=ovs-ovn-x7k2p -e POD_NAMESPACE=kube-system \
  -e HW_OFFLOAD=false -e TUNNEL_TYPE=geneve -e NODE_NAME=kube-ovn-worker -e OVN_DB_IPS=127.0.0.1 \
  -e KUBE_OVN_SB_PORT=6642 -e OVN_REMOTE_PROBE_INTERVAL=10000 -e OVN_REMOTE_OPENFLOW_INTERVAL=180 \
  -e OVS_OVN_SUPERVISOR_DATAPATH_TYPE=netdev -e OVS_OVN_SUPERVISOR_STOP_BUDGET_MS="$STOP_BUDGET_MS" \
  "$KO_IMAGE" >/dev/null
# Started and alive by the charts' own probe command (their readiness and liveness), run as the
# kubelet runs it; then ready (connected to the Southbound) by `probe readiness`.
out=""
ko_started=""
ko_ready=""
while (($(now_ms) - t0 < READY_DEADLINE_S * 1000)); do
  if [ -z "$ko_started" ] && out=$(kexec "$KO_NAME" bash /kube-ovn/ovs-healthcheck.sh 2>&1); then
    ko_started=$(($(now_ms) - t0))
  fi
  if [ -n "$ko_started" ] && out=$(kexec "$KO_NAME" ovs-ovn-supervisor probe readiness 2>&1); then
    ko_ready=$(($(now_ms) - t0))
    break
  fi
  [ "$(podman inspect -f '{{.State.Running}}' "$KO_NAME")" = true ] ||
    die "kube-ovn: exited before it was ready: $out"
  sleep 0.1
done
[ -n "$ko_ready" ] || die "kube-ovn: not ready ${READY_DEADLINE_S} s after podman run: $out"
ko_supervisor_ready=$(podman logs "$KO_NAME" 2>&1 | sed -n 's/.*node ready.*ready_ms=\([0-9]*\).*/\1/p' | head -n 1)
# start-ovs.sh exec'd the supervisor: it is PID 1, `run` its only argument (no image cmd).
pid1=$(podman exec "$KO_NAME" sh -c 'readlink /proc/1/exe; tr "\0" " " </proc/1/cmdline')
[ "$pid1" = $'/usr/bin/ovs-ovn-supervisor\n/usr/bin/ovs-ovn-supervisor run ' ] ||
  die "kube-ovn: PID 1 is not 'ovs-ovn-supervisor run' exec'd by start-ovs.sh: $pid1"
# The node as a Kube-OVN node has it: the tunnel rule through Kube-OVN's own iptables (its file
# capabilities), the system-id on the host path, and no /usr/local/var/run link, which
# Kube-OVN's image has no directory for and 65534 may not make (the supervisor goes on).
kexec "$KO_NAME" iptables-nft -C INPUT -p udp --dport 6081 -m comment \
  --comment "ovs-ovn-supervisor: geneve tunnel" -j ACCEPT ||
  die "kube-ovn: no geneve tunnel rule in the node's INPUT chain"
[ "$(stat -c %u "$host/etc-ovs/system-id.conf")" = 65534 ] ||
  die "kube-ovn: no system-id.conf owned by 65534 on the host path"
podman exec "$KO_NAME" test ! -e /usr/local/var/run/openvswitch ||
  die "kube-ovn: /usr/local/var/run/openvswitch exists in an image that has no /usr/local/var"
# Every process as 65534 with exactly its file capabilities: the supervisor's cap_sys_nice,
# Kube-OVN's for ovsdb-server and ovs-vswitchd, none for Kube-OVN's ovn-controller. One
# ovsdb-server: the Southbound is OVN_DB_IPS's. No shell, no dumb-init.
ko_procs=$(proc_caps "$KO_NAME")
declare -A ko_want=(
  [ovs-ovn-supervi]=0000000000800000
  [ovsdb-server]=0000000000000400
  [ovs-vswitchd]=0000000000201400
  [ovn-controller]=0000000000000000
)
for comm in "${!ko_want[@]}"; do
  line="$comm uid=65534 eff=${ko_want[$comm]} prm=${ko_want[$comm]} amb=0000000000000000 bnd=0000000000a03400 nnp=0 sec=2"
  grep -qxF "$line" <<<"$ko_procs" || die "kube-ovn: no process '$line'; the container has:"$'\n'"$ko_procs"
done
[ "$(wc -l <<<"$ko_procs")" = 4 ] || die "kube-ovn: expected exactly four processes:"$'\n'"$ko_procs"
nices=$(daemon_nices "$KO_NAME")
[ -n "$nices" ] && ! grep -qv ' -10$' <<<"$nices" || die "kube-ovn: daemons not at nice -10:"$'\n'"$nices"

ko_tools "$KO_NAME" kube-ovn
ko_ko=$ko_summary
# Kube-OVN's cleanup.sh: `kubectl exec <ovs-ovn pod> -- bash /kube-ovn/uninstall.sh` under
# `set -e`, as 65534. On state: exit 0, no daemon left, our rule gone, the supervisor alive
# (kubelet must not restart it into a new node) and not ready; then the ordered SIGTERM as ever.
kexec "$KO_NAME" bash /kube-ovn/uninstall.sh >"$work/ko-uninstall.out" 2>&1 ||
  die "kube-ovn: bash /kube-ovn/uninstall.sh failed: $(cat "$work/ko-uninstall.out")"
left=$(proc_caps "$KO_NAME" | grep -vE '^(ovs-ovn-supervi|setpriv|bash) ' || true)
[ -z "$left" ] || die "kube-ovn: processes left after uninstall:"$'\n'"$left"
! kexec "$KO_NAME" iptables-nft -C INPUT -p udp --dport 6081 -m comment \
  --comment "ovs-ovn-supervisor: geneve tunnel" -j ACCEPT 2>/dev/null ||
  die "kube-ovn: the tunnel rule is still there after uninstall"
podman exec "$KO_NAME" ovs-ovn-supervisor probe liveness >/dev/null ||
  die "kube-ovn: not alive after uninstall (kubelet would restart the container)"
! podman exec "$KO_NAME" ovs-ovn-supervisor probe readiness >/dev/null ||
  die "kube-ovn: still ready after uninstall"
stop_node "$KO_NAME"
ko_stop=$stop_ms
! podman logs "$KO_NAME" 2>&1 | grep -q 'kube-ovn stand-in:' ||
  die "kube-ovn: a Kube-OVN script of the stand-in ran: $(podman logs "$KO_NAME" 2>&1 | grep 'kube-ovn stand-in:')"
podman rm "$KO_NAME" >/dev/null # before the Southbound, whose network namespace it shares
podman rm -f -t 0 "$SB_NAME" >/dev/null
say "kube-ovn (the charts' start-ovs.sh, uid 65534, the five, the charts' env and host paths, a real node): the charts' probe passes ${ko_started} ms after podman run, ready ${ko_ready} ms (supervisor's own ready_ms=${ko_supervisor_ready:-?}), stopped in ${ko_stop} ms, exit 0"
say "kube-ovn processes: $(sed -E 's/ (prm|amb|bnd|nnp|sec)=[^ ]*//g' <<<"$ko_procs" | tr '\n' ';')"
say "kubectl-ko as 65534: debian image: $nr_ko; kube-ovn image (Kube-OVN's own ip and tcpdump): $ko_ko"

ko_total_ms=$(($(now_ms) - t_ko))
total_ms=$(($(now_ms) - t_start))
pkgs=$(podman run --rm --network none --entrypoint dpkg-query "$IMAGE" -W -f '${Package}=${Version},' \
  openvswitch-switch ovn-host)
say "PASS base=$SUITE packages=${pkgs%,} image=$IMAGE size=${size_mb}MB ready_ms=${root_ready} supervisor_ready_ms=${supervisor_ready_ms:-?} stop_ms=${root_stop} exit=0 nonroot_ready_ms=${nr_ready} nonroot_supervisor_ready_ms=${nr_supervisor_ready:-?} nonroot_stop_ms=${nr_stop} kube_ovn_image=$KO_IMAGE kube_ovn_added=${ko_added_mb}MB kube_ovn_started_ms=${ko_started} kube_ovn_ready_ms=${ko_ready} kube_ovn_supervisor_ready_ms=${ko_supervisor_ready:-?} kube_ovn_stop_ms=${ko_stop} base_ms=${base_ms} cargo_ms=${cargo_ms} build_ms=${build_ms} standin_build_ms=${standin_ms} kube_ovn_build_ms=${ko_build_ms} kube_ovn_part_ms=${ko_total_ms} total_ms=${total_ms}"
