#!/usr/bin/env python3
"""Where one decode step's GPU time goes, kernel by kernel, from an ncu CSV of a dsinfer bench.

    ncu --clock-control none --metrics gpu__time_duration.sum --csv \
        dsinfer bench --device cuda --dummy-weights --model M --num-layers 2 --prompt-len P \
        --gen-len 3 --batch B > step.csv
    python3 step_kernels.py step.csv [STEP]

A step is the kernels from one embedding launch to the next; decode steps are those that run a
decode attention kernel. The script lists them as index:microseconds/kernels (the warm-ups
before graph recording, which try cuBLASLt's algorithms, and steps of other batch sizes come
too), takes STEP (an index in that list; default the last), and prints its kernels in order (ncu
runs them one at a time, so each time includes the kernel's own start and drain), then the same
step summed by kernel name.
"""
import collections
import csv
import sys


def kernels(path):
    rows = list(csv.reader(open(path)))
    head = next(i for i, r in enumerate(rows) if r and r[0] == "ID")
    name, value = rows[head].index("Kernel Name"), rows[head].index("Metric Value")
    return [(r[name], float(r[value].replace(",", "")) / 1000.0) for r in rows[head + 1:] if len(r) > value]


def decode_steps(ks, name=lambda k: k[0]):
    """Kernels (in launch order) cut into steps at each embedding launch; the steps that run a
    decode attention kernel. `name` reads a kernel's name from its record."""
    starts = [i for i, k in enumerate(ks) if "embedding" in name(k)]
    steps = [ks[a:b] for a, b in zip(starts, starts[1:] + [len(ks)])]
    decode = [s for s in steps if any("decode" in name(k) or "mla_kernel" in name(k) for k in s)]
    if not decode:
        sys.exit("no step with a decode attention kernel in this profile")
    return decode


def short(name, width=90):
    for cut in ("void ", "dsinfer::", "cuda::", "<unnamed>::", "(anonymous namespace)::"):
        name = name.replace(cut, "")
    return name[:width]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    steps = decode_steps(kernels(sys.argv[1]))
    totals = [sum(us for _, us in s) for s in steps]
    pick = int(sys.argv[2]) if len(sys.argv) == 3 else len(steps) - 1
    print("decode steps: " + " ".join(f"{i}:{t:.0f}/{len(s)}" for i, (t, s) in enumerate(zip(totals, steps))))
    step = steps[pick]
    print(f"{'us':>8}  kernel (decode step {pick}, in order)")
    for n, us in step:
        print(f"{us:8.1f}  {short(n)}")
    print(f"{sum(us for _, us in step):8.1f}  total ({len(step)} kernels)\n")
    by_name = collections.defaultdict(lambda: [0.0, 0])
    for n, us in step:
        by_name[short(n)][0] += us
        by_name[short(n)][1] += 1
    print(f"{'us':>8} {'count':>5}  kernel (the same step by name)")
    for n, (us, count) in sorted(by_name.items(), key=lambda kv: -kv[1][0]):
        print(f"{us:8.1f} {count:5d}  {n}")


if __name__ == "__main__":
    main()
