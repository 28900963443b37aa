#!/usr/bin/env bash
# Installs what building, running and testing ovs-ovn-supervisor needs on Debian 12:
# the real daemons (openvswitch-switch, ovn-host, ovn-central) and the tools the tests use.
# Idempotent and quiet when everything is already there. Needs root (or sudo) for apt.
set -euo pipefail

packages=(openvswitch-switch openvswitch-common ovn-host ovn-central ovn-common iproute2 iptables procps util-linux python3 openssl)
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

command -v cargo >/dev/null || { echo "install-deps: cargo not found: install Rust (rustup) first" >&2; exit 1; }
