#!/usr/bin/env bash
# Configures and builds dsinfer into build/ (CUDA on when nvcc is found; it lives in /usr/local/cuda here).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/cuda/bin"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"${JOBS:-2}"
