#!/usr/bin/env python3
"""Summarise bench/execute.sh's measurements (a directory of hyperfine JSON and hks-exec stats)."""
import json
import os
import statistics
import sys


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def cold(d, label):
    with open(os.path.join(d, label + ".json")) as f:
        times = [t * 1000 for t in json.load(f)["results"][0]["times"]]
    return {"p50": statistics.median(times), "p99": pct(times, 99)}


def stats(d, name):
    with open(os.path.join(d, name)) as f:
        return json.loads(f.read())


def main():
    d = sys.argv[1]
    print("### Latency of one trivial program (ms)")
    print()
    print("| | python p50 | python p99 | node p50 | node p99 |")
    print("|---|---:|---:|---:|---:|")
    rows = {}
    for label in ("bare", "bwrap"):
        rows[label] = {lang: cold(d, "%s-%s" % (label, lang)) for lang in ("python", "node")}
    rows["pool"] = {lang: {"p50": stats(d, "pool-%s.stats" % lang)["p50_ms"],
                           "p99": stats(d, "pool-%s.stats" % lang)["p99_ms"]}
                    for lang in ("python", "node")}
    names = {"bare": "bare cold start", "bwrap": "cold under bwrap", "pool": "hks warm pool"}
    for label in ("bare", "bwrap", "pool"):
        r = rows[label]
        print("| %s | %.2f | %.2f | %.2f | %.2f |" % (names[label], r["python"]["p50"],
              r["python"]["p99"], r["node"]["p50"], r["node"]["p99"]))
    print()
    for lang in ("python", "node"):
        pool = rows["pool"][lang]["p50"]
        print("- %s: pool p50 / bare cold p50 = %.3f×; pool p50 / bwrap cold p50 = %.3f×" % (
            lang, pool / rows["bare"][lang]["p50"], pool / rows["bwrap"][lang]["p50"]))
        warm = stats(d, "pool-%s.stats" % lang)
        print("  (%d of %d executions served warm)" % (warm["warm"], warm["executions"]))
    print()
    print("### Sustained executions per second (%d at once)" % os.cpu_count())
    print()
    print("| | python | node |")
    print("|---|---:|---:|")
    bare = {lang: stats(d, "rate-bare-%s.rate" % lang)["per_second"] for lang in ("python", "node")}
    pool = {lang: stats(d, "rate-pool-%s.stats" % lang) for lang in ("python", "node")}
    print("| bare cold starts | %.1f | %.1f |" % (bare["python"], bare["node"]))
    print("| hks warm pool | %.1f | %.1f |" % (pool["python"]["per_second"], pool["node"]["per_second"]))
    print()
    for lang in ("python", "node"):
        print("- %s: pool rate / bare rate = %.2f (%d of %d warm, %d failures)" % (
            lang, pool[lang]["per_second"] / bare[lang], pool[lang]["warm"],
            pool[lang]["executions"], pool[lang]["failures"]))


if __name__ == "__main__":
    main()
