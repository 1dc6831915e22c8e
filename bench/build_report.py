#!/usr/bin/python3
"""Summarise bench/build.sh's hyperfine JSON files: one table per scenario (cold, warm), each
row's median against hks (build and push in one process), the like-for-like ratios (hksd push
against skopeo pushing the same layout; hks against umoci repack + skopeo), and the issue's
target (warm build and push under 200 ms, at the median). "CPU" is hyperfine's user + system time
of the command and its children (not the registry's): unlike wall time, it hardly moves with the
load other processes put on the machine.

usage: build_report.py SCENARIO-LABEL=PREFIX ...   (labels as bench/build.sh names them)

Each label's samples are pooled from PREFIX.r*.json (one hyperfine JSON per round); its command
line is read from PREFIX.cmd. Times are in milliseconds.
"""
import glob
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import percentile  # noqa: E402  (bench/report.py)

TARGET_WARM_MS = 200.0
WHAT = {
    "hks": "hksd build --push (build and push, one process)",
    "hks-build": "hksd build (layout only)",
    "hks-start": "hksd build --help (process start only)",
    "hks-push": "hksd push (the layout hksd build wrote)",
    "skopeo": "skopeo copy (the same layout)",
    "umoci+skopeo": "umoci repack (same files) + skopeo copy",
}


def load(prefix):
    times, failed, cpu = [], 0, 0.0
    files = sorted(glob.glob(glob.escape(prefix) + ".r*.json"))
    if not files:
        sys.exit("build_report.py: no %s.r*.json" % prefix)
    for path in files:
        with open(path) as f:
            res = json.load(f)["results"][0]
        times += [t * 1000.0 for t in res["times"]]
        cpu += (res["user"] + res["system"]) * 1000.0 * len(res["times"])
        failed += sum(1 for c in res.get("exit_codes") or [] if c not in (0, None))
    with open(prefix + ".cmd") as f:
        command = f.read().strip()
    return {"command": command, "n": len(times), "median": statistics.median(times),
            "p90": percentile(times, 90), "mean": statistics.fmean(times),
            "stddev": statistics.stdev(times) if len(times) > 1 else 0.0, "min": min(times),
            "cpu": cpu / len(times), "failed": failed}


def ratio(a, b):
    return "%.2f×" % (a["median"] / b["median"]) if a and b else "n/a"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    results = {}
    for arg in sys.argv[1:]:
        label, _, path = arg.partition("=")
        scenario, _, runner = label.partition("-")
        results.setdefault(scenario, {})[runner] = load(path)
    for scenario, rows in results.items():
        hks = rows.get("hks")
        print("### %s" % scenario)
        print()
        print("| runner | runs | median (ms) | p90 (ms) | mean ± σ (ms) | min (ms) "
              "| CPU user+sys (ms) | vs hks (median) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for runner, s in rows.items():
            print("| %s | %d | %.1f | %.1f | %.1f ± %.1f | %.1f | %.1f | %s |" % (
                WHAT.get(runner, runner), s["n"], s["median"], s["p90"], s["mean"], s["stddev"],
                s["min"], s["cpu"], ratio(s, hks)))
        print()
        print("- hksd push / skopeo copy, same bytes: %s" % ratio(rows.get("hks-push"),
                                                               rows.get("skopeo")))
        print("- hks build+push / umoci repack + skopeo copy: %s" % ratio(
            hks, rows.get("umoci+skopeo")))
        failed = {r: s["failed"] for r, s in rows.items() if s["failed"]}
        if failed:
            print("- non-zero exits: %s" % failed)
        print()
    warm = results.get("warm", {}).get("hks")
    if warm:
        met = warm["median"] < TARGET_WARM_MS
        print("Target (warm build and push under %.0f ms): %s, median %.1f ms, p90 %.1f ms." % (
            TARGET_WARM_MS, "met" if met else "NOT met", warm["median"], warm["p90"]))
        print()
    print("Commands ($WORK: the script's temporary directory):")
    print()
    for scenario, rows in results.items():
        for runner, s in rows.items():
            print("- %s-%s: `%s`" % (scenario, runner, s["command"]))


if __name__ == "__main__":
    main()
