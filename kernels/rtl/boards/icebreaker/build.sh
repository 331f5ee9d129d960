#!/usr/bin/env bash
# Synthesises, places and packs the Icarus SHA-256d core for an iCEBreaker (iCE40 UP5K-SG48)
# with the open toolchain (Debian: yosys nextpnr-ice40 fpga-icestorm), leaving
# build/rigworker-icebreaker.bin to flash with `iceprog`, and the utilisation and timing
# reports beside it (see docs/fpga.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rtl=$(cd "$here/../.." && pwd)
out="${1:-$here/build}"
mkdir -p "$out"
yosys -q -l "$out/yosys.log" -p "synth_ice40 -top top -json $out/top.json" \
  "$rtl/sha256_compress.v" "$rtl/uart.v" "$rtl/icarus_sha256d.v" "$here/top.v"
nextpnr-ice40 --up5k --package sg48 --freq 12 --pcf "$here/icebreaker.pcf" \
  --json "$out/top.json" --asc "$out/top.asc" --report "$out/report.json" \
  -l "$out/nextpnr.log" -q
icepack "$out/top.asc" "$out/rigworker-icebreaker.bin"
grep -E "ICESTORM_LC|SB_CARRY|SB_DFF|ICESTORM_RAM|Max frequency" "$out/nextpnr.log" | tail -n 8
