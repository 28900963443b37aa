#!/usr/bin/env bash
# Makes (once) a Debian 13 (trixie) root filesystem holding the OVS 3.5 / OVN 25.03 that
# Kube-OVN ships, for the version matrix (scripts/test-matrix.sh) and the upgrade test, and
# prints its path on stdout.
#
#   debootstrap --variant=minbase trixie DIR http://deb.debian.org/debian
#   chroot DIR apt-get install openvswitch-switch ovn-host ovn-central ... (no daemon started)
#
# Cached under $OOS_CACHE (default /var/cache/ovs-ovn-supervisor) as trixie-root/KEY, where KEY
# is a hash of the suite and the package list: change either and a new root is made next to the
# old one. Built in a temporary directory and renamed into place only when complete, so an
# interrupted run never leaves a half-made root that looks cached. Cold: a few minutes
# (download); warm: instant. Needs root. `--print-versions` prints the packaged versions too.
set -euo pipefail

SUITE=trixie
MIRROR=${OOS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${OOS_CACHE:-/var/cache/ovs-ovn-supervisor}
# What the integration tests run inside the root: the daemons and their tools, ip netns,
# iptables (both backends), ipset (uninstall), kill/ps, unshare/nsenter/prlimit, openssl (TLS
# test), getcap, curl (the migration test scrapes /metrics inside the node's namespace); ping and
# python3 for the VM's loss bench on this root's OVS (scripts/vm-test.sh, VM_OVS=trixie).
PACKAGES=(openvswitch-switch openvswitch-common ovn-host ovn-central ovn-common iproute2
  iptables ipset procps util-linux openssl kmod libcap2-bin ca-certificates curl iputils-ping
  python3)

log() { echo "trixie-root: $*" >&2; }
die() {
  log "FAIL: $*"
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and chroot)"
command -v debootstrap >/dev/null || {
  log "installing debootstrap"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    debootstrap debian-archive-keyring >/dev/null
}

key=$(printf '%s\n' "$SUITE" "${PACKAGES[@]}" | sha256sum | cut -c1-12)
root=$CACHE/trixie-root/$key

if [ ! -x "$root/usr/sbin/ovs-vswitchd" ]; then
  mkdir -p "$CACHE/trixie-root"
  tmp=$(mktemp -d "$CACHE/trixie-root/.build.XXXXXX")
  trap 'umount -R "$tmp/proc" 2>/dev/null || true; rm -rf --one-file-system "$tmp"' EXIT
  log "debootstrap --variant=minbase $SUITE from $MIRROR (cold: a few minutes)"
  debootstrap --variant=minbase "$SUITE" "$tmp" "$MIRROR" >"$tmp.log" 2>&1 ||
    {
      tail -n 30 "$tmp.log" >&2
      die "debootstrap failed (log: $tmp.log)"
    }
  # No daemon may start inside: their postinst would run ovs-ctl on the root's /var/run.
  printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
  chmod 0755 "$tmp/usr/sbin/policy-rc.d"
  printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$tmp/etc/apt/sources.list"
  mount -t proc proc "$tmp/proc"
  log "apt-get install ${PACKAGES[*]}"
  chroot "$tmp" apt-get update -qq >>"$tmp.log" 2>&1 || die "apt-get update in the root failed (log: $tmp.log)"
  DEBIAN_FRONTEND=noninteractive chroot "$tmp" apt-get install -y -qq --no-install-recommends \
    "${PACKAGES[@]}" >>"$tmp.log" 2>&1 || die "apt-get install in the root failed (log: $tmp.log)"
  umount "$tmp/proc"
  chroot "$tmp" apt-get clean
  # The packages' own conf.db and system-id: never used (tests bring their own directories).
  rm -f "$tmp"/etc/openvswitch/conf.db "$tmp"/etc/openvswitch/system-id.conf
  mv -T "$tmp" "$root"
  rm -f "$tmp.log"
  trap - EXIT
  log "made $root"
fi

if [ "${1:-}" = --print-versions ]; then
  chroot "$root" dpkg-query -W -f='${Package} ${Version}\n' openvswitch-switch ovn-host >&2
fi
echo "$root"
