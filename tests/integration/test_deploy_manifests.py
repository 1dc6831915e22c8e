"""deploy/: rendered like `kubectl kustomize deploy/` (tests/deploy/kustomize.mjs, compared with a
real kubectl where one is installed), every object validated with the npm package
kubernetes-models (an invalid object fails: negative cases below), the DaemonSet and the RBAC held
to what docs/operations.md claims, the ConfigMap loaded by the real hksd, and the image recipe
checked against what the binaries link (Docker cannot run here, so the image is not built).

Needs `make deploy-deps` (npm ci into tests/deploy/node_modules)."""

import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

from hksd_process import HKSD, REPO

TOOLS = REPO / "tests" / "deploy"
DEPLOY = REPO / "deploy"
OPERATIONS = REPO / "docs" / "operations.md"


@pytest.fixture(scope="module", autouse=True)
def npm_packages():
    if not (TOOLS / "node_modules" / "kubernetes-models").is_dir():
        pytest.fail("tests/deploy/node_modules is missing: run `make deploy-deps`")


def node(script, *args, stdin=None):
    return subprocess.run(["node", str(TOOLS / script), *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def render(directory=DEPLOY):
    run = node("kustomize.mjs", str(directory))
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def validate(objects):
    run = node("validate.mjs", "-", stdin=json.dumps(objects))
    return run.returncode, run.stdout


@pytest.fixture(scope="module")
def rendered():
    return render()


def one(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or
                                                          o["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


# ---- rendering and validation ----


def test_every_rendered_object_validates(rendered):
    assert sorted(o["kind"] for o in rendered) == sorted(
        ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap",
         "Service", "DaemonSet"])
    code, out = validate(rendered)
    assert code == 0, out
    assert out.count("\nok ") + out.startswith("ok ") == len(rendered), out


@pytest.mark.parametrize("spoil, reason", [
    (lambda objs: one(objs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
     ["ports"][0].update(containerPort="http"), "containerPort must be integer"),
    (lambda objs: one(objs, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
     .pop("name"), "must have required property name"),
    (lambda objs: one(objs, "Service")["spec"].update(type=7), "type must be string"),
    (lambda objs: one(objs, "ClusterRole")["rules"][0].pop("verbs"),
     "must have required property verbs"),
    (lambda objs: one(objs, "DaemonSet").update(apiVersion="apps/v1beta9"),
     "no model for apps/v1beta9 DaemonSet"),
    (lambda objs: one(objs, "ConfigMap")["data"].update({"n": 1}), "must be string"),
])
def test_an_invalid_object_fails_validation(rendered, spoil, reason):
    objects = copy.deepcopy(rendered)
    spoil(objects)
    code, out = validate(objects)
    assert code == 1, out
    bad = [line for line in out.splitlines() if line.startswith("invalid ")]
    assert len(bad) == 1 and reason in bad[0], out


def test_the_renderer_matches_kubectl_kustomize(rendered):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed: the renderer was compared with it elsewhere")
    run = subprocess.run([kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    yaml = pytest.importorskip("yaml")
    assert [d for d in yaml.safe_load_all(run.stdout) if d] == rendered


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path):
    copy_dir = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy_dir)
    kustomization = copy_dir / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text() + "patches:\n  - path: x.yaml\n")
    run = node("kustomize.mjs", str(copy_dir))
    assert run.returncode == 1
    assert "kustomization.yaml: patches: not implemented by this renderer" in run.stderr


# ---- the objects agree with each other and with hksd ----


def test_names_and_namespaces_fit_together(rendered):
    namespace = one(rendered, "Namespace")["metadata"]["name"]
    for o in rendered:
        if o["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert o["metadata"]["namespace"] == namespace, o["kind"]
        assert o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "hks-functions"
    ds = one(rendered, "DaemonSet")
    pod = ds["spec"]["template"]
    binding = one(rendered, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(rendered, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hksd",
                                    "namespace": namespace}]
    assert pod["spec"]["serviceAccountName"] == one(rendered, "ServiceAccount")["metadata"]["name"]
    service = one(rendered, "Service")
    for key, value in service["spec"]["selector"].items():
        assert pod["metadata"]["labels"][key] == value
    assert ds["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    port_names = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in port_names
    # the generated ConfigMap's hashed name is the one the pod mounts
    config_map = one(rendered, "ConfigMap")
    assert re.fullmatch(r"hksd-config-[a-z0-9]{10}", config_map["metadata"]["name"])
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]


def test_the_config_map_is_a_config_hksd_loads(rendered, tmp_path):
    config_map = one(rendered, "ConfigMap")
    config_file = tmp_path / "config.json"
    config_file.write_text(config_map["data"]["config.json"])
    run = subprocess.run([HKSD, "--config", str(config_file), "--print-config"],
                         capture_output=True, text=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if not k.startswith("HKSD_")})
    assert run.returncode == 0, run.stderr
    config = json.loads(run.stdout)
    container = one(rendered, "DaemonSet")["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert config["backend"] == "kubernetes"
    assert config["node"] == {"install_seccomp": True, "seccomp_dir": mounts["seccomp"]}
    assert config["state_dir"] == mounts["state"]
    assert config["keys_dir"] == mounts["keys"]
    assert container["args"] == ["--config", mounts["config"] + "/config.json"]
    assert config["listen"] == "0.0.0.0:%d" % container["ports"][0]["containerPort"]
    # the kubelet reads profiles from its seccomp directory; functions name "hks/<profile>.json"
    assert mounts["seccomp"] == "/var/lib/kubelet/seccomp/hks"


# ---- the DaemonSet and the RBAC hold to docs/operations.md ----


def doc_table(heading):
    """The rows (lists of cells without backquotes) of the first table under heading."""
    text = OPERATIONS.read_text()
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("|") and not re.match(r"^\|[\s|:-]+\|$", line):
            rows.append([c.strip().replace("`", "") for c in line.strip("|").split("|")])
        elif rows and not line.startswith("|"):
            break
    assert rows, "no table under " + heading
    return rows[1:]  # without the header


def test_the_daemonset_has_only_the_documented_privileges(rendered):
    spec = one(rendered, "DaemonSet")["spec"]["template"]["spec"]
    container, = spec["containers"]
    assert not spec.get("initContainers")
    for host_field in ("hostNetwork", "hostPID", "hostIPC"):
        assert spec.get(host_field) in (None, False), host_field
    assert spec["enableServiceLinks"] is False

    documented = {row[0]: row for row in doc_table("### The DaemonSet's privileges")}
    security = container["securityContext"]
    # privileged, and why, is in the table; nothing is added on top of it
    assert security["privileged"] is True and "securityContext.privileged" in documented
    assert "capabilities" not in security and "seccompProfile" not in security
    assert security["runAsUser"] == 0 and "securityContext.runAsUser: 0" in documented
    assert security["readOnlyRootFilesystem"] is True
    assert "allowPrivilegeEscalation" not in security  # implied by privileged

    host_paths = {v["hostPath"]["path"]: v["name"] for v in spec["volumes"] if "hostPath" in v}
    documented_paths = {key.split(" ", 1)[1] for key in documented if key.startswith("hostPath ")}
    assert set(host_paths) == documented_paths
    for v in spec["volumes"]:
        kinds = set(v) - {"name"}
        assert kinds <= {"configMap", "secret", "hostPath", "emptyDir"}, v
        if "hostPath" in v:
            assert v["hostPath"]["type"] == "DirectoryOrCreate"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    for path, name in host_paths.items():
        assert mounts[name]["mountPath"] == path  # the same path inside as on the node
    for name in ("config", "keys", "registry"):
        assert mounts[name]["readOnly"] is True
    for row in documented.values():
        assert len(row) == 2 and len(row[1]) > 20, row  # every privilege has its reason

    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])


def test_every_rbac_verb_is_documented_and_nothing_else_is_granted(rendered):
    granted = set()
    for rule in one(rendered, "ClusterRole")["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb)
                    granted.add((group or "core", resource, verb))
    documented = set()
    for row in doc_table("### RBAC: each verb and why"):
        group, resource, verbs, why = row
        assert len(why) > 20, row
        for verb in verbs.split(","):
            documented.add((group, resource, verb.strip()))
    assert granted == documented
    never = {("core", "secrets"), ("core", "nodes"), ("core", "pods/exec"),
             ("core", "pods/attach"), ("rbac.authorization.k8s.io", "rolebindings")}
    assert not {(g, r) for g, r, _ in granted} & never
    # a CronJob is replaced whole when its definition changes (suspend, resume, a new schedule);
    # nothing else is ever updated in place
    risky = {"update", "patch", "deletecollection", "escalate", "bind", "impersonate"}
    assert {(g, r, v) for g, r, v in granted if v in risky} == {("batch", "cronjobs", "update")}


# ---- the image recipe (not built here: no Docker engine) ----


def dockerfile_packages(stage):
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    install = re.search(r"apt-get install[^\n]*\\\n(.*?)&& rm", stages[stage], re.S).group(1)
    return set(install.replace("\\", " ").split())


def debian_package_of(path):
    # merged /usr: dpkg knows a library under /lib or under /usr/lib, as its package shipped it
    other = path[4:] if path.startswith("/usr/") else "/usr" + path
    for candidate in (path, other):
        run = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if run.returncode == 0:
            return run.stdout.split(":", 1)[0]
    raise AssertionError("no Debian package ships " + path)


def test_the_image_installs_what_the_binaries_link_and_build_need():
    runtime = dockerfile_packages(1)
    for binary in ("hksd", "hks-sandbox"):
        needed = subprocess.run(["objdump", "-p", str(REPO / "build" / binary)],
                                capture_output=True, text=True, check=True).stdout
        # where the loader finds each library (a soname alone may match other architectures'
        # packages, such as libc6-i386)
        resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", subprocess.run(
            ["ldd", str(REPO / "build" / binary)], capture_output=True, text=True,
            check=True).stdout, re.M))
        for soname in re.findall(r"NEEDED\s+(\S+)", needed):
            package = debian_package_of(resolved[soname]).split(",")[0].split(":")[0]
            assert package == "libc6" or package in runtime, (binary, soname, package)
    assert {"python3", "nodejs", "ca-certificates"} <= runtime  # what the sandboxes run
    build = dockerfile_packages(0)
    modules = re.search(r"^PKGS\s*:=\s*(.*)$", (REPO / "Makefile").read_text(), re.M).group(1)
    for module in modules.split():
        pc_dir = subprocess.run(["pkg-config", "--variable=pcfiledir", module],
                                capture_output=True, text=True, check=True).stdout.strip()
        package = debian_package_of(os.path.realpath(os.path.join(pc_dir, module + ".pc")))
        assert package in build, (module, package)
    text = (DEPLOY / "Dockerfile").read_text()
    assert text.count("FROM debian:12-slim") == 2
    assert re.search(r"^USER builder$", text, re.M)  # compiling runs without root
