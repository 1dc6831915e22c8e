"""Helpers for the registry client's tests: real registries (Debian's docker-registry, the CNCF
distribution 2.8) started on loopback with temporary storage, a CA and server certificates made
with openssl, a token server issuing RS256 JWTs the registry verifies (signed by calling openssl,
so no Python crypto package is needed), a fault-injecting proxy, small OCI image layouts.

Every process started here is stopped by the caller's fixture finalizer (Registry.stop,
HttpServer.stop); nothing listens anywhere but 127.0.0.1.
"""

import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import pathlib
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
import uuid

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO = "/usr/bin/skopeo"

# bcrypt ($2b$, cost 4 to keep every request fast) of TEST_PASSWORD, made with
# crypt.crypt(TEST_PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)); docker-registry's
# htpasswd accepts only bcrypt, which neither openssl nor Python's standard library (crypt is
# deprecated) can be relied on to make.
TEST_USER = "hks"
TEST_PASSWORD = "hks-test-password"
TEST_BCRYPT = "$2b$04$X3ueWmi4wi/rKts38HsdH.GyUc/eA0qyFuzQBkG2nkgKVgrITmFxy"

TOKEN_SERVICE = "hks-test-registry"
TOKEN_ISSUER = "hks-test-issuer"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    return free_port()


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, timeout=60, **kw)


# ---------------------------------------------------------------- certificates

def make_ca(d):
    """A CA and a server certificate for 127.0.0.1/localhost under d; returns their paths."""
    d = pathlib.Path(d)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = d / "ca.key", d / "ca.crt"
    key, csr, crt = d / "server.key", d / "server.csr", d / "server.crt"
    ext = d / "server.ext"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
         "-out", str(ca_crt), "-days", "2", "-subj", "/CN=hks test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
         "-subj", "/CN=127.0.0.1"])
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext)])
    return {"ca": str(ca_crt), "cert": str(crt), "key": str(key)}


def make_signing_cert(d):
    """A self-signed RSA certificate the token server signs with and the registry trusts."""
    d = pathlib.Path(d)
    d.mkdir(parents=True, exist_ok=True)
    key, crt = d / "token.key", d / "token.crt"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(crt), "-days", "2", "-subj", "/CN=hks test token issuer"])
    der = run(["openssl", "x509", "-in", str(crt), "-outform", "DER"]).stdout
    return {"key": str(key), "cert": str(crt), "der_b64": base64.b64encode(der).decode()}


# ---------------------------------------------------------------- registries

class Registry:
    """docker-registry serve CONFIG on 127.0.0.1:port; config is written as JSON, which is YAML."""

    def __init__(self, workdir, *, auth=None, tls=None, readonly=False):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.tls = tls
        storage = {"filesystem": {"rootdirectory": str(self.dir / "storage")},
                   "delete": {"enabled": True}}
        if readonly:
            storage["maintenance"] = {"readonly": {"enabled": True}}
        config = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": storage,
            "http": {"addr": self.host, "secret": uuid.uuid4().hex,
                     "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if tls:
            config["http"]["tls"] = {"certificate": tls["cert"], "key": tls["key"]}
        if auth:
            config["auth"] = auth
        self.config = self.dir / "config.yml"
        self.config.write_text(json.dumps(config, indent=1))
        self.log = self.dir / "registry.log"
        self.proc = None

    def start(self):
        logf = open(self.log, "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(self.config)],
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not listen on {self.host}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def url(self):
        return ("https://" if self.tls else "http://") + self.host

    def blob_exists(self, repo, digest, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("HEAD", f"/v2/{repo}/blobs/{digest}", headers=headers or {})
            return conn.getresponse().status == 200
        finally:
            conn.close()


def htpasswd_auth(d):
    path = pathlib.Path(d) / "htpasswd"
    path.write_text(f"{TEST_USER}:{TEST_BCRYPT}\n")
    return {"htpasswd": {"realm": "hks-test", "path": str(path)}}


# ---------------------------------------------------------------- small HTTP servers

class HttpServer:
    """A ThreadingHTTPServer on 127.0.0.1 running handler_class in a thread."""

    def __init__(self, handler_class, **attrs):
        handler = type("Handler", (handler_class,), dict(attrs))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        handler.owner = self
        self.port = self.server.server_address[1]
        self.requests = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def record(self, item):
        with self.lock:
            self.requests.append(item)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_jwt(claims, signer):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [signer["der_b64"]]}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    sig = run(["openssl", "dgst", "-sha256", "-sign", signer["key"]], input=signing_input).stdout
    return signing_input.decode() + "." + b64url(sig)


class TokenHandler(http.server.BaseHTTPRequestHandler):
    """The docker token protocol: GET /token?service=&scope= with optional Basic credentials,
    or POST /token (OAuth2 refresh_token grant). Repositories under denied/ get pull only;
    wrong credentials get 401."""

    protocol_version = "HTTP/1.1"
    signer = None
    refresh_token = "hks-identity-token"

    def log_message(self, *args):
        pass

    def _answer(self, params, authorization):
        scopes = params.get("scope", [])
        self.owner.record({"method": self.command, "scopes": scopes,
                           "service": params.get("service", [""])[0],
                           "authorization": authorization})
        user = "anonymous"
        if authorization:
            expected = "Basic " + base64.b64encode(
                f"{TEST_USER}:{TEST_PASSWORD}".encode()).decode()
            if authorization != expected:
                return self._send(401, {"details": "bad credentials"})
            user = TEST_USER
        if self.command == "POST":
            if params.get("grant_type") != ["refresh_token"] or \
                    params.get("refresh_token") != [self.refresh_token]:
                return self._send(401, {"details": "bad refresh token"})
            user = TEST_USER
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":", 2)
            granted = [a for a in actions.split(",")
                       if user != "anonymous" and (a == "pull" or not name.startswith("denied/"))]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        token = sign_jwt({"iss": TOKEN_ISSUER, "sub": user, "aud": TOKEN_SERVICE,
                          "exp": now + 300, "nbf": now - 10, "iat": now,
                          "jti": uuid.uuid4().hex, "access": access}, self.signer)
        key = "access_token" if self.command == "POST" else "token"
        self._send(200, {key: token, "expires_in": 300})

    def _send(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        query = urllib.parse.urlparse(self.path).query
        self._answer(urllib.parse.parse_qs(query), self.headers.get("Authorization"))

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = self.rfile.read(n).decode()
        self._answer(urllib.parse.parse_qs(form), self.headers.get("Authorization"))


def token_auth(realm_port, signer):
    return {"token": {"realm": f"http://127.0.0.1:{realm_port}/token",
                      "service": TOKEN_SERVICE, "issuer": TOKEN_ISSUER,
                      "rootcertbundle": signer["cert"]}}


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer",
              "upgrade", "proxy-authenticate", "proxy-authorization"}


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    """Forwards to a registry on 127.0.0.1:upstream_port. Faults: the first fail_first requests
    answer 503 with Retry-After: 1; every request answers status always (if set); Location
    headers are made relative (path and query only) when relative_location; every answer waits
    delay seconds (a slow registry); from request number hang_after on (0: the first), requests
    are read and never answered (a registry that hangs); from drop_after on, the connection is
    closed without an answer (a registry that went down mid-push)."""

    protocol_version = "HTTP/1.1"
    upstream_port = 0
    fail_first = 0
    always = None
    relative_location = False
    delay = 0.0
    hang_after = None
    drop_after = None

    def log_message(self, *args):
        pass

    def _handle(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(n) if n else b""
        with self.owner.lock:
            index = len(self.owner.requests)
            self.owner.requests.append({"method": self.command, "path": self.path,
                                        "expect": self.headers.get("Expect")})
        if self.hang_after is not None and index >= self.hang_after:
            time.sleep(120)  # the client gives up first; the thread is a daemon
            return
        if self.drop_after is not None and index >= self.drop_after:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        time.sleep(self.delay)
        status = self.always or (503 if index < self.fail_first else None)
        if status:
            payload = json.dumps({"errors": [{"code": "UNAVAILABLE",
                                              "message": "injected by the test proxy"}]}).encode()
            self.send_response(status)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        # header by header: a client may repeat one (skopeo sends several Accept headers)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() not in HOP_BY_HOP:
                conn.putheader(k, v)
        if body or self.command in ("PUT", "POST", "PATCH"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in HOP_BY_HOP:
                continue
            if k.lower() == "location" and self.relative_location:
                parts = urllib.parse.urlsplit(v)
                v = parts.path + ("?" + parts.query if parts.query else "")
                self.owner.record({"relative_location": v})
            self.send_header(k, v)
        length = resp.getheader("Content-Length")
        self.send_header("Content-Length", length if self.command == "HEAD" and length
                         else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


# ---------------------------------------------------------------- OCI layouts

def _tar_gz(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), tar_bytes


def make_layout(d, files, *, ref_name="latest", media_type="application/vnd.oci.image.manifest.v1+json"):
    """An OCI image layout at d with one image: one layer holding files ({name: bytes}), a config,
    a manifest of media_type (OCI, or Docker v2 with Docker media types throughout) and index.json
    naming it ref_name. Returns {"manifest": digest, "config": digest, "layer": digest,
    "blobs": {digest: bytes}}."""
    d = pathlib.Path(d)
    blobs_dir = d / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    docker = "docker" in media_type
    layer, tar_bytes = _tar_gz(files)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar_bytes)]},
    }, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json" if docker
                   else "application/vnd.oci.image.config.v1+json",
                   "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip" if docker
                    else "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256_digest(layer), "size": len(layer)}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    blobs = {}
    for data in (layer, config, manifest_bytes):
        digest = sha256_digest(data)
        (blobs_dir / digest[7:]).write_bytes(data)
        blobs[digest] = data
    (d / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (d / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": media_type, "digest": sha256_digest(manifest_bytes),
                       "size": len(manifest_bytes),
                       "annotations": {"org.opencontainers.image.ref.name": ref_name}}]}))
    return {"manifest": sha256_digest(manifest_bytes), "config": sha256_digest(config),
            "layer": sha256_digest(layer), "blobs": blobs, "manifest_bytes": manifest_bytes}
