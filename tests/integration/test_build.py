"""hksd build: function images as OCI image layouts ("layer" strategy) and build contexts.

A tiny base image is made here as an OCI image layout (one layer holding Debian's static busybox,
a config and a manifest, OCI or Docker schema 2), `hksd build` adds the function's layer, and
skopeo (an independent implementation) reads the result back: `skopeo inspect` and `skopeo copy`
check every digest and size. The layer, the config and the determinism are then checked here.
"""

import gzip
import hashlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import tarfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
HKSD = os.environ.get("HKSD") or str(REPO / "build" / "hksd")
BUSYBOX = "/bin/busybox"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
BASE_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PORT=9999",
            "LANG=C.UTF-8"]

NODE_HANDLER = "module.exports = { handle: async (ctx, body) => ({ hello: body }) };\n"
PY_FUNC = "def new():\n    return Function()\n\n\nclass Function:\n    async def handle(self, scope, receive, send):\n        pass\n"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(HKSD), reason="build/hksd not built"),
    pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed"),
    pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="busybox-static not installed"),
]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(layout, data):
    digest = sha256(data)
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    return digest


def make_base(layout, kind="oci", ref="base", extra_manifests=0):
    """An OCI image layout with a one-layer busybox image: /bin/busybox and /bin/sh -> busybox."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin",):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        data = pathlib.Path(BUSYBOX).read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("bin/sh")
        info.type, info.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(info)
    tar_bytes = raw.getvalue()
    gz = gzip.compress(tar_bytes, mtime=0)
    layer_digest = put_blob(layout, gz)
    config = {
        "architecture": "amd64", "os": "linux", "created": "2024-05-01T10:00:00Z",
        "config": {"Env": BASE_ENV, "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar_bytes)]},
        "history": [{"created": "2024-05-01T10:00:00Z", "created_by": "test: busybox"}],
    }
    config_bytes = json.dumps(config).encode()
    config_digest = put_blob(layout, config_bytes)
    docker = kind == "docker"
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                   "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": DOCKER_LAYER if docker else OCI_LAYER,
                    "digest": layer_digest, "size": len(gz)}],
    }
    manifest_bytes = json.dumps(manifest).encode()
    manifest_digest = put_blob(layout, manifest_bytes)
    entry = {"mediaType": manifest["mediaType"], "digest": manifest_digest,
             "size": len(manifest_bytes)}
    manifests = [dict(entry, annotations={"org.opencontainers.image.ref.name": ref})]
    for i in range(extra_manifests):
        manifests.append(dict(entry, annotations={"org.opencontainers.image.ref.name": "other%d" % i}))
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                   "manifests": manifests}))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return {"manifest": manifest_digest, "layer": layer_digest, "diff_id": sha256(tar_bytes)}


def make_code(directory, runtime, reverse=False):
    """A small function project; reverse creates the files in the other order with other mtimes
    and modes, which must not change any digest."""
    if runtime == "node":
        files = [("index.js", NODE_HANDLER, 0o644), ("lib/util.js", "exports.x = 1;\n", 0o600),
                 ("bin/tool.sh", "#!/bin/sh\necho hi\n", 0o700),
                 ("package.json", '{"name": "f", "version": "1.0.0"}\n', 0o644)]
    else:
        files = [("function/__init__.py", "from .func import new\n", 0o644),
                 ("function/func.py", PY_FUNC, 0o640), ("func.yaml", "name: f\n", 0o644)]
    for i, (name, text, mode) in enumerate(reversed(files) if reverse else files):
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        # the permission bits other than x never matter, only whether some x bit is set
        os.chmod(path, (mode | 0o044) if reverse else mode)
        os.utime(path, (1000000 + i, 2000000 + i * 7 if reverse else 3000000 + i))
    return directory


def hksd_build(*args, check=True):
    r = subprocess.run([HKSD, "build", *map(str, args)], capture_output=True, text=True,
                       timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert len(lines) == 1, r.stdout
        return json.loads(lines[0])
    return r


def skopeo(*args):
    r = subprocess.run(["skopeo", "--insecure-policy", *map(str, args)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def base(tmp_path):
    layout = tmp_path / "base"
    info = make_base(layout)
    info["dir"] = layout
    return info


def layer_members(blob):
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}, tar


@pytest.mark.parametrize("kind", ["oci", "docker"])
@pytest.mark.parametrize("runtime", ["node", "python"])
def test_image_is_valid_for_skopeo_and_holds_the_function(tmp_path, runtime, kind):
    base_dir = tmp_path / "base"
    base_info = make_base(base_dir, kind=kind)
    code = make_code(tmp_path / "code", runtime)
    out = tmp_path / "image"
    res = hksd_build("--runtime", runtime, "--code", code, "--base-layout", base_dir,
                     "--oci-layout", out, "--tag", "v1")
    assert set(res) == {"manifest_digest", "config_digest", "layer_digest", "layer_diff_id",
                        "oci_layout"}
    assert res["oci_layout"] == str(out)

    # skopeo reads it, finds it by its tag, and copies it (checking every digest and size)
    inspected = json.loads(skopeo("inspect", "oci:%s:v1" % out))
    assert inspected["Digest"] == res["manifest_digest"]
    assert inspected["Architecture"] == "amd64" and inspected["Os"] == "linux"
    copy = tmp_path / "copy"
    skopeo("copy", "oci:%s:v1" % out, "dir:%s" % copy)

    manifest_bytes = (copy / "manifest.json").read_bytes()
    assert sha256(manifest_bytes) == res["manifest_digest"]
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"] == {"mediaType": OCI_CONFIG, "digest": res["config_digest"],
                                  "size": len((copy / res["config_digest"][7:]).read_bytes())}
    assert [l["mediaType"] for l in manifest["layers"]] == [OCI_LAYER, OCI_LAYER]
    assert manifest["layers"][0]["digest"] == base_info["layer"]
    layer_blob = (copy / res["layer_digest"][7:]).read_bytes()
    assert manifest["layers"][1] == {"mediaType": OCI_LAYER, "digest": res["layer_digest"],
                                     "size": len(layer_blob)}
    assert sha256(layer_blob) == res["layer_digest"]
    assert sha256(gzip.decompress(layer_blob)) == res["layer_diff_id"]
    # the gzip header carries neither a timestamp nor a name
    assert layer_blob[3] == 0 and layer_blob[4:8] == b"\0\0\0\0"

    config = json.loads((copy / res["config_digest"][7:]).read_bytes())
    assert config["rootfs"]["diff_ids"] == [base_info["diff_id"], res["layer_diff_id"]]
    assert config["created"] == "2024-05-01T10:00:00Z"
    assert len(config["history"]) == 2 and "hksd build" in config["history"][1]["created_by"]
    c = config["config"]
    launcher = "launcher.js" if runtime == "node" else "launcher.py"
    interpreter = "node" if runtime == "node" else "python3"
    assert c["Entrypoint"] == [interpreter, "/hks/runtime/" + launcher, "serve"]
    assert "Cmd" not in c
    assert c["User"] == "1000:1000"
    assert c["WorkingDir"] == "/code"
    assert c["ExposedPorts"] == {"8080/tcp": {}}
    env = c["Env"]
    assert env[0] == BASE_ENV[0] and "LANG=C.UTF-8" in env
    assert "PORT=8080" in env and "PORT=9999" not in env
    assert env.index("PORT=8080") == 1  # replaced in place
    assert "HKS_FUNCTION_DIR=/code" in env

    # the new layer: /code and /hks/runtime, root-owned, normalised modes, mtime 0, sorted
    members, _ = layer_members(layer_blob)
    with tarfile.open(fileobj=io.BytesIO(layer_blob), mode="r:gz") as tar:
        names = tar.getnames()
    assert names == sorted(names)
    runtime_files = sorted(p.name for p in (REPO / "runtimes" / runtime).iterdir()
                           if p.name not in ("templates", "Dockerfile.tmpl", "__pycache__"))
    assert sorted(n[len("hks/runtime/"):] for n in names
                  if n.startswith("hks/runtime/")) == runtime_files
    assert not any("templates" in n or "Dockerfile" in n for n in names)
    for m in members.values():
        assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 0), m.name
        if m.isdir():
            assert m.mode == 0o755, m.name
        elif m.isfile():
            assert m.mode in (0o644, 0o755), m.name
        else:
            pytest.fail("unexpected member type: %s" % m.name)
    for d in ("code", "hks", "hks/runtime"):
        assert members[d].isdir()
    assert members["hks/runtime/" + launcher].mode == 0o644
    if runtime == "node":
        assert members["code/index.js"].mode == 0o644
        assert members["code/lib/util.js"].mode == 0o644  # 0600 on disk: readable for uid 1000
        assert members["code/bin/tool.sh"].mode == 0o755
        _, tar = layer_members(layer_blob)
        with tarfile.open(fileobj=io.BytesIO(layer_blob), mode="r:gz") as t:
            assert t.extractfile("code/index.js").read().decode() == NODE_HANDLER
    else:
        assert members["code/function/func.py"].mode == 0o644
        with tarfile.open(fileobj=io.BytesIO(layer_blob), mode="r:gz") as t:
            assert t.extractfile("code/function/func.py").read().decode() == PY_FUNC


def test_same_inputs_same_manifest_digest(tmp_path, base):
    """Two builds, the second from files made in another order, with other mtimes and modes
    and under another umask: the same bytes everywhere."""
    first = hksd_build("--runtime", "node", "--code", make_code(tmp_path / "a", "node"),
                       "--base-layout", base["dir"], "--oci-layout", tmp_path / "out1")
    old = os.umask(0o077)
    try:
        second = hksd_build("--runtime", "node", "--code",
                            make_code(tmp_path / "b", "node", reverse=True),
                            "--base-layout", base["dir"], "--oci-layout", tmp_path / "out2")
    finally:
        os.umask(old)
    assert first["manifest_digest"] == second["manifest_digest"]
    assert first["layer_digest"] == second["layer_digest"]
    for name in ("index.json", "oci-layout"):
        assert (tmp_path / "out1" / name).read_bytes() == (tmp_path / "out2" / name).read_bytes()
    blobs1 = sorted(p.name for p in (tmp_path / "out1" / "blobs" / "sha256").iterdir())
    blobs2 = sorted(p.name for p in (tmp_path / "out2" / "blobs" / "sha256").iterdir())
    assert blobs1 == blobs2
    # and the files are readable by anyone whatever the umask was
    for p in (tmp_path / "out2").rglob("*"):
        assert p.stat().st_mode & 0o755 == (0o755 if p.is_dir() else 0o644), p
    index = json.loads((tmp_path / "out1" / "index.json").read_text())
    assert index["manifests"][0]["annotations"] == {
        "org.opencontainers.image.ref.name": "latest"}
    assert index["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}
    # a different function gives a different image
    (tmp_path / "a" / "index.js").write_text(NODE_HANDLER + "// changed\n")
    third = hksd_build("--runtime", "node", "--code", tmp_path / "a", "--base-layout",
                       base["dir"], "--oci-layout", tmp_path / "out3")
    assert third["manifest_digest"] != first["manifest_digest"]


@pytest.mark.parametrize("runtime", ["node", "python"])
def test_context_is_byte_identical(tmp_path, runtime):
    a = make_code(tmp_path / "a", runtime)
    b = make_code(tmp_path / "b", runtime, reverse=True)
    r1 = hksd_build("--runtime", runtime, "--code", a, "--context", tmp_path / "c1.tar.gz")
    r2 = hksd_build("--runtime", runtime, "--code", a, "--context", tmp_path / "c2.tar.gz")
    r3 = hksd_build("--runtime", runtime, "--code", b, "--context", tmp_path / "c3.tar.gz")
    c1 = (tmp_path / "c1.tar.gz").read_bytes()
    assert c1 == (tmp_path / "c2.tar.gz").read_bytes() == (tmp_path / "c3.tar.gz").read_bytes()
    assert r1["context_digest"] == r2["context_digest"] == r3["context_digest"] == sha256(c1)
    assert r1["context_size"] == len(c1)
    with tarfile.open(fileobj=io.BytesIO(c1), mode="r:gz") as tar:
        names = tar.getnames()
        dockerfile = tar.extractfile("Dockerfile").read().decode()
        ignore = tar.extractfile(".dockerignore").read().decode()
    assert names == sorted(names)
    assert "Dockerfile" in ignore.splitlines() and ".dockerignore" in ignore.splitlines()
    if runtime == "node":
        assert {"index.js", "package.json", ".hks/runtime/launcher.js"} <= set(names)
        assert 'ENTRYPOINT ["node", "/hks/runtime/launcher.js", "serve"]' in dockerfile
        assert "npm ci" not in dockerfile  # package.json without dependencies
    else:
        assert {"code/function/func.py", "hks-runtime/launcher.py"} <= set(names)
        assert 'ENTRYPOINT ["python3", "/hks/runtime/launcher.py", "serve"]' in dockerfile
        assert "pip install" not in dockerfile and "/tmp/hks-deps" not in dockerfile
    assert "USER 1000:1000" in dockerfile


def test_context_keeps_the_dependency_step_when_there_are_dependencies(tmp_path):
    code = make_code(tmp_path / "code", "node")
    (code / "package.json").write_text('{"name": "f", "dependencies": {"left-pad": "1.3.0"}}')
    hksd_build("--runtime", "node", "--code", code, "--context", tmp_path / "c.tar.gz")
    with tarfile.open(tmp_path / "c.tar.gz", mode="r:gz") as tar:
        dockerfile = tar.extractfile("Dockerfile").read().decode()
    assert dockerfile == (REPO / "runtimes" / "node" / "Dockerfile.tmpl").read_text()


def test_image_and_context_together(tmp_path, base):
    code = make_code(tmp_path / "code", "python")
    res = hksd_build("--runtime", "python", "--code", code, "--base-layout", base["dir"],
                     "--oci-layout", tmp_path / "img", "--context", tmp_path / "ctx.tgz")
    assert {"manifest_digest", "context_digest"} <= set(res)


def test_base_picked_by_ref_when_several(tmp_path):
    base_dir = tmp_path / "base"
    make_base(base_dir, extra_manifests=1)
    code = make_code(tmp_path / "code", "node")
    r = hksd_build("--runtime", "node", "--code", code, "--base-layout", base_dir,
                   "--oci-layout", tmp_path / "out", check=False)
    assert r.returncode == 1
    assert "index.json lists 2 manifests" in r.stderr and "'other0'" in r.stderr
    assert not (tmp_path / "out").exists()
    hksd_build("--runtime", "node", "--code", code, "--base-layout", base_dir, "--base-ref",
               "base", "--oci-layout", tmp_path / "out")


def test_failures_name_what_failed_and_leave_nothing(tmp_path, base):
    code = make_code(tmp_path / "code", "node")
    cases = []
    r = hksd_build("--runtime", "node", "--code", code, "--base-layout", tmp_path / "nope",
                   "--oci-layout", tmp_path / "o1", check=False)
    cases.append((r, "nope"))
    # a blob whose content does not match its digest
    corrupt = tmp_path / "corrupt"
    info = make_base(corrupt)
    blob = corrupt / "blobs" / "sha256" / info["layer"][7:]
    data = bytearray(blob.read_bytes())
    data[100] ^= 1
    blob.write_bytes(bytes(data))
    r = hksd_build("--runtime", "node", "--code", code, "--base-layout", corrupt,
                   "--oci-layout", tmp_path / "o2", check=False)
    cases.append((r, info["layer"]))
    assert "does not match its digest" in r.stderr
    assert not (tmp_path / "o2").exists()
    # a non-empty output directory is refused, and left as it was
    (tmp_path / "o3").mkdir()
    (tmp_path / "o3" / "keep").write_text("x")
    r = hksd_build("--runtime", "node", "--code", code, "--base-layout", base["dir"],
                   "--oci-layout", tmp_path / "o3", check=False)
    cases.append((r, "must be new or empty"))
    assert (tmp_path / "o3" / "keep").read_text() == "x"
    # a FIFO in the code
    os.mkfifo(code / "fifo")
    r = hksd_build("--runtime", "node", "--code", code, "--context", tmp_path / "c.tgz",
                   check=False)
    cases.append((r, "fifo"))
    assert not (tmp_path / "c.tgz").exists()
    for r, needle in cases:
        assert r.returncode == 1, r.stderr
        assert r.stdout == ""
        assert r.stderr.startswith("hksd build: ") and r.stderr.count("\n") == 1, r.stderr
        assert needle in r.stderr, r.stderr


@pytest.mark.parametrize("args,needle", [
    ([], "--runtime"),
    (["--runtime", "ruby", "--code", "."], "--runtime"),
    (["--runtime", "node"], "--code"),
    (["--runtime", "node", "--code", "."], "nothing to write"),
    (["--runtime", "node", "--code", ".", "--oci-layout", "x"], "--base-layout"),
    (["--runtime", "node", "--code", ".", "--frobnicate"], "--frobnicate"),
    (["--runtime", "node", "--code", ".", "--context", "x", "extra"], "unexpected"),
])
def test_usage_errors_exit_2(args, needle):
    r = hksd_build(*args, check=False)
    assert r.returncode == 2
    assert needle in r.stderr


def test_help():
    r = hksd_build("--help", check=False)
    assert r.returncode == 0
    for option in ("--runtime", "--code", "--base-layout", "--base-ref", "--oci-layout", "--tag",
                   "--context"):
        assert option in r.stdout
