#!/usr/bin/env bash
# Builds and runs the CPU test suite (GPU tests carry the label gpu and run on a GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir build -LE gpu --output-on-failure -j2
