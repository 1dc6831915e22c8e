#!/usr/bin/env bash
# Load test (make bench-load): CLIENTS concurrent clients for SECONDS against one hksd, mixing
# execute, deploy, invoke (the function's URL and invoke-function), delete and CronJob triggers
# (bench/load.mjs), then checks that nothing leaked. Exits non-zero when any answer was an error
# other than 429 (connection errors included) or when, after the run's functions are deleted and
# a settle period, hksd's RSS, fds, threads, processes, cgroups or state directory did not come
# back to the baseline. Reports p50/p99 per operation, throughput and hksd's CPU.
#   CLIENTS=200 SECONDS=60 WARMUP=10 SETTLE=60 (the longest wait for the baseline)
#   RSS_SLACK_KB=4096 RSS_SLACK_PCT=10  SOURCES=8 (loopback source addresses)
# The baseline is taken after a warm-up run of WARMUP seconds with the same mix: the allocator's
# high-water mark and the first instances' costs are paid by then, so what grows afterwards is
# what the run kept.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
CLIENTS=${CLIENTS:-200}
# (bash's own SECONDS counts from the shell's start: the caller's value is read from the
# environment before it moves)
RUN_SECONDS=$(printenv SECONDS || echo 60)
RUN_SECONDS=${RUN_SECONDS%%.*}
WARMUP=${WARMUP:-10}
SETTLE=${SETTLE:-60}
RSS_SLACK_KB=${RSS_SLACK_KB:-4096}
RSS_SLACK_PCT=${RSS_SLACK_PCT:-10}
SOURCES=${SOURCES:-8}
command -v node >/dev/null || { echo "bench/load.sh: node missing (apt-get install nodejs)" >&2; exit 1; }
state=$(mktemp -d /tmp/hks-load.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# idle instances stop after 5 s, so that the settle period sees the pools and functions at rest
export HKSD_STATE_DIR=$state HKSD_POOL_PYTHON=2 HKSD_POOL_NODE=2 HKSD_FUNCTION_IDLE=5
"$root/build/hksd" --listen "127.0.0.1:$port" 2>"$state/hksd.log" &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$state"
}
trap cleanup EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 600); do
    curl -sf "$base/readyz" >/dev/null && break
    sleep 0.1
done
token=$("$root/build/hksd" token --sub load --project load --ttl 55m --scope \
    "functions:execute functions:deploy functions:invoke functions:delete functions:read cronjobs:write cronjobs:read")
api() { # METHOD PATH [BODY]: the answer's body; fails on a non-2xx
    curl -sf -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        ${3:+--data-binary "$3"} "$base$2"
}
snapshot() { python3 "$root/tests/integration/host_state.py" "$pid" "$state"; }
pool_full() {
    curl -sf "$base/metrics" | awk '/^hks_pool_ready/ {n += $2} END {exit !(n == 4)}'
}
residents=""
cron=""
deploy_residents() {
    local list="" node py
    node='module.exports = { handle: async (ctx, body) => ({ body: "ok" }) };'
    py=$'def new():\n    return F()\n\nclass F:\n    async def handle(self, scope, receive, send):\n        await send({"type": "http.response.start", "status": 200, "headers": []})\n        await send({"type": "http.response.body", "body": b"ok"})\n'
    for rt in node node python; do
        local code=$node
        [ "$rt" = python ] && code=$py
        body=$(python3 -c 'import json,sys; print(json.dumps({"runtime": sys.argv[1], "name": "resident", "code": sys.argv[2], "min_scale": 1, "max_scale": 3, "concurrency": 50, "ttl_seconds": 3600}))' "$rt" "$code")
        id=$(api POST /internal/v1/operations/deploy-function "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
        list="$list{\"id\":\"$id\",\"runtime\":\"$rt\"},"
    done
    residents="[${list%,}]"
    first=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[0]["id"])' "$residents")
    cron=$(api POST /internal/v1/cronjobs "{\"name\":\"load\",\"schedule\":\"0 0 1 1 *\",\"successful_jobs_history_limit\":1,\"failed_jobs_history_limit\":1,\"target\":{\"function\":{\"id\":\"$first\"}}}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
}
remove_residents() {
    for id in $(python3 -c 'import json,sys; print(" ".join(f["id"] for f in json.loads(sys.argv[1])))' "$residents"); do
        api POST /internal/v1/operations/delete-function "{\"id\":\"$id\"}" >/dev/null
    done
    api DELETE "/internal/v1/cronjobs/$cron" >/dev/null
}
run_load() { # SECONDS OUT
    LOAD_CLIENTS=$CLIENTS LOAD_SECONDS=$1 LOAD_SOURCES=$SOURCES \
        node "$here/load.mjs" "$base" "$token" "$residents" "$cron" >"$2"
}
settle() { # wait for the pools to be full and nothing of the run left, then a snapshot
    local last="" now
    for _ in $(seq "$SETTLE"); do
        now=$(snapshot | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["sandbox_processes"], s["fds"], s["threads"], s["cgroup_count"], any(s["state"][d] for d in ("fn","sock","functions")))')
        pool_full && [ "${now##* }" = False ] && [ "$now" = "$last" ] && break
        last=$now
        sleep 1
    done
    sleep 2
    snapshot
}

echo "## hksd load test" >&2
deploy_residents
run_load "$WARMUP" "$state/warmup.json"
remove_residents
settle >"$state/baseline.json"
deploy_residents
cpu0=$(snapshot)
t0=$(date +%s.%N)
run_load "$RUN_SECONDS" "$state/run.json"
t1=$(date +%s.%N)
cpu1=$(snapshot)
remove_residents
settle >"$state/after.json"

python3 - "$state" "$CLIENTS" "$RUN_SECONDS" "$RSS_SLACK_KB" "$RSS_SLACK_PCT" "$t0" "$t1" \
    "$cpu0" "$cpu1" <<'PY'
import json, os, platform, sys
state, clients, seconds, slack_kb, slack_pct, t0, t1 = sys.argv[1:8]
cpu0, cpu1 = json.loads(sys.argv[8]), json.loads(sys.argv[9])
run = json.load(open(state + "/run.json"))
warm = json.load(open(state + "/warmup.json"))
before = json.load(open(state + "/baseline.json"))
after = json.load(open(state + "/after.json"))
wall = float(t1) - float(t0)
failures = []
print("- %s, %d cores, %s, load %s" % (os.popen("date -u +%Y-%m-%dT%H:%M:%SZ").read().strip(),
      os.cpu_count(), platform.platform(terse=True), open("/proc/loadavg").read().split()[0]))
print("- %s clients for %s s (after a %s-client warm-up), %d loopback source addresses"
      % (clients, seconds, warm["clients"], run["sources"]))
print()
print("| operation | requests | per second | p50 ms | p99 ms | max ms | statuses |")
print("|---|---:|---:|---:|---:|---:|---|")
total = 0
for name in ("execute", "invoke_url", "invoke_function", "deploy", "delete", "cron_trigger"):
    op = run["operations"].get(name)
    if not op:
        continue
    total += op["count"]
    fmt = lambda v: "%.1f" % v if v is not None else "—"
    print("| %s | %d | %.1f | %s | %s | %s | %s |" % (
        name, op["count"], op["per_second"], fmt(op["p50_ms"]), fmt(op["p99_ms"]),
        fmt(op["max_ms"]), ", ".join("%s: %d" % kv for kv in sorted(op["statuses"].items()))))
for label, r in (("warm-up", warm), ("run", run)):
    for name, op in r["operations"].items():
        for status, n in op["statuses"].items():
            ok = status.isdigit() and (200 <= int(status) < 300 or int(status) == 429)
            if not ok:
                failures.append("%s: %s answered %s %d times" % (label, name, status, n))
    if r["undeleted"]:
        failures.append("%s: functions the clients could not delete: %s" % (label, r["undeleted"]))
print()
hksd_cpu = cpu1["cpu_s"] - cpu0["cpu_s"]
print("- throughput: %.0f requests/s in all; hksd CPU %.1f s over %.1f s (%.0f%% of one core), "
      "the spawner %.1f s" % (total / float(seconds), hksd_cpu, wall, 100 * hksd_cpu / wall,
                               cpu1["spawner_cpu_s"] - cpu0["spawner_cpu_s"]))
rss_limit = before["rss_kb"] + max(int(slack_kb), before["rss_kb"] * int(slack_pct) // 100)
checks = [
    ("RSS kB", before["rss_kb"], after["rss_kb"], after["rss_kb"] <= rss_limit),
    ("open fds", before["fds"], after["fds"], after["fds"] <= before["fds"]),
    ("threads", before["threads"], after["threads"], after["threads"] <= before["threads"]),
    ("processes below hksd", before["processes"], after["processes"],
     after["processes"] <= before["processes"]),
    ("sandbox processes", before["sandbox_processes"], after["sandbox_processes"],
     after["sandbox_processes"] <= before["sandbox_processes"]),
    ("hks-* cgroups", before["cgroup_count"], after["cgroup_count"],
     after["cgroup_count"] <= before["cgroup_count"]),
]
for d in ("fn", "sock", "pool", "functions", "cronjobs"):
    checks.append(("state %s/ entries" % d, len(before["state"][d]), len(after["state"][d]),
                   len(after["state"][d]) <= len(before["state"][d])))
print("- at rest before and after the run (every function of it deleted, the pools full, "
      "nothing changing for a second):")
print()
print("| | before | after | |")
print("|---|---:|---:|---|")
for name, b, a, ok in checks:
    print("| %s | %s | %s | %s |" % (name, b, a, "ok" if ok else "**LEAK**"))
    if not ok:
        failures.append("%s: %s before, %s after" % (name, b, a))
print()
if run["samples"]:
    print("- unexpected answers (first %d):" % len(run["samples"]))
    for s in run["samples"]:
        print("  - %s %s %s" % (s["op"], s["status"], s["body"]))
if failures:
    print("FAILED:")
    for f in failures:
        print("  - " + f)
    sys.exit(1)
print("PASSED: no error other than 429, nothing leaked")
PY
