"""A real hksd for the integration tests: started on a free port with its own state directory
and one warm sandbox per runtime, tokens minted by `hksd token`, stopped with SIGTERM."""

import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
HKSD = os.environ.get("HKSD") or str(REPO / "build" / "hksd")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, env=None, state=None, config=None, args=None):
        """env: extra environment variables for hksd (e.g. HKSD_FUNCTION_IDLE); state: an
        existing state directory to start on (a restart), else a new one; config: settings of
        the configuration file (e.g. {"http": {"connection_timeout_s": 1}}); args: more
        command-line arguments."""
        self.state = state or tempfile.mkdtemp(prefix="hksd-test-")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.env = dict(os.environ, HKSD_STATE_DIR=self.state, HKSD_POOL_PYTHON="1",
                        HKSD_POOL_NODE="1")
        self.env.update(env or {})
        self.log = open(os.path.join(self.state, "hksd.log"), "ab" if state else "wb")
        argv = [HKSD, "--listen", "127.0.0.1:%d" % self.port] + list(args or [])
        if config is not None:
            path = os.path.join(self.state, "config.json")
            with open(path, "w") as f:
                json.dump(config, f)
            argv += ["--config", path]
        self.proc = subprocess.Popen(argv, env=self.env, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            assert self.proc.poll() is None, "hksd exited: " + self.logs()
            time.sleep(0.1)
        raise AssertionError("hksd did not become ready: " + self.logs())

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        return pathlib.Path(self.state, "hksd.log").read_text(errors="replace")

    def token(self, scope="functions:execute functions:read", sub="agent-1", project="p1",
              ttl="5m"):
        out = subprocess.run([HKSD, "token", "--sub", sub, "--project", project, "--scope", scope,
                              "--ttl", ttl], env=self.env, capture_output=True, check=True)
        return out.stdout.decode().strip()

    def request(self, method, path, body=None, token=None, headers=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        return resp.status, dict(resp.getheaders()), payload

    def execute(self, body, token=None, **kw):
        status, headers, payload = self.request("POST", "/internal/v1/operations/execute", body,
                                                token or self.token(), **kw)
        return status, headers, json.loads(payload) if payload else None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.log.close()
        return code
