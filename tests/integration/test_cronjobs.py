"""CronJobs on the local backend over real HTTP against a real hksd: create (both targets, every
validation rule with its message), list/get, scheduled runs with a sped-up clock (HKSD_CRON_CLOCK),
history with logs and its limits, manual trigger, the concurrency policies, suspend/resume,
missed runs and the starting deadline across a restart, persistence, delete with a run going,
tasks confined by the sandbox and their timeouts, scopes and project isolation."""

import json
import os
import pathlib
import time

import pytest

from hksd_process import HKSD, Daemon  # noqa: E402
from test_functions import PY_ECHO, deploy_ok, jreq  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(HKSD),
                                reason="needs root and build/hksd")

CRONJOBS = "/internal/v1/cronjobs"
ALL = ("functions:deploy functions:invoke functions:read functions:delete "
       "cronjobs:read cronjobs:write")
# 2026-01-01T00:00:00Z, the scheduler's clock 60 times as fast: "* * * * *" fires every second
FAST = {"HKSD_CRON_CLOCK": "1767225600x60"}

_tokens = {}


def tok(d, scope=ALL, project="p1", sub="agent-1"):
    key = (d.port, scope, project, sub)
    if key not in _tokens:
        _tokens[key] = d.token(scope=scope, sub=sub, project=project, ttl="30m")
    return _tokens[key]


def call(d, method, path, body=None, token=None):
    status, _, doc = jreq(d, method, path, body, token=token or tok(d))
    return status, doc


def create(d, body, token=None):
    status, doc = call(d, "POST", CRONJOBS, body, token)
    assert status == 201, (status, doc)
    return doc


def runs(d, ref, token=None, query=""):
    status, doc = call(d, "GET", "%s/%s/runs%s" % (CRONJOBS, ref, query), token=token)
    assert status == 200, (status, doc)
    return doc["runs"]


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def task(template, code, **extra):
    t = {"template": template, "command": ["python3", "-c", code]}
    t.update(extra)
    return {"task": t}


@pytest.fixture(scope="module")
def hksd():
    d = Daemon(env=FAST)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def fn(hksd):
    return deploy_ok(hksd, {"runtime": "python", "code": PY_ECHO, "ttl_seconds": 3600,
                            "env": {"GREETING": "from-template"}},
                     token=tok(hksd))["id"]


_names = iter(range(10**6))


def name(prefix="cj"):
    return "%s-%d" % (prefix, next(_names))


# ---------------------------------------------------------------- create, validation, views

def test_create_fills_defaults_and_normalizes(hksd, fn):
    doc = create(hksd, {"name": name(), "schedule": "daily", "target": task(fn, "print(1)")})
    assert doc["id"].startswith("cj-") and len(doc["id"]) == 23
    assert doc["schedule"] == "@daily"
    assert doc["timezone"] == "UTC"
    assert doc["concurrency_policy"] == "Allow"
    assert doc["suspend"] is False
    assert doc["starting_deadline_seconds"] is None
    assert doc["successful_jobs_history_limit"] == 3
    assert doc["failed_jobs_history_limit"] == 1
    assert doc["target"]["task"]["args"] == [] and doc["target"]["task"]["timeout_seconds"] == 300
    assert doc["next_run_at"] == "2026-01-02T00:00:00Z"
    assert doc["last_run_at"] is None and doc["last_result"] is None
    assert doc["owner"] == "agent-1" and doc["project"] == "p1" and doc["backend"] == "local"
    status, got = call(hksd, "GET", "%s/%s" % (CRONJOBS, doc["name"]))
    assert status == 200 and got["id"] == doc["id"]
    status, got = call(hksd, "GET", "%s/%s" % (CRONJOBS, doc["id"]))
    assert status == 200 and got["name"] == doc["name"]


def test_function_target_defaults(hksd, fn):
    doc = create(hksd, {"name": name(), "schedule": "0 9 * * MON-FRI",
                        "timezone": "Europe/Berlin", "target": {"function": {"id": fn}}})
    assert doc["target"]["function"] == {"id": fn, "method": "POST", "path": "/", "headers": {},
                                         "body": ""}
    # 2026-01-01 is a Thursday; 09:00 in Berlin (CET) is 08:00Z
    assert doc["next_run_at"] == "2026-01-01T08:00:00Z"


BAD = [
    ({"schedule": "61 * * * *"}, "schedule", "schedule: minute: 61 is above the maximum 59"),
    ({"schedule": "@every 5m"}, "schedule", "@every"),
    ({"schedule": "TZ=UTC 0 * * * *"}, "schedule", "TZ="),
    ({"schedule": "* * * *"}, "schedule", "schedule:"),
    ({"schedule": 5}, "schedule", "must be a string"),
    ({"timezone": "Mars/Olympus"}, "timezone", "timezone:"),
    ({"timezone": "Local"}, "timezone", "timezone:"),
    ({"name": "x" * 53}, "name", "1 to 52 characters"),
    ({"name": "Upper"}, "name", "name:"),
    ({"name": "ends-"}, "name", "name:"),
    ({"concurrency_policy": "Sometimes"}, "concurrency_policy", "Allow, Forbid or Replace"),
    ({"suspend": "yes"}, "suspend", "true or false"),
    ({"starting_deadline_seconds": -1}, "starting_deadline_seconds", "below the minimum 0"),
    ({"successful_jobs_history_limit": 101}, "successful_jobs_history_limit",
     "101 is above the maximum 100"),
    ({"failed_jobs_history_limit": "1"}, "failed_jobs_history_limit", "must be an integer"),
    ({"colour": "blue"}, "colour", "unknown field"),
    ({"target": {}}, "target", "must be {\"function\""),
    ({"target": {"task": {}, "function": {}}}, "target", "target:"),
    ({"target": {"task": {"template": "fn-00000000000000000000"}}}, "target.task.command",
     "is required"),
    ({"target": {"task": {"template": "nope", "command": ["x"]}}}, "target.task.template",
     "id of a deployed function"),
    ({"target": {"task": {"template": "fn-00000000000000000000", "command": ["x", 3]}}},
     "target.task.command[1]", "non-empty string"),
    ({"target": {"task": {"template": "fn-00000000000000000000", "command": []}}},
     "target.task.command", "1 to 256"),
    ({"target": {"task": {"template": "fn-00000000000000000000", "command": ["x"],
                          "env": {"1BAD": "v"}}}}, "target.task.env.1BAD", "variable name"),
    ({"target": {"task": {"template": "fn-00000000000000000000", "command": ["x"],
                          "timeout_seconds": 100000}}}, "target.task.timeout_seconds",
     "above the maximum 300"),
    ({"target": {"function": {"id": "fn-00000000000000000000", "path": "no-slash"}}},
     "target.function.path", "start with '/'"),
    ({"target": {"function": {"id": "fn-00000000000000000000", "method": "BREW"}}},
     "target.function.method", "one of GET"),
    ({"target": {"function": {"id": "fn-00000000000000000000",
                              "headers": {"Content-Length": "5"}}}},
     "target.function.headers.Content-Length", "set by hksd"),
    ({"target": {"function": {"id": "fn-00000000000000000000",
                              "headers": {"X-A": "a\nb"}}}},
     "target.function.headers.X-A", "control characters"),
    ({"target": {"function": {"id": "fn-00000000000000000000", "extra": 1}}},
     "target.function.extra", "unknown field"),
]


@pytest.mark.parametrize("change,field,message", BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD])
def test_invalid_definitions_name_the_field(hksd, fn, change, field, message):
    body = {"name": name(), "schedule": "@hourly", "target": {"function": {"id": fn}}}
    body.update(change)
    status, doc = call(hksd, "POST", CRONJOBS, body)
    assert status == 422, doc
    assert doc["error"]["details"]["field"] == field, doc
    assert message in doc["error"]["message"], doc


def test_target_function_must_exist_in_the_project(hksd, fn):
    status, doc = call(hksd, "POST", CRONJOBS, {"name": name(), "schedule": "@hourly",
                                               "target": task("fn-0123456789abcdef0123", "1")})
    assert status == 422 and doc["error"]["details"]["field"] == "target.task.template"
    assert "no function fn-0123456789abcdef0123 in this project" in doc["error"]["message"]
    # another project's function is not there either
    other = tok(hksd, project="p2")
    status, doc = call(hksd, "POST", CRONJOBS, {"name": name(), "schedule": "@hourly",
                                               "target": {"function": {"id": fn}}}, other)
    assert status == 422 and doc["error"]["details"]["field"] == "target.function.id"


def test_malformed_bodies(hksd):
    status, _, doc = jreq(hksd, "POST", CRONJOBS, raw=b"{not json", token=tok(hksd))
    assert status == 400, doc
    status, _, doc = jreq(hksd, "POST", CRONJOBS, raw=b"[1,2]", token=tok(hksd))
    assert status in (400, 422), doc


def test_names_are_unique_per_project(hksd, fn):
    n = name()
    create(hksd, {"name": n, "schedule": "@hourly", "target": {"function": {"id": fn}}})
    status, doc = call(hksd, "POST", CRONJOBS, {"name": n, "schedule": "@daily",
                                               "target": {"function": {"id": fn}}})
    assert status == 409 and doc["error"]["code"] == "conflict"
    assert "already exists" in doc["error"]["message"]


def test_scopes_and_project_isolation(hksd, fn):
    doc = create(hksd, {"name": name(), "schedule": "@hourly", "target": {"function": {"id": fn}}})
    reader = tok(hksd, scope="cronjobs:read")
    status, _ = call(hksd, "POST", CRONJOBS, {"name": name(), "schedule": "@hourly",
                                             "target": {"function": {"id": fn}}}, reader)
    assert status == 403
    for method, suffix in (("PATCH", ""), ("DELETE", ""), ("POST", "/trigger")):
        status, _ = call(hksd, method, "%s/%s%s" % (CRONJOBS, doc["id"], suffix),
                         {"suspend": True} if method == "PATCH" else None, reader)
        assert status == 403, (method, suffix)
    status, listed = call(hksd, "GET", CRONJOBS, token=reader)
    assert status == 200 and doc["id"] in [c["id"] for c in listed["cronjobs"]]
    functions_only = tok(hksd, scope="functions:read functions:invoke")
    assert call(hksd, "GET", CRONJOBS, token=functions_only)[0] == 403
    other = tok(hksd, project="p2")
    for method, suffix in (("GET", ""), ("GET", "/runs"), ("PATCH", ""), ("DELETE", ""),
                           ("POST", "/trigger")):
        status, _ = call(hksd, method, "%s/%s%s" % (CRONJOBS, doc["id"], suffix),
                         {"suspend": True} if method == "PATCH" else None, other)
        assert status == 404, (method, suffix)
    status, listed = call(hksd, "GET", CRONJOBS, token=other)
    assert doc["id"] not in [c["id"] for c in listed["cronjobs"]]
    assert call(hksd, "GET", CRONJOBS + "/" + doc["id"], token="garbage")[0] == 401


# ---------------------------------------------------------------- scheduled runs

def test_scheduled_task_runs_with_logs_and_history_limit(hksd, fn):
    code = ("import os, sys; print('task-out', os.getcwd(), os.environ.get('GREETING'), "
            "os.environ.get('EXTRA'), sys.argv[1:]); print('task-err', file=sys.stderr)")
    doc = create(hksd, {"name": name(), "schedule": "* * * * *",
                        "successful_jobs_history_limit": 2,
                        "target": task(fn, code, args=["a1", "a2"], env={"EXTRA": "x"})})
    done = wait_for(lambda: [r for r in runs(hksd, doc["id"]) if r["status"] == "succeeded"][:1]
                    and len([r for r in runs(hksd, doc["id"]) if r["status"] != "running"]) >= 2
                    and runs(hksd, doc["id"]), timeout=40, what="two scheduled runs")
    finished = [r for r in done if r["status"] != "running"]
    r = finished[0]
    assert r["trigger"] == "schedule" and r["status"] == "succeeded", r
    assert r["exit_code"] == 0 and r["reason"] == "exit code 0"
    assert r["scheduled_at"].endswith(":00Z")  # a whole minute of the schedule
    assert "task-out /code from-template x ['a1', 'a2']" in r["logs"]
    assert "task-err" in r["logs"]
    # never more than 2 succeeded runs kept, however many ran
    wait_for(lambda: max(x["number"] for x in runs(hksd, doc["id"])) >= 5, timeout=40,
             what="five runs")
    kept = [x for x in runs(hksd, doc["id"]) if x["status"] == "succeeded"]
    assert len(kept) <= 2
    files = sorted(p.name for p in pathlib.Path(hksd.state, "cronjobs", doc["id"], "runs")
                   .glob("*.json"))
    assert len(files) <= 3, files  # two kept and at most one going
    status, view = call(hksd, "GET", "%s/%s" % (CRONJOBS, doc["id"]))
    assert view["last_result"] == "succeeded" and view["last_run_at"]
    assert view["next_run_at"] > view["last_run_at"]
    call(hksd, "DELETE", "%s/%s" % (CRONJOBS, doc["id"]))


def test_scheduled_function_invocation(hksd, fn):
    before = call(hksd, "GET", "/internal/v1/functions/" + fn)[1]["invocations"]
    doc = create(hksd, {"name": name(), "schedule": "* * * * *", "target": {"function": {
        "id": fn, "method": "PUT", "path": "/hook?tag=cron", "headers": {"X-Job": "nightly"},
        "body": "{\"from\": \"cron\"}"}}})
    r = wait_for(lambda: [x for x in runs(hksd, doc["id"]) if x["status"] != "running"],
                 timeout=30, what="a scheduled invocation")[0]
    assert r["status"] == "succeeded" and r["http_status"] == 201, r
    assert r["logs"].startswith("HTTP 201\n")
    echoed = json.loads(r["logs"].split("\n", 1)[1])
    assert echoed["method"] == "PUT" and echoed["path"] == "/hook"
    assert echoed["query"] == {"tag": "cron"}
    assert echoed["headers"]["x-job"] == "nightly"
    assert echoed["body"] == "{\"from\": \"cron\"}"
    call(hksd, "DELETE", "%s/%s" % (CRONJOBS, doc["id"]))
    after = call(hksd, "GET", "/internal/v1/functions/" + fn)[1]["invocations"]
    assert after > before


def test_function_answering_500_is_a_failed_run(hksd, fn):
    doc = create(hksd, {"name": name(), "schedule": "@yearly", "target": {"function": {
        "id": fn, "path": "/?status=500"}}})
    status, run = call(hksd, "POST", "%s/%s/trigger" % (CRONJOBS, doc["id"]))
    assert status == 201 and run["trigger"] == "manual" and run["status"] == "running"
    r = wait_for(lambda: [x for x in runs(hksd, doc["id"]) if x["status"] != "running"],
                 what="the run")[0]
    assert r["status"] == "failed" and r["reason"] == "HTTP 500" and r["http_status"] == 500
    status, view = call(hksd, "GET", "%s/%s" % (CRONJOBS, doc["id"]))
    assert view["last_result"] == "failed"


# ---------------------------------------------------------------- tasks are sandboxed

def finished_run(d, ref, number=None):
    def done():
        rs = [x for x in runs(d, ref) if x["status"] != "running"
              and (number is None or x["number"] == number)]
        return rs[0] if rs else None
    return wait_for(done, timeout=40, what="a finished run")


def trigger_and_wait(d, doc):
    status, run = call(d, "POST", "%s/%s/trigger" % (CRONJOBS, doc["id"]))
    assert status == 201, run
    return finished_run(d, doc["id"], run["number"])


def test_task_cannot_write_its_code_or_reach_the_network(hksd, fn):
    code = ("import socket\n"
            "try:\n    open('/code/pwned', 'w')\n    print('WROTE')\n"
            "except OSError as e:\n    print('write refused', e.errno)\n"
            "try:\n    s = socket.socket()\n    s.settimeout(2)\n"
            "    s.connect(('1.1.1.1', 80))\n    print('CONNECTED')\n"
            "except OSError as e:\n    print('network refused', e.errno)\n")
    doc = create(hksd, {"name": name(), "schedule": "@yearly", "target": task(fn, code)})
    r = trigger_and_wait(hksd, doc)
    assert r["status"] == "succeeded", r["logs"]
    assert "write refused" in r["logs"] and "WROTE" not in r["logs"]
    assert "network refused" in r["logs"] and "CONNECTED" not in r["logs"]
    assert not pathlib.Path(hksd.state, "fn", fn, "code", "pwned").exists()


def test_task_exit_code_timeout_and_memory(hksd, fn):
    doc = create(hksd, {"name": name(), "schedule": "@yearly",
                        "target": task(fn, "import sys; print('bye'); sys.exit(7)")})
    r = trigger_and_wait(hksd, doc)
    assert r["status"] == "failed" and r["exit_code"] == 7 and r["reason"] == "exit code 7"
    assert "bye" in r["logs"]
    doc = create(hksd, {"name": name(), "schedule": "@yearly",
                        "target": task(fn, "import time; time.sleep(30)", timeout_seconds=1)})
    r = trigger_and_wait(hksd, doc)
    assert r["status"] == "failed" and r["reason"] == "timed out after 1 s", r
    assert r["duration_ms"] < 15000
    doc = create(hksd, {"name": name(), "schedule": "@yearly",
                        "target": {"task": {"template": fn, "command": ["no-such-program"]}}})
    r = trigger_and_wait(hksd, doc)
    assert r["status"] == "failed", r


def test_task_output_flood_is_capped(hksd, fn):
    code = "import sys\nfor i in range(200000): sys.stdout.write('x' * 99 + '\\n')"
    doc = create(hksd, {"name": name(), "schedule": "@yearly", "target": task(fn, code)})
    r = trigger_and_wait(hksd, doc)
    assert r["log_truncated"] is True and r["log_bytes"] == 256 * 1024
    full = runs(hksd, doc["id"], query="?log_bytes=262144")[0]
    assert "[hksd] output truncated at 256 KiB" in full["logs"]
    assert call(hksd, "GET", "%s/%s/runs?log_bytes=999999999" % (CRONJOBS, doc["id"]))[0] == 422
    assert call(hksd, "GET", "%s/%s/runs?limit=0" % (CRONJOBS, doc["id"]))[0] == 422


# ---------------------------------------------------------------- policies, suspend, delete

SLOW = "import time; print('started', flush=True); time.sleep(20)"


def test_forbid_refuses_a_second_run(hksd, fn):
    doc = create(hksd, {"name": name(), "schedule": "@yearly", "concurrency_policy": "Forbid",
                        "target": task(fn, SLOW)})
    assert call(hksd, "POST", "%s/%s/trigger" % (CRONJOBS, doc["id"]))[0] == 201
    status, err = call(hksd, "POST", "%s/%s/trigger" % (CRONJOBS, doc["id"]))
    assert status == 409 and "Forbid" in err["error"]["message"]
    call(hksd, "DELETE", "%s/%s" % (CRONJOBS, doc["id"]))


def test_replace_cancels_the_run_going(hksd, fn):
    doc = create(hksd, {"name": name(), "schedule": "@yearly", "concurrency_policy": "Replace",
                        "failed_jobs_history_limit": 5, "target": task(fn, SLOW)})
    _, first = call(hksd, "POST", "%s/%s/trigger" % (CRONJOBS, doc["id"]))
    wait_for(lambda: "started" in (runs(hksd, doc["id"])[0].get("logs") or ""), what="start")
    _, second = call(hksd, "POST", "%s/%s/trigger" % (CRONJOBS, doc["id"]))
    r = finished_run(hksd, doc["id"], first["number"])
    assert r["status"] == "failed" and "replaced by a newer run" in r["reason"], r
    status, view = call(hksd, "GET", "%s/%s" % (CRONJOBS, doc["id"]))
    assert view["active_runs"] == ["%s-%d" % (doc["id"], second["number"])]
    call(hksd, "DELETE", "%s/%s" % (CRONJOBS, doc["id"]))


def sleepers(marker):
    found = []
    for p in pathlib.Path("/proc").iterdir():
        try:
            if p.name.isdigit() and marker in (p / "cmdline").read_bytes():
                found.append(p.name)
        except OSError:
            pass
    return found


def test_delete_with_a_run_going_kills_it_and_removes_everything(hksd, fn):
    marker = b"import time; time.sleep(31.337)"
    doc = create(hksd, {"name": name(), "schedule": "@yearly",
                        "target": task(fn, marker.decode())})
    call(hksd, "POST", "%s/%s/trigger" % (CRONJOBS, doc["id"]))
    wait_for(lambda: sleepers(marker), what="the task's process")
    t0 = time.time()
    status, out = call(hksd, "DELETE", "%s/%s" % (CRONJOBS, doc["name"]))
    assert status == 200 and out == {"id": doc["id"], "deleted": True}
    assert time.time() - t0 < 5
    wait_for(lambda: not sleepers(marker), timeout=15, what="the task to be killed")
    assert call(hksd, "GET", "%s/%s" % (CRONJOBS, doc["id"]))[0] == 404
    assert call(hksd, "GET", "%s/%s/runs" % (CRONJOBS, doc["id"]))[0] == 404
    assert call(hksd, "DELETE", "%s/%s" % (CRONJOBS, doc["id"]))[0] == 404
    # the files go once the cancelled run has ended
    wait_for(lambda: not pathlib.Path(hksd.state, "cronjobs", doc["id"]).exists(), timeout=15,
             what="the CronJob's directory to be removed")


def test_suspend_stops_scheduling_and_resume_restarts_it(hksd, fn):
    doc = create(hksd, {"name": name(), "schedule": "* * * * *",
                        "target": task(fn, "print('tick')")})
    wait_for(lambda: runs(hksd, doc["id"]), what="a first run")
    status, view = call(hksd, "PATCH", "%s/%s" % (CRONJOBS, doc["id"]), {"suspend": True})
    assert status == 200 and view["suspend"] is True and view["next_run_at"] is None
    time.sleep(0.5)
    count = max(r["number"] for r in runs(hksd, doc["id"]))
    time.sleep(3)  # three minutes of the sped-up clock
    assert max(r["number"] for r in runs(hksd, doc["id"])) == count
    # a manual run works while suspended, as `kubectl create job --from=cronjob/...` does
    r = trigger_and_wait(hksd, doc)
    assert r["trigger"] == "manual" and r["status"] == "succeeded"
    status, view = call(hksd, "PATCH", "%s/%s" % (CRONJOBS, doc["id"]), {"suspend": False})
    assert status == 200 and view["next_run_at"] is not None
    # of the minutes missed while suspended only the latest runs (no starting deadline), as
    # Kubernetes does; the others are counted as missed
    wait_for(lambda: call(hksd, "GET", CRONJOBS + "/" + doc["id"])[1]["missed_runs"] >= 2,
             what="missed runs counted")
    wait_for(lambda: max(r["number"] for r in runs(hksd, doc["id"])) > count + 1, timeout=30,
             what="scheduled runs after resume")
    call(hksd, "DELETE", "%s/%s" % (CRONJOBS, doc["id"]))


def test_update_changes_schedule_and_target(hksd, fn):
    doc = create(hksd, {"name": name(), "schedule": "@yearly", "target": {"function": {"id": fn}}})
    status, view = call(hksd, "PATCH", "%s/%s" % (CRONJOBS, doc["id"]),
                        {"schedule": "30 4 * * *", "timezone": "America/New_York",
                         "target": task(fn, "print(2)")})
    assert status == 200, view
    assert view["schedule"] == "30 4 * * *" and view["timezone"] == "America/New_York"
    assert "task" in view["target"] and view["updated_at"] >= view["created_at"]
    status, err = call(hksd, "PATCH", "%s/%s" % (CRONJOBS, doc["id"]), {"name": "renamed"})
    assert status == 422 and err["error"]["details"]["field"] == "name"
    status, err = call(hksd, "PATCH", "%s/%s" % (CRONJOBS, doc["id"]), {"schedule": "* * 32 * *"})
    assert status == 422 and "day of month" in err["error"]["message"]
    status, same = call(hksd, "GET", "%s/%s" % (CRONJOBS, doc["id"]))
    assert same["schedule"] == "30 4 * * *"  # a refused change leaves it as it was
    assert call(hksd, "PATCH", CRONJOBS + "/no-such-job", {"suspend": True})[0] == 404


def test_template_deleted_fails_the_run(hksd):
    other = deploy_ok(hksd, {"runtime": "python", "code": PY_ECHO}, token=tok(hksd))["id"]
    doc = create(hksd, {"name": name(), "schedule": "@yearly", "target": task(other, "print(1)")})
    assert call(hksd, "POST", "/internal/v1/operations/delete-function", {"id": other})[0] == 200
    r = trigger_and_wait(hksd, doc)
    assert r["status"] == "failed" and "does not exist" in r["reason"], r


def test_list_and_metrics_and_audit(hksd, fn):
    a = create(hksd, {"name": name("zz"), "schedule": "@weekly", "target": {"function": {"id": fn}}})
    status, listed = call(hksd, "GET", CRONJOBS)
    names = [c["name"] for c in listed["cronjobs"]]
    assert names == sorted(names) and a["name"] in names
    for c in listed["cronjobs"]:
        assert {"next_run_at", "last_run_at", "last_result", "schedule"} <= set(c)
    status, _, metrics = hksd.request("GET", "/metrics")
    text = metrics.decode()
    assert "hks_cronjobs " in text and 'hks_cronjob_runs_total{result="succeeded"}' in text
    audit = pathlib.Path(hksd.state, "audit.log").read_text()
    assert '"action":"cronjob.create"' in audit and a["id"] in audit
    assert '"action":"cronjob.trigger"' in audit and '"action":"cronjob.delete"' in audit


# ---------------------------------------------------------------- restarts

def test_history_survives_a_restart_and_a_run_cut_short_is_failed():
    d = Daemon(env=FAST)
    try:
        f = deploy_ok(d, {"runtime": "python", "code": PY_ECHO, "ttl_seconds": 3600},
                      token=tok(d))["id"]
        ok = create(d, {"name": "keeps", "schedule": "@yearly", "target": task(f, "print('x')")})
        r = trigger_and_wait(d, ok)
        slow = create(d, {"name": "cut", "schedule": "@yearly", "target": task(f, SLOW)})
        call(d, "POST", "%s/%s/trigger" % (CRONJOBS, slow["id"]))
        wait_for(lambda: "started" in (runs(d, slow["id"])[0].get("logs") or ""), what="start")
    finally:
        assert d.stop() == 0
    d2 = Daemon(env=FAST, state=d.state)
    try:
        status, view = call(d2, "GET", CRONJOBS + "/keeps")
        assert status == 200 and view["id"] == ok["id"] and view["last_result"] == "succeeded"
        again = runs(d2, "keeps")
        assert again[0]["id"] == r["id"] and "x" in again[0]["logs"]
        cut = runs(d2, "cut")[0]
        assert cut["status"] == "failed" and cut["reason"] in (
            "cancelled: hksd stopped", "hksd stopped while the run was going"), cut
        # numbering goes on after the restart
        status, run = call(d2, "POST", CRONJOBS + "/keeps/trigger")
        assert status == 201 and run["number"] == r["number"] + 1
    finally:
        d2.stop()


def test_missed_runs_follow_the_starting_deadline_across_a_restart():
    # hourly jobs created at 00:10; hksd is down until 02:12 (clock at real speed from there):
    # the latest missed time, 02:00, is 12 minutes old
    d = Daemon(env={"HKSD_CRON_CLOCK": "1767226200"})  # 2026-01-01T00:10:00Z
    try:
        f = deploy_ok(d, {"runtime": "python", "code": PY_ECHO, "ttl_seconds": 3600},
                      token=tok(d))["id"]
        create(d, {"name": "strict", "schedule": "0 * * * *", "starting_deadline_seconds": 600,
                   "target": task(f, "print('strict ran')")})
        create(d, {"name": "lenient", "schedule": "0 * * * *", "starting_deadline_seconds": 900,
                   "target": task(f, "print('lenient ran')")})
        create(d, {"name": "nodeadline", "schedule": "0 * * * *",
                   "target": task(f, "print('caught up')")})
    finally:
        d.stop()
    d2 = Daemon(env={"HKSD_CRON_CLOCK": "1767233520"}, state=d.state)  # 02:12:00Z
    try:
        lenient = finished_run(d2, "lenient")
        assert lenient["scheduled_at"] == "2026-01-01T02:00:00Z" and "lenient ran" in lenient["logs"]
        caught = finished_run(d2, "nodeadline")
        assert caught["scheduled_at"] == "2026-01-01T02:00:00Z"
        assert len(runs(d2, "nodeadline")) == 1  # only the latest missed time is run
        time.sleep(1)
        assert runs(d2, "strict") == []
        status, strict = call(d2, "GET", CRONJOBS + "/strict")
        assert strict["missed_runs"] == 2 and strict["next_run_at"] == "2026-01-01T03:00:00Z"
        assert strict["last_schedule_at"] == "2026-01-01T02:00:00Z"
    finally:
        d2.stop()
