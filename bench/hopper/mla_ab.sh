#!/bin/bash
# An A/B of MLA decode kernel builds in one call: `dsinfer bench-mla` at 128 and 16 heads (V3
# shapes, 64 x 4096), the builds alternated within each of ROUNDS rounds (default 2), so that
# clocks and the copy rate drift alike for all. Usage: mla_ab.sh NAME=DSINFER_BINARY ... ;
# results in $OUT/mla_ab.log, one line per run. HEADS (default "128 16") and BATCH (default 64)
# choose the shapes, e.g. session 40's batch sweep: HEADS=128 BATCH=48 ROUNDS=1 mla_ab.sh ...
cd "$(dirname "$0")"
libdirs=$(find /usr/local/cuda*/ /opt /usr/lib -name 'libcublasLt.so.13*' -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH=${libdirs}$PWD/lib:${LD_LIBRARY_PATH}
for round in $(seq "${ROUNDS:-2}"); do
  for heads in ${HEADS:-128 16}; do
    for build in "$@"; do
      name=${build%%=*} bin=${build#*=}
      line=$(timeout 60 "$bin" bench-mla --heads "$heads" --batch "${BATCH:-64}" 2>&1 | grep -E "time|idle|bandwidth|ratio|roofline|rror" |
        tr -s ' ' | paste -sd' ')
      echo "round $round heads $heads batch ${BATCH:-64} $name: $line" | tee -a "$OUT/mla_ab.log"
    done
  done
done
