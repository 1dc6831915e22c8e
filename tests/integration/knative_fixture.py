"""Knative's part for the kubernetes backend's tests, played against the fake API server: for each
new Knative Service it pulls the function's image from the registry by the digest the Service
names, unpacks its layers, runs the runtime launcher found in the image (/hks/runtime) in serve
mode on a loopback TCP port with the image's and the container's environment, and marks the
Service Ready with that address (the fake's /_fake/ready). When the Service is deleted, the
instance is stopped, as Knative would scale it away.

So an invocation through hksd reaches the very code hksd built and pushed: the image's layer, not
a copy of the request's files. The launcher runs on the host, unsandboxed (the tests' own
functions only), as it would in the pod's container.
"""

import gzip
import io
import json
import os
import pathlib
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.request

KSVC_API = "serving.knative.dev/v1"
ACCEPT = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def _ready_condition(obj):
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status")
    return None


class KnativePlayer:
    def __init__(self, fake, workdir):
        self.fake = fake
        self.workdir = pathlib.Path(workdir)
        self.instances = {}  # (ns, name) -> {"proc", "port", "url", "dir", "image"}
        self.hold = set()  # names (or "*") not to make Ready: a deploy that never gets ready
        self.errors = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    # ---- the loop ----
    def _run(self):
        while not self._stop.is_set():
            try:
                self._pass()
            except Exception as e:  # noqa: BLE001 - kept for the test to report
                self.errors.append(repr(e))
            self._stop.wait(0.1)

    def _pass(self):
        objects = self.fake.control("GET", "objects")
        services = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects
                    if o.get("apiVersion") == KSVC_API and o.get("kind") == "Service"}
        with self._lock:
            gone = [k for k in self.instances if k not in services]
        for k in gone:
            self._stop_instance(k)
        for k, obj in services.items():
            if k in self.instances or _ready_condition(obj) in ("True", "False"):
                continue
            if "*" in self.hold or k[1] in self.hold:
                continue
            self._start_instance(k, obj)

    # ---- an instance from the image ----
    def _unpack(self, image, root):
        host, rest = image.split("/", 1)
        repo, digest = rest.split("@", 1)
        base = f"http://{host}/v2/{repo}"
        manifest = json.loads(_get(f"{base}/manifests/{digest}", ACCEPT))
        config = json.loads(_get(f"{base}/blobs/{manifest['config']['digest']}"))
        for layer in manifest["layers"]:
            data = gzip.decompress(_get(f"{base}/blobs/{layer['digest']}"))
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for m in tar.getmembers():
                    target = (root / m.name).resolve()
                    assert str(target).startswith(str(root.resolve())), m.name
                    if m.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                    elif m.isfile():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(tar.extractfile(m).read())
                        target.chmod(0o755 if m.mode & 0o111 else 0o644)
        return config.get("config") or {}

    def _start_instance(self, key, obj):
        ns, name = key
        spec = obj["spec"]["template"]["spec"]
        container = spec["containers"][0]
        root = self.workdir / f"{ns}-{name}-{obj['metadata']['generation']}"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        image_config = self._unpack(container["image"], root)
        port = free_port()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root)}
        for item in image_config.get("Env") or []:
            k, _, v = item.partition("=")
            if k != "PATH":
                env[k] = v
        for item in container.get("env") or []:
            env[item["name"]] = item.get("value", "")
        env.update({"PORT": str(port), "HKS_HOST": "127.0.0.1", "K_SERVICE": name,
                    "HKS_FUNCTION_DIR": str(root / "code"), "HKS_CODE_DIR": str(root / "code")})
        runtime = obj["metadata"]["annotations"]["hks.io/runtime"]
        launcher = root / "hks" / "runtime" / ("launcher.py" if runtime == "python" else "launcher.js")
        cmd = (["/usr/bin/python3", str(launcher), "serve"] if runtime == "python"
               else ["/usr/bin/node", str(launcher), "serve"])
        log = open(root / "instance.log", "wb")
        proc = subprocess.Popen(cmd, env=env, cwd=root / "code", stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name}: the launcher exited: {(root / 'instance.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        with self._lock:
            self.instances[key] = {"proc": proc, "port": port, "url": url, "dir": root,
                                   "image": container["image"]}
        self.fake.control("POST", "ready", {"namespace": ns, "name": name, "url": url})

    def _stop_instance(self, key):
        with self._lock:
            inst = self.instances.pop(key, None)
        if not inst:
            return
        inst["proc"].terminate()
        try:
            inst["proc"].wait(timeout=10)
        except subprocess.TimeoutExpired:
            inst["proc"].kill()
            inst["proc"].wait()

    # ---- for the tests ----
    def instance(self, name):
        with self._lock:
            for (ns, n), inst in self.instances.items():
                if n == name:
                    return inst
        return None

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=10)
        for key in list(self.instances):
            self._stop_instance(key)
