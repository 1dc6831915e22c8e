"""cluster/'s Kubernetes client against the fake API server (tests/kube/), driven through
build/kube-probe: configuration (kubeconfig YAML and JSON, in-cluster over TLS), create / get /
list / delete / watch, 410 Gone and re-list, token rotation after a 401, Status errors, faults,
and the function objects rendered from policies/kubernetes/ validated by kubernetes-models."""

import json
import os
import time

import pytest

from kube_fixture import FakeKube, make_tls, missing, probe, REPO

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

POLICIES = REPO / "policies" / "kubernetes"
FN_ID = "fn-0123456789abcdef0123"


def function_doc(**over):
    doc = {
        "id": FN_ID, "name": "hello", "project": "proj-a", "owner": "agent-7", "runtime": "python",
        "image": "registry.local:5000/fn/hello@sha256:" + "0123456789abcdef" * 4,
        "code_sha256": "abcdef0123456789" * 4, "env": ["GREETING=hi", "EMPTY="],
        "memory_mb": 256, "cpu_millis": 500, "timeout_s": 30, "concurrency": 10,
        "min_scale": 0, "max_scale": 3, "expires_at": 1900000000,
    }
    doc.update(over)
    return doc


@pytest.fixture
def fake(tmp_path):
    f = FakeKube(tmp_path, token="tok-1")
    (tmp_path / "token").write_text("tok-1\n")
    f.kc = f.kubeconfig(token_file=tmp_path / "token")
    yield f
    f.stop()


def sa(name, labels=None):
    return json.dumps({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": name, "labels": labels or {}},
                       "automountServiceAccountToken": False})


def ok(*args, kc, stdin=None):
    rc, out, err = probe(*args, kubeconfig=kc, stdin=stdin)
    assert rc == 0, err
    return out[-1] if out else None


def fails(*args, kc, stdin=None, errno_name=None):
    rc, out, err = probe(*args, kubeconfig=kc, stdin=stdin)
    assert rc == 1, out
    assert out and "error" in out[-1], err
    if errno_name:
        assert out[-1]["errno"] == errno_name, out[-1]
    return out[-1]["error"]


def test_kubeconfig_yaml_and_json_give_the_same_client(fake, tmp_path):
    yaml_info = ok("info", kc=fake.kc)
    json_info = ok("info", kc=fake.kubeconfig(token_file=tmp_path / "token", fmt="json"))
    assert yaml_info["server"] == json_info["server"] == fake.url
    assert yaml_info["namespace"] == json_info["namespace"] == "proj-a"
    assert "kubeconfig" in yaml_info["source"]


def test_bad_kubeconfig_is_a_clear_error(tmp_path):
    kc = tmp_path / "kc"
    kc.write_text("apiVersion: v1\ncurrent-context: nope\ncontexts: []\n")
    assert 'no contexts named "nope"' in fails("info", kc=kc, errno_name="EINVAL")
    kc.write_text("users:\n- name: u\n  user:\n    exec: {command: aws}\n"
                  "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                  "clusters:\n- name: k\n  cluster: {server: 'https://k:6443'}\ncurrent-context: c\n")
    assert '"exec" is not supported' in fails("info", kc=kc)
    kc.write_text("a: &x [1]\nb: *x\n")
    assert "aliases" in fails("info", kc=kc)


def test_create_get_list_delete_and_status_errors(fake):
    kc = fake.kc
    created = ok("create", "sa", "proj-a", "-", kc=kc, stdin=sa("fn-a", {"hks.io/function": "fn-a"}))
    assert created["metadata"]["namespace"] == "proj-a" and created["metadata"]["resourceVersion"]
    ok("create", "sa", "proj-a", "-", kc=kc, stdin=sa("fn-b", {"hks.io/function": "fn-b"}))
    ok("create", "sa", "proj-b", "-", kc=kc, stdin=sa("fn-c", {"hks.io/function": "fn-c"}))

    msg = fails("create", "sa", "proj-a", "-", kc=kc, stdin=sa("fn-a"), errno_name="EEXIST")
    assert msg == ('create ServiceAccount fn-a in namespace proj-a: HTTP 409 AlreadyExists: '
                   'serviceaccounts "fn-a" already exists')
    assert ok("get", "sa", "proj-a", "fn-a", kc=kc)["metadata"]["uid"] == created["metadata"]["uid"]

    listed = ok("list", "sa", "proj-a", "hks.io/function in (fn-a,fn-c)", kc=kc)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["fn-a"]
    everywhere = ok("list", "sa", "-", "hks.io/function", kc=kc)
    assert sorted(i["metadata"]["name"] for i in everywhere["items"]) == ["fn-a", "fn-b", "fn-c"]
    assert int(everywhere["resourceVersion"]) > 0

    ok("delete", "sa", "proj-a", "fn-a", kc=kc)
    msg = fails("get", "sa", "proj-a", "fn-a", kc=kc, errno_name="ENOENT")
    assert msg == ('get ServiceAccount fn-a in namespace proj-a: HTTP 404 NotFound: '
                   'serviceaccounts "fn-a" not found')
    fails("delete", "sa", "proj-a", "fn-a", kc=kc, errno_name="ENOENT")
    deletes = [r for r in fake.requests() if r["method"] == "DELETE"]
    assert deletes and all(r["body"] == {"kind": "DeleteOptions", "apiVersion": "v1",
                                         "propagationPolicy": "Background"} for r in deletes)
    assert fake.invalid() == []


def test_invalid_object_is_refused_with_the_reason(fake):
    bad = json.dumps({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"},
                      "automountServiceAccountToken": "no"})
    msg = fails("create", "sa", "proj-a", "-", kc=fake.kc, stdin=bad, errno_name="EINVAL")
    assert "HTTP 422 Invalid" in msg and "automountServiceAccountToken must be boolean" in msg
    assert len(fake.invalid()) == 1
    # names the client itself refuses never reach the server
    assert "not a DNS label" in fails("get", "sa", "Bad_NS", "x", kc=fake.kc, errno_name="EINVAL")
    assert "not an object name" in fails("get", "sa", "proj-a", "../x", kc=fake.kc)


def test_apply_replaces_and_patch_merges(fake):
    ok("apply", "sa", "proj-a", "-", kc=fake.kc, stdin=sa("fn-a", {"v": "1"}))
    second = ok("apply", "sa", "proj-a", "-", kc=fake.kc, stdin=sa("fn-a", {"v": "2"}))
    assert second["metadata"]["labels"] == {"v": "2"}
    patched = ok("patch", "sa", "proj-a", "fn-a", "-", kc=fake.kc,
                 stdin=json.dumps({"metadata": {"labels": {"w": "3"}}}))
    assert patched["metadata"]["labels"] == {"v": "2", "w": "3"}


def test_watch_from_a_resource_version_and_410_gone(fake):
    kc = fake.kc
    first = ok("create", "sa", "proj-a", "-", kc=kc, stdin=sa("fn-a"))
    rv = first["metadata"]["resourceVersion"]
    ok("create", "sa", "proj-a", "-", kc=kc, stdin=sa("fn-b"))
    ok("delete", "sa", "proj-a", "fn-a", kc=kc)
    rc, out, err = probe("watch", "sa", "proj-a", rv, "2", kubeconfig=kc)
    assert rc == 0, err
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in out[:2]] == [
        ("ADDED", "fn-b"), ("DELETED", "fn-a")]
    assert out[2]["stopped"] is True

    fake.control("POST", "compact")
    msg = fails("watch", "sa", "proj-a", rv, "1", kc=kc, errno_name="ESTALE")
    assert "410 Expired" in msg and "too old resource version" in msg
    fake.control("POST", "config", {"gone_as_status": True})
    assert "HTTP 410" in fails("watch", "sa", "proj-a", rv, "1", kc=kc, errno_name="ESTALE")


def test_list_watch_relists_after_410(fake):
    ok("create", "sa", "proj-a", "-", kc=fake.kc, stdin=sa("fn-a"))
    import subprocess
    from kube_fixture import PROBE
    p = subprocess.Popen([str(PROBE), "--kubeconfig", str(fake.kc), "listwatch", "sa", "proj-a", "3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(p.stdout.readline())["type"] == "SYNC"
        time.sleep(0.3)
        # the watch is cut and its resourceVersion compacted away: the client must list again
        fake.control("POST", "compact")
        ok("create", "sa", "proj-a", "-", kc=fake.kc, stdin=sa("fn-b"))
        events = [json.loads(p.stdout.readline()) for _ in range(2)]
        assert p.wait(timeout=30) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    names = {(e["type"], e["object"]["metadata"]["name"]) for e in events}
    assert ("SYNC", "fn-a") in names or ("SYNC", "fn-b") in names, events
    watches = [r for r in fake.requests() if r["query"].get("watch") == "1"]
    lists = [r for r in fake.requests() if r["method"] == "GET" and "watch" not in r["query"]]
    assert len(watches) >= 2 and len(lists) >= 2


def test_token_is_read_again_after_a_401(fake, tmp_path):
    import subprocess
    from kube_fixture import PROBE
    ok("create", "sa", "proj-a", "-", kc=fake.kc, stdin=sa("fn-a"))
    p = subprocess.Popen([str(PROBE), "--kubeconfig", str(fake.kc), "get-each", "sa", "proj-a", "fn-a"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.stdin.write("1\n")
        p.stdin.flush()
        assert json.loads(p.stdout.readline())["metadata"]["name"] == "fn-a"
        # the kubelet rotates the projected token; the server now accepts only the new one
        (tmp_path / "token").write_text("tok-2\n")
        fake.control("POST", "token", {"token": "tok-2"})
        p.stdin.write("2\n")
        p.stdin.flush()
        assert json.loads(p.stdout.readline())["metadata"]["name"] == "fn-a"
        # a token the server refuses even when read again: a clear 401
        fake.control("POST", "token", {"token": "tok-3"})
        p.stdin.write("3\n")
        p.stdin.flush()
        third = json.loads(p.stdout.readline())
        assert third["errno"] == "EACCES" and "HTTP 401 Unauthorized" in third["error"]
        p.stdin.close()
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    unauthorized = [r for r in fake.requests() if r.get("unauthorized")]
    assert len(unauthorized) == 3  # one before the re-read, two for the refused token


def test_in_cluster_configuration_over_tls(tmp_path):
    tls = make_tls(tmp_path)
    f = FakeKube(tmp_path, token="sa-token", tls=tls)
    try:
        sa_dir = tmp_path / "sa"
        sa_dir.mkdir()
        (sa_dir / "token").write_text("sa-token")
        (sa_dir / "namespace").write_text("proj-z\n")
        (sa_dir / "ca.crt").write_bytes(tls[0].read_bytes())
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(f.port),
               "PATH": os.environ.get("PATH", "")}
        rc, out, err = probe("--sa-dir", sa_dir, "info", env=env)
        assert rc == 0, err
        assert out[0]["server"] == f"https://127.0.0.1:{f.port}" and out[0]["namespace"] == "proj-z"
        rc, out, err = probe("--sa-dir", sa_dir, "create", "sa", "proj-z", "-", env=env, stdin=sa("fn-a"))
        assert rc == 0, err
        # a CA that did not sign the server's certificate: refused
        (tmp_path / "other").mkdir()
        other = make_tls(tmp_path / "other")
        (sa_dir / "ca.crt").write_bytes(other[0].read_bytes())
        rc, out, err = probe("--sa-dir", sa_dir, "get", "sa", "proj-z", "fn-a", env=env)
        assert rc == 1 and out[0]["errno"] == "EIO" and "certificate" in out[0]["error"].lower()
        # outside a cluster
        rc, out, err = probe("--in-cluster", "--sa-dir", sa_dir, "info", env={"PATH": env["PATH"]})
        assert rc == 1 and "not in a cluster" in out[0]["error"]
    finally:
        f.stop()


def test_faults_give_clear_errors(fake, tmp_path):
    kc = fake.kc
    fake.control("POST", "fault", {"path": "/api/v1/namespaces/proj-a/serviceaccounts", "status": 500})
    msg = fails("get", "sa", "proj-a", "x", kc=kc, errno_name="EIO")
    assert "HTTP 500 InternalError: fake fault 500" in msg
    fake.control("POST", "fault", {"path": "/api/v1", "status": 429})
    fails("list", "sa", "proj-a", kc=kc, errno_name="EAGAIN")
    fake.control("POST", "fault", {"path": "/api/v1", "status": 200, "body": "<html>not json"})
    assert "not JSON" in fails("get", "sa", "proj-a", "x", kc=kc, errno_name="EIO")
    fake.control("POST", "fault", {"path": "/api/v1", "status": 200, "body": '{"kind":"Pod"}'})
    assert "kind Pod where ServiceAccount" in fails("get", "sa", "proj-a", "x", kc=kc)
    fake.control("POST", "fault", {"path": "/api/v1", "status": 200, "body": '{"kind":"ServiceAccountList","items":{}}'})
    assert "not an array" in fails("list", "sa", "proj-a", kc=kc, errno_name="EIO")
    fake.control("POST", "fault", {"path": "/api/v1", "status": 0})  # never answers
    t0 = time.monotonic()
    rc, out, err = probe("--timeout-ms", "700", "get", "sa", "proj-a", "x", kubeconfig=kc)
    assert rc == 1 and out[0]["errno"] == "ETIMEDOUT" and "within 700 ms" in out[0]["error"]
    assert time.monotonic() - t0 < 10


def test_function_objects_render_exactly_and_validate(fake):
    rc, out, err = probe("render", POLICIES, "-", stdin=json.dumps(function_doc()))
    assert rc == 0, err
    ksvc = out[0]["service"]
    spec = ksvc["spec"]["template"]["spec"]
    assert ksvc["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    assert spec["containers"][0]["securityContext"]["seccompProfile"] == {
        "type": "Localhost", "localhostProfile": "hks/function.json"}
    # every rendered object, the namespaces too, is accepted by kubernetes-models (through the fake)
    for kind, obj in (("sa", out[0]["serviceAccount"]), ("netpol", out[0]["networkPolicy"]), ("ksvc", ksvc)):
        ok("create", kind, "proj-a", "-", kc=fake.kc, stdin=json.dumps(obj))
    for name, which in (("proj-b", "functions"), ("hks-builds", "builds")):
        rc, ns_out, err = probe("namespace", POLICIES, name, which)
        assert rc == 0, err
        ok("create", "ns", "-", "-", kc=fake.kc, stdin=json.dumps(ns_out[0]))
    assert fake.invalid() == []


def test_function_lifecycle(fake):
    kc = fake.kc
    doc = json.dumps(function_doc())
    ok("fn-apply", POLICIES, "-", kc=kc, stdin=doc)
    # create only: the objects of an id are never overwritten (hksd has no "update" on them)
    assert "AlreadyExists" in fails("fn-apply", POLICIES, "-", kc=kc, errno_name="EEXIST",
                                    stdin=json.dumps(function_doc(max_scale=5)))
    assert ok("get", "ksvc", "proj-a", FN_ID, kc=kc)["spec"]["template"]["metadata"]["annotations"][
        "autoscaling.knative.dev/max-scale"] == "3"
    url = ok("fn-wait", "proj-a", FN_ID, "10000", kc=kc)["url"]
    assert url == f"http://{FN_ID}.proj-a.svc.cluster.local"
    listed = ok("fn-list", "-", kc=kc)
    assert listed == [{"id": FN_ID, "namespace": "proj-a", "owner": "agent-7",
                       "code_sha256": "abcdef0123456789" * 4, "expires_at": 1900000000,
                       "readiness": "ready", "url": url}]
    assert ok("fn-delete", "proj-a", FN_ID, kc=kc) == {"deleted": 3}
    assert ok("fn-delete", "proj-a", FN_ID, kc=kc) == {"deleted": 0}  # another node's reaper
    assert ok("fn-list", "proj-a", kc=kc) == []
    assert fake.control("GET", "objects") == []
    assert fake.invalid() == []
    for r in fake.requests():
        if r["method"] == "DELETE":
            assert r["body"]["propagationPolicy"] == "Background"


def test_wait_reports_knative_failure_and_timeout(fake):
    kc = fake.kc
    fake.control("POST", "knative", {"fail": "RevisionMissing"})
    ok("fn-apply", POLICIES, "-", kc=kc, stdin=json.dumps(function_doc()))
    msg = fails("fn-wait", "proj-a", FN_ID, "5000", kc=kc, errno_name="EIO")
    assert "Ready=False RevisionMissing" in msg
    fake.control("POST", "knative", {"fail": None, "ready": False})
    ok("fn-delete", "proj-a", FN_ID, kc=kc)
    ok("fn-apply", POLICIES, "-", kc=kc, stdin=json.dumps(function_doc(max_scale=4)))
    msg = fails("fn-wait", "proj-a", FN_ID, "1500", kc=kc, errno_name="ETIMEDOUT")
    assert "not ready within 1500 ms" in msg
    assert "not found" in fails("fn-wait", "proj-a", "fn-ffffffffffffffffffff", "60000", kc=kc,
                                errno_name="ENOENT")


def test_function_fields_are_checked_before_anything_is_sent(fake):
    for bad, what in ((function_doc(image="registry.local/fn/hello:latest"), "image"),
                      (function_doc(timeout_s=601), "timeout_s"),
                      (function_doc(env=["PORT=1"]), "environment entry 0"),
                      (function_doc(project="Proj"), "project")):
        assert what in fails("fn-apply", POLICIES, "-", kc=fake.kc, stdin=json.dumps(bad),
                             errno_name="EINVAL")
    assert [r for r in fake.requests() if r["method"] != "GET"] == []


def test_pods_jobs_and_the_kinds_builds_and_cronjobs_use(fake):
    kc = fake.kc
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kaniko-1", "labels": {"hks.io/build": "b1"}},
           "spec": {"restartPolicy": "Never", "containers": [{"name": "kaniko", "image": "kaniko@sha256:" + "ab" * 32}]}}
    created = ok("create", "pods", "hks-builds", "-", kc=kc, stdin=json.dumps(pod))
    assert created["status"]["phase"] == "Pending"
    rv = created["metadata"]["resourceVersion"]
    fake.control("POST", "pod", {"namespace": "hks-builds", "name": "kaniko-1", "exit_code": 0,
                                 "message": "sha256:" + "cd" * 32})
    rc, out, err = probe("watch", "pods", "hks-builds", rv, "1", "hks.io/build=b1", kubeconfig=kc)
    assert rc == 0, err
    assert out[0]["type"] == "MODIFIED"
    terminated = out[0]["object"]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated == {"exitCode": 0, "reason": "Completed", "message": "sha256:" + "cd" * 32}

    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ctx-b1"},
          "binaryData": {"context.tar.gz": "H4sIAAAAAAAAA+3BAQ0AAADCoPdPbQ8HFAAAAAAAAAAAAAAA"}}
    ok("create", "cm", "hks-builds", "-", kc=kc, stdin=json.dumps(cm))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"},
              "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "e30="}}
    ok("create", "secrets", "hks-builds", "-", kc=kc, stdin=json.dumps(secret))
    template = {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "task", "image": "busybox@sha256:" + "ef" * 32, "command": ["true"]}]}}}}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "cron-1-manual",
           "annotations": {"cronjob.kubernetes.io/instantiate": "manual"}}, **template}
    ok("create", "jobs", "proj-a", "-", kc=kc, stdin=json.dumps(job))
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cron-1"},
            "spec": {"schedule": "*/5 * * * *", "timeZone": "Europe/Paris", "jobTemplate": template}}
    ok("create", "cronjobs", "proj-a", "-", kc=kc, stdin=json.dumps(cron))
    assert fake.invalid() == []
    bad_cron = {**cron, "metadata": {"name": "cron-2"}, "spec": {"schedule": 5, "jobTemplate": template}}
    assert "HTTP 422 Invalid" in fails("create", "cronjobs", "proj-a", "-", kc=kc,
                                       stdin=json.dumps(bad_cron), errno_name="EINVAL")
    assert len(fake.invalid()) == 1
    ok("delete", "jobs", "proj-a", "cron-1-manual", "Background", kc=kc)
    job_delete = [r for r in fake.requests() if r["method"] == "DELETE" and "/jobs/" in r["path"]]
    assert job_delete[0]["body"]["propagationPolicy"] == "Background"
