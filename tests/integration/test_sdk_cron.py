"""The Python SDK's CronJobs (client.cronjobs) against a real hksd whose scheduler clock runs 60
times as fast (HKSD_CRON_CLOCK): create with a function and a task target, list/get, scheduled
runs with their logs, trigger(wait=True), suspend/resume, update, delete, and hksd's refusals as
typed exceptions (Conflict, InvalidRequest with .field, HksNotFound)."""

import datetime
import itertools
import os
import shutil
import sys
import time

import pytest

from hksd_process import HKSD, REPO, Daemon  # noqa: E402
from test_functions import PY_ECHO  # noqa: E402
sys.path.insert(0, str(REPO / "sdk" / "python"))

from hks_sdk import (Client, Conflict, CronJob, CronJobRun, HksError, HksNotFound,  # noqa: E402
                     InvalidRequest, PermissionDenied, TaskSpec)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(HKSD),
                                reason="needs root and build/hksd")

SCOPES = ("functions:deploy functions:invoke functions:read functions:delete "
          "cronjobs:read cronjobs:write")
# from 2026-01-01T00:00:00Z, a minute per second: "* * * * *" fires every real second
FAST = {"HKSD_CRON_CLOCK": "1767225600x60"}

_names = itertools.count()


def name(prefix="sdk"):
    return "%s-%d" % (prefix, next(_names))


def wait_for(predicate, timeout=40, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture(scope="module")
def hksd():
    d = Daemon(env=FAST)
    yield d
    assert d.stop() == 0, d.logs()
    shutil.rmtree(d.state, ignore_errors=True)


@pytest.fixture(scope="module")
def client(hksd):
    c = Client(url=hksd.url, token=hksd.token(scope=SCOPES, ttl="30m"), project="p1")
    yield c
    c.close()


@pytest.fixture(scope="module")
def fn(client):
    f = client.functions.deploy(code=PY_ECHO, name="echo", env={"GREETING": "from-template"},
                                ttl="1h")
    yield f
    f.delete()


@pytest.fixture
def cronjobs(client):
    """Deletes, at the end of the test, every CronJob it created."""
    made = []
    yield made
    for cj in made:
        cj.delete()


# ---------------------------------------------------------------- function target

def test_function_target_scheduled_runs_with_logs(client, fn, cronjobs):
    cj = client.cronjobs.create(name(), "* * * * *", function=fn, method="PUT",
                                path="/hook?tag=cron", headers={"X-Job": "sdk"},
                                body={"from": "cron"})
    cronjobs.append(cj)
    assert isinstance(cj, CronJob) and cj.id.startswith("cj-") and len(cj.id) == 23
    assert cj.target == {"function": {"id": fn.id, "method": "PUT", "path": "/hook?tag=cron",
                                      "headers": {"X-Job": "sdk",
                                                  "content-type": "application/json"},
                                      "body": '{"from": "cron"}'}}
    assert (cj.timezone, cj.concurrency_policy, cj.suspended) == ("UTC", "Allow", False)
    assert (cj.successful_jobs_history_limit, cj.failed_jobs_history_limit) == (3, 1)
    assert cj.starting_deadline_seconds is None and cj.backend == "local"
    assert cj.project == "p1" and cj.owner == "agent-1"
    assert isinstance(cj.created_at, datetime.datetime) and cj.created_at.tzinfo is not None
    assert cj.next_run_at is not None and cj.last_run_at is None and cj.last_result is None

    run = wait_for(lambda: [r for r in cj.runs() if r.finished], what="a scheduled run")[0]
    assert isinstance(run, CronJobRun)
    assert run.trigger == "schedule" and run.succeeded and run.http_status == 201, run
    assert run.reason == "HTTP 201" and run.exit_code is None
    assert run.id == "%s-%d" % (cj.id, run.number) and run.cronjob_id == cj.id
    assert run.logs.startswith("HTTP 201\n")
    assert '"method": "PUT"' in run.logs and '"x-job": "sdk"' in run.logs
    assert '\\"from\\": \\"cron\\"' in run.logs  # the body, echoed back as a JSON string
    assert run.scheduled_at.second == 0 and run.scheduled_at.tzinfo is not None  # a whole minute
    assert run.started_at <= run.finished_at and run.duration_ms >= 0

    cj.refresh()
    assert cj.last_result == "succeeded" and cj.last_run_at is not None
    assert cj.next_run_at > cj.last_run_at
    assert len(cj.runs(limit=1)) == 1


# ---------------------------------------------------------------- task target

def test_task_target_trigger_wait_succeeding_and_failing(client, fn, cronjobs):
    ok = client.cronjobs.create(name(), "@yearly", task=TaskSpec(
        template=fn.id, command=["python3", "-c", "import os, sys; print(42, os.getcwd(), "
                                 "os.environ['GREETING'], os.environ['EXTRA'], sys.argv[1:])"],
        args=["a1"], env={"EXTRA": "x"}, timeout_seconds=60))
    cronjobs.append(ok)
    assert ok.target == {"task": {"template": fn.id, "command": ok.target["task"]["command"],
                                  "args": ["a1"], "env": {"EXTRA": "x"}, "timeout_seconds": 60}}
    run = ok.trigger(wait=True)
    assert run.succeeded and run.finished and run.trigger == "manual", run
    assert run.exit_code == 0 and run.reason == "exit code 0" and run.http_status is None
    assert "42 /code from-template x ['a1']" in run.logs
    assert isinstance(run.finished_at, datetime.datetime) and run.duration_ms is not None

    # the API's dict form of a task works too, and a failure is a result, not an exception
    bad = client.cronjobs.create(name(), "@yearly", task={
        "template": fn, "command": ["python3", "-c", "import sys; print('bye'); sys.exit(3)"]})
    cronjobs.append(bad)
    assert bad.target["task"]["template"] == fn.id
    assert bad.target["task"]["timeout_seconds"] == 300  # hksd's default
    run = client.cronjobs.trigger(bad.name, wait=True)
    assert not run.succeeded and run.status == "failed", run
    assert run.exit_code == 3 and run.reason == "exit code 3" and "bye" in run.logs
    assert bad.refresh().last_result == "failed"


def test_trigger_without_wait_returns_the_run_going(client, fn, cronjobs):
    cj = client.cronjobs.create(name(), "@yearly", task=TaskSpec(
        template=fn, command=["python3", "-c", "import time; time.sleep(2); print('slept')"]))
    cronjobs.append(cj)
    run = cj.trigger()
    assert run.status == "running" and not run.finished and not run.succeeded
    assert run.trigger == "manual" and run.started_at is not None
    assert run.id in cj.refresh().active_runs
    done = wait_for(lambda: [r for r in cj.runs() if r.id == run.id and r.finished],
                    what="the run")[0]
    assert done.succeeded and "slept" in done.logs


def test_scheduled_task_runs_appear_with_logs(client, fn, cronjobs):
    cj = client.cronjobs.create(name(), "* * * * *", task=TaskSpec(
        template=fn, command=["python3", "-c", "print('tick')"]))
    cronjobs.append(cj)
    runs = wait_for(lambda: [r for r in cj.runs() if r.finished] if len(
        [r for r in cj.runs() if r.finished]) >= 2 else None, what="two scheduled runs")
    assert all(r.trigger == "schedule" and r.succeeded and "tick" in r.logs for r in runs), runs
    assert runs[0].number > runs[1].number  # newest first
    assert runs[0].scheduled_at > runs[1].scheduled_at
    cut = [r for r in cj.runs(log_bytes=2) if r.finished][0]
    assert cut.logs_cut is True and cut.logs == "k\n"  # the end of "tick\n"


def test_with_a_temporary_function_as_template(client):
    with client.functions.temporary(code=PY_ECHO, name="tmpl", ttl="10m") as tmp:
        cj = client.cronjobs.create(name(), "@daily", task=TaskSpec(
            template=tmp, command=["python3", "-c", "import os; print(os.getcwd(), len(os.listdir()) > 0)"]))
        try:
            run = cj.trigger(wait=True, timeout=60)
            assert run.succeeded and "/code True" in run.logs, run  # over the function's code
        finally:
            assert cj.delete() is True
    # the template gone, a CronJob naming it is refused with the field
    with pytest.raises(InvalidRequest) as ei:
        client.cronjobs.create(name(), "@daily", task=TaskSpec(template=tmp, command=["true"]))
    assert ei.value.field == "target.task.template" and ei.value.status == 422


def test_trigger_wait_timeout_and_a_run_not_kept(client, fn, cronjobs):
    slow = client.cronjobs.create(name(), "@yearly", task=TaskSpec(
        template=fn, command=["python3", "-c", "import time; time.sleep(30)"]))
    cronjobs.append(slow)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        slow.trigger(wait=True, timeout=1)
    assert time.monotonic() - t0 < 10
    # no history kept: the run is over, but hksd cannot say how it went
    unkept = client.cronjobs.create(name(), "@yearly", successful_jobs_history_limit=0,
                                    task=TaskSpec(template=fn, command=["true"]))
    cronjobs.append(unkept)
    with pytest.raises(HksError) as ei:
        unkept.trigger(wait=True, timeout=60)
    assert ei.value.code == "run_not_kept" and "history_limit" in str(ei.value)


# ---------------------------------------------------------------- list, get, update, delete

def test_list_get_by_id_and_name(client, fn, cronjobs):
    a = client.cronjobs.create(name("zz"), "@weekly", function=fn.id)
    cronjobs.append(a)
    listed = client.cronjobs.list()
    names = [c.name for c in listed]
    assert names == sorted(names) and a in listed
    for ref in (a.id, a.name):
        got = client.cronjobs.get(ref)
        assert got == a and got.schedule == "@weekly" and got.record["id"] == a.id
    assert a.target["function"] == {"id": fn.id, "method": "POST", "path": "/", "headers": {},
                                    "body": ""}


def test_suspend_and_resume(client, fn, cronjobs):
    cj = client.cronjobs.create(name(), "* * * * *", task=TaskSpec(
        template=fn, command=["python3", "-c", "print('tick')"]))
    cronjobs.append(cj)
    wait_for(cj.runs, what="a first run")
    assert cj.suspend() is cj
    assert cj.suspended is True and cj.record["suspend"] is True and cj.next_run_at is None
    time.sleep(0.5)
    count = max(r.number for r in cj.runs())
    time.sleep(3)  # three minutes of the sped-up clock
    assert max(r.number for r in cj.runs()) == count
    assert client.cronjobs.get(cj.name).suspended is True
    resumed = client.cronjobs.resume(cj.name)
    assert resumed.suspended is False and resumed.next_run_at is not None
    wait_for(lambda: max(r.number for r in cj.runs()) > count, what="runs after resume")
    assert cj.refresh().suspended is False
    suspended = client.cronjobs.suspend(cj.id)
    assert suspended.suspended is True
    assert cj.resume().suspended is False


def test_update_schedule_and_target(client, fn, cronjobs):
    cj = client.cronjobs.create(name(), "@yearly", function=fn, timezone="Europe/Berlin",
                                starting_deadline_seconds=600)
    cronjobs.append(cj)
    before = cj.updated_at
    assert cj.update(schedule="30 4 * * *", timezone="America/New_York") is cj
    assert cj.schedule == "30 4 * * *" and cj.timezone == "America/New_York"
    assert cj.starting_deadline_seconds == 600 and cj.updated_at >= before
    assert cj.next_run_at.astimezone(datetime.timezone.utc).hour in (9, 8)  # 04:30 EST/EDT
    assert "function" in cj.target  # untouched
    changed = client.cronjobs.update(cj.name, starting_deadline_seconds=None,
                                     concurrency_policy="Forbid",
                                     task=TaskSpec(template=fn, command=["true"]))
    assert changed.starting_deadline_seconds is None and changed.concurrency_policy == "Forbid"
    assert changed.target["task"]["command"] == ["true"] and "function" not in changed.target
    # a refused change names the field and leaves the CronJob as it was
    with pytest.raises(InvalidRequest) as ei:
        cj.update(schedule="* * 32 * *")
    assert ei.value.field == "schedule" and "day of month" in ei.value.message
    assert cj.refresh().schedule == "30 4 * * *"
    with pytest.raises(TypeError):
        cj.update(colour="blue")  # caught before any request
    with pytest.raises(TypeError):
        cj.update(body="x")  # a call's fields go with function=


def test_delete(client, fn):
    cj = client.cronjobs.create(name(), "@hourly", function=fn)
    assert client.cronjobs.delete(cj.name) is True
    with pytest.raises(HksNotFound):
        client.cronjobs.get(cj.id)
    with pytest.raises(HksNotFound):
        client.cronjobs.delete(cj.id)
    assert client.cronjobs.delete(cj.id, missing_ok=True) is False
    assert cj.delete() is False  # already gone
    with pytest.raises(HksNotFound):
        cj.runs()
    assert cj not in client.cronjobs.list()


# ---------------------------------------------------------------- refusals as typed exceptions

def test_duplicate_name_is_conflict(client, fn, cronjobs):
    cj = client.cronjobs.create(name(), "@hourly", function=fn)
    cronjobs.append(cj)
    with pytest.raises(Conflict) as ei:
        client.cronjobs.create(cj.name, "@daily", function=fn)
    e = ei.value
    assert isinstance(e, HksError) and e.status == 409 and e.code == "conflict"
    assert "already exists" in e.message and e.request_id


def test_forbid_trigger_while_running_is_conflict(client, fn, cronjobs):
    cj = client.cronjobs.create(name(), "@yearly", concurrency_policy="Forbid", task=TaskSpec(
        template=fn, command=["python3", "-c", "import time; time.sleep(20)"]))
    cronjobs.append(cj)
    cj.trigger()
    with pytest.raises(Conflict) as ei:
        cj.trigger()
    assert "Forbid" in ei.value.message


@pytest.mark.parametrize("kwargs,field", [
    ({"schedule": "61 * * * *"}, "schedule"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"concurrency_policy": "Sometimes"}, "concurrency_policy"),
    ({"successful_jobs_history_limit": 101}, "successful_jobs_history_limit"),
    ({"path": "/x", "method": "BREW"}, "target.function.method"),
    ({"headers": {"Content-Length": "5"}}, "target.function.headers.Content-Length"),
])
def test_invalid_definition_names_the_field(client, fn, kwargs, field):
    args = {"name": name(), "schedule": "@hourly", "function": fn}
    args.update(kwargs)
    with pytest.raises(InvalidRequest) as ei:
        client.cronjobs.create(**args)
    assert ei.value.status == 422 and ei.value.code == "invalid"
    assert ei.value.field == field == ei.value.details["field"], ei.value
    assert not [c for c in client.cronjobs.list() if c.name == args["name"]]


def test_bad_schedule_message(client, fn):
    with pytest.raises(InvalidRequest) as ei:
        client.cronjobs.create(name(), "61 * * * *", function=fn)
    assert ei.value.field == "schedule"
    assert "schedule: minute: 61 is above the maximum 59" in str(ei.value)


def test_arguments_checked_before_any_request(client, fn):
    task = TaskSpec(template=fn, command=["true"])
    with pytest.raises(TypeError):
        client.cronjobs.create(name(), "@daily")  # neither target
    with pytest.raises(TypeError):
        client.cronjobs.create(name(), "@daily", function=fn, task=task)  # both
    with pytest.raises(TypeError):
        client.cronjobs.create(name(), "@daily", task=task, body="x")  # a call's field
    with pytest.raises(TypeError):
        client.cronjobs.create(name(), "@daily", task=TaskSpec(template=fn, command="true"))
    with pytest.raises(TypeError):
        client.cronjobs.create(name(), "@daily", function=fn, body=b"bytes")


def test_scopes(hksd, fn, cronjobs, client):
    cj = client.cronjobs.create(name(), "@hourly", function=fn)
    cronjobs.append(cj)
    reader = Client(url=hksd.url, token=hksd.token(scope="cronjobs:read"))
    assert reader.cronjobs.get(cj.id) == cj
    with pytest.raises(PermissionDenied):
        reader.cronjobs.trigger(cj.id)
    with pytest.raises(PermissionDenied):
        reader.cronjobs.create(name(), "@hourly", function=fn)
    other = Client(url=hksd.url, token=hksd.token(scope=SCOPES, project="p2"))
    with pytest.raises(HksNotFound):
        other.cronjobs.get(cj.name)  # another project's CronJob is not there
