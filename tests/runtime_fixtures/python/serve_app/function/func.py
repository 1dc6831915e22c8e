"""Test function for the launcher's serve mode (tests/integration/test_runtime_python.py).

Routes: /echo (body and request facts back), /scope (the ASGI scope as JSON), /status/N
(status N with custom headers), /raise, /raise-after-start, /noresponse, /stream?mb=N&chunk=K,
/sleep?s=X, /cfg (what start() got), /toggle (flip alive/ready), /hooks (hooks called),
/receive-after (receive() once the response is sent), /str-body (a str body: a TypeError).
"""
import asyncio
import json
import os
import sys
from urllib.parse import parse_qs


def new():
    return Function()


def _jsonable(x):
    if isinstance(x, bytes):
        return {"bytes": x.decode("latin-1")}
    if isinstance(x, (list, tuple)):
        return [_jsonable(i) for i in x]
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    return x


class Function:
    def __init__(self):
        self.cfg = None
        self.healthy = True
        self.calls = []

    async def handle(self, scope, receive, send):
        path = scope["path"]
        query = parse_qs(scope["query_string"].decode())

        async def reply(status, body, headers=(), ctype=b"application/json"):
            await send({"type": "http.response.start", "status": status,
                        "headers": [[b"content-type", ctype]] + [list(h) for h in headers]})
            await send({"type": "http.response.body", "body": body})

        if path == "/echo":
            body = b""
            more = True
            n = 0
            while more:
                msg = await receive()
                assert msg["type"] == "http.request", msg
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
                n += 1
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream"),
                                    (b"x-method", scope["method"].encode()),
                                    (b"x-messages", str(n).encode())]})
            await send({"type": "http.response.body", "body": body})
        elif path == "/scope":
            await reply(200, json.dumps(_jsonable(scope)).encode())
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            await reply(code, b"status %d" % code,
                        headers=[(b"x-custom", b"yes"), (b"set-cookie", b"a=1"),
                                 (b"set-cookie", b"b=2")], ctype=b"text/plain")
        elif path == "/raise":
            raise ValueError("deliberate failure")
        elif path == "/raise-after-start":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            raise RuntimeError("failure after the response started")
        elif path == "/noresponse":
            return
        elif path == "/stream":
            mb = float(query.get("mb", ["4"])[0])
            chunk = int(query.get("chunk", ["65536"])[0])
            total = int(mb * 1024 * 1024)
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/octet-stream")]})
            sent = 0
            i = 0
            while sent < total:
                n = min(chunk, total - sent)
                await send({"type": "http.response.body", "body": bytes([i % 251]) * n,
                            "more_body": True})
                sent += n
                i += 1
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif path == "/sleep":
            await asyncio.sleep(float(query.get("s", ["1"])[0]))
            await reply(200, b"slept", ctype=b"text/plain")
        elif path == "/cfg":
            await reply(200, json.dumps({"cfg_has_path": "PATH" in (self.cfg or {}),
                                         "marker": (self.cfg or {}).get("TEST_MARKER"),
                                         "cwd": os.getcwd(), "sys_path0": sys.path[0],
                                         "environ_has_listen_fd": "HKS_LISTEN_FD" in os.environ,
                                         "calls": self.calls}).encode())
        elif path == "/toggle":
            self.healthy = not self.healthy
            await reply(200, json.dumps({"healthy": self.healthy}).encode())
        elif path == "/receive-after":
            first = await receive()
            await reply(200, json.dumps({"first": first["type"]}).encode())
            second = await asyncio.wait_for(receive(), 5)  # the response is over: disconnect
            self.calls.append("after-response:" + second["type"])
        elif path == "/str-body":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": "not bytes"})
        else:
            await reply(404, b"not found", ctype=b"text/plain")

    def start(self, cfg):
        self.cfg = cfg
        self.calls.append("start")

    def stop(self):
        self.calls.append("stop")
        marker = (self.cfg or {}).get("STOP_MARKER")
        if marker:
            with open(marker, "w") as f:
                f.write("stopped")
        print("function stop() called", file=sys.stderr, flush=True)

    def alive(self):
        return self.healthy, "alive=%s" % self.healthy

    def ready(self):
        return self.healthy
