"""The fake Kubernetes API server (tests/kube/fake-apiserver.mjs) for integration tests: started
on loopback (plain HTTP, or HTTPS with a throw-away CA made by openssl), a kubeconfig pointing at
it, its test controls (/_fake/...), and build/kube-probe to drive cluster/ against it.

Needs `make kube-deps` (tests/kube/node_modules) and build/kube-probe; tests skip without them.
"""

import json
import os
import pathlib
import subprocess
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]
FAKE = REPO / "tests" / "kube" / "fake-apiserver.mjs"
NODE_MODULES = REPO / "tests" / "kube" / "node_modules" / "kubernetes-models"
PROBE = pathlib.Path(os.environ.get("HKS_KUBE_PROBE", REPO / "build" / "kube-probe"))
NODE = "/usr/bin/node"


def missing():
    """Why the fake cannot run here, or None."""
    if not PROBE.exists():
        return f"{PROBE} not built (make build/kube-probe)"
    if not NODE_MODULES.exists():
        return "tests/kube/node_modules missing (make kube-deps)"
    return None


def make_tls(directory):
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) paths."""
    d = pathlib.Path(directory)
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.crt", "tls.key", "tls.csr", "tls.crt"))
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=60)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=hks-test-kube-ca", "-keyout", str(ca_key), "-out", str(ca))
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return ca, cert, key


class FakeKube:
    def __init__(self, workdir, token=None, tls=None):
        self.workdir = pathlib.Path(workdir)
        args = [NODE, str(FAKE), "--port", "0"]
        if token:
            args += ["--token", token]
        if tls:
            args += ["--tls", str(tls[1]), str(tls[2])]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("fake API server did not start: " + self.proc.stderr.read())
        info = json.loads(line)
        self.port = info["port"]
        self.url = info["url"]
        self.control_url = f"http://127.0.0.1:{self.port}" if not tls else None
        self.tls = tls

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def control(self, method, what, body=None):
        """A test control of the fake: GET/POST /_fake/<what>."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}/_fake/{what}", data=data, method=method)
        ctx = None
        if self.tls:
            import ssl
            ctx = ssl.create_default_context(cafile=str(self.tls[0]))
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return json.loads(r.read() or b"null")

    def invalid(self):
        return self.control("GET", "invalid")

    def requests(self):
        return self.control("GET", "requests")

    def kubeconfig(self, token=None, token_file=None, namespace="proj-a", fmt="yaml", extra_cluster=""):
        """A kubeconfig for the fake, written in workdir (YAML as kubectl writes it, or JSON)."""
        user = {}
        if token:
            user["token"] = token
        if token_file:
            user["tokenFile"] = str(token_file)
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "contexts": [{"name": "fake", "context": {"cluster": "fake-cluster", "user": "fake-user", "namespace": namespace}}],
            "clusters": [{"name": "fake-cluster", "cluster": {"server": self.url}}],
            "users": [{"name": "fake-user", "user": user}],
        }
        path = self.workdir / f"kubeconfig.{fmt}"
        if fmt == "json":
            path.write_text(json.dumps(cfg))
        else:
            lines = ["apiVersion: v1", "clusters:", "- cluster:", f"    server: {self.url}"]
            lines += [f"    {extra_cluster}"] if extra_cluster else []
            lines += ["  name: fake-cluster", "contexts:", "- context:", "    cluster: fake-cluster",
                      f"    namespace: {namespace}", "    user: fake-user", "  name: fake",
                      "current-context: fake", "kind: Config", "preferences: {}", "users:",
                      "- name: fake-user", "  user:"]
            lines += [f"    {k}: {v}" for k, v in user.items()] or ["    {}"]
            path.write_text("\n".join(lines) + "\n")
        return path


def probe(*args, kubeconfig=None, env=None, stdin=None, timeout=60, check=None):
    """Run kube-probe; returns (exit status, [JSON values printed, one per line], stderr)."""
    cmd = [str(PROBE)]
    if kubeconfig:
        cmd += ["--kubeconfig", str(kubeconfig)]
    cmd += [str(a) for a in args]
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout,
                       env=env if env is not None else {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")})
    out = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    if check is True:
        assert p.returncode == 0, p.stderr
    return p.returncode, out, p.stderr
