#!/usr/bin/env bash
# Startup-overhead benchmark: `python3 -c pass` bare, under hks-sandbox (default
# profile and limits), under bubblewrap and under crun (equivalent OCI bundle).
#
# This is a report, not a test: nothing is asserted about timings. The script
# exits non-zero only when a benchmarked command itself fails (or a required
# tool is missing).
#
# Environment:
#   BENCH_RUNS=200        hyperfine --runs
#   BENCH_WARMUP=20       hyperfine --warmup
#   BENCH_HKS=build/hks-sandbox   sandbox binary (relative to the checkout)
#   BENCH_SKIP_HKS=1      benchmark the others even if hks-sandbox is missing
#   BENCH_SKIP_CRUN=1     do not try crun
#   BENCH_CRUN_SECCOMP=0  do not load policies/seccomp/function.json into crun
#   BENCH_KEEP_HUGETLB=1  keep the hugetlb v1 mount this script may add for crun
#   BENCH_OUT=DIR         where the hyperfine JSON goes (default: a new temp dir)
#   PYTHON=/usr/bin/python3
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

RUNS=${BENCH_RUNS:-200}
WARMUP=${BENCH_WARMUP:-20}
PY=${PYTHON:-/usr/bin/python3}
HKS=${BENCH_HKS:-build/hks-sandbox}
PROFILE=policies/seccomp/function.json
case $HKS in /*) ;; *) HKS=$root/$HKS ;; esac

die() { echo "bench/sandbox.sh: $*" >&2; exit 1; }
note() { echo "note: $*"; }

command -v hyperfine >/dev/null || die "hyperfine not found (apt-get install hyperfine)"
command -v python3 >/dev/null || die "python3 not found"
[ -x "$PY" ] || die "$PY not found"

out=${BENCH_OUT:-$(mktemp -d /tmp/hks-bench.XXXXXX)}
mkdir -p "$out"
work=$(mktemp -d /tmp/hks-bench-work.XXXXXX)
crun_id="hks-bench-$$"
hugetlb_mounted=0
hugetlb_dir_created=0

cleanup() {
    if command -v crun >/dev/null 2>&1; then
        crun delete -f "$crun_id" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    if [ "$hugetlb_mounted" = 1 ] && [ "${BENCH_KEEP_HUGETLB:-0}" != 1 ]; then
        if umount /sys/fs/cgroup/hugetlb 2>/dev/null; then
            if [ "$hugetlb_dir_created" = 1 ]; then rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true; fi
            echo "note: unmounted the hugetlb cgroup v1 hierarchy again (/sys/fs/cgroup/hugetlb)"
        else
            echo "note: could not unmount /sys/fs/cgroup/hugetlb, left mounted"
        fi
    fi
}
trap cleanup EXIT

# quote an argv for hyperfine -N (which splits commands with shell-words)
q() { local s; s=$(printf '%q ' "$@"); echo "${s% }"; }

# run the command once before timing it, so a failure is reported clearly
precheck() {
    local label=$1; shift
    local rc=0 err
    err=$("$@" 2>&1 >/dev/null) || rc=$?
    if [ "$rc" != 0 ]; then
        echo "FAILED: $label exited $rc: $(q "$@")" >&2
        [ -n "$err" ] && printf '%s\n' "$err" | sed 's/^/  | /' >&2
        exit 1
    fi
}

labels=()
bench() {
    local label=$1; shift
    precheck "$label" "$@"
    echo
    echo "### $label: $(q "$@" | sed "s|$root/||g")"
    hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" \
        --command-name "$label" --export-json "$out/$label.json" "$(q "$@")"
    q "$@" | sed "s|$root/||g" >"$out/$label.cmd"
    labels+=("$label=$out/$label.json")
}

# ---------------------------------------------------------------- machine info
echo "## hks-sandbox startup benchmark"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "- nproc: $(nproc)"
echo "- kernel: $(uname -srm)"
echo "- cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
# shellcheck disable=SC1091
echo "- os: $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}")"
echo "- cgroups: $(if [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "v2 (unified)"; elif [ -d /sys/fs/cgroup/unified ]; then echo "hybrid (v1 controllers + v2 at /sys/fs/cgroup/unified)"; else echo "v1"; fi)"
echo "- load average: $(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v n="$(nproc)" '{ exit !($1 > n / 2) }' /proc/loadavg; then
    echo "- WARNING: the machine is busy (1-min load > nproc/2): expect noisy numbers"
fi
echo "- python: $("$PY" --version 2>&1)"
echo "- hyperfine: $(hyperfine --version)"
echo "- bwrap: $(bwrap --version 2>/dev/null || echo "not installed")"
echo "- crun: $(crun --version 2>/dev/null | head -1 || echo "not installed")"
if [ -x "$HKS" ]; then
    echo "- hks-sandbox: $HKS ($(git log -1 --format=%h 2>/dev/null || echo "no commit")$(git diff --quiet HEAD -- sandbox 2>/dev/null || echo ", sandbox/ modified"))"
fi
echo "- runs: $RUNS (warmup $WARMUP), hyperfine -N (no intermediate shell)"
echo "- JSON: $out"

skipped=()

# ---------------------------------------------------------------- 1. bare
bench bare "$PY" -c pass

# ---------------------------------------------------------------- 2. hks-sandbox
if [ -x "$HKS" ]; then
    bench hks "$HKS" -- "$PY" -c pass
    # informational only: what the sandbox itself reports for one run
    if info=$("$HKS" --json -- "$PY" -c pass 2>/dev/null); then
        printf '%s' "$info" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("hks --json: status=%s wall_ms=%s cpu_ms=%s peak_memory_bytes=%s cgroup=%s" % (
    r.get("status"), r.get("wall_ms"), r.get("cpu_ms"), r.get("peak_memory_bytes"), r.get("cgroup")))
' 2>/dev/null || note "hks --json output not parseable"
    else
        note "hks-sandbox --json run failed (ignored, informational)"
    fi
elif [ "${BENCH_SKIP_HKS:-0}" = 1 ]; then
    skipped+=("hks: $HKS not built (BENCH_SKIP_HKS=1)")
else
    die "$HKS not found: build it first (make), or set BENCH_SKIP_HKS=1"
fi

# ---------------------------------------------------------------- 2b. hks-sandbox without cgroups
# The same isolation without the per-sandbox cgroup, to compare like with like against bwrap
# (which sets no resource limits) and to show what the cgroup costs on this host (on cgroup v1
# the move into the cgroup waits for an RCU grace period; see docs/operations.md).
if [ -x "$HKS" ]; then
    bench hks-nocgroup "$HKS" --no-cgroup -- "$PY" -c pass
fi

# ---------------------------------------------------------------- 3. bubblewrap
if command -v bwrap >/dev/null; then
    bw=(bwrap --unshare-all)
    for d in /usr /lib /lib64 /bin /sbin; do
        if [ -L "$d" ]; then
            bw+=(--symlink "$(readlink "$d")" "$d")
        elif [ -d "$d" ]; then
            bw+=(--ro-bind "$d" "$d")
        fi
    done
    bw+=(--proc /proc --dev /dev --tmpfs /tmp --die-with-parent --new-session --)
    bench bwrap "${bw[@]}" "$PY" -c pass
else
    skipped+=("bwrap: not installed")
fi

# ---------------------------------------------------------------- 4. crun
# Done last: on hybrid-cgroup machines it may need the hugetlb mount below,
# which should not change the environment the other runners were timed in.
crun_try() { crun run --bundle "$work/bundle" "$crun_id" </dev/null >"$work/crun.out" 2>"$work/crun.err"; }

crun_reason=""
if [ "${BENCH_SKIP_CRUN:-0}" = 1 ]; then
    crun_reason="BENCH_SKIP_CRUN=1"
elif ! command -v crun >/dev/null; then
    crun_reason="crun not installed"
else
    seccomp_args=()
    seccomp_note="without seccomp: $PROFILE missing"
    if [ "${BENCH_CRUN_SECCOMP:-1}" != 1 ]; then
        seccomp_note="without seccomp: BENCH_CRUN_SECCOMP=${BENCH_CRUN_SECCOMP}"
    elif [ -f "$PROFILE" ]; then
        seccomp_args=(--seccomp "$PROFILE")
        seccomp_note="with the same seccomp profile ($PROFILE)"
    fi
    python3 "$here/crun-bundle.py" "$work/bundle" "${seccomp_args[@]}" -- "$PY" -c pass
    if ! crun_try; then
        if grep -q "hybrid mode" "$work/crun.err" && [ "$(id -u)" = 0 ] &&
            ! mountpoint -q /sys/fs/cgroup/hugetlb 2>/dev/null &&
            grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then
            echo
            note "crun said: $(tr '\n' ' ' <"$work/crun.err")"
            note "moving the hugetlb controller off the cgroup v2 root so crun accepts the hybrid layout:"
            [ -d /sys/fs/cgroup/hugetlb ] || { mkdir -p /sys/fs/cgroup/hugetlb && hugetlb_dir_created=1; }
            echo "  + mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb none /sys/fs/cgroup/hugetlb"
            if mount -t cgroup -o hugetlb none /sys/fs/cgroup/hugetlb; then
                hugetlb_mounted=1
                [ "${BENCH_KEEP_HUGETLB:-0}" = 1 ] || note "it is unmounted again on exit (BENCH_KEEP_HUGETLB=1 keeps it)"
            fi
            crun_try || crun_reason="crun run fails: $(tr '\n' ' ' <"$work/crun.err")"
        else
            crun_reason="crun run fails: $(tr '\n' ' ' <"$work/crun.err")"
        fi
    fi
    if [ -n "$crun_reason" ] && [ "${#seccomp_args[@]}" -gt 0 ]; then
        note "crun fails with the seccomp profile loaded ($crun_reason); retrying without seccomp"
        rm -rf "$work/bundle"
        seccomp_args=()
        seccomp_note="WITHOUT seccomp: crun rejected $PROFILE"
        python3 "$here/crun-bundle.py" "$work/bundle" -- "$PY" -c pass
        crun_reason=""
        crun_try || crun_reason="crun run fails: $(tr '\n' ' ' <"$work/crun.err")"
    fi
    [ -n "$crun_reason" ] || note "crun bundle runs $seccomp_note"
fi
if [ -z "$crun_reason" ]; then
    bench crun crun run --bundle "$work/bundle" "$crun_id"
else
    skipped+=("crun: $crun_reason")
fi

# ---------------------------------------------------------------- report
echo
echo "## Results: \`python3 -c pass\` ($(nproc) cores, $(uname -r), $RUNS runs)"
echo
python3 "$here/report.py" "${labels[@]}"
if [ "${#skipped[@]}" -gt 0 ]; then
    echo
    for s in "${skipped[@]}"; do echo "- skipped $s"; done
fi
