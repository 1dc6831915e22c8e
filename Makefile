# HKS Functions. `make` builds everything, `make test` runs every test, `make run` starts it.
# `make deps` installs the Debian packages the build and the tests need (as root).

BUILD      ?= build
CC         ?= cc
PKGS       := libseccomp libcap jansson libcrypto libmicrohttpd libcurl libarchive yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

WARNINGS   := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
              -Wformat=2 -Wno-format-nonliteral -Wpointer-arith -Wvla -Wundef
HARDENING  := -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fstack-clash-protection -fPIE \
              -fcf-protection
CFLAGS     ?= -O2 -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARNINGS) $(HARDENING) $(CFLAGS) $(PKG_CFLAGS) -I.
LDFLAGS    ?=
ALL_LDFLAGS:= -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(LDFLAGS)

# Sanitizer build of the unit tests (no FORTIFY: it conflicts with ASan's interceptors).
SAN_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARNINGS) -O1 -g -fno-omit-frame-pointer \
              -fsanitize=address,undefined -fno-sanitize-recover=all $(PKG_CFLAGS) -I.

COMMON_SRC  := common/common.c
SANDBOX_SRC := sandbox/profile.c sandbox/profile_cache.c sandbox/cgroup.c sandbox/rootfs.c sandbox/child.c \
               sandbox/run.c sandbox/result.c sandbox/message.c sandbox/request.c sandbox/spawner.c
RUNTIMES_SRC:= runtimes/files.c runtimes/pool.c runtimes/serve.c
# builder: build contexts and safe extraction of uploaded archives
BUILDER_SRC := $(wildcard builder/*.c)
# cluster: the Kubernetes client, the renderers of a function's objects (policies/kubernetes/)
CLUSTER_SRC := $(wildcard cluster/*.c)
# hksd: the daemon and its HTTP edge (api -> daemon -> sandbox, runtimes)
DAEMON_SRC  := $(wildcard daemon/*.c)
API_SRC     := $(wildcard api/*.c)
DAEMON_MAIN := daemon/main.c
LIB_SRC     := $(COMMON_SRC) $(SANDBOX_SRC) $(RUNTIMES_SRC) $(BUILDER_SRC) $(CLUSTER_SRC) $(filter-out $(DAEMON_MAIN),$(DAEMON_SRC)) $(API_SRC)
LIB_OBJ     := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
SAN_OBJ     := $(LIB_SRC:%.c=$(BUILD)/san/%.o)
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_SAN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests-san/%)
HEADERS     := $(wildcard common/*.h sandbox/*.h runtimes/*.h builder/*.h cluster/*.h daemon/*.h api/*.h)
# hks-func: the command line (cli/, docs/cli.md)
CLI_SRC     := $(wildcard cli/*.c)
CLI_OBJ     := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)

FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_OBJ    := $(LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)
FUZZ_CC     := clang
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=all $(PKG_CFLAGS) -I.
FUZZ_SECONDS ?= 60

PYTEST      := /usr/bin/python3 -m pytest

DEB_PACKAGES := gcc make pkg-config libssl-dev libmicrohttpd-dev libcurl4-openssl-dev libarchive-dev clang clang-format clang-tidy cppcheck libclang-rt-14-dev libseccomp-dev libcap-dev libjansson-dev libcmocka-dev libyaml-dev \
                python3 python3-pytest python3-yaml nodejs bubblewrap crun hyperfine wrk curl \
                docker-registry skopeo umoci busybox-static openssl chromium

.PHONY: all deps test unit unit-asan integration kube-deps security run bench bench-sandbox clean \
        format lint check-policies policy-deps fuzz fuzz-replay bench-execute bench-api deploy-deps \
        check-deploy ui ui-deps ui-test bench-build e2e-cluster bench-load

# npm ci in directory $(1) from its committed package-lock.json (node_modules is gitignored).
# NodeSource's nodejs brings npm, Debian's does not: the Debian package is installed when npm is
# missing (it conflicts with NodeSource's nodejs, so it is not in DEB_PACKAGES).
define npm_ci
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm >/dev/null; } || \
	  { echo "npm is missing: install nodejs with npm (Debian: apt-get install npm)"; exit 1; }
	cd $(1) && npm ci --no-audit --no-fund --loglevel=error
	touch $(1)/node_modules/.package-lock.json
endef

# keep intermediate objects (fuzz and sanitizer builds) between runs
.SECONDARY:

all: $(BUILD)/hks-sandbox $(BUILD)/hks-exec $(if $(wildcard $(DAEMON_MAIN)),$(BUILD)/hksd) $(BUILD)/hks-func

$(BUILD)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/san/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) -c $< -o $@

$(BUILD)/libhks.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/libhks-san.a: $(SAN_OBJ)
	ar rcs $@ $^

$(BUILD)/hks-sandbox: $(BUILD)/obj/sandbox/main.o $(BUILD)/libhks.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/hksd: $(BUILD)/obj/daemon/main.o $(BUILD)/libhks.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -lpthread -o $@

$(BUILD)/hks-exec: $(BUILD)/obj/runtimes/exec_main.o $(BUILD)/libhks.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -lpthread -o $@

# kube-probe: drives cluster/ for the integration tests (tests/kube/, the fake API server)
$(BUILD)/kube-probe: tests/kube/kube_probe.c $(BUILD)/libhks.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $< $(BUILD)/libhks.a $(PKG_LIBS) -lpthread -o $@

$(CLI_OBJ): $(wildcard cli/*.h)
$(BUILD)/hks-func: $(CLI_OBJ) $(BUILD)/libhks.a
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libhks.a tests/unit/helpers.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $< $(BUILD)/libhks.a $(PKG_LIBS) -lpthread -lcmocka -o $@

$(BUILD)/tests-san/%: tests/unit/%.c $(BUILD)/libhks-san.a tests/unit/helpers.h
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) $< $(BUILD)/libhks-san.a $(PKG_LIBS) -lpthread -lcmocka -o $@

# libFuzzer targets: the library instrumented for coverage, each target linked with the fuzzer.
$(BUILD)/fuzzobj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) $(PKG_LIBS) -lpthread -o $@

# ---- dependencies ----------------------------------------------------------------------------
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "missing packages:$$missing"; \
	  echo "run: sudo apt-get install -y --no-install-recommends$$missing"; exit 1; \
	fi; \
	echo "installing:$$missing"; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing >/dev/null || \
	  { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing >/dev/null; }

# ---- tests -----------------------------------------------------------------------------------
test: deps
	$(MAKE) all
	$(MAKE) lint
	$(MAKE) check-policies
	$(MAKE) unit
	$(MAKE) unit-asan
	$(MAKE) fuzz-replay
	$(MAKE) integration
	$(MAKE) ui-test

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; HKS_ROOT=$(CURDIR) $$t; done

unit-asan: $(UNIT_SAN)
	@set -e; for t in $(UNIT_SAN); do echo "== $$t (ASan+UBSan)"; \
	  HKS_ROOT=$(CURDIR) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $$t; done

integration: all $(BUILD)/kube-probe kube-deps deploy-deps policy-deps
	HKS_SANDBOX=$(CURDIR)/$(BUILD)/hks-sandbox $(PYTEST) -q tests/integration

# The kubernetes backend's end-to-end suite (tests/integration/test_kube_backend.py) against the
# real cluster KUBECONFIG names, with the registry and base images of HKS_E2E_REGISTRY,
# HKS_E2E_BASE_PYTHON, HKS_E2E_BASE_NODE (docs/operations.md "End-to-end on a real cluster");
# without KUBECONFIG it says so and does nothing.
e2e-cluster: all $(BUILD)/kube-probe
	@if [ -z "$$KUBECONFIG" ]; then \
	  echo "e2e-cluster: skipped: KUBECONFIG is not set (it names the cluster to test against;" \
	       "see docs/operations.md, End-to-end on a real cluster)"; exit 0; fi; \
	HKS_E2E_CLUSTER=1 $(PYTEST) -q -rs tests/integration/test_kube_backend.py

# The fake Kubernetes API server's npm packages (kubernetes-models, @kubernetes-models/knative),
# pinned by tests/kube/package-lock.json, into tests/kube/node_modules. Debian's nodejs does not
# bring npm (NodeSource's does): the Debian package is installed when it is missing.
kube-deps: tests/kube/node_modules/.package-lock.json
tests/kube/node_modules/.package-lock.json: tests/kube/package.json tests/kube/package-lock.json
	$(call npm_ci,tests/kube)

# ---- the dashboard (ui/: Preact, htm, uPlot bundled by esbuild into ui/dist, which is committed
# so that hksd serves it without npm). ui-deps installs the npm packages of ui/package-lock.json.
ui/node_modules/.package-lock.json: ui/package.json ui/package-lock.json
	$(call npm_ci,ui)

ui-deps: ui/node_modules/.package-lock.json

ui: ui-deps
	cd ui && node build.mjs

# end to end in Debian's chromium (playwright-core) against a real hksd; screenshots in
# build/ui-artifacts
ui-test: all ui-deps
	$(PYTEST) -q tests/ui

# Every seed and every input a fuzzing run kept, replayed (no fuzzing): regressions stay fixed.
fuzz-replay: $(FUZZ_BIN)
	@set -e; for t in $(FUZZ_BIN); do name=$$(basename $$t .c); dir=tests/fuzz/corpus/$${name#fuzz_}; \
	  echo "== $$t ($$(ls $$dir | wc -l) inputs)"; $$t -runs=0 $$dir >/dev/null 2>&1 || $$t -runs=0 $$dir; done

# make fuzz FUZZ_SECONDS=N: fuzz each target for N seconds; new inputs go to build/fuzz/corpus-*.
fuzz: $(FUZZ_BIN)
	@set -e; for t in $(FUZZ_BIN); do name=$$(basename $$t); seeds=tests/fuzz/corpus/$${name#fuzz_}; \
	  work=$(BUILD)/fuzz/corpus-$${name#fuzz_}; mkdir -p $$work; \
	  echo "== fuzzing $$name for $(FUZZ_SECONDS)s"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 $$work $$seeds; done

# deploy/ rendered like `kubectl kustomize` and validated with the npm package kubernetes-models
# (tests/deploy: package.json and package-lock.json committed, node_modules installed here).
DEPLOY_NODE_MODULES := tests/deploy/node_modules/.package-lock.json
$(DEPLOY_NODE_MODULES): tests/deploy/package.json tests/deploy/package-lock.json
	$(call npm_ci,tests/deploy)

deploy-deps: $(DEPLOY_NODE_MODULES)

check-deploy: all deploy-deps
	$(PYTEST) -q tests/integration/test_deploy_manifests.py


# Every policy file: seccomp (OCI schema, libseccomp, contradictions, groups.json), limits and
# policies/kubernetes/ (kubernetes-models, through tools/policy/kubernetes.mjs).
check-policies: $(BUILD)/hksd policy-deps
	$(BUILD)/hksd policy check policies

# npm packages of tools/policy (package-lock.json pinned) into its gitignored node_modules. npm
# comes with nodesource's nodejs; Debian's nodejs needs the separate npm package.
POLICY_TOOLS := tools/policy
policy-deps: $(POLICY_TOOLS)/node_modules/.package-lock.json

$(POLICY_TOOLS)/node_modules/.package-lock.json: $(POLICY_TOOLS)/package.json $(POLICY_TOOLS)/package-lock.json
	$(call npm_ci,$(POLICY_TOOLS))

# ---- run and bench ---------------------------------------------------------------------------
run: deps
	$(MAKE) all
	@token=$$($(BUILD)/hksd token --sub dev --project demo --ttl 1h \
	  --scope "functions:execute functions:deploy functions:invoke functions:delete functions:read cronjobs:read cronjobs:write") || exit 1; \
	echo; echo "hksd on http://127.0.0.1:8080 (Ctrl-C stops it). A token for the next hour:"; \
	echo; echo "  export HKS_TOKEN=$$token"; echo; \
	echo "Run code once:"; echo; \
	echo "  curl -s -H \"Authorization: Bearer \$$HKS_TOKEN\" http://127.0.0.1:8080/internal/v1/operations/execute \\"; \
	echo "       -d '{\"runtime\": \"python\", \"code\": \"print(6 * 7)\"}'"; echo; \
	echo "Deploy a function (the answer has its url), then invoke it:"; echo; \
	echo "  curl -s -H \"Authorization: Bearer \$$HKS_TOKEN\" http://127.0.0.1:8080/internal/v1/operations/deploy-function \\"; \
	echo "       -d '{\"runtime\": \"node\", \"ttl_seconds\": 600, \"code\": \"module.exports = { handle: async (ctx, body) => ({ hello: body }) };\"}'"; \
	echo "  curl -s -H \"Authorization: Bearer \$$HKS_TOKEN\" -H 'Content-Type: application/json' -d '{\"x\": 1}' URL"; echo; \
	exec $(BUILD)/hksd

bench: bench-sandbox bench-execute bench-api bench-build

bench-api: deps
	$(MAKE) all
	bench/api.sh
	bench/function_url.sh

bench-execute: deps
	$(MAKE) all
	bench/execute.sh

# make bench-load CLIENTS=200 SECONDS=60: the load test (bench/load.sh); fails on an error other
# than 429 or on anything hksd kept after the run
CLIENTS ?= 200
SECONDS ?= 60
bench-load: deps
	$(MAKE) all
	CLIENTS=$(CLIENTS) SECONDS=$(SECONDS) bench/load.sh

bench-sandbox: deps
	$(MAKE) all
	bench/sandbox.sh

# build and push a 10-file function to a local docker-registry, cold and warm, against skopeo
# and umoci (bench/build.sh)
bench-build: deps
	$(MAKE) all
	bench/build.sh

# ---- housekeeping ----------------------------------------------------------------------------
format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# cppcheck does not model __attribute__((cleanup)): its leak checks are covered by ASan instead.
lint:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')
	@# clang-tidy on every core, a few files per process (xargs fails when any of them does)
	printf '%s\n' $(LIB_SRC) sandbox/main.c runtimes/exec_main.c $(wildcard $(DAEMON_MAIN)) $(UNIT_SRC) \
	  $(CLI_SRC) tests/kube/kube_probe.c | \
	  xargs -P $$(nproc) -n 8 sh -c 'clang-tidy --quiet "$$@" -- -std=c11 -D_GNU_SOURCE -I. $(PKG_CFLAGS)' tidy
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability --std=c11 \
	  --suppress=missingIncludeSystem --suppress=resourceLeak --suppress=memleak \
	  -D_GNU_SOURCE -I. $(LIB_SRC) sandbox/main.c runtimes/exec_main.c $(wildcard $(DAEMON_MAIN)) $(CLI_SRC) \
	  tests/kube/kube_probe.c

clean:
	rm -rf $(BUILD)
