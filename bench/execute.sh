#!/usr/bin/env bash
# One-shot execution benchmark (make bench-execute): a trivial python and node program through
# the warm pool (hks-exec, the same pool hksd uses), against bare cold `python3 -c pass` /
# `node -e 0` and the same under bwrap; then sustained executions per second through the pool
# against the rate of bare cold interpreter starts, with as many at once as the machine has cores.
# A report, not a test: nothing is asserted about timings.
#
#   BENCH_RUNS=200 (latency samples per runner)   BENCH_RATE_RUNS=400 (executions for the rates)
#   BENCH_WARM=4 (warm sandboxes per runtime)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
RUNS=${BENCH_RUNS:-200}
RATE_RUNS=${BENCH_RATE_RUNS:-400}
WARM=${BENCH_WARM:-4}
CORES=$(nproc)
EXEC=$root/build/hks-exec
[ -x "$EXEC" ] || { echo "bench/execute.sh: build first (make)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench/execute.sh: hyperfine missing" >&2; exit 1; }
work=$(mktemp -d /tmp/hks-bench-exec.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "pass" >"$work/main.py"
echo "" >"$work/main.js"

echo "## hks execute benchmark"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- python $(/usr/bin/python3 --version 2>&1 | cut -d' ' -f2), node $(/usr/bin/node --version), warm sandboxes per runtime: $WARM"
echo

bw=(bwrap --unshare-all)
for d in /usr /lib /lib64 /bin /sbin; do
    if [ -L "$d" ]; then bw+=(--symlink "$(readlink "$d")" "$d"); elif [ -d "$d" ]; then bw+=(--ro-bind "$d" "$d"); fi
done
bw+=(--proc /proc --dev /dev --tmpfs /tmp --die-with-parent --new-session --)

cold() { # label command...
    local label=$1; shift
    hyperfine -N --style none --warmup 10 --runs "$RUNS" --export-json "$work/$label.json" "$*" >/dev/null
}
cold bare-python /usr/bin/python3 -c pass
cold bare-node /usr/bin/node -e 0
cold bwrap-python "${bw[@]}" /usr/bin/python3 -c pass
cold bwrap-node "${bw[@]}" /usr/bin/node -e 0

# Latency at low load: the pool is full again before each execution (--interval).
"$EXEC" --runtime python --warm "$WARM" --wait-warm --interval 2000 --repeat "$RUNS" --stats \
    "$work/main.py" >"$work/pool-python.stats"
"$EXEC" --runtime node --warm "$WARM" --wait-warm --interval 2000 --repeat "$RUNS" --stats \
    "$work/main.js" >"$work/pool-node.stats"

# Sustained rates: as many executions at once as there are cores, back to back.
rate_bare() { # label command...
    local label=$1; shift
    local start end
    start=$(date +%s.%N)
    seq "$RATE_RUNS" | xargs -P "$CORES" -I{} "$@" >/dev/null
    end=$(date +%s.%N)
    python3 -c "print('{\"per_second\": %.1f}' % ($RATE_RUNS / ($end - $start)))" >"$work/$label.rate"
}
rate_bare rate-bare-python /usr/bin/python3 -c pass
rate_bare rate-bare-node /usr/bin/node -e 0
"$EXEC" --runtime python --warm "$WARM" --wait-warm --repeat "$RATE_RUNS" --concurrency "$CORES" \
    --stats "$work/main.py" >"$work/rate-pool-python.stats"
"$EXEC" --runtime node --warm "$WARM" --wait-warm --repeat "$RATE_RUNS" --concurrency "$CORES" \
    --stats "$work/main.js" >"$work/rate-pool-node.stats"

python3 "$here/execute_report.py" "$work"
