#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and reports, per
# target, the executions, exec/s and any crash. Not part of CI.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60)
#
# Works on the stable toolchain: targets are built with `--sanitizer none`,
# whose flags (sancov passes, -Cllvm-args) are all stable. The code under test
# is safe Rust, where the sanitizer adds little but costs ~5x in speed.
#
# Environment:
#   FUZZ_TARGETS="codec config"  which targets to run (default: all in fuzz/fuzz_targets)
#   FUZZ_SANITIZER=address       build with AddressSanitizer instead; needs a
#                                nightly-only flag (-Zsanitizer), so the script
#                                sets RUSTC_BOOTSTRAP=1 for it on stable
#   (the two findings of the first run are fixed and checked on every input)
#   FUZZ_ARGS="..."              extra libFuzzer flags, e.g. "-seed=1 -max_len=8192"
#
# The seed corpus in fuzz/corpus/TARGET is read, never written: what libFuzzer
# learns goes to fuzz/target/corpus/TARGET (ignored by git) and is reused by
# the next run. A crash is saved under fuzz/artifacts/TARGET/; reproduce it with
#   cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-...
# and shrink it with `cargo fuzz tmin -s none TARGET FILE`.
set -euo pipefail

secs="${1:-60}"
if ! [[ "$secs" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

sanitizer="${FUZZ_SANITIZER:-none}"
if [[ "$sanitizer" != none ]]; then
    # cargo-fuzz passes -Zsanitizer=...; let the stable compiler accept it.
    export RUSTC_BOOTSTRAP=1
fi

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${targets[*]} (sanitizer: $sanitizer)"
cargo fuzz build -s "$sanitizer" >/dev/null

logs="fuzz/target/logs"
mkdir -p "$logs"
failed=0
summary=()
for t in "${targets[@]}"; do
    work="fuzz/target/corpus/$t"
    mkdir -p "$work" "fuzz/artifacts/$t"
    corpora=("$work")
    [[ -d "fuzz/corpus/$t" ]] && corpora+=("fuzz/corpus/$t")
    flags=(-max_total_time="$secs" -print_final_stats=1)
    [[ -f "fuzz/$t.dict" ]] && flags+=(-dict="fuzz/$t.dict")
    # shellcheck disable=SC2206
    [[ -n "${FUZZ_ARGS:-}" ]] && flags+=(${FUZZ_ARGS})
    log="$logs/$t.log"
    echo "== fuzzing $t for ${secs}s (log: $log)"
    rc=0
    # The outer timeout only guards against a hung run; libFuzzer stops itself.
    timeout --signal=INT --kill-after=30 "$((secs * 2 + 120))" \
        cargo fuzz run -s "$sanitizer" "$t" "${corpora[@]}" -- "${flags[@]}" >"$log" 2>&1 || rc=$?

    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)"
    if [[ -z "$runs" ]]; then
        # Fallback: "Done N runs in S second(s)".
        read -r runs took < <(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 \2/p' "$log" | tail -n1) || true
        [[ -n "${runs:-}" && -n "${took:-}" && "$took" -gt 0 ]] && rate=$((runs / took))
    fi
    runs="${runs:-?}"
    rate="${rate:-?}"
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)"
    if [[ $rc -eq 0 && -z "$artifact" ]]; then
        result="no crash"
    else
        failed=1
        if [[ -n "$artifact" ]]; then
            result="CRASH: $artifact"
        else
            result="FAILED (exit $rc), no artifact: see $log"
        fi
        echo "---- $t: failure (from $log)"
        grep -m1 -A4 -E "panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer" "$log" || tail -n 20 "$log"
        echo "----"
    fi
    line="$(printf '%-8s %12s executions %8s exec/s  %s' "$t" "$runs" "$rate" "$result")"
    echo "$line"
    summary+=("$line")
done

echo "== summary (${secs}s per target, sanitizer: $sanitizer)"
printf '%s\n' "${summary[@]}"
exit "$failed"
