#!/bin/bash
# Where one kernel's cycles go inside a run: ncu's full set on one launch of the kernels whose
# names match REGEX, after SKIP such launches (past the warm-up and the prompt), then its SASS
# with executed instructions and stall samples by straight-line region (sass_hotspots.py, beside
# this script) and the warp-state and scheduler figures. ncu runs each kernel alone (no overlap
# with the launches around it). From the folder that holds the binaries (README.md):
#   OUT=/tmp/out bash kernel_stalls.sh mla_decode_kernel 300 ./dsinfer bench --device cuda \
#     --dummy-weights --model deepseek-v2-lite --prompt-len 512 --gen-len 16 --batch 1
cd "$(dirname "$0")"
regex=$1 skip=$2
shift 2
ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
timeout 300 "$ncu" --clock-control none --set full --import-source no -o "$OUT/stalls" -k "regex:$regex" \
  --launch-skip "$skip" --launch-count 1 "$@" > "$OUT/ncu.log" 2>&1
echo "ncu rc=$?"
"$ncu" -i "$OUT/stalls.ncu-rep" --page source --csv --print-source sass > "$OUT/sass.csv" 2>&1
"$ncu" -i "$OUT/stalls.ncu-rep" --page details > "$OUT/details.txt" 2>&1
python3 sass_hotspots.py "$OUT/sass.csv" 1
grep -E "Duration|Elapsed Cycles|Warp Cycles Per Issued Instruction|Issued Warp Per Scheduler|No Eligible|Active Warps Per Scheduler" \
  "$OUT/details.txt"
