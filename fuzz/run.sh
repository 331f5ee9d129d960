#!/usr/bin/env bash
# Builds every fuzz target, seeds the corpora from the repository's real data (seed.sh) and
# runs each target for RIGWORKER_FUZZ_SECONDS (default 30) seconds, two at a time
# (RIGWORKER_FUZZ_JOBS). Fails on any crash, hang (an input over RIGWORKER_FUZZ_TIMEOUT
# seconds, default 10) or out-of-memory (over 2 GiB RSS or one 2 GiB allocation), leaving the
# input under fuzz/artifacts/TARGET/ and libFuzzer's log under fuzz/logs/TARGET.log.
# Prints one line per target at the end: executions per second and coverage (libFuzzer's
# `cov:` edges and `ft:` features) from its final stats. Needs nightly and cargo-fuzz
# (.ci/setup installs both). RIGWORKER_FUZZ_SANITIZER=none builds without AddressSanitizer
# (a faster build and run; -malloc_limit_mb then has no effect, -rss_limit_mb still does).
# Usage: fuzz/run.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${RIGWORKER_FUZZ_SECONDS:-30}"
jobs="${RIGWORKER_FUZZ_JOBS:-2}"
timeout="${RIGWORKER_FUZZ_TIMEOUT:-10}"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

start=$(date +%s)
# Two cores on CI: cargo's default would be right, but say it, the build is long.
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo +nightly fuzz build -s "${RIGWORKER_FUZZ_SANITIZER:-address}"
built=$(date +%s)
./seed.sh >/dev/null
mkdir -p logs
bin=target/x86_64-unknown-linux-gnu/release

run_one() {
  local t="$1"
  mkdir -p "corpus/$t" "artifacts/$t"
  # -rss_limit_mb: the whole process; -malloc_limit_mb: any single allocation (a parser that
  # trusts a length field); -timeout: one input.
  "$bin/$t" "corpus/$t" -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -timeout="$timeout" -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    >"logs/$t.log" 2>&1
}

declare -A status=()
running=()
for t in "${targets[@]}"; do
  if [ ! -x "$bin/$t" ]; then
    echo "fuzz: no target $t (cargo +nightly fuzz list)" >&2
    exit 2
  fi
  run_one "$t" &
  running+=("$!:$t")
  if [ ${#running[@]} -ge "$jobs" ]; then
    entry="${running[0]}"
    running=("${running[@]:1}")
    if wait "${entry%%:*}"; then status[${entry#*:}]=ok; else status[${entry#*:}]=FAILED; fi
  fi
done
for entry in "${running[@]}"; do
  if wait "${entry%%:*}"; then status[${entry#*:}]=ok; else status[${entry#*:}]=FAILED; fi
done
done_at=$(date +%s)

failed=0
echo "fuzz: built in $((built - start)) s, ran ${#targets[@]} targets for ${secs} s each in $((done_at - built)) s"
for t in "${targets[@]}"; do
  log="logs/$t.log"
  last=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
  execs=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
  rss=$(sed -nE 's/^stat::peak_rss_mb: *([0-9]+).*/\1/p' "$log" | tail -n 1)
  printf 'fuzz %-16s %-6s %7s exec/s %9s runs  cov: %-6s ft: %-6s corpus: %-5s peak rss: %s MB\n' \
    "$t" "${status[$t]}" "${execs:-?}" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "${rss:-?}"
  if [ "${status[$t]}" != ok ]; then
    failed=1
    echo "---- $t: $(grep -m1 -E 'ERROR: libFuzzer|panicked at|ALARM|out-of-memory|deadly signal' "$log" || echo 'failed')" >&2
    grep -A3 -E 'panicked at' "$log" | head -n 8 >&2 || true
    ls "artifacts/$t" >&2 || true
  fi
done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED (logs in fuzz/logs/, inputs in fuzz/artifacts/; reproduce with cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/FILE)" >&2
  exit 1
fi
