#!/usr/bin/env python3
"""DeepSeek-V3 truncated to 1, 4 and 8 layers -> per-layer times -> 61 layers on N GPUs, next to
`dsinfer plan` (docs/benchmarks.md).

Reads the `dsinfer bench --model deepseek-v3 --num-layers L ...` tables saved as v3_L1.log,
v3_L4.log and v3_L8.log in LOG_DIR (deepseek_kernels_v3.sh writes them). V3's first 3 layers are
dense, so L1 = head + dense, L4 = head + 3 dense + 1 MoE, L8 = head + 3 dense + 5 MoE. The
extrapolation assumes perfect TP/EP scaling over the GPUs (each reads 1/N of every layer), the
measuring GPU's speed divided by --speedup (the target's bandwidth over the measuring GPU's,
1 when they are the same kind), plus the plan's communication time.
"""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path


def read_table(path):
    """{batch: ms per step}, prefill ms and prompt length from one bench log."""
    steps, prefill_ms, prompt = {}, None, None
    for line in Path(path).read_text().splitlines():
        if m := re.search(r"prefill tok/s \((\d+)\)", line):
            prompt = int(m.group(1))
        if not line.startswith("| DeepseekV3"):
            continue
        cols = [c.strip() for c in line.strip("|").split("|")]
        prefill_ms = prompt / float(cols[3]) * 1e3
        steps[int(cols[4])] = float(cols[6])
    if not steps:
        sys.exit(f"{path}: no DeepseekV3 rows")
    return steps, prefill_ms, prompt


def per_layer(l1, l4, l8):
    moe = (l8 - l4) / 4
    dense = (l4 - l1 - moe) / 2
    return {"moe": moe, "dense": dense, "head": l1 - dense}


def plan(args, batch):
    out = subprocess.run([args.dsinfer, "plan", "--model", "deepseek-v3", "--gpu", args.gpu, "--num-gpus",
                          str(args.num_gpus), "--batch", str(batch), "--context", str(args.context),
                          "--prompt-len", str(args.prompt), "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("log_dir")
    p.add_argument("--dsinfer", default="./dsinfer")
    p.add_argument("--gpu", default="H200")
    p.add_argument("--num-gpus", type=int, default=8)
    p.add_argument("--context", type=int, default=4096)
    p.add_argument("--layers", type=int, default=61)
    p.add_argument("--dense", type=int, default=3)
    p.add_argument("--speedup", type=float, default=1.0)
    args = p.parse_args()
    logs = [read_table(Path(args.log_dir) / f"v3_L{n}.log") for n in (1, 4, 8)]
    args.prompt = logs[0][2]
    batches = sorted(logs[0][0])
    rows = {b: per_layer(*(log[0][b] for log in logs)) for b in batches}
    rows["prefill"] = per_layer(*(log[1] for log in logs))

    print("| per layer, ms | " + " | ".join(f"b{b}" for b in batches) + f" | prefill ({args.prompt} tokens) |")
    print("| --- " * (len(batches) + 2) + "|")
    for part in ("moe", "dense", "head"):
        name = {"moe": "MoE layer", "dense": "dense layer", "head": "embedding + head"}[part]
        print(f"| {name} | " + " | ".join(f"{rows[k][part]:.3f}" for k in [*batches, "prefill"]) + " |")

    moe_layers = args.layers - args.dense
    print(f"\n| figure | one GPU, {args.layers} layers | {args.num_gpus} x {args.gpu} (extrapolated) | "
          f"`dsinfer plan`, {args.num_gpus} x {args.gpu} | extrapolated / plan |")
    print("| --- | --- | --- | --- | --- |")
    for key in [*batches, "prefill"]:
        r = rows[key]
        total = r["head"] + args.dense * r["dense"] + moe_layers * r["moe"]
        pl = plan(args, 1 if key == "prefill" else key)
        if key == "prefill":
            comm, plan_rate, plan_ms = pl["prefill"]["comm_time_s"], pl["prefill"]["tokens_per_s"], pl["prefill"]["ttft_s"] * 1e3
            tokens, name = args.prompt, f"prefill, {args.prompt} tokens"
        else:
            comm, plan_rate, plan_ms = pl["decode"]["comm_time_s"], pl["decode"]["tokens_per_s"], pl["decode"]["step_time_s"] * 1e3
            tokens, name = key, f"decode, batch {key}"
        ms = total / args.num_gpus / args.speedup + comm * 1e3
        rate = tokens / ms * 1e3
        print(f"| {name} | {total:.2f} ms | {ms:.3f} ms = {rate:,.0f} tok/s | {plan_ms:.3f} ms = {plan_rate:,.0f} tok/s "
              f"| {100 * rate / plan_rate:.0f} % |")


if __name__ == "__main__":
    main()
