#!/bin/bash
# A/B of decode builds in one call: `bash decode_ab.sh NAME=BINARY[:ENV=V,...] ...`, run from the
# folder that holds the binaries (see README.md). Builds are alternated within each round, so
# machine drift lands on every build alike; every figure is `dsinfer bench`'s decode row (tok/s,
# ms a step, share of the roofline). Knobs (environment): ROUNDS (batch 1 rounds, default 3),
# BATCHES (each run once more, default "2 4"), MODEL (default deepseek-v2-lite), LAYERS (the
# model truncated to that many layers: `--num-layers`), PROMPT (prompt length, default 512),
# TRACE=1 (each build's batch-1 step traced: kernel_trace.cpp built as libkernel_trace.so,
# trace_steps.py and step_kernels.py beside it), TESTS=BINARY (that test_cuda's GPU suite first).
# Results: $OUT.
# Example: `TESTS=./test_cuda_new bash decode_ab.sh base=./dsinfer_base new=./dsinfer_new off=./dsinfer_new:DSINFER_ROUTE_CLUSTER=0`
cd "$(dirname "$0")"
libdirs=$(find /usr/local/cuda*/ /opt /usr/lib -name 'libcublasLt.so.13*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=${libdirs}$PWD/lib:${LD_LIBRARY_PATH} DSINFER_FIXTURES=$PWD/fixtures OMP_WAIT_POLICY=PASSIVE
model=${MODEL:-deepseek-v2-lite}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
if [ -n "$TESTS" ]; then
  timeout 200 "$TESTS" --gtest_filter='Gpu*:*/Gpu*' > "$OUT/gpu_tests.log" 2>&1
  echo "gpu tests rc=$?"
  grep -E "^\[  FAILED|PASSED|FAILED \]" "$OUT/gpu_tests.log" | head -20
fi
# One run: build spec, batch, gen-len, log file, extra environment for the run.
bench() {
  local spec=$1 batch=$2 gen=$3 log=$4 extra=$5
  local bin=${spec%%:*} env_list=()
  [[ $spec == *:* ]] && IFS=, read -ra env_list <<< "${spec#*:}"
  env "${env_list[@]}" $extra timeout 120 "$bin" bench --device cuda --dummy-weights --model "$model" \
    ${LAYERS:+--num-layers $LAYERS} --prompt-len "${PROMPT:-512}" --gen-len "$gen" --batch "$batch" > "$log" 2>&1
}
row() { grep -E '^\| .*cuda' "$1" | cut -d'|' -f6-8,11 | tr -s ' '; }
for ((round = 1; round <= ${ROUNDS:-3}; ++round)); do
  for arg in "$@"; do
    name=${arg%%=*}
    bench "${arg#*=}" 1 64 "$OUT/$name.b1.$round.log"
    echo "$name b1 r$round $(row "$OUT/$name.b1.$round.log")"
  done
done
for batch in ${BATCHES-2 4}; do
  for arg in "$@"; do
    name=${arg%%=*}
    bench "${arg#*=}" "$batch" 64 "$OUT/$name.b$batch.log"
    echo "$name b$batch $(row "$OUT/$name.b$batch.log")"
  done
done
if [ "$TRACE" = 1 ]; then
  for arg in "$@"; do
    name=${arg%%=*}
    bench "${arg#*=}" 1 16 /dev/null "CUDA_INJECTION64_PATH=$PWD/libkernel_trace.so KERNEL_TRACE_OUT=$OUT/$name.csv"
    python3 trace_steps.py "$OUT/$name.csv" 8 > "$OUT/trace_$name.txt" 2>&1 && rm -f "$OUT/$name.csv"
    echo "== trace $name"
    grep -A16 "summed by name" "$OUT/trace_$name.txt"
  done
fi
