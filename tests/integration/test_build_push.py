"""hksd build, then push, to a real registry (Debian's docker-registry, started here on loopback),
read back with tools that share no code with hksd: skopeo copies the pushed image to an OCI
layout, and umoci unpacks it into a runtime bundle (rootfs plus the OCI runtime config that umoci
derives from the image config). The rootfs must hold the function's code and the launcher where
the image config says (Entrypoint, WorkingDir), byte-identical to the sources, with the owners,
modes and times the image writer sets, and the config must run as a user that is not root.

Also: the same function built twice gives the same bytes (and so the same digests), a re-push
uploads nothing, and a one-byte change uploads exactly the new layer and config.
"""

import json
import os
import pathlib
import shutil
import stat
import subprocess

import pytest

import registry_fixture as rf
from test_build import BUSYBOX, make_base, make_code

REPO = pathlib.Path(__file__).resolve().parents[2]
HKSD = os.environ.get("HKSD") or str(REPO / "build" / "hksd")
UMOCI = "/usr/bin/umoci"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(HKSD), reason=f"{HKSD} not built"),
    pytest.mark.skipif(not os.path.exists(rf.REGISTRY_BIN), reason="docker-registry not installed"),
    pytest.mark.skipif(not os.path.exists(rf.SKOPEO), reason="skopeo not installed"),
    pytest.mark.skipif(not os.path.exists(UMOCI), reason="umoci not installed"),
    pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="busybox-static not installed"),
]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("build-push")


@pytest.fixture(scope="module")
def registry(work):
    r = rf.Registry(work / "registry").start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def base(work):
    layout = work / "base"
    info = make_base(layout)
    info["dir"] = layout
    return info


def run_json(cmd):
    r = subprocess.run([*map(str, cmd)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "DOCKER_CONFIG": "/nonexistent-hks-test"})
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    return json.loads(lines[0])


def build(code, base_dir, out, runtime="node", *extra):
    return run_json([HKSD, "build", "--runtime", runtime, "--code", code, "--base-layout",
                     base_dir, "--oci-layout", out, "--tag", "v1", *extra])


def push(layout, dest):
    return run_json([HKSD, "push", "--oci-layout", layout, "--insecure", dest])


def tool(*cmd, timeout=120):
    r = subprocess.run([*map(str, cmd)], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, (cmd, r.stderr)
    return r.stdout


def copy_to_oci_layout(tmp_path, ref, layout, tag):
    policy = tmp_path / "policy.json"
    policy.write_text('{"default":[{"type":"insecureAcceptAnything"}]}')
    tool(rf.SKOPEO, "--policy", policy, "copy", "--src-tls-verify=false", "docker://" + ref,
         f"oci:{layout}:{tag}")


def read_blob(layout, digest):
    return (pathlib.Path(layout) / "blobs" / "sha256" / digest[7:]).read_bytes()


def source_tree(root, skip=lambda rel, is_dir: False):
    """{relative path: Path} of the files, directories and symlinks below root, as the image
    writer walks it (skip as bld_runtime_skip)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        kept = []
        for d in sorted(dirnames):
            rel = os.path.normpath(os.path.join(rel_dir, d))
            if os.path.islink(os.path.join(dirpath, d)):
                out[rel] = pathlib.Path(dirpath, d)  # a symlink to a directory: not followed
            elif not skip(rel, True):
                out[rel] = pathlib.Path(dirpath, d)
                kept.append(d)
        dirnames[:] = kept
        for f in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, f))
            if not skip(rel, False):
                out[rel] = pathlib.Path(dirpath, f)
    return out


def runtime_skip(rel, is_dir):
    """builder/context.c bld_runtime_skip"""
    name = os.path.basename(rel)
    if is_dir:
        return rel == "templates" or name == "__pycache__"
    return rel == "Dockerfile.tmpl" or (len(name) > 4 and name.endswith(".pyc"))


def unpacked_tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = pathlib.Path(dirpath, name)
            out[os.path.relpath(p, root)] = p
    return out


def check_same_tree(source, unpacked, where):
    """Every entry of source at the same place in unpacked, and nothing else: files
    byte-identical, root-owned (when unpacked as root), mode 0755 when some x bit is set on
    disk else 0644, directories 0755, symlinks with the same target, mtime 0."""
    src = source
    got = unpacked_tree(unpacked)
    assert sorted(got) == sorted(src), where
    for rel, path in src.items():
        u = got[rel]
        st = os.lstat(u)
        s = os.lstat(path)
        if os.geteuid() == 0:
            assert (st.st_uid, st.st_gid) == (0, 0), (where, rel)
        assert st.st_mtime == 0, (where, rel)
        if stat.S_ISLNK(s.st_mode):
            assert stat.S_ISLNK(st.st_mode), (where, rel)
            assert os.readlink(u) == os.readlink(path), (where, rel)
        elif stat.S_ISDIR(s.st_mode):
            assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, (where, rel)
        else:
            assert stat.S_ISREG(st.st_mode), (where, rel)
            want = 0o755 if s.st_mode & 0o111 else 0o644
            assert stat.S_IMODE(st.st_mode) == want, (where, rel, oct(st.st_mode))
            assert u.read_bytes() == path.read_bytes(), (where, rel)


@pytest.mark.parametrize("runtime", ["node", "python"])
def test_pushed_image_unpacks_with_umoci_as_its_config_says(registry, base, tmp_path, runtime):
    code = make_code(tmp_path / "code", runtime)
    os.symlink("index.js" if runtime == "node" else "function/func.py", code / "entry-link")
    ref = f"{registry.host}/fn/umoci-{runtime}:v1"
    built = build(code, base["dir"], tmp_path / "image", runtime, "--push", ref, "--insecure")
    assert built["push"]["digest"] == built["manifest_digest"]
    assert built["push"]["uploaded"] == 3  # base layer, function layer, config

    copy = tmp_path / "oci-copy"
    copy_to_oci_layout(tmp_path, ref, copy, "v1")
    index = json.loads((copy / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [built["manifest_digest"]]
    config = json.loads(read_blob(copy, built["config_digest"]))["config"]

    bundle = tmp_path / "bundle"
    rootless = [] if os.geteuid() == 0 else ["--rootless"]
    tool(UMOCI, "unpack", *rootless, "--image", f"{copy}:v1", bundle)
    spec = json.loads((bundle / "config.json").read_text())
    rootfs = bundle / spec["root"]["path"]

    # umoci's runtime config says what the image config says
    process = spec["process"]
    assert process["args"] == config["Entrypoint"] + (config.get("Cmd") or [])
    assert process["cwd"] == config["WorkingDir"]
    assert "HKS_FUNCTION_DIR=" + config["WorkingDir"] in process["env"]
    # not root: neither in the image config nor in what a runtime would run
    uid, _, gid = config["User"].partition(":")
    assert int(uid) != 0 and int(gid) != 0
    assert (process["user"]["uid"], process["user"]["gid"]) == (int(uid), int(gid))

    # the launcher is the Entrypoint's script, and the runtime's files are next to it
    interpreter, launcher, mode = process["args"]
    assert (interpreter, mode) == ({"node": "node", "python": "python3"}[runtime], "serve")
    launcher_name = {"node": "launcher.js", "python": "launcher.py"}[runtime]
    assert launcher == "/hks/runtime/" + launcher_name
    runtime_src = REPO / "runtimes" / runtime
    assert (rootfs / launcher.lstrip("/")).read_bytes() == (runtime_src / launcher_name).read_bytes()
    check_same_tree(source_tree(runtime_src, runtime_skip), rootfs / "hks" / "runtime", "runtime")
    # the code is in the working directory
    check_same_tree(source_tree(code), rootfs / config["WorkingDir"].lstrip("/"), "code")
    for d in ("code", "hks", "hks/runtime"):
        st = os.lstat(rootfs / d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755, d
    # and the base is under it, unchanged
    assert (rootfs / "bin" / "busybox").read_bytes() == pathlib.Path(BUSYBOX).read_bytes()
    assert os.readlink(rootfs / "bin" / "sh") == "busybox"
    assert sorted(os.listdir(rootfs)) == ["bin", "code", "hks"]


def test_built_twice_byte_identical_and_pushed_once(registry, base, tmp_path):
    code = make_code(tmp_path / "code", "node")
    first = build(code, base["dir"], tmp_path / "one")
    second = build(code, base["dir"], tmp_path / "two")
    assert first == {**second, "oci_layout": first["oci_layout"]}
    files_one = {p.relative_to(tmp_path / "one"): p.read_bytes()
                 for p in (tmp_path / "one").rglob("*") if p.is_file()}
    files_two = {p.relative_to(tmp_path / "two"): p.read_bytes()
                 for p in (tmp_path / "two").rglob("*") if p.is_file()}
    assert files_one == files_two
    assert len(files_one) == 2 + 4  # oci-layout, index.json; base layer, layer, config, manifest

    dest = f"{registry.host}/fn/twice:v1"
    pushed = push(tmp_path / "one", dest)
    assert (pushed["uploaded"], pushed["skipped"]) == (3, 0)
    assert pushed["digest"] == first["manifest_digest"]
    again = push(tmp_path / "two", dest)
    assert again == {"digest": first["manifest_digest"], "uploaded": 0, "skipped": 3,
                     "mounted": 0, "bytes": 0}
    raw = tool(rf.SKOPEO, "inspect", "--raw", "--tls-verify=false", "docker://" + dest)
    assert raw.encode() == read_blob(tmp_path / "one", first["manifest_digest"])

    # one byte changed: only the new function layer and the new config go up
    index_js = code / "index.js"
    text = index_js.read_bytes()
    index_js.write_bytes(text[:-2] + bytes([text[-2] ^ 1]) + text[-1:])
    third = build(code, base["dir"], tmp_path / "three", "node", "--push", dest, "--insecure")
    assert third["layer_digest"] != first["layer_digest"]
    assert third["config_digest"] != first["config_digest"]
    layer = len(read_blob(tmp_path / "three", third["layer_digest"]))
    config = len(read_blob(tmp_path / "three", third["config_digest"]))
    assert third["push"] == {"digest": third["manifest_digest"], "uploaded": 2, "skipped": 1,
                             "mounted": 0, "bytes": layer + config}
    info = json.loads(tool(rf.SKOPEO, "inspect", "--tls-verify=false", "docker://" + dest))
    assert info["Digest"] == third["manifest_digest"]
    assert info["Layers"] == [base["layer"], third["layer_digest"]]


def test_push_failure_keeps_the_layout_and_names_the_registry(base, tmp_path):
    code = make_code(tmp_path / "code", "python")
    port = rf.closed_port()
    r = subprocess.run([HKSD, "build", "--runtime", "python", "--code", str(code),
                        "--base-layout", str(base["dir"]), "--oci-layout", str(tmp_path / "out"),
                        "--push", f"127.0.0.1:{port}/fn/down:v1", "--insecure"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("hksd build: push: ")
    assert f"registry 127.0.0.1:{port}, repository fn/down" in r.stderr
    assert "cannot connect" in r.stderr and str(tmp_path / "out") in r.stderr
    assert (tmp_path / "out" / "index.json").is_file()


@pytest.mark.parametrize("args,needle", [
    (["--push", "127.0.0.1:5000/fn/x:v1", "--context", "c.tgz"], "--push go with --oci-layout"),
    (["--insecure", "--context", "c.tgz"], "go with --push"),
    (["--mount-from", "fn/base", "--context", "c.tgz"], "go with --push"),
    (["--base-layout", "b", "--oci-layout", "o", "--push", "Bad/Name"], "--push: "),
])
def test_push_usage_errors(args, needle, tmp_path):
    r = subprocess.run([HKSD, "build", "--runtime", "node", "--code", str(tmp_path), *args],
                       capture_output=True, text=True, timeout=10, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "c.tgz").exists()
