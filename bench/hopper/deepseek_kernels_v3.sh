#!/bin/bash
# Final call B: DeepSeek-V3 truncated (FP8 dummy) 1, 4, 8 layers; MLA kernel; FP8 GEMMs and the grouped MoE GEMM.
cd "$(dirname "$0")"
libdirs=$(find /usr/local/cuda*/ /opt /usr/lib -name 'libcublasLt.so.13*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=${libdirs}$PWD/lib:${LD_LIBRARY_PATH} OMP_WAIT_POLICY=PASSIVE
for L in 1 4 8; do
  timeout 120 ./dsinfer bench --device cuda --dummy-weights --model deepseek-v3 --num-layers $L --prompt-len 1024 \
    --gen-len 32 --batch 1,32,128 > $OUT/v3_L$L.log 2>&1
  grep -E "^\| Deep|loaded in" $OUT/v3_L$L.log
done
timeout 60 ./dsinfer bench-mla 2>&1 | tail -6 | tee $OUT/mla.log
timeout 60 ./dsinfer bench-mla --heads 16 2>&1 | tail -6 | tee $OUT/mla16.log
timeout 90 ./dsinfer bench-gemm --m 4096 --nk 7168x2048 --repeats 5 --inner 5 2>&1 | tail -16 | tee $OUT/gemm.log
python3 v3_extrapolate.py $OUT --dsinfer ./dsinfer 2>&1 | tee $OUT/extrapolation.md
