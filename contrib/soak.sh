#!/usr/bin/env bash
# Soak run (outside CI): `rigworker mine` against the built-in pool at a high share rate, with a
# new job every second, for a long time; samples the resident memory (VmRSS) of both processes
# every SAMPLE seconds into a CSV, so a leak shows as a rising column.
#
# Usage: contrib/soak.sh [BINARY] [SECONDS] [OUTDIR]
#   BINARY   the rigworker to run (default target/release/rigworker, else target/debug/rigworker);
#            it is copied first, so a rebuild meanwhile does not change the run
#   SECONDS  how long (default 3600)
#   OUTDIR   where soak.csv and the two logs go (default /tmp/rigworker-soak)
# Environment: DIFFICULTY (share difficulty, default 0.00002: dozens of shares a second on one
# CPU thread), THREADS (default 1), SAMPLE (seconds between samples, default 30), PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-}"
if [ -z "$bin" ]; then
  bin=target/release/rigworker
  [ -x "$bin" ] || bin=target/debug/rigworker
fi
seconds="${2:-3600}"
out="${3:-/tmp/rigworker-soak}"
difficulty="${DIFFICULTY:-0.00002}"
threads="${THREADS:-1}"
sample="${SAMPLE:-30}"
port="${PORT:-34399}"
mkdir -p "$out"
cp "$bin" "$out/rigworker"

"$out/rigworker" pool --listen "127.0.0.1:$port" --difficulty "$difficulty" --job-interval 1 \
  --print-time 60 >"$out/pool.log" 2>&1 &
pool=$!
sleep 1
nice -n 10 "$out/rigworker" mine -o "stratum+tcp://127.0.0.1:$port" -u soak -p x \
  --threads "$threads" --duration "$seconds" --print-time 60 --keepalive 10 \
  --summary-json "$out/summary.json" >"$out/mine.log" 2>&1 &
miner=$!
trap 'kill $pool $miner 2>/dev/null || true' EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
echo "seconds,miner_rss_kb,pool_rss_kb" >"$out/soak.csv"
start=$(date +%s)
while kill -0 "$miner" 2>/dev/null; do
  now=$(( $(date +%s) - start ))
  echo "$now,$(rss_kb "$miner"),$(rss_kb "$pool")" >>"$out/soak.csv"
  sleep "$sample"
done
wait "$miner" || true
echo "soak done after $(( $(date +%s) - start )) s; samples in $out/soak.csv"
tail -n 3 "$out/soak.csv"
