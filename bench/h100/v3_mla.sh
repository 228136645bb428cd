#!/bin/bash
# V3 truncated (FP8 dummy) 1, 4, 8 layers at batch 1/32/128 + 1024-token prefill; the MLA decode kernel at 128 and 16 heads.
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
