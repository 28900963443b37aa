#!/usr/bin/env bash
# Installs what building, running and testing ovs-ovn-supervisor needs on Debian 12:
# the real daemons (openvswitch-switch, ovn-host, ovn-central) and the tools the tests use.
# Idempotent and quiet when everything is already there. Needs root (or sudo) for apt.
#
# `--vm` also installs the kernel-datapath test bed of scripts/vm-test.sh: QEMU, Debian's own
# kernel (with the openvswitch, geneve and vxlan modules), busybox (virtme-ng's initramfs),
# ping, and virtme-ng (`vng`) in a virtualenv of its own, VNG_VENV (default
# /var/cache/ovs-ovn-supervisor/vng), so neither Debian's nor pyenv's Python is modified.
set -euo pipefail

vm=0
for a in "$@"; do
  case "$a" in
    --vm) vm=1 ;;
    -h | --help) echo "usage: $0 [--vm]"; exit 0 ;;
    *) echo "install-deps: unknown argument $a (expected --vm)" >&2; exit 2 ;;
  esac
done

packages=(openvswitch-switch openvswitch-common ovn-host ovn-central ovn-common iproute2 iptables ipset procps util-linux python3 openssl)
# linux-image-amd64 puts a kernel in /boot and its modules in /lib/modules: harmless to the
# machine's own (booted) kernel, used only as the VM's kernel.
((vm)) && packages+=(qemu-system-x86 linux-image-amd64 busybox-static iputils-ping kmod)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  # policy-rc.d keeps the packages' postinst from starting system daemons on the machine's own
  # /var/run/openvswitch: the supervisor runs its own, in its own directories.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
    created_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$created_policy" = 1 ] && $sudo rm -f "$policy"
fi

# kubernetes-validate checks images/ovs-ovn.yaml offline (tests/manifest.rs).
if ! command -v kubernetes-validate >/dev/null && ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
  python3 -m pip install --quiet kubernetes-validate==1.37.0 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages kubernetes-validate==1.37.0
fi

if ((vm)); then
  # virtme-ng, pinned, in its own venv: fast when already there (one stat + one version check).
  VNG_VENV=${VNG_VENV:-/var/cache/ovs-ovn-supervisor/vng}
  VNG_VERSION=1.42
  if ! "$VNG_VENV/bin/vng" --version 2>/dev/null | grep -q "$VNG_VERSION"; then
    echo "install-deps: installing virtme-ng $VNG_VERSION in $VNG_VENV"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo mkdir -p "$(dirname "$VNG_VENV")"
    if ! $sudo python3 -m venv "$VNG_VENV" 2>/dev/null; then
      # Debian's own python3 has venv only with python3-venv.
      $sudo rm -rf "$VNG_VENV"
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      $sudo python3 -m venv "$VNG_VENV"
    fi
    $sudo "$VNG_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "virtme-ng==$VNG_VERSION"
    "$VNG_VENV/bin/vng" --version >/dev/null
  fi
fi

command -v cargo >/dev/null || { echo "install-deps: cargo not found: install Rust (rustup) first" >&2; exit 1; }
