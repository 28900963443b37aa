#!/usr/bin/env bash
# Builds the real Dockerfile with podman and runs the image with the supervisor as PID 1, offline.
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
#  3. Builds the binary on this machine (`cargo build --release --locked`) and the image from the
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
#        fails while ovs-vswitchd is SIGSTOPped and passes again after SIGCONT; and that
#        `ovs-ovn-supervisor firewall ensure` works from file capabilities alone.
#
# The last line printed is the summary:
#   container-test: PASS image=... size=...MB ready_ms=... (root) ... nonroot_ready_ms=... total_ms=...
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
  for c in "$NAME" "$NR_NAME"; do
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
cargo build --release --locked --quiet --bin ovs-ovn-supervisor
cargo_ms=$(($(now_ms) - t_build))
mkdir -p "$work/builder"
install -m 0755 target/release/ovs-ovn-supervisor "$work/builder/ovs-ovn-supervisor"
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
procs=$(
  podman exec -i "$NR_NAME" sh -s <<'SH' | grep -vE '^(sh|awk) ' | sort
for s in /proc/[0-9]*/status; do
  awk '/^Name:/ { n = $2 } /^Uid:/ { u = $2 } /^CapEff:/ { e = $2 } /^CapPrm:/ { p = $2 }
       /^CapAmb:/ { a = $2 } /^CapBnd:/ { b = $2 } /^NoNewPrivs:/ { nn = $2 }
       END { if (n != "") printf "%s uid=%s eff=%s prm=%s amb=%s bnd=%s nnp=%s\n", n, u, e, p, a, b, nn }' "$s" 2>/dev/null
done
SH
)
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
  line="$comm uid=65534 eff=${want[$comm]} prm=${want[$comm]} amb=0000000000000000 bnd=0000000000a03400 nnp=0"
  grep -qxF "$line" <<<"$procs" || die "non-root: no process '$line'; the container has:"$'\n'"$procs"
done
bad=$(grep -vE '^(ovs-ovn-supervi|ovsdb-server|ovs-vswitchd|ovn-controller) uid=65534 ' <<<"$procs" || true)
[ -z "$bad" ] || die "non-root: unexpected processes:"$'\n'"$bad"
[ "$(grep -c '^ovsdb-server ' <<<"$procs")" = 2 ] || die "non-root: expected two ovsdb-server:"$'\n'"$procs"

# The daemons run at nice -10 as under ovs-ctl: the supervisor's CAP_SYS_NICE, used in each
# child before exec (field 19 of /proc/PID/stat is the nice value).
nices=$(podman exec "$NR_NAME" sh -c 'for s in /proc/[0-9]*/stat; do
  c=$(cat "${s%stat}comm" 2>/dev/null) || continue
  case "$c" in ovsdb-server|ovs-vswitchd|ovn-controller)
    echo "$c $(sed "s/.*) //" "$s" | cut -d" " -f17)";; esac; done')
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
  [ "${spec#*=}" = ep ] || die "non-root: $path has '$spec', expected +ep (no inheritable)"
done <<<"$fcaps"
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

stop_node "$NR_NAME"
nr_stop=$stop_ms
say "non-root (uid 65534, --cap-drop=all --cap-add=$CAPS): ready ${nr_ready} ms (supervisor's own ready_ms=${nr_supervisor_ready:-?}), stopped in ${nr_stop} ms, exit 0"
say "non-root processes: $(sed -E 's/ (prm|amb|bnd|nnp)=[^ ]*//g' <<<"$procs" | tr '\n' ';')"
say "non-root file capabilities ($nfcaps files): $(tr '\n' ';' <<<"$fcaps")"
say "non-root firewall ensure (nft backend) and iptables-legacy with the 65534-owned lock: ok"

total_ms=$(($(now_ms) - t_start))
pkgs=$(podman run --rm --network none --entrypoint dpkg-query "$IMAGE" -W -f '${Package}=${Version},' \
  openvswitch-switch ovn-host)
say "PASS base=$SUITE packages=${pkgs%,} image=$IMAGE size=${size_mb}MB ready_ms=${root_ready} supervisor_ready_ms=${supervisor_ready_ms:-?} stop_ms=${root_stop} exit=0 nonroot_ready_ms=${nr_ready} nonroot_supervisor_ready_ms=${nr_supervisor_ready:-?} nonroot_stop_ms=${nr_stop} base_ms=${base_ms} cargo_ms=${cargo_ms} build_ms=${build_ms} total_ms=${total_ms}"
