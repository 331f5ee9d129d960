#!/usr/bin/env bash
# Builds, here, what hw-tests/run-gpu.sh --prebuilt runs on a GPU machine that cannot reach
# crates.io: a stripped release `rigworker` and the CUDA hardware-test binaries (hashing and
# proving), in .gpu/
# (ignored by git; small enough to travel with the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu
cargo build --release -j"$(nproc)" -p worker-cli
strip -o .gpu/rigworker target/release/rigworker
test_bin=$(cargo test --release -j"$(nproc)" -p hw-tests --test cuda --no-run --message-format=json \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
strip -o .gpu/cuda-tests "$test_bin"
prove_bin=$(cargo test --release -j"$(nproc)" -p hw-tests --test cuda_prove --no-run --message-format=json \
  | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
strip -o .gpu/cuda-prove-tests "$prove_bin"
ls -l .gpu
