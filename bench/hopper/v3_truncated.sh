#!/bin/bash
# GPU tests; V3 truncated 1/4/8 layers with the skinny FP8 kernel for 1-4 token products.
cd "$(dirname "$0")"
libdirs=$(find /usr/local/cuda*/ /opt /usr/lib -name 'libcublasLt.so.13*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=${libdirs}$PWD/lib:${LD_LIBRARY_PATH} DSINFER_FIXTURES=$PWD/fixtures OMP_WAIT_POLICY=PASSIVE
timeout 170 ./test_cuda --gtest_filter='Gpu*:*/Gpu*' > $OUT/gpu_tests.log 2>&1; echo "gpu tests rc=$?" | tee -a $OUT/gpu_tests.log
grep -E "^\[  FAILED|PASSED|FAILED \]" $OUT/gpu_tests.log | head -20
for L in 1 4 8; do
  timeout 120 ./dsinfer bench --device cuda --dummy-weights --model deepseek-v3 --num-layers $L --prompt-len 1024 \
    --gen-len 32 --batch 1,32,128 > $OUT/v3_L$L.log 2>&1
  grep -E "^\| Deep|loaded in" $OUT/v3_L$L.log
done
