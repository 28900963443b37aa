#!/usr/bin/env bash
# Probe latency and memory: ours vs a Kube-OVN-style shell probe, side by side in one run.
# Usage: scripts/bench-probe.sh [RUNS]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
RUNS=${1:-200} cargo bench --bench probe
