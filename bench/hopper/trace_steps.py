#!/usr/bin/env python3
"""What each kernel costs a recorded decode step, from a kernel_trace.cpp CSV.

    python3 trace_steps.py trace.csv [STEPS]

A step is the kernels from one embedding launch to the next; decode steps are those with a
decode attention kernel, and the last STEPS (default 8) of those that run the kernels most of
them run are read (a batch's bench also runs a few steps at batch 1). A kernel's cost is how
far it moved the step's latest end: its end minus the latest end of the kernels that started
before it, or 0. Inside a recorded step kernels overlap through dependent launches, and a branch
(the shared expert) runs beside the main line on other streams (a graph's parallel path may move
to another hardware stream from one layer to the next, so streams do not tell the main line);
the costs add up to the step, and a kernel that ran wholly under others costs 0. Prints the
median over the steps, kernel by kernel in start order, then summed by name.
"""
import collections
import csv
import statistics
import subprocess
import sys

import step_kernels  # this folder's ncu reader: the same steps and short names


def load(path):
    rows = [(int(r["start_ns"]), int(r["end_ns"]), r["stream"], r["name"]) for r in csv.DictReader(open(path))]
    names = demangle(sorted({r[3] for r in rows}))
    return sorted((a, b, st, names[n]) for a, b, st, n in rows)


def demangle(names):
    """CUPTI reports mangled names; c++filt (binutils) turns them back, where it is installed."""
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
        return dict(zip(names, out.splitlines()))
    except (OSError, subprocess.CalledProcessError):
        return {n: n for n in names}


def short(name):
    return step_kernels.short(name).split("(")[0][:60]


def costs(step):
    last_end, out = step[0][0], []
    for start, end, _, name in step:
        out.append((short(name), max(0.0, (end - last_end) / 1e3), (end - start) / 1e3, (start - last_end) / 1e3))
        last_end = max(last_end, end)
    return out, (last_end - step[0][0]) / 1e3


def main():
    decode = step_kernels.decode_steps(load(sys.argv[1]), name=lambda r: r[3])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    # A bench's decode phase may hold steps of another shape (a batch's last steps at batch 1):
    # read the last n of the steps that run the kernels most steps run.
    kernels_of = lambda s: tuple(r[3] for r in s)
    common, count = collections.Counter(kernels_of(s) for s in decode).most_common(1)[0]
    read = [costs(s) for s in decode if kernels_of(s) == common][-n:]
    print(f"{len(read)} steps, step time median {statistics.median(r[1] for r in read):.1f} us"
          f" ({len(decode) - count} decode steps of other kernels left out)")
    print(f"{'cost':>7} {'dur':>7} {'gap':>6}  kernel (median over steps; gap < 0: started before the previous ended)")
    by_name = collections.defaultdict(float)
    for i, (name, _, _, _) in enumerate(read[0][0]):
        cost = statistics.median(r[0][i][1] for r in read)
        dur = statistics.median(r[0][i][2] for r in read)
        gap = statistics.median(r[0][i][3] for r in read)
        by_name[name] += cost
        print(f"{cost:7.1f} {dur:7.1f} {gap:6.1f}  {name}")
    print("\n   cost  kernel (summed by name over the step)")
    for name, cost in sorted(by_name.items(), key=lambda kv: -kv[1]):
        print(f"{cost:7.1f}  {name}")

if __name__ == "__main__":
    main()
