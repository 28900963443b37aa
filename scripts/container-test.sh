#!/usr/bin/env bash
# Builds the real Dockerfile with podman and runs the image with the supervisor as PID 1, offline.
#
#  1. Installs podman, runc and debootstrap if missing; makes podman usable here (runc runtime,
#     no default ulimits) through a drop-in it owns: /etc/containers/containers.conf.d/.
#  2. No registry is reachable, so the base image is made here: `debootstrap --variant=minbase
#     bookworm` from the Debian mirror apt already uses, slimmed like the official -slim variant
#     (dpkg path excludes, no apt lists), `podman import`ed as docker.io/library/debian:bookworm-slim,
#     the name the Dockerfile's runtime stage uses. Kept between runs (delete it with
#     `podman rmi docker.io/library/debian:bookworm-slim` to start cold).
#  3. Builds the binary on this machine (`cargo build --release --locked`) and the image from the
#     Dockerfile with `--build-context builder=DIR`: that named context takes the builder
#     stage's place, so the rust image is never needed, and the runtime stage built is the one
#     users get. (The host binary is glibc-dynamic, linked on Debian 12: it runs on bookworm.)
#  4. Runs the image in sandbox mode (a whole node inside /sandbox: userspace datapath, a local
#     OVN Southbound, vswitchd dummy devices since the container has no CAP_SYS_ADMIN), with
#     the supervisor as PID 1 and `--network none`; polls
#     `podman exec NAME ovs-ovn-supervisor probe readiness` until it passes; `podman stop`s it;
#     checks exit code 0, the stop time against the 25 s stop budget and the ordered shutdown in
#     the logs (ovn-controller, ovs-vswitchd, ovsdb-server, then the supervisor's clean stop).
#
# CONTAINER_TEST_NONROOT=1 also builds the image with --build-arg FILE_CAPS=true and runs it as
# uid 65534 with the capabilities only in the bounding set, as Kubernetes does (see step 5).
#
# The last line printed is the summary:
#   container-test: PASS image=... size=...MB ready_ms=... (supervisor ...) stop_ms=... exit=0
# Needs root (podman as root with runc). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=docker.io/library/debian:bookworm-slim
IMAGE=${CONTAINER_TEST_IMAGE:-localhost/ovs-ovn-supervisor:container-test}
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
  # The Debian mirror apt is configured with on this machine (deb822 or one-line sources).
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
    sources+="deb $site $release main"$'\n'
  done
  [ -n "$mirror" ] || die "no 'bookworm main' source in apt's configuration (/etc/apt/sources.list*)"
  say "debootstrap --variant=minbase bookworm from $mirror"
  rootfs=$work/rootfs
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
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
  --build-context builder="$work/builder" \
  -t "$IMAGE" -f Dockerfile . >"$work/build.log" 2>&1 ||
  {
    tail -n 40 "$work/build.log" >&2
    die "podman build failed"
  }
build_ms=$(($(now_ms) - t_image))
size_bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
size_mb=$(awk -v b="$size_bytes" 'BEGIN { printf "%.1f", b / 1000000 }')
say "built $IMAGE (${size_mb} MB) in ${build_ms} ms (cargo build ${cargo_ms} ms before it)"

# Nothing in the start path is a shell script: the entrypoint is our binary.
entry=$(podman image inspect --format '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$IMAGE")
[ "$entry" = '["/usr/bin/ovs-ovn-supervisor"] ["run"]' ] || die "unexpected entrypoint/cmd: $entry"

# ---- 4. run, ready, stop ---------------------------------------------------------------------
t_run=$(now_ms)
podman run -d --name "$NAME" --network none \
  -e OVS_OVN_SUPERVISOR_SANDBOX="$SANDBOX" \
  -e OVS_OVN_SUPERVISOR_STOP_BUDGET_MS="$STOP_BUDGET_MS" \
  "$IMAGE" >/dev/null
ready=""
probes=0
while (($(now_ms) - t_run < READY_DEADLINE_S * 1000)); do
  probes=$((probes + 1))
  if out=$(podman exec "$NAME" ovs-ovn-supervisor probe readiness 2>&1); then
    ready=$(($(now_ms) - t_run))
    break
  fi
  [ "$(podman inspect -f '{{.State.Running}}' "$NAME")" = true ] ||
    die "the container exited before it was ready: $out"
  sleep 0.1
done
[ -n "$ready" ] || die "not ready within ${READY_DEADLINE_S} s: $out"
pid1=$(podman exec "$NAME" readlink /proc/1/exe)
[ "$pid1" = /usr/bin/ovs-ovn-supervisor ] || die "PID 1 is $pid1, not /usr/bin/ovs-ovn-supervisor"
supervisor_ready_ms=$(podman logs "$NAME" 2>&1 | sed -n 's/.*node ready.*ready_ms=\([0-9]*\).*/\1/p' | head -n 1)
say "ready ${ready} ms after podman run (${probes} probes; supervisor's own ready_ms=${supervisor_ready_ms:-?})"
podman exec "$NAME" ovs-ovn-supervisor status

t_stop=$(now_ms)
podman stop -t "$STOP_TIMEOUT_S" "$NAME" >/dev/null
stop_ms=$(($(now_ms) - t_stop))
exit_code=$(podman inspect -f '{{.State.ExitCode}}' "$NAME")
logs=$(podman logs "$NAME" 2>&1)
[ "$exit_code" = 0 ] || die "container exited $exit_code after podman stop (expected 0)"
((stop_ms < STOP_BUDGET_MS)) || die "podman stop took ${stop_ms} ms, over the ${STOP_BUDGET_MS} ms stop budget"

# The ordered stop: each daemon's "stopped" line, in order, then the supervisor's clean stop.
# Lines look like: 2025-01-01T00:00:00.000000Z  INFO stopped daemon="ovn-controller" pid=23 ...
order=$(grep -E '^[^ ]+ +INFO stopped daemon=' <<<"$logs" | sed -E 's/.*daemon="?([a-z_-]+).*/\1/' | tr '\n' ' ')
case "$order" in
  "ovn-controller ovs-vswitchd ovsdb-server"*) ;;
  *) die "shutdown order in the logs is '$order', expected ovn-controller, ovs-vswitchd, ovsdb-server" ;;
esac
grep -qE '^[^ ]+ +INFO stopped signal=.*clean=true' <<<"$logs" || die "no clean stop line in the logs"
say "stopped in ${stop_ms} ms, exit ${exit_code}, order: ${order% }"

# ---- 5. optional: non-root with file capabilities (CONTAINER_TEST_NONROOT=1) ----------------
# As Kubernetes runs `runAsUser: 65534` with `capabilities.add`: the capabilities are only in the
# bounding set, the process itself has none (podman's --user would also make them ambient, which
# would prove nothing, so setpriv drops to 65534 with empty inheritable and ambient sets). The
# daemons must then get theirs from the image's file capabilities (--build-arg FILE_CAPS=true).
nonroot=""
if [ "${CONTAINER_TEST_NONROOT:-0}" = 1 ]; then
  podman build --pull=never --network host --layers --build-arg FILE_CAPS=true \
    --build-context builder="$work/builder" \
    -t "${IMAGE%:*}:nonroot" -f Dockerfile . >"$work/build-nonroot.log" 2>&1 ||
    {
      tail -n 40 "$work/build-nonroot.log" >&2
      die "podman build --build-arg FILE_CAPS=true failed"
    }
  podman run -d --name "$NR_NAME" --network none \
    --cap-add NET_ADMIN,NET_BIND_SERVICE,NET_RAW,SYS_ADMIN,SYS_MODULE,SYS_NICE \
    -e OVS_OVN_SUPERVISOR_SANDBOX=/tmp/sandbox --entrypoint /usr/bin/setpriv "${IMAGE%:*}:nonroot" \
    --reuid 65534 --regid 65534 --clear-groups --inh-caps=-all --ambient-caps=-all \
    /usr/bin/ovs-ovn-supervisor run >/dev/null
  t_nr=$(now_ms)
  until podman exec "$NR_NAME" ovs-ovn-supervisor probe readiness >/dev/null 2>&1; do
    (($(now_ms) - t_nr < READY_DEADLINE_S * 1000)) || die "non-root: not ready within ${READY_DEADLINE_S} s"
    [ "$(podman inspect -f '{{.State.Running}}' "$NR_NAME")" = true ] || die "non-root: exited before ready"
    sleep 0.1
  done
  nr_ready=$(($(now_ms) - t_nr))
  # uid and effective capabilities of the supervisor (none) and of ovs-vswitchd (its file caps).
  caps=$(podman exec "$NR_NAME" sh -c 'for p in 1 $(cat /tmp/sandbox/run/openvswitch/ovs-vswitchd.pid); do
      printf "%s uid=%s eff=%s\n" "$(cat /proc/$p/comm)" "$(awk "/^Uid/{print \$2}" /proc/$p/status)" \
        "$(awk "/^CapEff/{print \$2}" /proc/$p/status)"; done')
  grep -q '^ovs-ovn-supervi uid=65534 eff=0000000000000000$' <<<"$caps" || die "non-root: supervisor: $caps"
  grep -q '^ovs-vswitchd uid=65534 eff=0000000000a01400$' <<<"$caps" ||
    die "non-root: ovs-vswitchd lacks its file capabilities (net_admin,net_bind_service,sys_admin,sys_nice): $caps"
  podman stop -t "$STOP_TIMEOUT_S" "$NR_NAME" >/dev/null
  nr_exit=$(podman inspect -f '{{.State.ExitCode}}' "$NR_NAME")
  [ "$nr_exit" = 0 ] || die "non-root: exit $nr_exit after podman stop"
  podman rm "$NR_NAME" >/dev/null
  say "non-root (uid 65534, file capabilities): ready in ${nr_ready} ms, exit 0; $(tr '\n' ';' <<<"$caps")"
  nonroot=" nonroot=pass"
fi

total_ms=$(($(now_ms) - t_start))
say "PASS image=$IMAGE size=${size_mb}MB ready_ms=${ready} supervisor_ready_ms=${supervisor_ready_ms:-?} stop_ms=${stop_ms} exit=${exit_code} base_ms=${base_ms} cargo_ms=${cargo_ms} build_ms=${build_ms} total_ms=${total_ms}${nonroot}"
