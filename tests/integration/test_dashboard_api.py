"""What the dashboard needs from hksd, over real HTTP: its static files at /ui/ (no token, the
right types, a strict CSP, caching, no way out of ui/dist: "..", encoded "%2e%2e", symbolic
links), and the public API it reads: a function's recent invocations with p50/p95 durations, its
usage samples, and the project's recent executions, each scoped and limited to the project."""

import http.client
import json
import os
import pathlib
import re
import shutil
import tempfile
import time

import pytest

from hksd_process import HKSD, REPO, Daemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(HKSD),
                                reason="needs root and build/hksd")

ALL = "functions:deploy functions:invoke functions:read functions:delete functions:execute"
ECHO = ("module.exports = { handle: async (ctx, body) => { console.log('echo', JSON.stringify(body));"
        " return { statusCode: ctx.query.fail ? 500 : 200, body: JSON.stringify(body) }; } };")


def make_root():
    """A root like the checkout's (policies and runtimes linked) with its own ui/dist: the
    built dashboard, a file outside dist that must stay unreachable, and symbolic links."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="hksd-ui-root-"))
    os.chmod(root, 0o755)
    for name in ("policies", "runtimes"):
        os.symlink(REPO / name, root / name)
    dist = root / "ui" / "dist"
    shutil.copytree(REPO / "ui" / "dist", dist)
    (root / "ui" / "secret.txt").write_text("outside dist\n")
    (root / "secret.js").write_text("outside ui\n")
    os.symlink("/etc/passwd", dist / "passwd.txt")
    os.symlink(root / "ui", dist / "up")            # a directory link out of dist
    os.symlink("index.html", dist / "link.html")    # even a link to a file inside dist
    (dist / ".hidden.txt").write_text("hidden\n")
    return root


@pytest.fixture(scope="module")
def hksd():
    root = make_root()
    state = tempfile.mkdtemp(prefix="hksd-test-")
    config = pathlib.Path(state, "config.json")
    config.write_text(json.dumps({"root": str(root), "state_dir": state,
                                  "policies_dir": str(REPO / "policies")}))
    d = Daemon(state=state, args=["--config", str(config)])
    yield d
    assert d.stop() == 0, d.logs()
    shutil.rmtree(d.state, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


def raw_get(d, path, headers=None):
    """GET with the path sent exactly as given (no client-side normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


# ---- static files -----------------------------------------------------------------------------

def test_index_is_served_without_a_token_with_a_strict_csp(hksd):
    status, h, body = raw_get(hksd, "/ui/")
    assert status == 200, body
    assert h["content-type"] == "text/html; charset=utf-8"
    assert b'<div id="app"></div>' in body
    csp = h["content-security-policy"]
    for part in ("default-src 'self'", "script-src 'self'", "connect-src 'self'",
                 "frame-ancestors 'none'", "object-src 'none'"):
        assert part in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert h["x-content-type-options"] == "nosniff"
    assert h["cache-control"] == "no-cache" and h["etag"]
    # the page loads nothing from elsewhere and has no inline script
    assert not re.search(rb"https?://", body)
    assert not re.search(rb"<script(?![^>]*\bsrc=)", body)


def test_ui_without_slash_redirects(hksd):
    status, h, _ = raw_get(hksd, "/ui")
    assert status == 301 and h["location"] == "/ui/"


def test_assets_have_their_type_and_are_immutable(hksd):
    _, _, index = raw_get(hksd, "/ui/")
    assets = re.findall(rb'(?:src|href)="(assets/[^"]+)"', index)
    assert {a.rsplit(b".", 1)[1] for a in assets} == {b"js", b"css"}
    for a in assets:
        status, h, body = raw_get(hksd, "/ui/" + a.decode())
        assert status == 200 and body
        want = "text/javascript" if a.endswith(b".js") else "text/css"
        assert h["content-type"].startswith(want)
        assert "immutable" in h["cache-control"]
        assert "content-security-policy" in h and h["x-content-type-options"] == "nosniff"
        # no address of another origin is fetched at run time
        assert b"cdn." not in body and b"googleapis" not in body


def test_etag_revalidation_answers_304(hksd):
    _, h, _ = raw_get(hksd, "/ui/index.html")
    status, h2, body = raw_get(hksd, "/ui/index.html", {"If-None-Match": h["etag"]})
    assert status == 304 and body == b"" and h2["etag"] == h["etag"]


@pytest.mark.parametrize("path", [
    "/ui/../secret.js", "/ui/../../etc/passwd", "/ui/%2e%2e/secret.js", "/ui/%2E%2E/secret.js",
    "/ui/assets/../../secret.txt", "/ui/assets/%2e%2e/%2e%2e/secret.txt", "/ui/..%2fsecret.txt",
    "/ui/%2e%2e%2fsecret.txt", "/ui//etc/passwd", "/ui/./index.html", "/ui/up/secret.txt",
    "/ui/passwd.txt", "/ui/link.html", "/ui/.hidden.txt", "/ui/nope.js", "/ui/assets/",
    "/ui/index.html%00.js", "/ui/assets", "/ui/index.exe", "/ui/" + "a/" * 20 + "x.js",
])
def test_nothing_outside_dist_and_no_link_is_served(hksd, path):
    status, h, body = raw_get(hksd, path)
    assert status == 404, (path, status, body[:200])
    assert b"root:" not in body and b"outside" not in body
    assert json.loads(body)["error"]["code"] == "not_found"


def test_ui_takes_only_get(hksd):
    status, _, _ = hksd.request("POST", "/ui/index.html", raw=b"x")
    assert status == 405


# ---- the API the pages read -------------------------------------------------------------------

def deploy(d, tok, name="dash"):
    status, _, body = d.request("POST", "/internal/v1/operations/deploy-function",
                                {"name": name, "runtime": "node", "code": ECHO, "ttl_seconds": 600},
                                tok)
    assert status == 201, body
    return json.loads(body)


def invoke(d, tok, fn_id, query=""):
    status, _, body = d.request("POST", "/internal/v1/operations/invoke-function",
                                {"id": fn_id, "body": '{"n": 1}', "query": query}, tok)
    assert status == 200, body
    return json.loads(body)


def test_recent_invocations_and_percentiles(hksd):
    tok = hksd.token(ALL)
    fn = deploy(hksd, tok)
    assert fn["duration_ms"] == {"p50": None, "p95": None, "samples": 0}
    answers = [invoke(hksd, tok, fn["id"]) for _ in range(5)] + [invoke(hksd, tok, fn["id"], "fail=1")]
    assert [a["status"] for a in answers] == [200] * 5 + [500]
    status, _, body = hksd.request("GET", "/internal/v1/functions/%s/invocations" % fn["id"],
                                   token=tok)
    assert status == 200, body
    out = json.loads(body)
    calls = out["invocations"]
    assert out["function_id"] == fn["id"] and len(calls) == 6
    # newest first: the failing one, then the five that answered 200; the first was cold
    assert calls[0]["status"] == "error" and calls[0]["http_status"] == 500
    assert [c["status"] for c in calls[1:]] == ["ok"] * 5
    assert calls[-1]["cold_start"] is True and calls[0]["cold_start"] is False
    assert all(c["duration_ms"] > 0 and c["ts"].endswith("Z") for c in calls)
    durations = sorted(c["duration_ms"] for c in calls)
    p = out["duration_ms"]
    assert p["samples"] == 6
    assert p["p50"] == pytest.approx(durations[2], abs=0.01)   # nearest rank: ceil(6 * .5) = 3
    assert p["p95"] == pytest.approx(durations[5], abs=0.01)   # ceil(6 * .95) = 6
    # the function's record carries the same figures
    status, _, body = hksd.request("GET", "/internal/v1/functions/" + fn["id"], token=tok)
    assert json.loads(body)["duration_ms"] == p
    # limit
    status, _, body = hksd.request(
        "GET", "/internal/v1/functions/%s/invocations?limit=2" % fn["id"], token=tok)
    assert [c["ts"] for c in json.loads(body)["invocations"]] == [c["ts"] for c in calls[:2]]


def test_usage_samples(hksd):
    tok = hksd.token(ALL)
    fn = deploy(hksd, tok, "usage")
    invoke(hksd, tok, fn["id"])
    deadline = time.time() + 15
    samples = []
    while time.time() < deadline:
        status, _, body = hksd.request("GET", "/internal/v1/functions/%s/usage" % fn["id"],
                                       token=tok)
        assert status == 200, body
        out = json.loads(body)
        samples = out["samples"]
        if samples and samples[-1]["invocations"] >= 1:
            break
        time.sleep(1)
    assert out["interval_ms"] == 5000
    assert samples and samples[-1]["invocations"] >= 1, samples
    last = samples[-1]
    assert last["instances_running"] >= 1
    for key in ("ts", "instances_busy", "waiting", "errors", "peak_memory_bytes", "cpu_ms"):
        assert key in last
    # samples come in time order, one per interval
    stamps = [s["ts"] for s in samples]
    assert stamps == sorted(stamps)


def test_recent_executions_of_the_project_only(hksd):
    tok = hksd.token(ALL)
    other = hksd.token(ALL, project="p2")
    status, headers, r = hksd.execute({"runtime": "python", "code": "import sys; sys.exit(3)"},
                                      token=tok, headers={"X-Request-Id": "dash-exec-1"})
    assert status == 200 and r["status"] == "error"
    status, _, r2 = hksd.execute({"runtime": "node", "code": "console.log(1)"}, token=other)
    assert status == 200
    status, _, body = hksd.request("GET", "/internal/v1/executions", token=tok)
    assert status == 200, body
    mine = json.loads(body)["executions"]
    assert mine[0]["id"] == "exe-dash-exec-1" == r["id"]
    assert mine[0]["runtime"] == "python" and mine[0]["status"] == "error"
    assert mine[0]["exit_code"] == 3 and mine[0]["signal"] is None
    assert mine[0]["wall_ms"] > 0 and isinstance(mine[0]["warm"], bool)
    assert mine[0]["sub"] == "agent-1"
    assert r2["id"] not in {e["id"] for e in mine}
    status, _, body = hksd.request("GET", "/internal/v1/executions?limit=1", token=other)
    theirs = json.loads(body)["executions"]
    assert [e["id"] for e in theirs] == [r2["id"]]


@pytest.mark.parametrize("path", ["/internal/v1/executions",
                                  "/internal/v1/functions/fn-0123456789abcdef0123/invocations",
                                  "/internal/v1/functions/fn-0123456789abcdef0123/usage"])
def test_scope_and_token_are_required(hksd, path):
    assert hksd.request("GET", path)[0] == 401
    status, _, body = hksd.request("GET", path, token=hksd.token("functions:invoke"))
    assert status == 403 and json.loads(body)["error"]["details"]["required_scope"] == "functions:read"


def test_unknown_other_projects_and_bad_limits(hksd):
    tok = hksd.token(ALL)
    fn = deploy(hksd, tok, "mine")
    other = hksd.token(ALL, project="p2")
    for what in ("invocations", "usage"):
        for fid, t in (("fn-0123456789abcdef0123", tok), ("nonsense", tok), (fn["id"], other)):
            status, _, body = hksd.request("GET", "/internal/v1/functions/%s/%s" % (fid, what),
                                           token=t)
            assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    for path in ("/internal/v1/executions?limit=0", "/internal/v1/executions?limit=501",
                 "/internal/v1/executions?limit=x",
                 "/internal/v1/functions/%s/invocations?limit=201" % fn["id"]):
        status, _, body = hksd.request("GET", path, token=tok)
        assert status == 422 and json.loads(body)["error"]["details"]["field"] == "limit", path
