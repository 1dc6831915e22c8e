"""A module-level ASGI handler (no new(), no hooks): func-python serves it with defaults."""


async def handle(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [[b"content-type", b"text/plain"]]})
    await send({"type": "http.response.body", "body": b"static " + scope["method"].encode()})
