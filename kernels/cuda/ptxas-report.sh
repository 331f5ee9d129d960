#!/usr/bin/env bash
# Registers, stack and spills of every kernel in the committed PTX, as NVIDIA's assembler
# reports them for one architecture (no GPU needed):
#
#   kernels/cuda/ptxas-report.sh [ARCH]      (default sm_90; PTXAS picks the assembler)
#
# ptxas comes from PyPI's nvidia-cuda-nvcc-cu12 wheel (.ci/setup installs it in a venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
arch="${1:-sm_90}"
ptxas="${PTXAS:-}"
if [ -z "$ptxas" ]; then
  ptxas="$(ls "${XDG_CACHE_HOME:-$HOME/.cache}"/rigworker-ci/cuda/lib/python3*/site-packages/nvidia/cuda_nvcc/bin/ptxas 2>/dev/null | head -n 1 || true)"
fi
[ -n "$ptxas" ] || ptxas=ptxas
for f in "$here"/*.ptx; do
  echo "== $(basename "$f") ($arch)"
  "$ptxas" -arch="$arch" -v -o /dev/null "$f" 2>&1 | awk '
    /Compiling entry function/ { match($0, /\x27[^\x27]+\x27/); name = substr($0, RSTART + 1, RLENGTH - 2); next }
    /Function properties for/ { infunc = 1; next }
    /bytes stack frame/ && name != "" && !done[name] { frame = $0; sub(/^.*info *: */, "", frame); sub(/^ +/, "", frame) }
    /Used [0-9]+ registers/ && name != "" {
      match($0, /Used [0-9]+ registers/); regs = substr($0, RSTART + 5, RLENGTH - 15)
      printf "%-22s %4s registers  %s\n", name, regs, frame; done[name] = 1; name = ""
    }'
done
