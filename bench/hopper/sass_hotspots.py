#!/usr/bin/env python3
"""A kernel's instructions and stall samples by region of its SASS, from ncu's source page.

    ncu --set full --import-source no -o rep -k regex:NAME --launch-skip S --launch-count 1 CMD
    ncu -i rep.ncu-rep --page source --csv --print-source sass > sass.csv
    python3 sass_hotspots.py sass.csv [min_percent]

A region is a run of consecutive instructions executed equally often (a straight-line piece of
one loop level), so a loop body's share of instructions and of stall samples shows at a glance,
with its most frequent opcodes. Regions under min_percent (default 1) of both are left out.
"""
import collections
import csv
import sys


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    floor = float(sys.argv[2]) if len(sys.argv) == 3 else 1.0
    rows = list(csv.reader(open(sys.argv[1])))
    head = next(i for i, r in enumerate(rows) if r and r[0] == "Address")
    hdr = rows[head]
    src, samples, executed = hdr.index("Source"), hdr.index("Warp Stall Sampling (All Samples)"), hdr.index(
        "Instructions Executed")
    lines = [(r[src].strip(), int(r[samples]), int(r[executed])) for r in rows[head + 1:] if len(r) > executed]
    total_s = sum(s for _, s, _ in lines) or 1
    total_e = sum(e for _, _, e in lines) or 1
    print(f"{len(lines)} instructions, {total_e} executed (warp-level), {total_s} stall samples")
    print(f"{'lines':>11} {'exec each':>9} {'samples':>8} {'instr':>6}  most frequent opcodes")
    start = 0
    for i in range(1, len(lines) + 1):
        # A new region where the execution count changes by more than a fifth.
        if i < len(lines) and abs(lines[i][2] - lines[i - 1][2]) <= 0.2 * max(lines[i - 1][2], 1):
            continue
        region = lines[start:i]
        s = sum(x[1] for x in region) * 100.0 / total_s
        e = sum(x[2] for x in region) * 100.0 / total_e
        if s >= floor or e >= floor:
            ops = collections.Counter(t.split()[1] if t.startswith("@") else t.split()[0] for t, _, _ in region if t)
            top = ", ".join(f"{op} {n}" for op, n in ops.most_common(5))
            print(f"{start:5d}-{i - 1:5d} {region[0][2]:9d} {s:7.1f}% {e:5.1f}%  {top}")
        start = i


if __name__ == "__main__":
    main()
