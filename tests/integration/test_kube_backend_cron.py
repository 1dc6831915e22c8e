"""CronJobs on the kubernetes backend, end to end against the fake API server (every object
validated with kubernetes-models): created through hksd's API, a CronJob is a batch/v1 CronJob
carrying its definition; a trigger makes a manual Job, the fake finishes it, and hksd's runs show it
with its log; a second hksd on the same cluster sees the same CronJob; suspend, delete, objects gone.
Nothing is scheduled by hksd itself on this backend (the cluster's controller does it).

Needs `make kube-deps` (tests/kube/node_modules) and docker-registry, as test_kube_backend.py.
"""

import json
import os
import shutil
import tempfile

import pytest

from test_kube_backend import Cluster, PY_ECHO, deploy, start, stop_clean, wait_for
from test_kube_backend import pytestmark  # noqa: F401 (the same skips)

SCOPES = ("functions:deploy functions:invoke functions:delete functions:read "
          "cronjobs:read cronjobs:write")


@pytest.fixture(scope="module")
def cluster():
    d = tempfile.mkdtemp(prefix="hks-kcron-")
    c = Cluster(d)
    yield c
    c.stop()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_invalid_objects(cluster):
    cluster.fake.control("POST", "reset")
    yield
    assert cluster.fake.invalid() == []
    assert cluster.player.errors == []


def call(d, method, path, body=None, project="p1"):
    tok = d.token(scope=SCOPES, project=project, sub="agent-1")
    status, _, payload = d.request(method, path, body, tok)
    return status, json.loads(payload) if payload else None


def cronjobs(cluster, kind="CronJob"):
    return [o for o in cluster.objects() if o["kind"] == kind]


def test_cronjob_lives_on_the_cluster(cluster):
    d = start(cluster)
    status, fn = deploy(d, {"runtime": "python", "name": "echo-py", "code": PY_ECHO},
                        tok=d.token(scope=SCOPES, project="p1", sub="agent-1"))
    assert status == 201, fn
    fid = fn["id"]

    # a target that is not on the cluster is refused, naming the field
    status, body = call(d, "POST", "/internal/v1/cronjobs",
                        {"name": "bad", "schedule": "*/5 * * * *",
                         "target": {"function": {"id": "fn-" + "0" * 20}}})
    assert status == 422 and body["error"]["details"]["field"] == "target.function.id", body
    assert cronjobs(cluster) == []

    status, cj = call(d, "POST", "/internal/v1/cronjobs",
                      {"name": "ping", "schedule": "@hourly", "timezone": "Europe/Paris",
                       "target": {"function": {"id": fid, "path": "/tick"}}})
    assert status == 201, cj
    cid = cj["id"]
    assert cj["backend"] == "kubernetes" and cj["schedule"] == "@hourly"
    assert cj["next_run_at"] and cj["last_run_at"] is None and cj["missed_runs"] is None

    (obj,) = cronjobs(cluster)
    meta = obj["metadata"]
    assert meta["name"] == cid and meta["namespace"] == "p1"
    assert meta["annotations"]["hks.io/project"] == "p1"
    assert json.loads(meta["annotations"]["hks.io/definition"])["name"] == "ping"
    spec = obj["spec"]
    assert spec["schedule"] == "@hourly" and spec["timeZone"] == "Europe/Paris"
    assert spec["suspend"] is False and spec["concurrencyPolicy"] == cj["concurrency_policy"]

    # names are unique in the project, across hksd: a second node sees the same CronJob
    status, body = call(d, "POST", "/internal/v1/cronjobs",
                        {"name": "ping", "schedule": "@daily",
                         "target": {"function": {"id": fid}}})
    assert status == 409 and "already exists" in body["error"]["message"], body
    other = start(cluster)
    status, seen = call(other, "GET", "/internal/v1/cronjobs/ping")
    assert status == 200 and seen["id"] == cid and seen["target"] == cj["target"], seen
    status, listed = call(other, "GET", "/internal/v1/cronjobs")
    assert [c["id"] for c in listed["cronjobs"]] == [cid]
    status, _ = call(other, "GET", "/internal/v1/cronjobs/ping", project="p2")
    assert status == 404

    # trigger: a manual Job; the fake finishes it; runs show it with its log
    status, run = call(d, "POST", f"/internal/v1/cronjobs/{cid}/trigger")
    assert status in (200, 201, 202), run
    (job,) = cronjobs(cluster, "Job")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert run["id"] == job["metadata"]["name"] and run["trigger"] == "manual"
    cluster.fake.control("POST", "job", {"namespace": "p1", "name": run["id"], "succeeded": True,
                                         "log": "tick answered\n"})

    def finished():
        status, body = call(other, "GET", f"/internal/v1/cronjobs/{cid}/runs")
        assert status == 200, body
        done = [r for r in body["runs"] if r["status"] != "running"]
        return done and done[0]
    r = wait_for("the run finished", finished)
    assert r["id"] == run["id"] and r["status"] == "succeeded" and r["logs"] == "tick answered\n"

    # suspend is an update of the CronJob on the cluster
    status, cj2 = call(d, "PATCH", f"/internal/v1/cronjobs/{cid}", {"suspend": True})
    assert status == 200 and cj2["suspend"] is True and cj2["next_run_at"] is None, cj2
    (obj,) = cronjobs(cluster)
    assert obj["spec"]["suspend"] is True

    # delete: the CronJob and its Jobs go
    status, _ = call(other, "DELETE", f"/internal/v1/cronjobs/{cid}")
    assert status in (200, 204)
    wait_for("the objects gone", lambda: cronjobs(cluster) == [] and cronjobs(cluster, "Job") == [])
    status, _ = call(d, "GET", f"/internal/v1/cronjobs/{cid}")
    assert status == 404
    assert not os.listdir(os.path.join(d.state, "cronjobs"))

    audit = [json.loads(line) for line in open(os.path.join(d.state, "audit.log"))]
    actions = [a["action"] for a in audit
               if a.get("backend") == "kubernetes" and a["action"].startswith("cronjob.")]
    assert actions == ["cronjob.create", "cronjob.trigger", "cronjob.suspend"], actions
    assert stop_clean(other) == []
    assert stop_clean(d) == []
