"""The kubernetes backend end to end: a real hksd with `backend: kubernetes` against the fake API
server (tests/kube/fake-apiserver.mjs, every object validated with kubernetes-models), a real
registry (Debian's docker-registry) the function images are pushed to, and Knative's part played
by knative_fixture.KnativePlayer, which runs the function from the pushed image and marks the
Service Ready with its address. Covered: deploy -> objects as DESIGN.md says -> invoke (the
function's real answer) -> hksd restarted -> TTL expiry -> every object gone; a deploy interrupted
by kill -9 undone at the next start; two hksd ("two nodes") reaping the same function; API
failures (500, 429, never Ready, Knative Ready=False) answered clearly with nothing left behind.

Needs `make kube-deps` (tests/kube/node_modules); skips without it or without docker-registry.

`make e2e-cluster` runs the same suite against a real cluster (HKS_E2E_CLUSTER=1, KUBECONFIG):
there Knative, the registry (HKS_E2E_REGISTRY) and the base images (HKS_E2E_BASE_PYTHON,
HKS_E2E_BASE_NODE: OCI image layouts) are real, objects are read with build/kube-probe, and the
tests that need the fake's fault controls are skipped. See docs/operations.md.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import tempfile
import threading
import time

import subprocess

import pytest

from hksd_process import Daemon
from kube_fixture import FakeKube, NODE_MODULES, PROBE
from knative_fixture import KnativePlayer
from registry_fixture import REGISTRY_BIN, Registry, make_layout

E2E = os.environ.get("HKS_E2E_CLUSTER") == "1"
E2E_NEEDS = ("KUBECONFIG", "HKS_E2E_REGISTRY", "HKS_E2E_BASE_PYTHON", "HKS_E2E_BASE_NODE")

if E2E:
    pytestmark = [pytest.mark.skipif(
        any(not os.environ.get(v) for v in E2E_NEEDS) or not PROBE.exists(),
        reason="a real cluster needs " + ", ".join(E2E_NEEDS) + " and build/kube-probe")]
else:
    pytestmark = [
        pytest.mark.skipif(not NODE_MODULES.exists(), reason="make kube-deps (tests/kube/node_modules)"),
        pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry not installed"),
    ]
fake_only = pytest.mark.skipif(E2E, reason="needs the fake API server's controls")

PY_ECHO = (
    "import json, os\n\n"
    "def new():\n    return Function()\n\n"
    "class Function:\n"
    "    async def handle(self, scope, receive, send):\n"
    "        body = b''\n"
    "        while True:\n"
    "            m = await receive()\n"
    "            body += m.get('body', b'')\n"
    "            if not m.get('more_body'):\n"
    "                break\n"
    "        out = json.dumps({'echo': body.decode(), 'path': scope['path'],\n"
    "                          'mark': os.environ.get('FN_MARK', ''), 'pid': os.getpid()}).encode()\n"
    "        await send({'type': 'http.response.start', 'status': 200,\n"
    "                    'headers': [(b'content-type', b'application/json')]})\n"
    "        await send({'type': 'http.response.body', 'body': out})\n"
)
NODE_ECHO = (
    "module.exports = { handle: async (context, body) => ({ statusCode: 200,\n"
    "  headers: { 'content-type': 'application/json' },\n"
    "  body: JSON.stringify({ echo: typeof body === 'string' ? body : JSON.stringify(body),\n"
    "    mark: process.env.FN_MARK || '', node: true }) }) };\n"
)
ID_RE = re.compile(r"^fn-[0-9a-f]{20}$")
SCOPES = "functions:deploy functions:invoke functions:delete functions:read"


# ---------------------------------------------------------------- fixtures

class Cluster:
    """The fake API server, the registry, the Knative player and what hksd needs to use them."""

    real = False
    namespace_rule = "{project}"

    def __init__(self, workdir):
        self.workdir = pathlib.Path(workdir)
        self.fake = FakeKube(self.workdir)
        # the fake's own controller leaves Services "Deploying": the player makes them Ready
        self.fake.control("POST", "knative", {"ready": False, "delay_ms": 10})
        self.registry = Registry(self.workdir / "registry").start()
        self.base = self.workdir / "base"
        make_layout(self.base, {"etc/hks-base": b"the test base image\n"})
        self.kubeconfig = self.fake.kubeconfig(namespace="default")
        self.player = KnativePlayer(self.fake, self.workdir / "instances")

    def config(self, **kube):
        settings = {"kubeconfig": str(self.kubeconfig), "registry": self.registry.host,
                    "registry_insecure": True, "base_layout_python": str(self.base),
                    "base_layout_node": str(self.base), "ready_timeout_s": 20,
                    "reap_interval_s": 1}
        settings.update(kube)
        return {"backend": "kubernetes", "kubernetes": settings}

    def objects(self, function_id=None):
        objs = self.fake.control("GET", "objects")
        if function_id:
            objs = [o for o in objs
                    if (o["metadata"].get("labels") or {}).get("hks.io/function") == function_id]
        return objs

    def kinds(self, function_id):
        return sorted(o["kind"] for o in self.objects(function_id))

    def stop(self):
        self.player.stop()
        self.registry.stop()
        self.fake.stop()


class RealCluster:
    """A real cluster (make e2e-cluster): Knative, the registry and the bases are the operator's."""

    real = True
    player = None
    namespace_rule = os.environ.get("HKS_E2E_NAMESPACE", "hks-e2e-{project}")

    def __init__(self):
        self.kubeconfig = os.environ["KUBECONFIG"].split(":")[0]

    def config(self, **kube):
        settings = {"kubeconfig": self.kubeconfig, "registry": os.environ["HKS_E2E_REGISTRY"],
                    "registry_insecure": os.environ.get("HKS_E2E_REGISTRY_INSECURE") == "1",
                    "base_layout_python": os.environ["HKS_E2E_BASE_PYTHON"],
                    "base_layout_node": os.environ["HKS_E2E_BASE_NODE"],
                    "namespace": self.namespace_rule, "ready_timeout_s": 300,
                    "reap_interval_s": 2}
        settings.update(kube)
        return {"backend": "kubernetes", "kubernetes": settings}

    def objects(self, function_id=None):
        selector = "app.kubernetes.io/managed-by=hksd"
        if function_id:
            selector += ",hks.io/function=" + function_id
        out = []
        for kind in ("ksvc", "serviceaccounts", "networkpolicies"):
            p = subprocess.run([str(PROBE), "--kubeconfig", self.kubeconfig, "list", kind, "-",
                                selector], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stdout + p.stderr
            out += json.loads(p.stdout.splitlines()[0])["items"]
        return out

    def kinds(self, function_id):
        return sorted(o["kind"] for o in self.objects(function_id))

    def stop(self):
        pass


@pytest.fixture(scope="module")
def cluster():
    if E2E:
        yield RealCluster()
        return
    d = tempfile.mkdtemp(prefix="hks-kbackend-")
    c = Cluster(d)
    yield c
    c.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_invalid_objects(cluster):
    """Every test: nothing hksd sent was invalid (kubernetes-models), the player ran clean."""
    if cluster.real:
        yield
        return
    cluster.fake.control("POST", "reset")
    cluster.player.hold.clear()
    yield
    assert cluster.fake.invalid() == []
    assert cluster.player.errors == []


def namespace_of(cluster, project):
    return cluster.namespace_rule.replace("{project}", project)


def start(cluster, state=None, **kube):
    return Daemon(state=state, config=cluster.config(**kube))


def token(d, project="p1", sub="agent-1"):
    return d.token(scope=SCOPES, project=project, sub=sub)


def deploy(d, body, tok=None):
    status, _, payload = d.request("POST", "/internal/v1/operations/deploy-function", body,
                                   tok or token(d))
    return status, json.loads(payload) if payload else None


def invoke(d, fid, body="hello", tok=None):
    status, headers, payload = d.request("POST", f"/fn/{fid}/echo", raw=body.encode(),
                                         token=tok or token(d),
                                         headers={"Content-Type": "text/plain"})
    return status, payload


def wait_for(what, check, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stop_clean(d):
    code = d.stop()
    assert code == 0, d.logs()[-3000:]
    errors = [line for line in d.logs().splitlines()
              if '"backend":"kubernetes"' in line and '"level":"error"' in line]
    return errors


def audit_actions(d):
    path = pathlib.Path(d.state, "audit.log")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------- 1. the whole life, with a restart

def test_deploy_invoke_restart_expire_every_object_gone(cluster):
    d = start(cluster)
    mark = "m-" + os.urandom(4).hex()
    status, rec = deploy(d, {"runtime": "python", "name": "echo-py", "code": PY_ECHO,
                             "env": {"FN_MARK": mark}, "ttl_seconds": 12, "min_scale": 0,
                             "max_scale": 3, "concurrency": 5})
    assert status == 201, rec
    fid = rec["id"]
    assert ID_RE.match(fid)
    inst = cluster.player.instance(fid) if cluster.player else None
    assert inst or cluster.real, "the player started no instance"
    assert rec["status"] == "ready" and rec["backend"] == "kubernetes"
    assert rec["url"].endswith(f"/fn/{fid}/")
    registry = cluster.config()["kubernetes"]["registry"]
    assert re.fullmatch(re.escape(registry) + r"/hks/functions/p1@sha256:[0-9a-f]{64}",
                        rec["image"]), rec["image"]
    if inst:
        assert rec["knative_url"] == inst["url"] and rec["image"] == inst["image"]
    ns_name = namespace_of(cluster, "p1")
    assert rec["env"] == {"FN_MARK": mark} and rec["namespace"] == ns_name

    # the objects, exactly as DESIGN.md says (spot checks; the fake validated them all)
    objs = {o["kind"]: o for o in cluster.objects(fid)}
    assert sorted(objs) == ["NetworkPolicy", "Service", "ServiceAccount"]
    assert objs["ServiceAccount"]["automountServiceAccountToken"] is False
    np = objs["NetworkPolicy"]["spec"]
    assert "Egress" in np["policyTypes"] and not np.get("egress")
    assert np["podSelector"] == {"matchLabels": {"serving.knative.dev/service": fid}}
    ksvc = objs["Service"]
    meta = ksvc["metadata"]
    assert meta["namespace"] == ns_name
    assert meta["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "hksd"
    ann = meta["annotations"]
    assert ann["hks.io/owner"] == "agent-1" and ann["hks.io/project"] == "p1"
    assert re.fullmatch(r"[0-9a-f]{64}", ann["hks.io/code-sha256"])
    assert ann["hks.io/expires-at"] == rec["expires_at"]
    tmpl = ksvc["spec"]["template"]
    assert tmpl["metadata"]["annotations"] == {"autoscaling.knative.dev/min-scale": "0",
                                               "autoscaling.knative.dev/max-scale": "3"}
    spec = tmpl["spec"]
    assert spec["serviceAccountName"] == fid and spec["automountServiceAccountToken"] is False
    assert spec["containerConcurrency"] == 5 and spec["timeoutSeconds"] == 10
    c = spec["containers"][0]
    assert c["image"] == rec["image"]
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "Localhost", "localhostProfile": "hks/function.json"}
    assert c["resources"]["limits"] == c["resources"]["requests"]
    assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])
    if not cluster.real:  # the project's namespace was made, Pod Security restricted
        ns = [o for o in cluster.objects()
              if o["kind"] == "Namespace" and o["metadata"]["name"] == ns_name]
        assert ns and ns[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    # invoke: the function's own answer, through hksd, from the pushed image's code
    status, payload = invoke(d, fid, "ping")
    assert status == 200, payload
    answer = json.loads(payload)
    assert answer["echo"] == "ping" and answer["mark"] == mark and answer["path"] == "/echo"
    if inst:
        assert answer["pid"] == inst["proc"].pid
    status, _, payload = d.request("POST", "/internal/v1/operations/invoke-function",
                                   {"id": fid, "path": "/x", "body": "json"}, token(d))
    assert status == 200 and json.loads(json.loads(payload)["body"])["echo"] == "json"

    # get and list read the cluster
    status, _, payload = d.request("GET", f"/internal/v1/functions/{fid}", token=token(d))
    assert status == 200 and json.loads(payload)["knative_url"] == rec["knative_url"]
    status, _, payload = d.request("GET", "/internal/v1/functions", token=token(d))
    assert [f["id"] for f in json.loads(payload)["functions"]] == [fid]

    # hksd restarted in the middle: the function is still there, invocable
    assert stop_clean(d) == []
    d = start(cluster, state=d.state)
    status, payload = invoke(d, fid, "after restart")
    assert status == 200 and json.loads(payload)["echo"] == "after restart", payload

    # expiry: the reaper deletes every object (Background), the instance goes with them
    wait_for("the function reaped", lambda: cluster.objects(fid) == [], timeout=40)
    if not cluster.real:
        deletes = [r for r in cluster.fake.requests()
                   if r["method"] == "DELETE" and r["path"].endswith("/" + fid)]
        assert len(deletes) == 3, deletes
        assert all(r["body"]["propagationPolicy"] == "Background" for r in deletes)
        wait_for("the instance stopped", lambda: cluster.player.instance(fid) is None)
    status, _ = invoke(d, fid)
    assert status == 404
    assert any(a["action"] == "function.reap" and a["function_id"] == fid
               for a in audit_actions(d))
    assert not list(pathlib.Path(d.state, "kube", "functions").iterdir())
    assert stop_clean(d) == []


# ---------------------------------------------------------------- 2. node, delete, isolation, logs

def test_node_function_delete_and_other_projects(cluster):
    d = start(cluster)
    status, rec = deploy(d, {"runtime": "node", "name": "echo-node", "code": NODE_ECHO,
                             "env": {"FN_MARK": "n1"}})
    assert status == 201, rec
    fid = rec["id"]
    status, payload = invoke(d, fid, "hi node")
    assert status == 200, payload
    assert json.loads(payload) == {"echo": "hi node", "mark": "n1", "node": True}

    # another project sees nothing and can touch nothing
    other = token(d, project="p2")
    assert d.request("GET", f"/internal/v1/functions/{fid}", token=other)[0] == 404
    assert invoke(d, fid, tok=other)[0] == 404
    status, _, payload = d.request("POST", "/internal/v1/operations/delete-function",
                                   {"id": fid}, other)
    assert status == 404, payload
    assert cluster.kinds(fid) == ["NetworkPolicy", "Service", "ServiceAccount"]

    # logs: said clearly not served on this backend, with where to read them
    status, _, payload = d.request("GET", f"/internal/v1/functions/{fid}/logs", token=token(d))
    assert status == 501, payload
    assert f"kubectl logs -n {namespace_of(cluster, 'p1')} -l serving.knative.dev/service={fid}" in json.loads(payload)["error"]["message"]

    # delete: every object, Background; a second delete is 404
    status, _, payload = d.request("POST", "/internal/v1/operations/delete-function",
                                   {"id": fid}, token(d))
    assert status == 200, payload
    wait_for("every object gone", lambda: cluster.objects(fid) == [])
    if not cluster.real:
        deletes = [r for r in cluster.fake.requests() if r["method"] == "DELETE"]
        assert sorted(r["path"].split("/")[-2] for r in deletes) == \
            ["networkpolicies", "serviceaccounts", "services"]
        assert all(r["body"]["propagationPolicy"] == "Background" for r in deletes)
    status, _, _ = d.request("POST", "/internal/v1/operations/delete-function", {"id": fid}, token(d))
    assert status == 404
    assert invoke(d, fid)[0] == 404
    if cluster.player:
        wait_for("the instance stopped", lambda: cluster.player.instance(fid) is None)
    assert stop_clean(d) == []


# ---------------------------------------------------------------- 3. a deploy interrupted by kill -9

@fake_only
def test_deploy_interrupted_by_a_crash_is_undone_at_the_next_start(cluster):
    d = start(cluster)
    cluster.player.hold.add("*")  # Knative never gets it Ready: the deploy waits
    result = {}

    def deploying():
        try:
            result["r"] = deploy(d, {"runtime": "python", "code": PY_ECHO})
        except OSError as e:  # hksd is killed under it
            result["r"] = e

    t = threading.Thread(target=deploying)
    t.start()
    services = wait_for("the Knative Service created", lambda: [
        o for o in cluster.objects() if o["kind"] == "Service"
        and o["apiVersion"] == "serving.knative.dev/v1"])
    fid = services[0]["metadata"]["name"]
    journal = pathlib.Path(d.state, "kube", "functions", fid + ".json")
    assert json.loads(journal.read_text())["state"] == "deploying"
    assert (pathlib.Path(d.state, "kube", "build") / fid).is_dir()
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(timeout=30)
    d.log.close()
    t.join(timeout=30)
    assert isinstance(result["r"], OSError), result
    assert cluster.kinds(fid) == ["NetworkPolicy", "Service", "ServiceAccount"]

    d = start(cluster, state=d.state)  # reconciles at start: the half-done deploy is undone
    assert cluster.objects(fid) == []
    assert not journal.exists()
    assert list(pathlib.Path(d.state, "kube", "build").iterdir()) == []
    status, _, payload = d.request("GET", "/internal/v1/functions", token=token(d))
    assert json.loads(payload)["functions"] == []
    assert stop_clean(d) == []


# ---------------------------------------------------------------- 4. two nodes

def test_two_hksd_see_and_reap_the_same_function(cluster):
    a = start(cluster)
    b = start(cluster)
    status, rec = deploy(a, {"runtime": "python", "code": PY_ECHO, "ttl_seconds": 6})
    assert status == 201, rec
    fid = rec["id"]
    # the cluster is the record: the other node lists, gets and invokes it
    status, _, payload = b.request("GET", f"/internal/v1/functions/{fid}", token=token(b))
    assert status == 200 and json.loads(payload)["knative_url"] == rec["knative_url"]
    status, payload = invoke(b, fid, "via b")
    assert status == 200 and json.loads(payload)["echo"] == "via b"
    # both reapers see it expire; both delete; a 404 is success for the slower one
    wait_for("the function reaped", lambda: cluster.objects(fid) == [], timeout=30)
    time.sleep(2.5)  # both reapers have passed over it again
    reaps = [x for d in (a, b) for x in audit_actions(d)
             if x["action"] == "function.reap" and x["function_id"] == fid]
    assert 1 <= len(reaps) <= 2
    assert stop_clean(a) == [] and stop_clean(b) == []
    for d in (a, b):
        assert '"reap an expired function"' not in d.logs()


# ---------------------------------------------------------------- 5. the API server fails

@fake_only
@pytest.mark.parametrize("fault,status,code,needle", [
    ({"method": "POST", "path": "/apis/networking.k8s.io/v1/namespaces/p1/networkpolicies",
      "status": 500}, 502, "bad_gateway", "HTTP 500 InternalError: fake fault 500"),
    ({"method": "POST", "path": "/apis/serving.knative.dev/v1/namespaces/p1/services",
      "status": 429, "times": 3}, 429, "overloaded", "HTTP 429 TooManyRequests"),
    ({"method": "POST", "path": "/api/v1/namespaces/p1/serviceaccounts", "status": 503},
     502, "bad_gateway", "HTTP 503"),
])
def test_api_errors_give_clear_answers_and_leave_nothing(cluster, fault, status, code, needle):
    d = start(cluster)
    deploy(d, {"runtime": "python", "code": PY_ECHO})  # the namespace exists: faults hit objects
    cluster.fake.control("POST", "fault", fault)
    before = {o["metadata"]["name"] for o in cluster.objects() if o["kind"] == "ServiceAccount"}
    got, body = deploy(d, {"runtime": "python", "code": PY_ECHO})
    assert got == status, body
    assert body["error"]["code"] == code and needle in body["error"]["message"], body
    after = {o["metadata"]["name"] for o in cluster.objects() if o["kind"] == "ServiceAccount"}
    assert after == before, "a failed deploy left objects"
    assert list(pathlib.Path(d.state, "kube", "build").iterdir()) == []
    journal = [json.loads(p.read_text()) for p in pathlib.Path(d.state, "kube", "functions").iterdir()]
    assert all(r["state"] == "ready" for r in journal), journal
    cleanup(d)
    assert [e for e in stop_clean(d) if '"deploy failed: its objects removed"' not in e] == []


@fake_only
def test_never_ready_and_knative_failure(cluster):
    d = start(cluster, ready_timeout_s=2)
    cluster.player.hold.add("*")
    got, body = deploy(d, {"runtime": "python", "code": PY_ECHO})
    assert got == 504, body
    assert "not ready within 2000 ms" in body["error"]["message"], body
    assert [o for o in cluster.objects() if o["kind"] == "Service"] == []

    cluster.fake.control("POST", "knative", {"fail": "RevisionFailed"})
    try:
        got, body = deploy(d, {"runtime": "python", "code": PY_ECHO})
    finally:
        cluster.fake.control("POST", "knative", {"fail": None})
    assert got == 502, body
    assert "Knative reports Ready=False RevisionFailed" in body["error"]["message"], body
    assert [o for o in cluster.objects() if o["kind"] in ("Service", "ServiceAccount",
                                                            "NetworkPolicy")] == []
    assert [e for e in stop_clean(d) if '"deploy failed: its objects removed"' not in e] == []


@fake_only
def test_an_api_server_that_does_not_answer_times_out_clearly(cluster):
    d = start(cluster, request_timeout_s=2)
    cluster.fake.control("POST", "fault", {"method": "POST", "path": "/api/v1/namespaces/p1/serviceaccounts",
                                           "status": 0, "delay_ms": 1500})
    # status 0: the first create never answers; the client's timeout ends it, clearly
    got, body = deploy(d, {"runtime": "python", "code": PY_ECHO})
    assert got == 504, body
    assert "create ServiceAccount" in body["error"]["message"], body
    assert "no complete reply within 2000 ms" in body["error"]["message"], body
    assert [o for o in cluster.objects() if o["kind"] in ("Service", "NetworkPolicy")] == []
    assert [e for e in stop_clean(d) if '"deploy failed: its objects removed"' not in e] == []


def cleanup(d):
    status, _, payload = d.request("GET", "/internal/v1/functions", token=token(d))
    for f in json.loads(payload)["functions"]:
        d.request("POST", "/internal/v1/operations/delete-function", {"id": f["id"]}, token(d))
