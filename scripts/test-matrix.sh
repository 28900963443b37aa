#!/usr/bin/env bash
# The version matrix: the integration suite against each OVS/OVN this project supports.
#
#   scripts/test-matrix.sh [--versions host,trixie] [TEST-FILTER... | -- LIBTEST-ARGS...]
#
#   host    the machine's own packages (Debian 12: OVS 3.1 / OVN 23.03)
#   trixie  a Debian 13 root (scripts/trixie-root.sh, cached): OVS 3.5 / OVN 25.03, what
#           Kube-OVN v1.14+ ships. The test binary and the supervisor are built once here (a
#           bookworm glibc binary runs on trixie) and run inside the root with
#           scripts/in-root.sh: its own /run (netns, run dirs), /tmp, proc; nothing of the
#           machine's /var/run/openvswitch or iptables is touched (every test has its own netns).
#   upgrade the cross-version tests that need both (upgrade::, #[ignore]d in a plain run): run on
#           the host with OOS_TRIXIE_ROOT set, they start a second supervisor inside the root.
#
# Default filters: run_sandbox:: faults:: probes:: takeover:: takeover_restore::
# confdb_versions:: (the modules every version must pass: takeover_restore:: for the restore
# mark, which relies on ovn-controller's first table deleting every flow); any other filters
# or libtest arguments replace them (`-- --skip
# manifest::` runs everything but the manifest check). Prints one line per version: its
# packages, pass/FAIL, seconds. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

versions=host,trixie,upgrade
if [ "${1:-}" = --versions ]; then
  versions=$2
  shift 2
fi
[ "${1:-}" != -- ] || shift
filters=("$@")
((${#filters[@]})) || filters=(run_sandbox:: faults:: probes:: takeover:: takeover_restore:: confdb_versions::)

say() { echo "test-matrix: $*" >&2; }

# One build for every version: the integration test binary (and, through it, the debug
# ovs-ovn-supervisor that CARGO_BIN_EXE_ovs-ovn-supervisor names).
testbin=$(cargo test --no-run --locked --test integration --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "integration" and m.get("executable"):
        print(m["executable"])')
[ -x "$testbin" ] || {
  cargo test --no-run --locked --test integration >&2
  say "FAIL: no integration test binary"
  exit 1
}

summary=()
rc=0
run_version() {
  local v=$1 t0 status=pass pkgs
  shift
  t0=$(date +%s)
  case "$v" in
    host)
      pkgs=$(dpkg-query -W -f='${Package} ${Version}; ' openvswitch-switch ovn-host)
      say "== host: $pkgs"
      "$testbin" "$@" || status=FAIL
      ;;
    trixie)
      root=$(scripts/trixie-root.sh)
      pkgs=$(chroot "$root" dpkg-query -W -f='${Package} ${Version}; ' openvswitch-switch ovn-host)
      say "== trixie ($root): $pkgs"
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        scripts/in-root.sh "$root" "$testbin" "$@" || status=FAIL
      ;;
    upgrade)
      root=$(scripts/trixie-root.sh)
      pkgs="host $(dpkg-query -W -f='${Version}' openvswitch-switch) -> trixie $(chroot "$root" dpkg-query -W -f='${Version}' openvswitch-switch)"
      say "== upgrade: $pkgs"
      OOS_TRIXIE_ROOT=$root "$testbin" upgrade:: --ignored --nocapture || status=FAIL
      ;;
    *)
      say "unknown version '$v' (host, trixie, upgrade)"
      exit 2
      ;;
  esac
  [ "$status" = pass ] || rc=1
  summary+=("$v: $status in $(($(date +%s) - t0)) s ($pkgs)")
}

IFS=, read -ra vs <<<"$versions"
for v in "${vs[@]}"; do
  if [ "$v" = upgrade ]; then
    run_version upgrade
  else
    run_version "$v" "${filters[@]}"
  fi
done
for s in "${summary[@]}"; do say "$s"; done
exit "$rc"
