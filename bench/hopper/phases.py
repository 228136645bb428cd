#!/usr/bin/env python3
"""Medians of a phase build's lines: `phases.py LOG [LABEL]`.

A phase build is a temporary build of a kernel that reads clock64() at the ends of its phases and
has thread 0 of chosen blocks print `PH KIND TAG c1 c2 ...`: the cycles between consecutive marks,
KIND and TAG naming the block (e.g. `PH last n9 ...` for the split that merged, with 9 live
splits). Lines are grouped by KIND TAG; the first quarter of each group (warm-up, the prompt's
steps) is dropped and each column's median printed, prefixed by LABEL.
"""
import collections
import statistics
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    label = sys.argv[2] if len(sys.argv) > 2 else ""
    groups = collections.defaultdict(list)
    with open(sys.argv[1]) as log:
        for line in log:
            fields = line.split()
            if len(fields) < 4 or fields[0] != "PH":
                continue
            try:
                groups[" ".join(fields[1:3])].append([int(x) for x in fields[3:]])
            except ValueError:
                continue  # a line cut by another process's output
    for key, rows in sorted(groups.items()):
        rows = rows[len(rows) // 4:]
        width = min(len(r) for r in rows)
        medians = " ".join(f"{statistics.median(r[i] for r in rows):8.0f}" for i in range(width))
        print(f"{label} {key:12s} n={len(rows):5d} {medians}".strip())


if __name__ == "__main__":
    main()
