#!/usr/bin/env bash
# Runs a command inside another Debian root filesystem (the trixie root of
# scripts/trixie-root.sh), with this repository at the same path, so binaries built here
# (target/...) run there against that root's OVS/OVN:
#
#   scripts/in-root.sh ROOT COMMAND [ARGS...]
#
# In a mount namespace of its own (`unshare --mount`, private propagation), nothing of which
# reaches the machine's:
#   ROOT        bind-mounted on itself, so that "/" is a mount point inside (ip netns needs it)
#   ROOT/proc   a new proc mount (same pid namespace: pids are the machine's, so a test on the
#               host and a daemon in the root see each other, as pods with hostPID do)
#   ROOT/sys, ROOT/dev   bind mounts of the machine's (/dev/net/tun for userspace ports)
#   ROOT/run    an empty tmpfs: the root's /run/openvswitch, /run/ovn and /run/netns (`ip netns
#               add`) are its own, never the machine's, and vanish with the namespace
#   ROOT/tmp    the machine's /tmp when OOS_SHARE_TMP=1 (a node directory made on the host is
#               then seen at the same path inside, as in an upgrade), else an empty tmpfs
#   the repository and every path in OOS_BIND (colon-separated) at the same path
# The process keeps its pid through every step (unshare, sh and chroot all exec), so a caller
# that spawned this script can signal and wait for COMMAND itself. The working directory inside
# is the repository. The environment is passed through as it is.
set -euo pipefail

[ $# -ge 2 ] || {
  echo "usage: $0 ROOT COMMAND [ARGS...]" >&2
  exit 2
}
root=$(realpath "$1")
shift
repo=$(realpath "$(dirname "$0")/..")
[ -x "$root/usr/sbin/ovs-vswitchd" ] || {
  echo "in-root: $root holds no ovs-vswitchd: make it with scripts/trixie-root.sh" >&2
  exit 2
}

binds="$repo${OOS_BIND:+:$OOS_BIND}"
export OOS_IN_ROOT_ROOT=$root OOS_IN_ROOT_REPO=$repo OOS_IN_ROOT_BINDS=$binds
export OOS_IN_ROOT_SHARE_TMP=${OOS_SHARE_TMP:-0}
# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare --mount --propagation private -- /bin/sh -ec '
  r=$OOS_IN_ROOT_ROOT
  # The root a mount point of its own: `ip netns` and `unshare` inside change the propagation of
  # "/", which fails (EINVAL) on a plain directory.
  mount --bind "$r" "$r"
  mount -t proc proc "$r/proc"
  mount --rbind /sys "$r/sys"
  mount --rbind /dev "$r/dev"
  mount -t tmpfs -o mode=0755 tmpfs "$r/run"
  mkdir -p "$r/run/lock"
  if [ "$OOS_IN_ROOT_SHARE_TMP" = 1 ]; then
    mount --rbind /tmp "$r/tmp"
  else
    mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
  fi
  IFS=:
  for d in $OOS_IN_ROOT_BINDS; do
    [ -n "$d" ] || continue
    mkdir -p "$r$d"
    mount --rbind "$d" "$r$d"
  done
  unset IFS
  cd "$r$OOS_IN_ROOT_REPO"
  unset OOS_IN_ROOT_ROOT OOS_IN_ROOT_BINDS OOS_IN_ROOT_SHARE_TMP
  exec chroot "$r" /bin/sh -c "cd \"\$OOS_IN_ROOT_REPO\" && unset OOS_IN_ROOT_REPO && exec \"\$@\"" sh "$@"
' sh "$@"
