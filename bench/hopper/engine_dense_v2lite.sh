#!/bin/bash
# Final call A: GPU tests; 7B dense figures (issue 5) with transformers and ceilings in the same call; V2-Lite decode.
cd "$(dirname "$0")"
libdirs=$(find /usr/local/cuda*/ /opt /usr/lib -name 'libcublasLt.so.13*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=${libdirs}$PWD/lib:${LD_LIBRARY_PATH} DSINFER_FIXTURES=$PWD/fixtures OMP_WAIT_POLICY=PASSIVE
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $OUT/gpu.txt
timeout 170 ./test_cuda --gtest_filter='Gpu*:*/Gpu*' > $OUT/gpu_tests.log 2>&1; echo "gpu tests rc=$?" | tee -a $OUT/gpu_tests.log
grep -E "^\[  FAILED|PASSED|FAILED \]|fp8 moe" $OUT/gpu_tests.log | head -20
B="./dsinfer bench --device cuda --dummy-weights"
Q="$B --model deepseek-r1-distill-qwen-7b"
{
  timeout 80 $Q --prompt-len 512 --gen-len 64 --batch 1,2,4,32 2>&1 | grep -E "^\| Q|^copy bandwidth"
  timeout 70 $Q --prompt-len 1024 --gen-len 64 --batch 64 2>&1 | grep "^| Q"
  timeout 60 $Q --prompt-len 4096 --gen-len 2 --batch 1 2>&1 | grep "^| Q"
  timeout 90 $B --model deepseek-v2-lite --prompt-len 512 --gen-len 64 --batch 1,2,4,64 2>&1 | grep -E "^\| Deep|warn"
} 2>&1 | tee $OUT/bench.log
timeout 150 python3 hf_baseline.py qwen7b 2>&1 | tail -9 | tee $OUT/hf.log
