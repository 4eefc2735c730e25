#!/usr/bin/env bash
# Builds the request-decoding fuzz target with clang (libFuzzer + ASan + UBSan) and runs it.
# Usage: fuzz/run.sh [SECONDS=60] [BUILD_DIR=build-fuzz]. Crashes land in BUILD_DIR/fuzz-artifacts/.
set -euo pipefail
seconds=${1:-60}
build=${2:-build-fuzz}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DTEMPO_FUZZ=ON -DTEMPO_CUDA=OFF -DTEMPO_BUILD_TESTS=OFF -DTEMPO_BUILD_BENCH=OFF \
  -DCMAKE_CXX_COMPILER_LAUNCHER="$(command -v ccache || true)" >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target request_decode_fuzz
corpus="$build/fuzz-corpus"
mkdir -p "$corpus" "$build/fuzz-artifacts"
TEMPO_FUZZ_WRITE_SEEDS="$corpus" "$build/request_decode_fuzz"
# Small inputs: a session's frames; -rss_limit_mb bounds what a hostile input could make us allocate.
"$build/request_decode_fuzz" "$corpus" -max_total_time="$seconds" -max_len=65536 \
  -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$build/fuzz-artifacts/"
