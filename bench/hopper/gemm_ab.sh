#!/bin/bash
# A/B of grouped FP8 GEMM builds in one call: `bash gemm_ab.sh NAME=BINARY ...`, run from the
# folder that holds the binaries (see README.md). Builds are alternated within each round, so
# machine drift lands on every build alike; every figure is `dsinfer bench-gemm`'s grouped rows
# (ms, TFLOP/s, share of the FP8 peak measured in the same process, memory floor / time). Knobs
# (environment): ROUNDS (default 2), M (tokens, default 4096), NK (default 7168x2048: V3's
# experts), TESTS=BINARY (that test_cuda's grouped FP8 tests first). Results: $OUT.
# Example: `TESTS=./test_cuda_new bash gemm_ab.sh base=./dsinfer_base new=./dsinfer_new`
cd "$(dirname "$0")"
libdirs=$(find /usr/local/cuda*/ /opt /usr/lib -name 'libcublasLt.so.13*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=${libdirs}$PWD/lib:${LD_LIBRARY_PATH} OMP_WAIT_POLICY=PASSIVE
if [ -n "$TESTS" ]; then
  timeout 120 "$TESTS" --gtest_filter='GpuMoeFp8*' > "$OUT/fp8_tests.log" 2>&1
  echo "grouped FP8 tests rc=$?"
  grep -E "^\[  FAILED|PASSED|FAILED \]" "$OUT/fp8_tests.log" | head -20
fi
for ((round = 1; round <= ${ROUNDS:-2}; ++round)); do
  for arg in "$@"; do
    name=${arg%%=*} log="$OUT/${arg%%=*}.$round.log"
    timeout 90 "${arg#*=}" bench-gemm --m "${M:-4096}" --nk "${NK:-7168x2048}" --repeats 5 --inner 5 > "$log" 2>&1
    echo "== $name round $round rc=$? $(grep -oE '[0-9]+ TFLOP/s' "$log" | head -1) peak"
    grep -E '^\| (gate|down|both)' "$log" | cut -d'|' -f2,5-7,10
  done
done
