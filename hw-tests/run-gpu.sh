#!/usr/bin/env bash
# The CUDA check on a machine with an NVIDIA GPU (and its driver; no CUDA toolkit needed):
#
#   1. what the GPU and driver are (nvidia-smi),
#   2. a release build of rigworker, which must not link libcuda/libOpenCL,
#   3. `rigworker devices`,
#   4. the hardware tests with CUDA required (a missing GPU fails instead of skipping),
#   5. `rigworker bench --backend cuda --seconds 10 --json`, with the GPU's utilisation and the
#      worker's CPU time sampled meanwhile (the GPU should stay busy; the host thread should
#      sleep while it waits),
#   6. proving: whole proofs on CUDA (G2 on the GPU, and on the CPU beside it) and, in the same
#      run, on the CPU (2^16, 2^18 and 2^20 constraints), MSMs of 2^16..2^22 points on both against arkworks (bench-prove.json),
#      and the PTX registers/spills report (kernels/cuda/ptxas-report.sh, when ptxas exists).
#
# Usage: hw-tests/run-gpu.sh            (from anywhere; outputs go to ${OUT:-/tmp})
#        hw-tests/run-gpu.sh --prebuilt  (use .gpu/rigworker and .gpu/cuda-tests made here by
#                                         hw-tests/pack-gpu.sh: for a GPU machine that cannot
#                                         reach crates.io; carry .gpu/ with the working tree)
# Every step runs even when an earlier one failed, so one run collects everything; the exit
# status is non-zero when any step failed, and summary.txt lists each step's status.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp}"
mkdir -p "$out"
export CARGO_TERM_COLOR=never
jobs="$(nproc 2>/dev/null || echo 4)"
summary="$out/summary.txt"
: > "$summary"
failed=0

# step NAME COMMAND...: runs COMMAND with its output in $out/NAME.log, records the status.
step() {
  local name="$1"
  shift
  echo "== $name: $*" | tee -a "$summary"
  "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "   exit $rc" | tee -a "$summary"
  [ "$rc" -eq 0 ] || failed=1
  return "$rc"
}

# 1. The GPU and the driver.
step nvidia-smi nvidia-smi
step nvidia-smi-query nvidia-smi \
  --query-gpu=name,driver_version,compute_cap,memory.total,clocks.max.sm,power.limit,pstate \
  --format=csv

# 2. Release build; the runtime libraries must be loaded at run time, never linked.
if [ "${1:-}" = "--prebuilt" ]; then
  bin=.gpu/rigworker
  cuda_tests=.gpu/cuda-tests
else
  step build cargo build --release -j"$jobs" -p worker-cli
  bin=target/release/rigworker
  cuda_tests=""
fi
check_needed() {
  readelf -d "$bin" | grep NEEDED
  if readelf -d "$bin" | grep -Ei 'NEEDED.*(libcuda|libOpenCL|libnvrtc|libcudart|libvulkan)'; then
    echo "rigworker links a GPU runtime: it must load it at run time" >&2
    return 1
  fi
}
step needed check_needed

# 3. What rigworker finds.
step devices "$bin" devices
"$bin" devices --json > "$out/devices.json" 2>> "$out/devices.log"

# 4. The hardware tests, CUDA required; one at a time so timings are not disturbed.
export RIGWORKER_REQUIRE_BACKENDS=cuda
if [ -n "$cuda_tests" ]; then
  step hw-tests "$cuda_tests" --nocapture --test-threads=1
  step hw-tests-prove .gpu/cuda-prove-tests --nocapture --test-threads=1
else
  step hw-tests cargo test -j"$jobs" -p hw-tests -- --nocapture --test-threads=1
fi
unset RIGWORKER_REQUIRE_BACKENDS

# 5. The benchmark, sampling GPU utilisation (1 s intervals) while it runs.
gpu_samples() {
  nvidia-smi --query-gpu=timestamp,utilization.gpu,clocks.sm,power.draw,temperature.gpu \
    --format=csv -l 1
}
gpu_samples > "$out/bench-gpu-samples.csv" 2>&1 &
sampler=$!
bench() {
  # /usr/bin/time -v reports the process's CPU time: with one GPU worker thread that sleeps
  # while the GPU computes, user+sys should be a small fraction of the wall time.
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v -o "$out/bench-time.txt" \
      "$bin" bench --backend cuda --seconds 10 --json > "$out/bench-cuda.json"
  else
    "$bin" bench --backend cuda --seconds 10 --json > "$out/bench-cuda.json"
  fi
}
step bench bench
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null

# 6. Proving: CUDA and the CPU baseline in one run (the CPU rows first).
prove_bench() {
  # --g2-on device,cpu: the proofs once with G2 on the GPU and once with G2 on the CPU beside
  # the GPU's G1 MSMs (issue 13 asks which is faster end to end).
  "$bin" bench --work prove --backend cpu,cuda --g2-on device,cpu --large --msm-log 16,18,20,22 \
    --repeat 3 --json > "$out/bench-prove.json"
}
step bench-prove prove_bench
step ptxas-report bash kernels/cuda/ptxas-report.sh sm_90

echo "== outputs in $out:" | tee -a "$summary"
ls -l "$out" | tee -a "$summary"
[ -s "$out/bench-cuda.json" ] && cat "$out/bench-cuda.json"
[ -s "$out/bench-prove.json" ] && cat "$out/bench-prove.json"
exit "$failed"
