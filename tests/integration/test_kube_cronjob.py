"""CronJobs on the kubernetes backend (cluster/cronjob.c, cronjob_runs.c) against the fake API
server, through build/kube-probe: the definition the local backend checks becomes a batch/v1
CronJob whose jobTemplate carries the template function's container (from its Knative Service)
with the override, or a curl against the function's URL; manual runs are Jobs made from it;
runs come from the Jobs' status and their Pods' logs. The fake validates every object with
kubernetes-models, and plays the CronJob controller (a scheduled Job) and the Job controller
(a finished run with its Pod and log)."""

import json

import pytest

from kube_fixture import FakeKube, missing, probe, REPO

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

POLICIES = REPO / "policies" / "kubernetes"
FN_ID = "fn-0123456789abcdef0123"
CJ_ID = "cj-00112233445566778899"
NS = "proj-a"
IMAGE = "registry.local:5000/fn/hello@sha256:" + "0123456789abcdef" * 4


@pytest.fixture
def fake(tmp_path):
    f = FakeKube(tmp_path)
    f.kc = f.kubeconfig(token="t")
    f.tmp = tmp_path
    fn = {"id": FN_ID, "name": "hello", "project": NS, "owner": "agent-7", "runtime": "python",
          "image": IMAGE, "code_sha256": "ab" * 32, "env": ["GREETING=hi", "MODE=template"],
          "memory_mb": 256, "cpu_millis": 500, "timeout_s": 30, "concurrency": 10,
          "min_scale": 0, "max_scale": 3, "expires_at": 1900000000}
    (tmp_path / "fn.json").write_text(json.dumps(fn))
    probe("fn-apply", POLICIES, tmp_path / "fn.json", kubeconfig=f.kc, check=True)
    probe("fn-wait", NS, FN_ID, 5000, kubeconfig=f.kc, check=True)
    yield f
    f.stop()


def definition(target, **over):
    d = {"name": "nightly-report", "schedule": "30 2 * * *", "timezone": "Europe/Berlin",
         "concurrency_policy": "Forbid", "suspend": False, "starting_deadline_seconds": 600,
         "successful_jobs_history_limit": 3, "failed_jobs_history_limit": 1, "target": target}
    d.update(over)
    return d


TASK = {"task": {"template": FN_ID, "command": ["python3", "report.py"], "args": ["--cost=$(HOME)"],
                 "env": {"MODE": "nightly", "A_FIRST": "1"}, "timeout_seconds": 900}}
INVOKE = {"function": {"id": FN_ID, "method": "POST", "path": "/report?full=1",
                       "headers": {"X-Kind": "nightly"}, "body": "{\"n\": 1}"}}


def cronjob_file(fake, target, **over):
    doc = {"id": CJ_ID, "project": NS, "owner": "agent-7", "definition": definition(target, **over)}
    path = fake.tmp / "cj.json"
    path.write_text(json.dumps(doc))
    return path


def ok(fake, *args):
    return probe(*args, kubeconfig=fake.kc, check=True)[1][-1]


def stored(fake, kind, name=None):
    objs = [o for o in fake.control("GET", "objects") if o["kind"] == kind]
    return [o for o in objs if name is None or o["metadata"]["name"] == name]


def test_task_cronjob_carries_the_template_pod_spec(fake):
    assert ok(fake, "cj-apply", POLICIES, cronjob_file(fake, TASK)) == {"applied": CJ_ID}
    (cj,) = stored(fake, "CronJob")
    meta, spec = cj["metadata"], cj["spec"]
    assert meta["name"] == CJ_ID and meta["namespace"] == NS
    assert meta["labels"] == {"app.kubernetes.io/managed-by": "hksd", "hks.io/cronjob": CJ_ID, "hks.io/project": NS}
    ann = dict(meta["annotations"])
    definition = json.loads(ann.pop("hks.io/definition"))
    assert definition["name"] == "nightly-report" and definition["target"]["task"]["template"] == FN_ID
    assert ann == {"hks.io/name": "nightly-report", "hks.io/owner": "agent-7", "hks.io/project": NS,
                   "hks.io/target": FN_ID, "hks.io/target-kind": "task"}
    assert {k: spec[k] for k in ("schedule", "timeZone", "concurrencyPolicy", "suspend", "startingDeadlineSeconds",
                                 "successfulJobsHistoryLimit", "failedJobsHistoryLimit")} == {
        "schedule": "30 2 * * *", "timeZone": "Europe/Berlin", "concurrencyPolicy": "Forbid", "suspend": False,
        "startingDeadlineSeconds": 600, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1}
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] == 900
    assert job["ttlSecondsAfterFinished"] == 7 * 86400
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == FN_ID
    (c,) = pod["containers"]
    assert c["image"] == IMAGE
    assert c["command"] == ["python3", "report.py"]
    assert c["args"] == ["--cost=$$(HOME)"]  # what the definition says runs, not an expansion
    assert c["env"] == [{"name": "A_FIRST", "value": "1"}, {"name": "MODE", "value": "nightly"},
                        {"name": "GREETING", "value": "hi"}]
    assert c["resources"] == {"limits": {"memory": "256Mi", "cpu": "500m"}, "requests": {"memory": "256Mi", "cpu": "500m"}}
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "Localhost", "localhostProfile": "hks/function.json"}
    assert c["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}] and c["workingDir"] == "/code"
    # the task talks to nothing, like the local sandbox
    (np,) = stored(fake, "NetworkPolicy", CJ_ID)
    assert np["spec"]["podSelector"] == {"matchLabels": {"hks.io/cronjob": CJ_ID}}
    assert np["spec"]["egress"] == [] and np["spec"]["ingress"] == [] and set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert fake.invalid() == []


def test_function_target_runs_curl_against_the_url(fake):
    ok(fake, "cj-apply", POLICIES, cronjob_file(fake, INVOKE, concurrency_policy="Allow", starting_deadline_seconds=None))
    (cj,) = stored(fake, "CronJob")
    assert "startingDeadlineSeconds" not in cj["spec"]
    job = cj["spec"]["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] == 30 + 5 + 30
    (c,) = job["template"]["spec"]["containers"]
    assert c["image"].startswith("curlimages/curl:8.11.1@sha256:")
    assert c["command"] == ["curl"]
    assert c["args"] == ["--silent", "--show-error", "--fail-with-body", "--max-time", "35",
                         "--request", "POST", "--header", "X-Kind: nightly", "--header", "Content-Type:",
                         "--data-binary", "$(HKS_BODY)",
                         "--write-out", "%output{/dev/termination-log}HTTP %{http_code}",
                         "--url", f"http://{FN_ID}.{NS}.svc.cluster.local/report?full=1"]
    assert c["env"] == [{"name": "HKS_BODY", "value": "{\"n\": 1}"}]
    assert c["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["runAsNonRoot"] is True
    assert stored(fake, "NetworkPolicy", CJ_ID) == []
    assert fake.invalid() == []


def test_update_suspends_and_the_template_must_exist(fake):
    ok(fake, "cj-apply", POLICIES, cronjob_file(fake, TASK))
    ok(fake, "cj-apply", POLICIES, cronjob_file(fake, TASK, suspend=True, schedule="@hourly"))
    (cj,) = stored(fake, "CronJob")
    assert cj["spec"]["suspend"] is True and cj["spec"]["schedule"] == "@hourly"
    assert [r["method"] for r in fake.requests() if "/cronjobs" in r["path"]][-1] == "PUT"
    missing_fn = dict(TASK["task"], template="fn-ffffffffffffffffffff")
    rc, out, _ = probe("cj-apply", POLICIES, cronjob_file(fake, {"task": missing_fn}), kubeconfig=fake.kc)
    assert rc == 1 and out[-1]["errno"] == "ENOENT" and "target.task.template fn-ffffffffffffffffffff" in out[-1]["error"]
    bad = cronjob_file(fake, TASK, concurrency_policy="Sometimes")
    rc, out, _ = probe("cj-apply", POLICIES, bad, kubeconfig=fake.kc)
    assert rc == 1 and "invalid definition: concurrency_policy" in out[-1]["error"]


def test_manual_trigger_runs_and_logs(fake):
    ok(fake, "cj-apply", POLICIES, cronjob_file(fake, TASK))
    (cj,) = stored(fake, "CronJob")
    run = ok(fake, "cj-trigger", NS, CJ_ID)
    assert run["trigger"] == "manual" and run["status"] == "running" and run["cronjob_id"] == CJ_ID
    (job,) = stored(fake, "Job")
    assert run["id"] == job["metadata"]["name"] and job["metadata"]["name"].startswith(CJ_ID + "-m")
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    assert job["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": CJ_ID,
                                                   "uid": cj["metadata"]["uid"], "controller": True}]
    assert job["metadata"]["labels"]["hks.io/cronjob"] == CJ_ID
    assert job["spec"] == cj["spec"]["jobTemplate"]["spec"]

    # Forbid: no second manual run while one is going
    rc, out, _ = probe("cj-trigger", NS, CJ_ID, kubeconfig=fake.kc)
    assert rc == 1 and out[-1]["errno"] == "EBUSY" and "concurrency_policy is Forbid" in out[-1]["error"]

    fake.control("POST", "job", {"namespace": NS, "name": run["id"], "succeeded": True,
                                 "log": "report written\n"})
    (r,) = ok(fake, "cj-runs", NS, CJ_ID, 4096)["runs"]
    assert r["status"] == "succeeded" and r["reason"] == "exit code 0" and r["exit_code"] == 0
    assert r["logs"] == "report written\n" and r["log_bytes"] == 15 and r["log_truncated"] is False
    assert r["finished_at"] and r["duration_ms"] >= 0 and r["http_status"] is None
    assert fake.invalid() == []


def test_scheduled_runs_history_and_failures(fake):
    ok(fake, "cj-apply", POLICIES, cronjob_file(fake, TASK, concurrency_policy="Allow"))
    # the CronJob controller starts two scheduled Jobs; one fails, one times out
    j1 = fake.control("POST", "cronjob-run", {"namespace": NS, "name": CJ_ID, "scheduled_time": "2026-01-01T02:30:00Z"})
    j2 = fake.control("POST", "cronjob-run", {"namespace": NS, "name": CJ_ID, "scheduled_time": "2026-01-02T02:30:00Z"})
    fake.control("POST", "job", {"namespace": NS, "name": j1["metadata"]["name"], "succeeded": False,
                                 "exit_code": 3, "log": "x" * 100 + "Traceback: boom\n"})
    fake.control("POST", "job", {"namespace": NS, "name": j2["metadata"]["name"], "succeeded": False,
                                 "exit_code": 137, "reason": "DeadlineExceeded"})
    # a Job of somebody else with the same label is not one of its runs
    stray = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "stray", "labels": {"hks.io/cronjob": CJ_ID}},
             "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}
    probe("create", "jobs", NS, "-", kubeconfig=fake.kc, stdin=json.dumps(stray), check=True)
    runs = ok(fake, "cj-runs", NS, CJ_ID, 10)["runs"]
    # newest first (created in the same second here: the later schedule's name first)
    assert [r["id"] for r in runs] == [j2["metadata"]["name"], j1["metadata"]["name"]]
    by_id = {r["id"]: r for r in runs}
    r1, r2 = by_id[j1["metadata"]["name"]], by_id[j2["metadata"]["name"]]
    assert r1["trigger"] == "schedule" and r1["scheduled_at"] == "2026-01-01T02:30:00Z"
    assert r1["status"] == "failed" and r1["reason"] == "exit code 3" and r1["exit_code"] == 3
    assert r1["logs"] == "ack: boom\n" and r1["logs_cut"] is True and r1["log_bytes"] == 116
    assert r2["status"] == "failed" and r2["reason"] == "timed out after 900 s"
    assert fake.invalid() == []


def test_function_target_run_reads_the_http_status(fake):
    ok(fake, "cj-apply", POLICIES, cronjob_file(fake, INVOKE, concurrency_policy="Replace"))
    first = ok(fake, "cj-trigger", NS, CJ_ID)
    # Replace: the run going is deleted for the new one
    second = ok(fake, "cj-trigger", NS, CJ_ID)
    assert [j["metadata"]["name"] for j in stored(fake, "Job")] == [second["id"]]
    assert first["id"] != second["id"]
    fake.control("POST", "job", {"namespace": NS, "name": second["id"], "succeeded": False, "exit_code": 22,
                                 "message": "HTTP 503", "log": "{\"error\": \"busy\"}"})
    (r,) = ok(fake, "cj-runs", NS, CJ_ID, 4096)["runs"]
    assert r["status"] == "failed" and r["http_status"] == 503 and r["reason"] == "HTTP 503"
    assert r["logs"] == "{\"error\": \"busy\"}"
    assert fake.invalid() == []


def test_delete_takes_jobs_and_pods_along(fake):
    ok(fake, "cj-apply", POLICIES, cronjob_file(fake, TASK))
    run = ok(fake, "cj-trigger", NS, CJ_ID)
    fake.control("POST", "job", {"namespace": NS, "name": run["id"], "log": "done\n"})
    assert len(stored(fake, "Pod")) == 1
    assert ok(fake, "cj-delete", NS, CJ_ID) == {"deleted": 2}
    assert stored(fake, "CronJob") == [] and stored(fake, "Job") == [] and stored(fake, "Pod") == []
    assert stored(fake, "NetworkPolicy", CJ_ID) == []
    assert ok(fake, "cj-delete", NS, CJ_ID) == {"deleted": 0}
    for cmd in ("cj-trigger", "cj-runs"):
        args = (cmd, NS, CJ_ID) + (("10",) if cmd == "cj-runs" else ())
        rc, out, _ = probe(*args, kubeconfig=fake.kc)
        assert rc == 1 and out[-1]["errno"] == "ENOENT"
