#!/usr/bin/env python3
"""What each kernel costs a recorded decode step, from a kernel_trace.cpp CSV.

    python3 trace_steps.py trace.csv [STEPS]

A step is the kernels from one embedding launch to the next on the step's stream; decode steps
are those with a decode attention kernel, and the last STEPS of them (default 8) are read. A
kernel's cost is its end minus the latest end before it on the step's main stream (the one
most of its kernels ran on): inside a recorded
step kernels overlap through dependent launches, so that is what removing it would save at
most. Kernels of other streams (branches) are listed apart with their durations. Prints the
median over the steps, kernel by kernel in order, then summed by name.
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
    # The main stream: the one most of the step's kernels ran on (a recorded step's branches run
    # on streams of their own, and the embedding may not share the graph's stream).
    main = collections.Counter(r[2] for r in step).most_common(1)[0][0]
    last_end, out, branch = step[0][0], [], []
    for start, end, stream, name in step:
        if stream != main:
            branch.append((short(name), (end - start) / 1e3))
            continue
        out.append((short(name), (end - max(last_end, start)) / 1e3 if end > last_end else 0.0, (end - start) / 1e3,
                    (start - last_end) / 1e3))
        last_end = max(last_end, end)
    return out, branch, (last_end - step[0][0]) / 1e3


def main():
    steps = step_kernels.decode_steps(load(sys.argv[1]), name=lambda r: r[3])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    steps = steps[-n:]
    read = [costs(s) for s in steps]
    shapes = {len(r[0]) for r in read}
    if len(shapes) != 1:
        sys.exit(f"the last {n} decode steps differ in kernels: {sorted(shapes)}; pass fewer")
    print(f"{len(read)} steps, step time median {statistics.median(r[2] for r in read):.1f} us")
    print(f"{'cost':>7} {'dur':>7} {'gap':>6}  kernel (median over steps; gap < 0: started before the previous ended)")
    by_name = collections.defaultdict(float)
    for i, (name, _, _, _) in enumerate(read[0][0]):
        cost = statistics.median(r[0][i][1] for r in read)
        dur = statistics.median(r[0][i][2] for r in read)
        gap = statistics.median(r[0][i][3] for r in read)
        by_name[name] += cost
        print(f"{cost:7.1f} {dur:7.1f} {gap:6.1f}  {name}")
    branch = collections.defaultdict(float)
    for name, dur in read[-1][1]:
        branch[name] += dur
    print("\n   cost  kernel (summed by name over the step)")
    for name, cost in sorted(by_name.items(), key=lambda kv: -kv[1]):
        print(f"{cost:7.1f}  {name}")
    if branch:
        print("\n    dur  branch kernels (other streams, last step)")
        for name, dur in sorted(branch.items(), key=lambda kv: -kv[1]):
            print(f"{dur:7.1f}  {name}")


if __name__ == "__main__":
    main()
