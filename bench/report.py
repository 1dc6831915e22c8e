#!/usr/bin/env python3
"""Summarise hyperfine --export-json files as a markdown table.

usage: report.py LABEL=FILE.json [LABEL=FILE.json ...]

The first LABEL is the baseline (bare). Labels "hks", "bwrap" and "crun" get
the extra hks/bwrap and hks/crun ratio lines. Times are in milliseconds.
"""
import json
import re
import statistics
import sys


def percentile(xs, p):
    """Linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def load(path):
    with open(path) as f:
        res = json.load(f)["results"][0]
    command = res["command"]
    try:  # the script stores the real command next to the JSON (--command-name hides it)
        with open(re.sub(r"\.json$", "", path) + ".cmd") as f:
            command = f.read().strip()
    except OSError:
        pass
    times = [t * 1000.0 for t in res["times"]]
    codes = res.get("exit_codes") or []
    return {
        "command": command,
        "n": len(times),
        "median": statistics.median(times),
        "p90": percentile(times, 90),
        "mean": statistics.fmean(times),
        "stddev": statistics.stdev(times) if len(times) > 1 else 0.0,
        "min": min(times),
        "max": max(times),
        "failed": sum(1 for c in codes if c not in (0, None)),
    }


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = []
    for arg in sys.argv[1:]:
        label, _, path = arg.partition("=")
        rows.append((label, load(path)))
    base_label, base = rows[0]
    stats = dict(rows)

    print("| runner | runs | median (ms) | p90 (ms) | mean ± σ (ms) | min (ms) "
          "| overhead vs %s (ms, median) | ratio vs %s (median) |" % (base_label, base_label))
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, s in rows:
        if label == base_label:
            over, ratio = "—", "1.00×"
        else:
            over = "%+.2f" % (s["median"] - base["median"])
            ratio = "%.2f×" % (s["median"] / base["median"])
        print("| %s | %d | %.2f | %.2f | %.2f ± %.2f | %.2f | %s | %s |" % (
            label, s["n"], s["median"], s["p90"], s["mean"], s["stddev"], s["min"], over, ratio))
    if stats.get("hks"):
        print()
    for mine in ("hks", "hks-nocgroup"):
        hks = stats.get(mine)
        for other in ("bwrap", "crun"):
            o = stats.get(other)
            if hks and o:
                print("- %s/%s: median %.2f×, p90 %.2f× (%s %+.2f ms median vs %s)" % (
                    mine, other, hks["median"] / o["median"], hks["p90"] / o["p90"], mine,
                    hks["median"] - o["median"], other))
            elif hks:
                print("- %s/%s: n/a (%s not measured)" % (mine, other, other))
    print()
    print("Commands:")
    print()
    for label, s in rows:
        extra = " (%d non-zero exits)" % s["failed"] if s["failed"] else ""
        print("- %s: `%s`%s" % (label, s["command"], extra))


if __name__ == "__main__":
    main()
