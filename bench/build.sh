#!/usr/bin/env bash
# make bench-build: time to build a 10-file node function with the layer strategy and push it to
# a registry on loopback (Debian's docker-registry, started here), against mature tools pushing
# the same image, in one run on the same machine:
#
#   hks           hksd build ... --push REF: build the image and push it, one process (the path
#                 a deploy takes: build, then push)
#   hks-build     hksd build alone (the OCI layout, no push)
#   hks-push      hksd push of the layout hksd build wrote (untimed, in --prepare)
#   hks-start     hksd build --help: what starting the process costs (the dynamic loader binds
#                 the symbols of some 50 libraries), paid by the commands, not by the daemon
#   skopeo        skopeo copy oci:LAYOUT docker://REF of that same layout: the same bytes pushed
#                 by a mature tool
#   umoci+skopeo  umoci repack of the same files (the function layer's tar extracted into a
#                 bundle unpacked from the base, the config set beforehand, untimed), then
#                 skopeo copy of the result: a build and push with mature tools
#
# Two scenarios:
#   cold  the registry's storage is emptied before every run: every blob is uploaded, the
#         base's included
#   warm  the base is in the repository already, and one byte of the function changed since
#         the last run (bench/build_fixture.py touch): the new layer and config are uploaded,
#         the base's layer is skipped
#
# A report, not a test: nothing is asserted about timings. It fails when a command fails or
# when a push did not do what the scenario says (checked once per command before timing it).
#
# The machine is shared, and its load changes while the script runs: so that every command sees
# the same conditions, the commands take turns, in BENCH_ROUNDS rounds of BENCH_RUNS runs each
# (one hyperfine call per command and round; the report pools the rounds).
#
#   BENCH_ROUNDS=6  BENCH_RUNS=5  BENCH_WARMUP=1 (per round)  BENCH_OUT=DIR (hyperfine JSON;
#   default a new temp dir)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

ROUNDS=${BENCH_ROUNDS:-6}
RUNS=${BENCH_RUNS:-5}
WARMUP=${BENCH_WARMUP:-1}
PY=/usr/bin/python3
HKSD=$root/build/hksd
FIXTURE=$here/build_fixture.py

die() { echo "bench/build.sh: $*" >&2; exit 1; }
for tool in hyperfine docker-registry skopeo umoci; do
    command -v "$tool" >/dev/null || die "$tool not found (make deps)"
done
[ -x "$HKSD" ] || die "$HKSD not built (make)"
[ -x /bin/busybox ] || die "/bin/busybox missing (busybox-static, make deps)"

out=${BENCH_OUT:-$(mktemp -d /tmp/hks-bench-build.XXXXXX)}
mkdir -p "$out"
work=$(mktemp -d /tmp/hks-bench-build-work.XXXXXX)
registry_pid=""
cleanup() {
    if [ -n "$registry_pid" ]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# quote an argv for hyperfine -N (which splits commands with shell-words) and for sh -c
q() { local s; s=$(printf '%q ' "$@"); echo "${s% }"; }

# ---------------------------------------------------------------- inputs
"$PY" "$FIXTURE" base "$work/base"
"$PY" "$FIXTURE" code "$work/code"
version_file=$work/code/lib/version.js

# ---------------------------------------------------------------- the registry
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
store=$work/registry
# no blob descriptor cache: emptying the storage directory between runs empties the registry
cat >"$work/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $store}, delete: {enabled: true}}
http: {addr: "$reg", secret: "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 </dev/null &
registry_pid=$!
for _ in $(seq 200); do
    curl -sf -o /dev/null "http://$reg/v2/" && break
    kill -0 "$registry_pid" 2>/dev/null || die "docker-registry exited: $(tail -5 "$work/registry.log")"
    sleep 0.05
done
curl -sf -o /dev/null "http://$reg/v2/" || die "docker-registry does not answer on $reg"

# ---------------------------------------------------------------- commands
hks_build=("$HKSD" build --runtime node --code "$work/code" --base-layout "$work/base" --tag v1)
skopeo_push=(skopeo --insecure-policy copy --quiet --dest-tls-verify=false)

cmd_hks=("${hks_build[@]}" --oci-layout "$work/out" --push "$reg/hks/fn:v1" --insecure)
cmd_hks_build=("${hks_build[@]}" --oci-layout "$work/out")
cmd_hks_push=("$HKSD" push --oci-layout "$work/img" --insecure "$reg/hkspush/fn:v1")
cmd_skopeo=("${skopeo_push[@]}" "oci:$work/img:v1" "docker://$reg/skopeo/fn:v1")
cmd_umoci=(/bin/sh -c "$(q umoci repack --image "$work/ulayout:fn" "$work/bundle") && $(q "${skopeo_push[@]}" "oci:$work/ulayout:fn" "docker://$reg/umoci/fn:v1")")

# The umoci image: the base with the function's config set (untimed), unpacked, and the files of
# hksd's function layer extracted into the bundle's rootfs (so umoci packs the same files).
"${cmd_hks_build[@]}" >"$work/first.json"
layer=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["layer_digest"][7:])' "$work/first.json")
cp -a "$work/base" "$work/ulayout.pristine"
umoci config --image "$work/ulayout.pristine:base" --tag fn --clear=config.cmd \
    --config.entrypoint node --config.entrypoint /hks/runtime/launcher.js \
    --config.entrypoint serve --config.user 1000:1000 --config.workingdir /code \
    --config.env PORT=8080 --config.env HKS_FUNCTION_DIR=/code --config.env NODE_ENV=production \
    --config.exposedports 8080/tcp
umoci unpack --image "$work/ulayout.pristine:fn" "$work/bundle.pristine" >/dev/null
tar -xzf "$work/out/blobs/sha256/$layer" -C "$work/bundle.pristine/rootfs"
rm -rf "$work/out"

# --prepare scripts (untimed): what each scenario needs before each run
prep() { # name body...
    local f=$work/prep-$1.sh; shift
    { echo '#!/bin/sh'; echo 'set -e'; printf '%s\n' "$@"; } >"$f"
    chmod +x "$f"
}
empty_registry="rm -rf $(q "$store")/docker"
one_byte="$(q "$PY" "$FIXTURE" touch "$version_file")"
build_img="rm -rf $(q "$work/img") && $(q "${hks_build[@]}" --oci-layout "$work/img") >/dev/null"
fresh_bundle="rm -rf $(q "$work/ulayout" "$work/bundle") && cp -a $(q "$work/ulayout.pristine" "$work/ulayout") && cp -a $(q "$work/bundle.pristine" "$work/bundle")"
prep none ":"
prep cold-hks "$empty_registry" "rm -rf $(q "$work/out")"
prep cold-hks-build "rm -rf $(q "$work/out")"
prep cold-push "$empty_registry" "[ -d $(q "$work/img") ] || { $build_img; }"
prep cold-umoci "$empty_registry" "$fresh_bundle"
prep warm-hks "$one_byte" "rm -rf $(q "$work/out")"
prep warm-hks-build "$one_byte" "rm -rf $(q "$work/out")"
prep warm-push "$one_byte" "$build_img"
prep warm-umoci "$fresh_bundle" "$(q "$PY" "$FIXTURE" touch "$work/bundle/rootfs/code/lib/version.js")"

# The manifest a layout's tag names, and the one the registry serves for repo:tag.
layout_digest() { # layout tag
    "$PY" -c 'import json, sys
for m in json.load(open(sys.argv[1] + "/index.json"))["manifests"]:
    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]:
        print(m["digest"])' "$1" "$2"
}
registry_digest() { skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$reg/$1"; }

# Run once as hyperfine will (prepare, then the command), and check the push did what the
# scenario says: the registry serves the layout's manifest for the repository, and hksd's JSON
# counts the blobs uploaded and skipped ("3 0" cold; "2 1" warm: layer and config, not the base).
precheck() { # label prep repo layout:tag counts cmd...
    local label=$1 prep=$2 repo=$3 layout=$4 counts=$5 rc=0 got
    shift 5
    "$work/prep-$prep.sh" >/dev/null || die "$label: --prepare failed"
    got=$("$@" 2>"$work/err") || rc=$?
    [ "$rc" = 0 ] || die "$label failed (exit $rc): $(cat "$work/err")"
    if [ -n "$counts" ]; then
        local have
        have=$(printf '%s' "$got" | "$PY" -c 'import json, sys
p = json.load(sys.stdin)
p = p.get("push", p)
print(p["uploaded"], p["skipped"])')
        [ "$have" = "$counts" ] || die "$label: uploaded, skipped = $have, expected $counts: $got"
    fi
    if [ -n "$repo" ]; then
        local want have
        want=$(layout_digest "${layout%:*}" "${layout##*:}")
        have=$(registry_digest "$repo")
        { [ -n "$want" ] && [ "$want" = "$have" ]; } || die "$label: the registry serves '$have' for $repo, the layout has '$want'"
    fi
}

labels=()
round=0
bench() { # label prep repo layout:tag counts cmd...
    local label=$1 prep=$2
    if [ "$round" = 1 ]; then
        precheck "$@"
        q "${@:6}" | sed "s|$work|\$WORK|g; s|$root/||g; s|$reg|\$REGISTRY|g" >"$out/$label.cmd"
        labels+=("$label=$out/$label")
    fi
    shift 5
    hyperfine -N --style none --warmup "$WARMUP" --runs "$RUNS" --prepare "$work/prep-$prep.sh" \
        --command-name "$label" --export-json "$out/$label.r$round.json" "$(q "$@")" \
        >/dev/null 2>>"$out/hyperfine.log" || die "$label failed in round $round: $(tail -3 "$out/hyperfine.log")"
}

base_layer_bytes() { find "$work/base/blobs/sha256" -type f -size +100k -printf '%s\n'; }

echo "## hks build and push benchmark"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- hksd $(git log -1 --format=%h 2>/dev/null || echo '?')$(git diff --quiet HEAD -- builder daemon 2>/dev/null || echo ' (builder/ or daemon/ modified)'); docker-registry $(dpkg-query -W -f='${Version}' docker-registry 2>/dev/null); $(skopeo --version); $(umoci --version); $(hyperfine --version)"
echo "- function: 10 files, $(du -sb --apparent-size "$work/code" | cut -f1) bytes; base: busybox-static, one layer of $(base_layer_bytes) bytes gzipped"
echo "- registry: docker-registry on $reg, filesystem storage under /tmp, plain HTTP"
echo "- $((ROUNDS * RUNS)) runs per command: $ROUNDS rounds, the commands taking turns, of $RUNS runs after $WARMUP warm-up; hyperfine -N (umoci+skopeo through /bin/sh -c); JSON in $out"
echo

for round in $(seq "$ROUNDS"); do
    # cold: the registry emptied before every run
    bench cold-hks cold-hks hks/fn:v1 "$work/out:v1" "3 0" "${cmd_hks[@]}"
    bench cold-hks-build cold-hks-build "" "" "" "${cmd_hks_build[@]}"
    bench cold-hks-push cold-push hkspush/fn:v1 "$work/img:v1" "3 0" "${cmd_hks_push[@]}"
    bench cold-skopeo cold-push skopeo/fn:v1 "$work/img:v1" "" "${cmd_skopeo[@]}"
    bench cold-umoci+skopeo cold-umoci umoci/fn:v1 "$work/ulayout:fn" "" "${cmd_umoci[@]}"

    # warm: each pusher's repository gets the base (and a first function layer), untimed
    for seed in "warm-hks:cmd_hks" "warm-push:cmd_hks_push" "warm-push:cmd_skopeo" "warm-umoci:cmd_umoci"; do
        declare -n seed_cmd=${seed#*:}
        { "$work/prep-${seed%%:*}.sh" >/dev/null && "${seed_cmd[@]}" >/dev/null; } || die "seeding ${seed#*:} failed"
        unset -n seed_cmd
    done
    bench warm-hks warm-hks hks/fn:v1 "$work/out:v1" "2 1" "${cmd_hks[@]}"
    bench warm-hks-build warm-hks-build "" "" "" "${cmd_hks_build[@]}"
    bench warm-hks-start none "" "" "" "$HKSD" build --help
    bench warm-hks-push warm-push hkspush/fn:v1 "$work/img:v1" "2 1" "${cmd_hks_push[@]}"
    bench warm-skopeo warm-push skopeo/fn:v1 "$work/img:v1" "" "${cmd_skopeo[@]}"
    bench warm-umoci+skopeo warm-umoci umoci/fn:v1 "$work/ulayout:fn" "" "${cmd_umoci[@]}"
done
echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

"$PY" "$here/build_report.py" "${labels[@]}"
