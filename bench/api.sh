#!/usr/bin/env bash
# API benchmark (make bench-api): executions per second and latency through hksd's HTTP API,
# against the same pool driven in-process (hks-exec, the library-level figure), plus hksd's
# memory idle and under load. A report, not a test.
#   BENCH_SECONDS=15  BENCH_CONNECTIONS=2 (executions at once)  BENCH_WARM=4
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
SECONDS_RUN=${BENCH_SECONDS:-15}
CONNS=${BENCH_CONNECTIONS:-2}
WARM=${BENCH_WARM:-4}
command -v wrk >/dev/null || { echo "bench/api.sh: wrk missing (apt-get install wrk)" >&2; exit 1; }
state=$(mktemp -d /tmp/hks-bench-api.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export HKSD_STATE_DIR=$state HKSD_POOL_PYTHON=$WARM HKSD_POOL_NODE=0
"$root/build/hksd" --listen "127.0.0.1:$port" 2>"$state/hksd.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT
for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
done
token=$("$root/build/hksd" token --sub bench --project bench --scope functions:execute --ttl 30m)
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
sleep 2
idle_kb=$(rss)

cat >"$state/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"runtime": "python", "code": "pass"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
echo "## hksd API benchmark"
echo
echo "- $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- trivial python program, $CONNS at once, $WARM warm sandboxes"
echo
wrk -t1 -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s "$state/post.lua" \
    "http://127.0.0.1:$port/internal/v1/operations/execute" >"$state/wrk.txt"
load_kb=$(rss)
kill "$pid"; wait "$pid" || true

echo pass >"$state/main.py"
"$root/build/hks-exec" --runtime python --warm "$WARM" --wait-warm --repeat 300 \
    --concurrency "$CONNS" --stats "$state/main.py" >"$state/lib.json"

python3 - "$state" "$idle_kb" "$load_kb" <<'PY'
import json, re, sys
state, idle_kb, load_kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
wrk = open(state + "/wrk.txt").read()
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1))
def ms(label):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % label, wrk, re.M)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
lib = json.load(open(state + "/lib.json"))
print("| | executions/s | p50 ms | p99 ms |")
print("|---|---:|---:|---:|")
print("| through the API (wrk) | %.1f | %.2f | %.2f |" % (rate, ms("50"), ms("99")))
print("| pool in-process (hks-exec) | %.1f | %.2f | %.2f |" % (lib["per_second"], lib["p50_ms"], lib["p99_ms"]))
print()
print("- API / in-process rate: %.2f" % (rate / lib["per_second"]))
print("- non-2xx responses: %s" % (non2xx.group(1) if non2xx else "0"))
print("- hksd RSS: idle %.1f MB, after the load %.1f MB" % (idle_kb / 1024, load_kb / 1024))
PY
