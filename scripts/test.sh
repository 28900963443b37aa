#!/usr/bin/env bash
# The whole test suite: install what is missing, check formatting and lints, run every test
# (unit tests and integration tests against the real Debian OVS/OVN daemons, each in its own
# temp directory and network namespace). Fails on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component" >/dev/null 2>&1 || true
  fi
done

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# Benches are built by clippy above and run by scripts/bench*.sh, never here.
cargo test --lib --bins --tests --locked
