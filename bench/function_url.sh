#!/usr/bin/env bash
# Function URL benchmark (part of make bench-api): wrk against a warm node function through
# hksd's /fn/{id}/ (token check, instance lease, proxy to the sandboxed launcher's Unix socket)
# against the same launcher and handler served directly on TCP without hksd or a sandbox, in
# the same run. A report, not a test.
#   BENCH_SECONDS=10  BENCH_CONNECTIONS=8
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
SECONDS_RUN=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-8}
command -v wrk >/dev/null || { echo "bench/function_url.sh: wrk missing" >&2; exit 1; }
state=$(mktemp -d /tmp/hks-bench-fn.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
direct_port=$(free_port)
export HKSD_STATE_DIR=$state HKSD_POOL_PYTHON=0 HKSD_POOL_NODE=0
"$root/build/hksd" --listen "127.0.0.1:$port" 2>"$state/hksd.log" &
pid=$!
direct=""
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [ -n "$direct" ] && kill "$direct" 2>/dev/null && wait "$direct" 2>/dev/null
    rm -rf "$state"
}
trap cleanup EXIT
for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
done
token=$("$root/build/hksd" token --sub bench --project bench \
    --scope "functions:deploy functions:invoke functions:read" --ttl 30m)
handler='module.exports = { handle: async () => ({ body: "ok" }) };'
python3 -c 'import json,sys; print(json.dumps({"runtime":"node","name":"bench","code":sys.argv[1],"concurrency":1000,"max_scale":1,"min_scale":1}))' "$handler" >"$state/deploy.json"
id=$(curl -sf -XPOST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data-binary @"$state/deploy.json" "http://127.0.0.1:$port/internal/v1/operations/deploy-function" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/fn/$id/" >/dev/null
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

# the same launcher and handler, no hksd and no sandbox: the function served directly on TCP
mkdir -p "$state/code"
printf '%s\n' "$handler" >"$state/code/index.js"
# (its log lines go to a file, as the instance's go through a pipe into hksd's function log)
HKS_CODE_DIR="$state/code" HKS_FUNCTION_DIR="$state/code" PORT=$direct_port NODE_ENV=production \
    node "$root/runtimes/node/launcher.js" serve 2>"$state/direct.log" &
direct=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$direct_port/" >/dev/null && break
    sleep 0.1
done

cat >"$state/auth.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
LUA
echo "## function URL benchmark"
echo
echo "- $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- warm node function returning \"ok\", wrk ${CONNS} connections, ${SECONDS_RUN} s each"
echo
wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s "$state/auth.lua" \
    "http://127.0.0.1:$port/fn/$id/" >"$state/via.txt"
load_kb=$(rss)
wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency "http://127.0.0.1:$direct_port/" >"$state/direct.txt"

python3 - "$state" "$load_kb" <<'PY'
import re, sys
state, load_kb = sys.argv[1], int(sys.argv[2])
def parse(name):
    text = open("%s/%s.txt" % (state, name)).read()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    def ms(label):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % label, text, re.M)
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rate, ms("50"), ms("99"), int(bad.group(1)) if bad else 0
via, direct = parse("via"), parse("direct")
print("| | requests/s | p50 ms | p99 ms | non-2xx |")
print("|---|---:|---:|---:|---:|")
print("| through hksd /fn/{id}/ (sandboxed instance) | %.0f | %.2f | %.2f | %d |" % via)
print("| the launcher directly on TCP (no hksd, no sandbox) | %.0f | %.2f | %.2f | %d |" % direct)
print()
print("- through hksd / direct throughput: %.2f" % (via[0] / direct[0]))
print("- hksd RSS after the load: %.1f MB" % (load_kb / 1024))
PY
