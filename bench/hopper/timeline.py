#!/usr/bin/env python3
"""Where an MLA decode launch's time goes, from a `mla_probe.py --timeline` build's output:
`timeline.py LOG [LABEL]`. Per launch (the first quarter dropped as warm-up), in µs from the
launch's earliest block entry: the span to the last exit, the blocks' entries (spread), their
prologues (entry to Q and barriers ready), tile loops and epilogues, and the last block's loop
end; medians over launches of each statistic, with the SM clock the loops ran at (clock64 cycles
over globaltimer ns).
"""
import statistics
import sys


def launches(path):
    cur = None
    with open(path) as log:
        for line in log:
            f = line.split()
            if f[:1] == ["TLL"]:
                if cur:
                    yield cur
                cur = []
            elif f[:1] == ["TL"] and cur is not None and len(f) == 7:
                cur.append([int(x) for x in f[2:]])
    if cur:
        yield cur


def stats(blocks):
    q = lambda xs: (min(xs), statistics.median(xs), max(xs))
    entry = [b[0] for b in blocks]
    pro = [b[1] - b[0] for b in blocks]
    loop = [b[2] - b[1] for b in blocks]
    epi = [b[3] - b[2] for b in blocks]
    ghz = [b[4] / (b[2] - b[1]) for b in blocks if b[2] > b[1]]
    return {"span": (max(b[3] for b in blocks),) * 3, "entry": q(entry), "prologue": q(pro), "loop": q(loop),
            "epilogue": q(epi), "last loop end": (max(b[2] for b in blocks),) * 3, "GHz": q(ghz)}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    label = sys.argv[2] if len(sys.argv) > 2 else ""
    runs = [stats(b) for b in launches(sys.argv[1]) if b]
    runs = runs[len(runs) // 4:]
    if not runs:
        sys.exit("timeline: no TL lines")
    print(f"{label} {len(runs)} launches; min / median / max over blocks (µs, GHz), median over launches")
    for key in runs[0]:
        vals = [statistics.median(r[key][i] for r in runs) for i in range(3)]
        scale = 1 if key == "GHz" else 1e-3
        print(f"{label}   {key:14s} " + " / ".join(f"{v * scale:8.2f}" for v in vals))


if __name__ == "__main__":
    main()
