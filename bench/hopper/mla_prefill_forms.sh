#!/bin/bash
# MLA prefill, absorbed against expanded (--mla-prefill), in one call: V2-Lite at 512 / 4096 / 16384
# tokens and V3 truncated to 4 layers at 4096; then the expanded attention kernel alone under ncu.
cd "$(dirname "$0")"
libdirs=$(find /usr/local/cuda*/ /opt /usr/lib -name 'libcublasLt.so.13*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=${libdirs}$PWD/lib:${LD_LIBRARY_PATH} OMP_WAIT_POLICY=PASSIVE
B="./dsinfer bench --device cuda --dummy-weights"
{
  for p in 512 4096 16384; do for f in absorbed expanded; do
    echo "V2-Lite, prompt $p, $f"
    timeout 60 $B --model deepseek-v2-lite --mla-prefill $f --prompt-len $p --gen-len 2 --batch 1 2>&1 | grep "^| Deep"
  done; done
  for f in absorbed expanded; do
    echo "V3 4 layers, prompt 4096, $f"
    timeout 70 $B --model deepseek-v3 --num-layers 4 --mla-prefill $f --prompt-len 4096 --gen-len 2 --batch 1 2>&1 | grep "^| Deep"
  done
} 2>&1 | tee $OUT/mla_prefill_forms.log
timeout 60 /usr/local/cuda/bin/ncu --clock-control none --metrics gpu__time_duration.sum --csv -k regex:gqa_prefill \
  $B --model deepseek-v2-lite --num-layers 1 --mla-prefill expanded --prompt-len 4096 --gen-len 2 --batch 1 \
  > $OUT/ncu_expanded_attention.csv 2>&1
grep gqa_prefill $OUT/ncu_expanded_attention.csv | tail -3
