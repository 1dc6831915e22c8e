"""`hksd policy show|check|diff` (the real binary) on the shipped policies/ and on crafted copies:
an unknown syscall, a refused syscall allowed again, a limit raised, an extra capability in a pod's
securityContext. Problem and change lines are asserted exactly."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from hksd_process import HKSD, REPO  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists(HKSD), reason="needs build/hksd")

POLICIES = REPO / "policies"
NODE_MODULES = REPO / "tools" / "policy" / "node_modules" / "kubernetes-models"

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: fn
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: fn
      image: registry.local/fn:1
      securityContext:
        allowPrivilegeEscalation: false
        capabilities:
          drop: [ALL]
"""


def policy(*args, env=None):
    return subprocess.run([HKSD, "policy", *args], capture_output=True, text=True, timeout=120,
                          env=env)


@pytest.fixture
def copy(tmp_path):
    """A copy of the shipped policies/ to break."""
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    return target


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=1))


def rule_index(profile, name):
    return next(i for i, r in enumerate(profile["syscalls"]) if name in r["names"])


def needs_node_modules():
    assert NODE_MODULES.exists(), "tools/policy/node_modules is missing: run `make policy-deps`"


# ---- check ----

def test_check_shipped_policies_is_clean():
    r = policy("check", str(POLICIES))
    assert r.stdout == f"{POLICIES}: no problems\n", r.stdout + r.stderr
    assert r.returncode == 0


def test_check_unknown_syscall(copy):
    profile = copy / "seccomp" / "function.json"
    edit_json(profile, lambda p: p["syscalls"][3]["names"].insert(1, "frobnicate"))
    r = policy("check", str(copy))
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        f'{profile}: syscalls[3].names[1]: unknown syscall "frobnicate"']
    assert "1 problem in" in r.stderr


def test_check_refused_syscall_allowed_again(copy):
    profile = copy / "seccomp" / "function.json"
    data = json.loads(profile.read_text())
    refused = rule_index(data, "ptrace")
    added = len(data["syscalls"])
    edit_json(profile, lambda p: p["syscalls"].append(
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW"}))
    r = policy("check", str(copy))
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        f'{profile}: syscalls[{added}].names[0]: "ptrace" is allowed (SCMP_ACT_ALLOW) here but '
        f'refused (SCMP_ACT_ERRNO(EPERM)) by syscalls[{refused}].names[0]: contradictory rules, '
        'libseccomp keeps only one']


def test_check_duplicate_rule_and_schema_problems(copy):
    profile = copy / "seccomp" / "function.json"
    n = len(json.loads(profile.read_text())["syscalls"])

    def change(p):
        p["syscalls"].append({"names": ["read"], "action": "SCMP_ACT_ALLOW"})
        p["syscalls"].append({"names": ["write"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1})
        p["syscalls"].append({"action": "SCMP_ACT_ALLOW"})
        p["syscalls"].append({"names": ["kill"], "action": "SCMP_ACT_SOMETIMES"})
        p["architectures"].append("SCMP_ARCH_Z80")
        p["sycalls"] = []
    edit_json(profile, change)
    lines = policy("check", str(copy)).stdout.splitlines()
    assert f"{profile}: sycalls: unknown key" in lines
    assert f'{profile}: architectures[1]: unknown architecture "SCMP_ARCH_Z80"' in lines
    assert (f"{profile}: syscalls[{n + 1}].errnoRet: has no effect with SCMP_ACT_ALLOW (only "
            "SCMP_ACT_ERRNO and SCMP_ACT_TRACE use it)") in lines
    assert (f"{profile}: syscalls[{n + 2}].names: required, a non-empty array of syscall "
            "names") in lines
    assert f'{profile}: syscalls[{n + 3}].action: unknown action "SCMP_ACT_SOMETIMES"' in lines
    assert (f'{profile}: syscalls[{n}].names[0]: "read" repeats syscalls[2].names[0] (same '
            "action and arguments)") in lines
    # libseccomp's own report of the same fields is not repeated
    assert not any("is not supported" in line for line in lines), lines
    assert sum(f"{profile}: architectures[1]: " in line for line in lines) == 1, lines


def test_check_groups_disagree_with_profile(copy):
    profile = copy / "seccomp" / "function.json"
    groups = copy / "seccomp" / "groups.json"
    edit_json(profile, lambda p: p["syscalls"][rule_index(p, "sync_file_range")]["names"]
              .remove("sync_file_range"))
    edit_json(groups, lambda g: g["groups"][0]["syscalls"].append("getpid"))
    lines = policy("check", str(copy)).stdout.splitlines()
    assert lines == [
        f'{profile}: defaultAction: "sync_file_range" is refused (SCMP_ACT_ERRNO(EPERM)), but '
        f'{groups} puts it in the allowed group "file I/O on open descriptors"',
        f'{groups}: groups[7].syscalls[4]: "getpid" is also in groups[0]']


def test_check_limit_above_maximum_and_cap(copy):
    limits = copy / "limits.json"
    edit_json(limits, lambda l: l["defaults"].update(memory_mb=4096))
    r = policy("check", str(copy))
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        f"{limits}: defaults.memory_mb: 4096 is above maxima.memory_mb 2048"]
    edit_json(limits, lambda l: (l["defaults"].update(memory_mb=256),
                                 l["maxima"].update(pids=1 << 30)))
    assert policy("check", str(copy)).stdout.splitlines() == [
        f"{limits}: maxima.pids: 1073741824 is above the hard cap 4194304"]


def test_check_missing_profile(copy):
    (copy / "seccomp" / "function.json").unlink()
    lines = policy("check", str(copy)).stdout.splitlines()
    assert (f"{copy}: seccomp/function.json: missing: every runtime's sandbox needs it, the "
            "daemon does not start without it") in lines
    assert f"{copy / 'seccomp' / 'groups.json'}: profile: {copy}/seccomp/function.json does not exist" in lines


def test_check_kubernetes_extra_capability(copy):
    needs_node_modules()
    kube = copy / "kubernetes"
    kube.mkdir(exist_ok=True)
    (kube / "pod.yaml").write_text(POD)
    assert policy("check", str(copy)).returncode == 0
    (kube / "pod.yaml").write_text(POD.replace("drop: [ALL]", "drop: [ALL]\n          add: [NET_ADMIN]")
                                   .replace("allowPrivilegeEscalation: false",
                                            "allowPrivilegeEscalation: true"))
    r = policy("check", str(copy))
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        f"{kube}/pod.yaml: spec.containers[0].securityContext.allowPrivilegeEscalation: must be "
        "false (setuid binaries and file capabilities would raise privileges)",
        f'{kube}/pod.yaml: spec.containers[0].securityContext.capabilities.add[0]: capability '
        '"NET_ADMIN" added: functions and builds get none']


def test_check_kubernetes_schema(copy):
    needs_node_modules()
    kube = copy / "kubernetes"
    kube.mkdir(exist_ok=True)
    (kube / "bad.yaml").write_text(POD.replace("image: registry.local/fn:1", "image: 7\n      ports: [{containerPort: eighty}]"))
    lines = policy("check", str(copy)).stdout.splitlines()
    assert f"{kube}/bad.yaml: spec.containers[0].image: must be string" in lines
    assert f"{kube}/bad.yaml: spec.containers[0].ports[0].containerPort: must be integer" in lines


def test_check_without_node_says_so(copy):
    kube = copy / "kubernetes"
    kube.mkdir(exist_ok=True)
    (kube / "pod.yaml").write_text(POD)
    env = dict(os.environ, HKSD_NODE="/nonexistent/node")
    r = policy("check", str(copy), env=env)
    assert r.returncode == 1
    n = len([p for p in kube.iterdir() if p.suffix in (".yaml", ".yml", ".json")])
    assert r.stdout.splitlines() == [
        f"{copy}: kubernetes: cannot validate {n} file{'s' if n > 1 else ''}: "
        "HKSD_NODE=/nonexistent/node is not an executable: No such file or directory"]


# ---- show ----

def test_show_json_is_the_effective_policy():
    r = policy("show", "--format", "json")
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)
    seccomp = model["seccomp"]
    assert seccomp["profile"] == "seccomp/function.json"
    assert sorted(seccomp["runtimes"]) == ["node", "python"]
    assert seccomp["default_action"] == "SCMP_ACT_ERRNO(EPERM)"
    groups = {g["name"]: g for g in seccomp["groups"]}
    uring = groups["io_uring"]
    assert uring["status"] == "refused" and uring["actions"] == ["SCMP_ACT_ERRNO(EPERM)"]
    assert uring["syscalls"]["refused"] == ["io_uring_setup", "io_uring_enter",
                                            "io_uring_register"]
    assert "kCTF" in uring["reason"]
    assert groups["clone3"]["actions"] == ["SCMP_ACT_ERRNO(ENOSYS)"]
    assert seccomp["ungrouped"] == []
    assert seccomp["filters"]["socket"]["filters"] == [
        {"when": "arg0 == 1", "action": "SCMP_ACT_ALLOW"}]
    docker = model["docker"]
    assert docker["allowed_here_refused_by_docker"] == []
    refused_here = {row["syscall"] for row in docker["refused_here_allowed_by_docker"]}
    assert {"ptrace", "chroot", "splice", "msgsnd"} <= refused_here
    assert "io_uring_setup" not in refused_here  # Docker refuses it too
    differing = {row["syscall"]: row for row in docker["filtered_differently"]}
    assert differing["ioctl"]["docker"] == "SCMP_ACT_ALLOW"
    assert model["limits"]["maxima"]["memory_mb"] == 2048
    assert "error" not in model["limits"]
    jwt = model["jwt"]
    assert jwt["algorithms"] == ["HS256", "RS256", "ES256"]
    routes = {(r["method"], r["path"]): r["scope"] for r in jwt["routes"]}
    assert routes[("POST", "/internal/v1/operations/execute")] == "functions:execute"
    assert routes[("GET", "/healthz")] is None
    assert routes[("GET", "/internal/v1/runtimes")] == ""
    kube_files = sorted(p.name for p in (POLICIES / "kubernetes").glob("*")
                        if p.suffix in (".yaml", ".yml", ".json"))
    assert sorted(pathlib.Path(f["file"]).name for f in model["kubernetes"]["files"]) == kube_files


def test_show_text_and_markdown():
    text = policy("show").stdout
    assert "== Seccomp profile: policies/seccomp/function.json" in text
    assert "  [refused: SCMP_ACT_ERRNO(EPERM)] io_uring: io_uring_setup io_uring_enter io_uring_register" in text
    assert "Allowed here, refused by Docker (0): none" in text
    assert "  memory_mb       256         2048" in text
    assert "  GET     /healthz                                     (no token)" in text
    md = policy("show", "--format", "markdown").stdout
    assert md.startswith("# HKS Functions: effective policy")
    assert "| memory_mb | 256 | 2048 |" in md
    assert "| POST | `/internal/v1/operations/execute` | functions:execute |" in md
    r = policy("show", "--format", "yaml")
    assert r.returncode == 2 and "use text, json or markdown" in r.stderr


def test_show_renders_a_functions_objects_as_the_backend_sends_them(tmp_path):
    config = tmp_path / "hksd.json"
    config.write_text(json.dumps({"kubernetes": {"namespace": "hks-{project}",
                                                 "registry": "reg.example:5000"}}))
    model = json.loads(policy("show", "--config", str(config), "--format", "json").stdout)
    rendered = model["kubernetes"]["rendered"]
    assert [o["kind"] for o in rendered["objects"]] == ["Namespace", "ServiceAccount",
                                                         "NetworkPolicy", "Service"]
    objs = {o["kind"]: o["object"] for o in rendered["objects"]}
    assert objs["Namespace"]["metadata"]["name"] == "hks-example-project"
    ksvc = objs["Service"]
    assert ksvc["metadata"]["namespace"] == "hks-example-project"
    assert ksvc["metadata"]["labels"]["hks.io/project"] == "example-project"
    container = ksvc["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("reg.example:5000/hks/functions/example-project@sha256:")
    assert container["securityContext"]["seccompProfile"] == {
        "type": "Localhost", "localhostProfile": "hks/function.json"}
    assert container["resources"]["limits"]["memory"] == "256Mi"  # limits.json's default
    text = policy("show", "--config", str(config)).stdout
    assert "--- Service fn-0123456789abcdef0123\n{\n" in text
    assert '"automountServiceAccountToken": false' in text
    md = policy("show", "--config", str(config), "--format", "markdown").stdout
    assert "### NetworkPolicy fn-0123456789abcdef0123\n\n```json\n" in md


def test_show_follows_config_and_keys(copy, tmp_path):
    edit_json(copy / "limits.json", lambda l: l["maxima"].update(memory_mb=4096))
    (copy / "kubernetes").mkdir(exist_ok=True)
    (copy / "kubernetes" / "pod.yaml").write_text(POD)
    config = tmp_path / "hksd.json"
    state = tmp_path / "state"
    config.write_text(json.dumps({"policies_dir": str(copy), "state_dir": str(state),
                                  "jwt": {"issuer": "corp", "max_lifetime_s": 600}}))
    env = dict(os.environ, HKSD_STATE_DIR=str(state))
    subprocess.run([HKSD, "token", "--sub", "a", "--project", "p"], check=True,
                   capture_output=True, env=env)
    model = json.loads(policy("show", "--config", str(config), "--format", "json", env=env).stdout)
    assert model["limits"]["maxima"]["memory_mb"] == 4096
    assert model["jwt"]["issuers"] == ["corp"] and model["jwt"]["max_lifetime_s"] == 600
    assert model["jwt"]["keys"] == [{"kid": "local", "alg": "HS256"}]
    assert {"file": "kubernetes/pod.yaml", "text": POD} in model["kubernetes"]["files"]
    text = policy("show", "--config", str(config), env=env).stdout
    assert "--- kubernetes/pod.yaml\n" + POD in text


# ---- diff ----

def test_diff_same_policies_loosens_nothing():
    r = policy("diff", str(POLICIES), str(POLICIES))
    assert r.returncode == 0
    assert r.stdout == "0 loosened, 0 tightened, 0 changed\n"


def test_diff_reports_each_change(copy):
    profile = copy / "seccomp" / "function.json"

    def change(p):
        p["syscalls"][rule_index(p, "ptrace")]["names"].remove("ptrace")
        p["syscalls"].append({"names": ["ptrace"], "action": "SCMP_ACT_ALLOW"})
        p["syscalls"].append({"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 1, "value": 4294967295, "valueTwo": 21522, "op": "SCMP_CMP_MASKED_EQ"}]})
        p["syscalls"][rule_index(p, "sync_file_range")]["names"].remove("sync_file_range")
        p["architectures"].append("SCMP_ARCH_X86")
    edit_json(profile, change)
    edit_json(copy / "limits.json", lambda l: (l["maxima"].update(memory_mb=4096),
                                               l["defaults"].update(pids=32)))
    r = policy("diff", str(POLICIES), str(copy))
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines() == [
        "loosened: seccomp/function.json: architectures: SCMP_ARCH_X86 added (its system calls "
        "reach the filter)",
        "loosened: seccomp/function.json: ioctl: argument filter loosened: now also allowed when "
        "arg1 & 0xffffffff == 0x5412",
        "loosened: seccomp/function.json: ptrace: newly allowed (was refused: "
        "SCMP_ACT_ERRNO(EPERM))",
        "tightened: seccomp/function.json: sync_file_range: now refused: SCMP_ACT_ERRNO(EPERM) "
        "(was allowed: SCMP_ACT_ALLOW)",
        "tightened: limits.json: defaults.pids: 64 -> 32 (lowered)",
        "loosened: limits.json: maxima.memory_mb: 2048 -> 4096 (raised)",
        "4 loosened, 2 tightened, 0 changed"]
    # the other way round, everything is tightened but the limit lowered back
    back = policy("diff", str(copy), str(POLICIES))
    assert back.returncode == 1
    assert back.stdout.splitlines()[-1] == "2 loosened, 4 tightened, 0 changed"


def test_diff_only_tightening_exits_zero(copy):
    edit_json(copy / "limits.json", lambda l: l["maxima"].update(memory_mb=1024))
    r = policy("diff", str(POLICIES), str(copy))
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        "tightened: limits.json: maxima.memory_mb: 2048 -> 1024 (lowered)",
        "0 loosened, 1 tightened, 0 changed"]


def test_diff_kubernetes_capability_added(copy, tmp_path):
    needs_node_modules()
    old = tmp_path / "old"
    shutil.copytree(copy, old)
    for side in (old, copy):
        (side / "kubernetes").mkdir(exist_ok=True)
        (side / "kubernetes" / "pod.yaml").write_text(POD)
    (copy / "kubernetes" / "pod.yaml").write_text(
        POD.replace("drop: [ALL]", "drop: [ALL]\n          add: [NET_ADMIN]")
        .replace("runAsNonRoot: true", "runAsNonRoot: false"))
    r = policy("diff", str(old), str(copy))
    assert r.returncode == 1, r.stderr
    assert r.stdout.splitlines() == [
        "loosened: kubernetes/pod.yaml: Pod/fn: spec.containers[0].securityContext."
        "capabilities.add: capability NET_ADMIN added",
        "loosened: kubernetes/pod.yaml: Pod/fn: spec.containers[0].securityContext.runAsNonRoot: "
        "true -> false",
        "2 loosened, 0 tightened, 0 changed"]


def test_diff_refuses_an_invalid_side(copy):
    edit_json(copy / "limits.json", lambda l: l["defaults"].pop("pids"))
    r = policy("diff", str(POLICIES), str(copy))
    assert r.returncode == 2
    assert r.stderr == f"hksd policy diff: {copy}/limits.json: defaults.pids: missing\n"
    r = policy("diff", str(POLICIES))
    assert r.returncode == 2 and "usage: hksd policy" in r.stderr
