"""hksd push: OCI image layouts pushed to real registries (Debian's docker-registry, started here
on loopback) and read back with skopeo. Anonymous plain HTTP, Basic auth (htpasswd), TLS with a
CA made here, Bearer tokens from a token server run here; blobs skipped, mounted across
repositories, uploaded in chunks; relative Locations and retries through a fault proxy; a corrupt
layout, a registry that is down, denied and refused requests, each with a clear error."""

import base64
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest

import registry_fixture as rf

REPO = pathlib.Path(__file__).resolve().parents[2]
HKSD = os.environ.get("HKSD") or str(REPO / "build" / "hksd")

pytestmark = [
    pytest.mark.skipif(not os.path.exists(HKSD), reason=f"{HKSD} not built"),
    pytest.mark.skipif(not os.path.exists(rf.REGISTRY_BIN), reason="docker-registry not installed"),
    pytest.mark.skipif(not os.path.exists(rf.SKOPEO), reason="skopeo not installed"),
]


def push(layout, dest, *args, docker_config=None, timeout=60):
    cmd = [HKSD, "push", "--oci-layout", str(layout), *args]
    if docker_config:
        cmd += ["--docker-config", str(docker_config)]
    r = subprocess.run([*cmd, dest], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "DOCKER_CONFIG": "/nonexistent-hks-test"})
    return r


def push_ok(layout, dest, *args, **kw):
    r = push(layout, dest, *args, **kw)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def one_line_error(r):
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def skopeo(*args, timeout=60):
    r = subprocess.run([rf.SKOPEO, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


def read_back(tmp_path, ref, image, *flags):
    """skopeo copies ref to a dir: the manifest is the pushed bytes, each blob the layout's."""
    policy = tmp_path / "policy.json"
    policy.write_text('{"default":[{"type":"insecureAcceptAnything"}]}')
    out = tmp_path / ("copy-" + hashlib.sha256(ref.encode()).hexdigest()[:8])
    skopeo("--policy", str(policy), "copy", "--src-tls-verify=false", *flags,
           "docker://" + ref, "dir:" + str(out))
    manifest = (out / "manifest.json").read_bytes()
    assert rf.sha256_digest(manifest) == image["manifest"]
    assert manifest == image["manifest_bytes"]
    for digest in (image["config"], image["layer"]):
        assert (out / digest[7:]).read_bytes() == image["blobs"][digest]


def docker_config(path, registry, **entry):
    path.write_text(json.dumps({"auths": {registry: entry}}))
    return path


def b64(text):
    return base64.b64encode(text.encode()).decode()


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="module")
def image(work):
    files = {"hello.txt": b"hello from hks\n", "app/main.py": b"print(6 * 7)\n",
             "app/data.bin": os.urandom(2000)}
    return {**rf.make_layout(work / "layout", files, ref_name="v1"), "dir": work / "layout"}


@pytest.fixture(scope="module")
def big_image(work):
    """a layer of about 5 KiB of incompressible bytes: five chunks and a bit at 1 KiB"""
    info = rf.make_layout(work / "big", {"blob.bin": os.urandom(5000)})
    return {**info, "dir": work / "big"}


@pytest.fixture(scope="module")
def registry(work):
    r = rf.Registry(work / "plain").start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def tls_registry(work):
    certs = rf.make_ca(work / "certs")
    r = rf.Registry(work / "tls", tls=certs).start()
    r.ca = certs["ca"]
    yield r
    r.stop()


@pytest.fixture(scope="module")
def basic_registry(work):
    r = rf.Registry(work / "basic", auth=rf.htpasswd_auth(work)).start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def token_registry(work):
    signer = rf.make_signing_cert(work / "token")
    server = rf.HttpServer(rf.TokenHandler, signer=signer)
    r = rf.Registry(work / "bearer", auth=rf.token_auth(server.port, signer)).start()
    r.token_server = server
    yield r
    r.stop()
    server.stop()


@pytest.fixture
def proxy(registry):
    servers = []

    def make(**faults):
        s = rf.HttpServer(rf.ProxyHandler, upstream_port=registry.port, **faults)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


# ---------------------------------------------------------------- anonymous, plain HTTP

def test_push_reads_back_with_skopeo(registry, image, tmp_path):
    out = push_ok(image["dir"], registry.host + "/hks/app:v1", "--insecure", "--tag", "v1")
    assert out == {"digest": image["manifest"], "uploaded": 2, "skipped": 0, "mounted": 0,
                   "bytes": len(image["blobs"][image["config"]]) +
                   len(image["blobs"][image["layer"]])}
    info = json.loads(skopeo("inspect", "--tls-verify=false",
                             f"docker://{registry.host}/hks/app:v1"))
    assert info["Digest"] == image["manifest"]
    assert info["Layers"] == [image["layer"]]
    read_back(tmp_path, registry.host + "/hks/app:v1", image)


def test_second_push_skips_every_blob(registry, image):
    push_ok(image["dir"], registry.host + "/hks/again:v1", "--insecure")
    out = push_ok(image["dir"], registry.host + "/hks/again:v2", "--insecure")
    assert (out["uploaded"], out["skipped"], out["mounted"], out["bytes"]) == (0, 2, 0, 0)
    assert out["digest"] == image["manifest"]


def test_push_without_tag_goes_by_digest(registry, image):
    out = push_ok(image["dir"], registry.host + "/hks/bydigest", "--insecure")
    raw = skopeo("inspect", "--raw", "--tls-verify=false",
                 f"docker://{registry.host}/hks/bydigest@{out['digest']}")
    assert raw.encode() == image["manifest_bytes"]
    wrong = "sha256:" + "0" * 64
    r = push(image["dir"], f"{registry.host}/hks/bydigest@{wrong}", "--insecure")
    assert wrong in one_line_error(r) and image["manifest"] in r.stderr


def test_docker_v2_manifest_keeps_its_media_type(registry, work, tmp_path):
    docker = rf.make_layout(work / "docker-v2", {"a": b"docker media types\n"},
                            media_type="application/vnd.docker.distribution.manifest.v2+json")
    push_ok(work / "docker-v2", registry.host + "/hks/dockerv2:latest", "--insecure")
    info = json.loads(skopeo("inspect", "--raw", "--tls-verify=false",
                             f"docker://{registry.host}/hks/dockerv2:latest"))
    assert info["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    read_back(tmp_path, registry.host + "/hks/dockerv2:latest", docker)


def test_chunked_upload_patches_in_pieces(proxy, big_image, tmp_path):
    p = proxy()
    out = push_ok(big_image["dir"], f"127.0.0.1:{p.port}/hks/chunked:v1", "--insecure",
                  "--chunk-size", "1024")
    assert out["uploaded"] == 2
    layer = len(big_image["blobs"][big_image["layer"]])
    config = len(big_image["blobs"][big_image["config"]])
    patches = [q for q in p.requests if q.get("method") == "PATCH"]
    assert len(patches) == -(-layer // 1024) + -(-config // 1024)
    read_back(tmp_path, f"127.0.0.1:{p.port}/hks/chunked:v1", big_image)


def test_only_large_bodies_wait_for_100_continue(proxy, work, tmp_path):
    """A function's layer, its config and the manifest are sent at once: waiting for "100
    Continue" would cost a round trip each. A blob of 1 MiB or more still asks first."""
    large = rf.make_layout(work / "large", {"big.bin": os.urandom(1100 * 1024)})
    p = proxy()
    push_ok(work / "large", f"127.0.0.1:{p.port}/hks/expect:v1", "--insecure")
    puts = {("layer" if large["layer"] in q["path"] else
             "config" if large["config"] in q["path"] else
             "manifest" if "/manifests/" in q["path"] else q["path"]): q["expect"]
            for q in p.requests if q.get("method") == "PUT"}
    assert puts == {"layer": "100-continue", "config": None, "manifest": None}
    read_back(tmp_path, f"127.0.0.1:{p.port}/hks/expect:v1", large)


def test_cross_repository_mount(registry, image):
    push_ok(image["dir"], registry.host + "/hks/base:v1", "--insecure")
    out = push_ok(image["dir"], registry.host + "/hks/derived:v1", "--insecure",
                  "--mount-from", "hks/base")
    assert (out["mounted"], out["uploaded"], out["skipped"]) == (2, 0, 0)
    info = json.loads(skopeo("inspect", "--tls-verify=false",
                             f"docker://{registry.host}/hks/derived:v1"))
    assert info["Digest"] == image["manifest"]


def test_mount_from_a_repository_without_the_blobs_uploads(registry, image):
    out = push_ok(image["dir"], registry.host + "/hks/nomount:v1", "--insecure",
                  "--mount-from", "hks/empty-source")
    assert (out["mounted"], out["uploaded"]) == (0, 2)


def test_relative_locations_and_retries_through_a_proxy(proxy, image, tmp_path):
    p = proxy(relative_location=True, fail_first=2)
    start = time.monotonic()
    out = push_ok(image["dir"], f"127.0.0.1:{p.port}/hks/relative:v1", "--insecure")
    assert out["uploaded"] == 2
    assert time.monotonic() - start >= 1.0  # Retry-After: 1 was honoured
    assert [q for q in p.requests if "relative_location" in q], "no Location was rewritten"
    assert all(q["relative_location"].startswith("/v2/")
               for q in p.requests if "relative_location" in q)
    read_back(tmp_path, f"127.0.0.1:{p.port}/hks/relative:v1", image)


def test_server_errors_exhaust_the_retries(proxy, image):
    p = proxy(always=503)
    r = push(image["dir"], f"127.0.0.1:{p.port}/hks/broken:v1", "--insecure", "--retries", "2")
    line = one_line_error(r)
    assert f"registry 127.0.0.1:{p.port}" in line and "repository hks/broken" in line
    assert "HEAD: HTTP 503 after 3 attempts" in line  # a HEAD answer has no body to quote
    assert len(p.requests) == 3


def test_client_errors_are_not_retried(proxy, image):
    p = proxy(always=404)
    r = push(image["dir"], f"127.0.0.1:{p.port}/hks/missing:v1", "--insecure")
    line = one_line_error(r)
    assert f"registry 127.0.0.1:{p.port}, repository hks/missing" in line
    # a 404 to HEAD means "upload it"; the POST's 404 ends the push, without retries
    assert "POST: HTTP 404 (UNAVAILABLE: injected by the test proxy)" in line
    assert [q["method"] for q in p.requests] == ["HEAD", "POST"]


def test_read_only_registry_names_status(work, image):
    r = rf.Registry(work / "readonly", readonly=True).start()
    try:
        res = push(image["dir"], r.host + "/hks/ro:v1", "--insecure")
        line = one_line_error(res)
        assert f"registry {r.host}, repository hks/ro" in line
        assert "uploading blob" in line and "POST: HTTP 405" in line
    finally:
        r.stop()


def test_registry_down_fails_after_retries(image):
    port = rf.closed_port()
    start = time.monotonic()
    r = push(image["dir"], f"127.0.0.1:{port}/hks/down:v1", "--insecure", "--retries", "2")
    line = one_line_error(r)
    assert f"registry 127.0.0.1:{port}, repository hks/down" in line
    assert "cannot connect" in line and "after 3 attempts" in line
    assert time.monotonic() - start >= 0.6  # 200 ms, then 400 ms


def test_slow_registry_is_waited_for(proxy, image, tmp_path):
    p = proxy(delay=0.3)
    start = time.monotonic()
    out = push_ok(image["dir"], f"127.0.0.1:{p.port}/hks/slow:v1", "--insecure",
                  "--stall-timeout", "5")
    assert out["uploaded"] == 2
    assert time.monotonic() - start >= 0.3 * len(p.requests)
    read_back(tmp_path, f"127.0.0.1:{p.port}/hks/slow:v1", image)


def test_hanging_registry_fails_in_bounded_time_naming_it(proxy, image):
    p = proxy(hang_after=0)
    start = time.monotonic()
    r = push(image["dir"], f"127.0.0.1:{p.port}/hks/hang:v1", "--insecure", "--retries", "2",
             "--stall-timeout", "1")
    elapsed = time.monotonic() - start
    line = one_line_error(r)
    assert f"registry 127.0.0.1:{p.port}, repository hks/hang" in line
    assert "no answer (timed out) after 3 attempts" in line
    assert len(p.requests) == 3
    # three attempts of about a second each, 200 and 400 ms between them: bounded
    assert 3.0 <= elapsed < 10, elapsed


def test_registry_going_down_mid_push_then_a_push_again_completes(proxy, registry, image,
                                                                   tmp_path):
    p = proxy(drop_after=3)
    r = push(image["dir"], f"127.0.0.1:{p.port}/hks/midway:v1", "--insecure", "--retries", "1")
    line = one_line_error(r)
    assert f"registry 127.0.0.1:{p.port}, repository hks/midway" in line
    assert "after 2 attempts" in line, line
    # the registry is back (a proxy that lets everything through): the push completes, with
    # what reached it before counted as already there
    back = proxy()
    out = push_ok(image["dir"], f"127.0.0.1:{back.port}/hks/midway:v1", "--insecure")
    assert out["uploaded"] + out["skipped"] == 2, out
    read_back(tmp_path, f"127.0.0.1:{back.port}/hks/midway:v1", image)


def test_corrupt_blob_is_refused_naming_it(registry, image, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(image["dir"], broken)
    blob = broken / "blobs" / "sha256" / image["layer"][7:]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    for extra in ([], ["--chunk-size", "512"]):
        r = push(broken, registry.host + "/hks/corrupt:v1", "--insecure", *extra)
        line = one_line_error(r)
        assert image["layer"] in line and "corrupt" in line and str(broken) in line
        assert not registry.blob_exists("hks/corrupt", image["layer"])
    blob.write_bytes(bytes(data[:-1]))
    line = one_line_error(push(broken, registry.host + "/hks/corrupt:v1", "--insecure"))
    assert image["layer"] in line and "corrupt" in line


def test_layout_errors(registry, image, tmp_path):
    line = one_line_error(push(image["dir"], registry.host + "/hks/x:v1", "--insecure",
                               "--tag", "nope"))
    assert "nope" in line and "'v1'" in line
    line = one_line_error(push(tmp_path, registry.host + "/hks/x:v1", "--insecure"))
    assert "oci-layout" in line


# ---------------------------------------------------------------- TLS

def test_tls_verified_with_the_ca_file(tls_registry, image, tmp_path):
    out = push_ok(image["dir"], tls_registry.host + "/hks/tls:v1", "--ca-file", tls_registry.ca)
    assert out["digest"] == image["manifest"]
    read_back(tmp_path, tls_registry.host + "/hks/tls:v1", image)


def test_tls_without_the_ca_is_refused(tls_registry, image):
    line = one_line_error(push(image["dir"], tls_registry.host + "/hks/tls:v1"))
    assert "TLS certificate verification failed" in line
    assert f"registry {tls_registry.host}, repository hks/tls" in line


def test_plain_http_to_a_tls_registry_is_refused(tls_registry, image):
    line = one_line_error(push(image["dir"], tls_registry.host + "/hks/tls:v1", "--insecure"))
    assert f"registry {tls_registry.host}, repository hks/tls" in line and "HTTP 400" in line


def test_plain_registry_without_insecure_is_refused(registry, image):
    line = one_line_error(push(image["dir"], registry.host + "/hks/app:v1"))
    assert f"registry {registry.host}" in line and "TLS" in line


# ---------------------------------------------------------------- Basic auth

def test_basic_auth_from_docker_config(basic_registry, image, tmp_path):
    cfg = docker_config(tmp_path / "config.json", basic_registry.host,
                        auth=b64(f"{rf.TEST_USER}:{rf.TEST_PASSWORD}"))
    out = push_ok(image["dir"], basic_registry.host + "/hks/basic:v1", "--insecure",
                  docker_config=cfg)
    assert out["uploaded"] == 2
    cfg2 = docker_config(tmp_path / "config2.json", "http://" + basic_registry.host + "/v2/",
                         username=rf.TEST_USER, password=rf.TEST_PASSWORD)
    out = push_ok(image["dir"], basic_registry.host + "/hks/basic:v2", "--insecure",
                  docker_config=cfg2)
    assert out["skipped"] == 2
    read_back(tmp_path, basic_registry.host + "/hks/basic:v1", image,
              "--src-creds", f"{rf.TEST_USER}:{rf.TEST_PASSWORD}")


def test_basic_auth_without_credentials_says_so(basic_registry, image, tmp_path):
    cfg = docker_config(tmp_path / "config.json", "other.example:5000", auth=b64("a:b"))
    line = one_line_error(push(image["dir"], basic_registry.host + "/hks/basic:v1", "--insecure",
                               docker_config=cfg))
    assert f"registry {basic_registry.host}" in line and "no credentials" in line


def test_basic_auth_with_a_wrong_password_names_401(basic_registry, image, tmp_path):
    cfg = docker_config(tmp_path / "config.json", basic_registry.host,
                        auth=b64(f"{rf.TEST_USER}:wrong"))
    line = one_line_error(push(image["dir"], basic_registry.host + "/hks/basic:v1", "--insecure",
                               docker_config=cfg))
    assert f"registry {basic_registry.host}, repository hks/basic" in line
    assert "HTTP 401" in line


# ---------------------------------------------------------------- Bearer tokens

def test_bearer_token_push_and_mount(token_registry, image, tmp_path):
    cfg = docker_config(tmp_path / "config.json", token_registry.host,
                        auth=b64(f"{rf.TEST_USER}:{rf.TEST_PASSWORD}"))
    server = token_registry.token_server
    out = push_ok(image["dir"], token_registry.host + "/hks/token:v1", "--insecure",
                  docker_config=cfg)
    assert out["uploaded"] == 2
    asked = [q for q in server.requests if q["method"] == "GET"]
    assert asked and asked[0]["scopes"] == ["repository:hks/token:pull,push"]
    assert asked[0]["service"] == rf.TOKEN_SERVICE
    assert len(asked) == 1, "the token is kept for the whole push"

    out = push_ok(image["dir"], token_registry.host + "/hks/token-b:v1", "--insecure",
                  "--mount-from", "hks/token", docker_config=cfg)
    assert out["mounted"] == 2
    assert server.requests[-1]["scopes"] == ["repository:hks/token-b:pull,push",
                                             "repository:hks/token:pull"]
    read_back(tmp_path, token_registry.host + "/hks/token-b:v1", image,
              "--src-creds", f"{rf.TEST_USER}:{rf.TEST_PASSWORD}")


def test_bearer_with_identity_token(token_registry, image, tmp_path):
    cfg = docker_config(tmp_path / "config.json", token_registry.host,
                        identitytoken=rf.TokenHandler.refresh_token)
    out = push_ok(image["dir"], token_registry.host + "/hks/oauth:v1", "--insecure",
                  docker_config=cfg)
    assert out["digest"] == image["manifest"]
    assert token_registry.token_server.requests[-1]["method"] == "POST"


def test_bearer_denied_names_status(token_registry, image, tmp_path):
    cfg = docker_config(tmp_path / "config.json", token_registry.host,
                        auth=b64(f"{rf.TEST_USER}:{rf.TEST_PASSWORD}"))
    line = one_line_error(push(image["dir"], token_registry.host + "/denied/app:v1",
                               "--insecure", docker_config=cfg))
    assert f"registry {token_registry.host}, repository denied/app" in line
    assert "HTTP 401" in line


def test_bearer_with_bad_credentials_names_the_token_server(token_registry, image, tmp_path):
    cfg = docker_config(tmp_path / "config.json", token_registry.host,
                        auth=b64(f"{rf.TEST_USER}:wrong"))
    line = one_line_error(push(image["dir"], token_registry.host + "/hks/token:v1",
                               "--insecure", docker_config=cfg))
    assert "getting a token" in line and "HTTP 401" in line


# ---------------------------------------------------------------- the command line

def test_usage_and_help():
    r = subprocess.run([HKSD, "push", "--help"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0
    for option in ["--oci-layout", "--tag", "--insecure", "--ca-file", "--docker-config",
                   "--chunk-size", "--mount-from", "--retries"]:
        assert option in r.stdout, option
    for args, needle in [([], "--oci-layout"), (["--oci-layout", "x"], "DEST_REF"),
                         (["--oci-layout", "x", "--chunk-size", "0", "r/x"], "--chunk-size"),
                         (["--oci-layout", "x", "--frobnicate", "r/x"], "--frobnicate"),
                         (["--oci-layout", "x", "Bad/Name"], "repository")]:
        r = subprocess.run([HKSD, "push", *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, args
        assert needle in r.stderr, (args, r.stderr)
