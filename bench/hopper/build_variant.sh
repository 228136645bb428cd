#!/bin/bash
# Builds `dsinfer` and `test_cuda` with some files taken from another commit (a reverted kernel
# variant kept in history), copies them stripped to OUT_DIR/dsinfer_NAME and OUT_DIR/test_cuda_NAME,
# then restores the files and rebuilds main's binaries. For A/B calls on the GPU machine
# (mla_ab.sh, gemm_ab.sh, decode_ab.sh). Usage, from the repository root after a build:
#   bench/hopper/build_variant.sh OUT_DIR NAME COMMIT FILE...
# e.g. bench/hopper/build_variant.sh devrun pair 08806cf src/backend/cuda/mla_decode.cu src/backend/cuda/wgmma_fp8.cuh
# With PATCH set, that command runs on the swapped files before the build: a measurement build,
# e.g. main's kernel with its loads alone:
#   PATCH="python3 bench/hopper/mla_probe.py --loads-only" bench/hopper/build_variant.sh devrun lo HEAD src/backend/cuda/mla_decode.cu
set -euo pipefail
out=$1 name=$2 commit=$3
shift 3
[ -z "$(git status --porcelain -- "$@")" ] || { echo "build_variant: $* have uncommitted changes" >&2; exit 1; }
restore() { git checkout -q HEAD -- "$@" && make -C build -j2 dsinfer test_cuda > /dev/null; }
trap 'restore "$@"' EXIT
for f in "$@"; do git show "$commit:$f" > "$f"; done
[ -z "${PATCH:-}" ] || eval "$PATCH"
make -C build -j2 dsinfer test_cuda > /dev/null
mkdir -p "$out"
strip -o "$out/dsinfer_$name" build/dsinfer
strip -o "$out/test_cuda_$name" build/test_cuda
echo "built $out/dsinfer_$name and $out/test_cuda_$name from $commit ($*)"
