"""hks-func cron against a real hksd (hksd_process.py) whose CronJob clock runs 60 times as fast
as the real one (HKSD_CRON_CLOCK), so that "* * * * *" fires every second: create with a function
target (method, path, headers and body reaching the function) and a task target (a command over
a deployed function's code, from --command or after --), names of functions resolved as invoke
does, list/get/runs in each output format, a scheduled run showing up in the history with its log,
trigger --wait for a task that succeeds and one that fails (exit status, log on stdout, one line on
stderr), suspend/resume, delete, usage errors (exit 2, one line) and hksd's refusals (exit 1, its
message on one line with a hint)."""

import json
import os
import re
import time

import pytest

from hksd_process import Daemon
from test_cli_func import ALL, HKS_FUNC, HKSD, Cli, one_line_error, write

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(HKSD) or not os.path.exists(HKS_FUNC),
    reason="needs root, build/hksd and build/hks-func")

SCOPES = ALL + " cronjobs:read cronjobs:write"
PROJECT = "cron-project"
RARE = "0 0 1 1 *"  # once a year: at 60x, not within a test run

ECHO_JS = r"""
module.exports = { handle: async (context, body) => {
  return { statusCode: Number(context.query.status || 200),
           headers: { 'content-type': 'application/json' },
           body: JSON.stringify({ method: context.method, query: context.query, job: context.headers['x-job'] || null,
                                  type: context.headers['content-type'] || null,
                                  body: body || null }) };
} };
"""

JOB_PY = """\
import os, sys
print("job argv=%s X=%s FROM_FN=%s" % (sys.argv[1:], os.environ.get("X"), os.environ.get("FROM_FN")),
      flush=True)
print("to stderr", file=sys.stderr, flush=True)
sys.exit(int(os.environ.get("CODE", "0")))
"""


# ---------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def hksd():
    # the scheduler's clock: starts on a minute, 60 times as fast (a minute a second)
    start = int(time.time()) // 60 * 60
    d = Daemon(env={"HKSD_CRON_CLOCK": "%dx60" % start})
    d.tokens = {}
    yield d
    d.stop()


def token(d, scope=SCOPES, project=PROJECT):
    key = (project, scope)
    if key not in d.tokens:
        d.tokens[key] = d.token(scope=scope, sub="dev", project=project, ttl="30m")
    return d.tokens[key]


class Work:
    """A logged-in hks-func with two deployed functions: echo (node, answers what it got) and
    jobs (python, with job.py for tasks)."""

    def __init__(self, home, d):
        self.cli = Cli(home, d)
        self.cli.ok("login", "--server", d.url, "--token", token(d))
        echo = self.cli.home / "echo"
        write(echo / "func.yaml", "specVersion: 0.36.0\nname: echo\nruntime: node\n")
        write(echo / "index.js", ECHO_JS)
        self.echo = json.loads(self.cli.ok("deploy", "-o", "json", cwd=echo).stdout)
        self.cli.ok("create", "-l", "python", "jobs")
        jobs = self.cli.home / "jobs"
        write(jobs / "job.py", JOB_PY)
        self.jobs = json.loads(self.cli.ok("deploy", "-o", "json", "--env", "FROM_FN=fn-env",
                                           "--ttl", "2h", cwd=jobs).stdout)


@pytest.fixture(scope="module")
def work(tmp_path_factory, hksd):
    return Work(tmp_path_factory.mktemp("home"), hksd)


@pytest.fixture
def cli(work):
    return work.cli


def cron_json(cli, *args, **kw):
    return json.loads(cli.ok("cron", *args, "-o", "json", **kw).stdout)


def runs_of(cli, name, *extra):
    return cron_json(cli, "runs", name, *extra)["runs"]


def wait_for(what, predicate, timeout=30, every=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting for " + what)


def table(stdout):
    """Rows of a table hks-func printed, split on runs of 2+ spaces (cells hold single ones)."""
    return [re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines()]


# ---------------------------------------------------------------- create, list, get

def test_create_with_a_function_target_and_the_output_formats(work, cli):
    r = cli.ok("cron", "create", "ping", "--schedule", RARE, "--timezone", "Europe/Berlin",
               "--function", "echo", "-X", "put", "--path", "/hook?status=201", "-H",
               "X-Job: nightly", "--data", '{"k": "v"}', "--concurrency", "forbid",
               "--deadline", "5m", "--keep-succeeded", "4", "--keep-failed", "2")
    lines = r.stdout.splitlines()
    assert re.match(r'^CronJob ping \(cj-[0-9a-f]{20}\) created: "0 0 1 1 \*" in Europe/Berlin, '
                    r'invoking echo\.$', lines[0]), r.stdout
    assert lines[1].startswith("Next run: ") and r.stderr == ""
    cj = cron_json(cli, "get", "ping")
    assert cj["name"] == "ping" and cj["timezone"] == "Europe/Berlin"
    assert cj["concurrency_policy"] == "Forbid" and cj["starting_deadline_seconds"] == 300
    assert cj["successful_jobs_history_limit"] == 4 and cj["failed_jobs_history_limit"] == 2
    assert cj["suspend"] is False and cj["next_run_at"] and cj["last_run_at"] is None
    # the function named by its name was resolved to its id; the request is as given
    assert cj["target"] == {"function": {
        "id": work.echo["id"], "method": "PUT", "path": "/hook?status=201",
        "headers": {"x-job": "nightly", "content-type": "application/json"},
        "body": '{"k": "v"}'}}
    # get: table, name; by id too
    r = cli.ok("cron", "get", cj["id"])
    assert re.search(r"^Name:\s+ping$", r.stdout, re.M)
    assert re.search(r"^Function:\s+echo \(%s\)$" % work.echo["id"], r.stdout, re.M)
    assert re.search(r"^Request:\s+PUT /hook\?status=201$", r.stdout, re.M)
    assert re.search(r"^Schedule:\s+0 0 1 1 \* \(Europe/Berlin\)$", r.stdout, re.M)
    assert re.search(r"^Last run:\s+never$", r.stdout, re.M)
    assert cli.ok("cron", "get", "ping", "-o", "name").stdout == "ping\n"
    # list: table, json, name (and the global -o)
    rows = table(cli.ok("cron", "list").stdout)
    assert rows[0] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPENDED", "NEXT RUN", "LAST RUN",
                       "RESULT"]
    row = next(x for x in rows[1:] if x[0] == "ping")
    assert row[1:4] == ["0 0 1 1 *", "Europe/Berlin", "no"] and row[5:] == ["-", "-"]
    listed = json.loads(cli.ok("cron", "list", "-o", "json").stdout)["cronjobs"]
    assert [c["id"] for c in listed if c["name"] == "ping"] == [cj["id"]]
    assert "ping" in cli.ok("cron", "list", "-o", "name").stdout.splitlines()
    assert "ping" in cli.ok("-o", "name", "cron", "list").stdout.splitlines()
    # trigger --wait: the function got the request; its answer (201) is the run's log
    r = cli.ok("cron", "trigger", "ping", "--wait")
    status_line, body = r.stdout.split("\n", 1)
    assert status_line == "HTTP 201"
    assert json.loads(body) == {"method": "PUT", "query": {"status": "201"},
                                "job": "nightly", "type": "application/json",
                                "body": {"k": "v"}}
    # the function answering 5xx is a failed run
    cli.ok("cron", "delete", "ping")
    cli.ok("cron", "create", "ping-fails", "--schedule", RARE, "--function",
           work.echo["id"], "--path", "/?status=503")
    r = cli("cron", "trigger", "ping-fails", "--wait")
    assert r.stdout.startswith("HTTP 503\n")
    one_line_error(r, 1, "run #1 of ping-fails failed", "HTTP 503")
    assert cli.ok("cron", "delete", "ping-fails", "-o", "name").stdout == "ping-fails\n"


def test_create_with_a_task_target_from_command_or_after_dashdash(work, cli):
    cj = json.loads(cli.ok("cron", "create", "task-words", "--schedule", "@daily", "--task",
                           "jobs", "--command", "python3 job.py 'a b' \"c \\\"d\\\"\" e\\ f",
                           "--env", "X=1", "--timeout", "90s", "-o", "json").stdout)
    assert cj["target"] == {"task": {"template": work.jobs["id"],
                                     "command": ["python3", "job.py", "a b", 'c "d"', "e f"],
                                     "args": [], "env": {"X": "1"}, "timeout_seconds": 90}}
    assert cj["schedule"] == "@daily"
    r = cli.ok("cron", "get", "task-words")
    assert re.search(r"^Command:\s+python3 job.py 'a b' 'c \"d\"' 'e f'$", r.stdout, re.M)
    assert re.search(r"^Timeout:\s+90s$", r.stdout, re.M)
    # after --, word for word (options after NAME and before -- still count)
    cj = json.loads(cli.ok("cron", "create", "task-dashdash", "--task", work.jobs["id"],
                           "--schedule", RARE, "-o", "json", "--", "python3", "job.py", "--x",
                           "-o", "json").stdout)
    assert cj["target"]["task"]["command"] == ["python3", "job.py", "--x", "-o", "json"]
    assert cj["target"]["task"]["template"] == work.jobs["id"]
    # -o name
    assert cli.ok("cron", "create", "task-name", "-s", RARE, "--task", "jobs", "-o", "name",
                  "-c", "true").stdout == "task-name\n"
    for name in ("task-words", "task-dashdash", "task-name"):
        cli.ok("cron", "delete", name)


# ---------------------------------------------------------------- runs

def test_a_scheduled_run_shows_up_in_the_history_with_its_log(work, cli):
    cli.ok("cron", "create", "every-minute", "--schedule", "* * * * *", "--task", "jobs",
           "--env", "X=scheduled", "--", "python3", "job.py", "tick")
    runs = wait_for("a scheduled run that succeeded", lambda: [
        r for r in runs_of(cli, "every-minute", "--logs")
        if r["trigger"] == "schedule" and r["status"] == "succeeded"])
    run = runs[0]
    assert run["reason"] == "exit code 0" and run["exit_code"] == 0
    assert "job argv=['tick'] X=scheduled FROM_FN=fn-env\n" in run["logs"]
    assert "to stderr\n" in run["logs"]
    cli.ok("cron", "suspend", "every-minute")  # no more runs while the table is checked
    # the table: RUN TRIGGER STATUS STARTED DURATION REASON
    rows = table(cli.ok("cron", "runs", "every-minute").stdout)
    assert rows[0] == ["RUN", "TRIGGER", "STATUS", "STARTED", "DURATION", "REASON"]
    done = [x for x in rows[1:] if x[2] == "succeeded"]
    assert done and done[0][1] == "schedule" and done[0][5] == "exit code 0"
    assert re.match(r"^#\d+$", done[0][0]) and re.match(r"^\d+(ms|\.\ds)$", done[0][4])
    # --logs: each run's log after the table
    r = cli.ok("cron", "runs", "every-minute", "--logs", "--limit", "1")
    assert len(table(r.stdout.split("\n\n")[0])) == 2
    assert re.search(r"^--- run #\d+ \(schedule, succeeded: exit code 0\), started ", r.stdout,
                     re.M)
    assert "job argv=['tick'] X=scheduled" in r.stdout
    # json without --logs carries no logs; name: the runs' ids
    assert all("logs" not in x for x in runs_of(cli, "every-minute"))
    ids = cli.ok("cron", "runs", "every-minute", "-o", "name").stdout.split()
    assert ids and all(re.match(r"^cj-[0-9a-f]{20}-\d+$", i) for i in ids)
    # list shows the last run and its result
    row = next(x for x in table(cli.ok("cron", "list").stdout)[1:] if x[0] == "every-minute")
    assert row[3] == "yes" and row[4] == "-" and row[5] != "-" and row[6] == "succeeded"
    cli.ok("cron", "delete", "every-minute")


def test_trigger_wait_exits_with_the_runs_result(work, cli):
    cli.ok("cron", "create", "job-ok", "--schedule", RARE, "--task", "jobs", "--env", "X=ok",
           "--", "python3", "job.py", "one", "two")
    cli.ok("cron", "create", "job-fails", "--schedule", RARE, "--task", "jobs", "--env",
           "CODE=3", "--command", "python3 job.py failing")
    r = cli.ok("cron", "trigger", "job-ok", "--wait")
    assert r.stdout == "job argv=['one', 'two'] X=ok FROM_FN=fn-env\nto stderr\n"
    assert r.stderr == ""  # not a terminal: no progress, no summary
    r = cli("cron", "trigger", "job-fails", "--wait")
    assert r.stdout == "job argv=['failing'] X=None FROM_FN=fn-env\nto stderr\n"
    one_line_error(r, 1, "run #1 of job-fails failed", "exit code 3", "cron runs job-fails")
    # -o json: the final record, logs included; the exit status still says how it went
    r = cli("cron", "trigger", "job-fails", "--wait", "-o", "json")
    run = json.loads(r.stdout)
    assert r.returncode == 1 and run["status"] == "failed" and run["exit_code"] == 3
    assert run["number"] == 2 and run["trigger"] == "manual" and "failing" in run["logs"]
    run = json.loads(cli.ok("cron", "trigger", "job-ok", "--wait", "-o", "json").stdout)
    assert run["status"] == "succeeded" and run["reason"] == "exit code 0"
    # without --wait: the run starts, and shows in the history
    r = cli.ok("cron", "trigger", "job-ok")
    m = re.match(r"^Run #(\d+) of job-ok started \((cj-[0-9a-f]{20}-\d+)\)", r.stdout)
    assert m, r.stdout
    wait_for("the triggered run to end", lambda: any(
        x["id"] == m.group(2) and x["status"] == "succeeded" for x in runs_of(cli, "job-ok")))
    # the failed runs kept: the history limit (1 failed run by default)
    failed = [x for x in runs_of(cli, "job-fails") if x["status"] == "failed"]
    assert [x["number"] for x in failed] == [2]
    cli.ok("cron", "delete", "job-ok")
    cli.ok("cron", "delete", "job-fails")


def test_forbid_refuses_a_second_run_and_delete_cancels_the_one_going(work, cli):
    cli.ok("cron", "create", "slow", "--schedule", RARE, "--concurrency", "Forbid", "--task",
           "jobs", "--", "python3", "-c", "import time; print('slow', flush=True); "
           "time.sleep(30)")
    run_id = cli.ok("cron", "trigger", "slow", "-o", "name").stdout.strip()
    r = cli("cron", "trigger", "slow")
    one_line_error(r, 1, "409", "Forbid", "wait for the run going")
    cj = cron_json(cli, "get", "slow")
    assert cj["active_runs"] == [run_id]
    rows = table(cli.ok("cron", "list").stdout)
    assert next(x for x in rows if x[0] == "slow")[6] == "running"
    # --wait gives up after --timeout, and says the run goes on
    r = cli("cron", "trigger", "slow", "--wait", "--timeout", "1s")
    one_line_error(r, 1, "409")
    assert cli.ok("cron", "delete", "slow").stdout == "Deleted CronJob slow (%s)\n" % cj["id"]
    one_line_error(cli("cron", "get", "slow"), 1, "404", "cron list")


def test_trigger_wait_timeout_gives_up_but_the_run_goes_on(work, cli):
    cli.ok("cron", "create", "sleepy", "--schedule", RARE, "--task", "jobs", "--timeout", "20s",
           "--", "python3", "-c", "import time; time.sleep(3); print('woke')")
    r = cli("cron", "trigger", "sleepy", "--wait", "--timeout", "500ms")
    one_line_error(r, 1, "still going after the --timeout", "cron runs sleepy")
    runs = wait_for("the run to end", lambda: [
        x for x in runs_of(cli, "sleepy", "--logs") if x["status"] != "running"])
    assert runs[0]["status"] == "succeeded" and runs[0]["logs"] == "woke\n"
    cli.ok("cron", "delete", "sleepy")


# ---------------------------------------------------------------- suspend, resume, delete

def test_suspend_stops_runs_and_resume_starts_them_again(work, cli):
    r = cli.ok("cron", "create", "pulse", "--schedule", "* * * * *", "--function", "echo",
               "--suspend", "--keep-succeeded", "100")
    assert "Suspended: no run starts until hks-func cron resume pulse." in r.stdout
    time.sleep(2.5)  # two and a half schedule minutes
    assert runs_of(cli, "pulse") == []
    cj = cron_json(cli, "get", "pulse")
    assert cj["suspend"] is True and cj["next_run_at"] is None
    assert re.search(r"^Next run:\s+none: suspended$", cli.ok("cron", "get", "pulse").stdout,
                     re.M)
    r = cli.ok("cron", "resume", "pulse")
    assert r.stdout.startswith("CronJob pulse resumed; next run: ")
    wait_for("scheduled runs after resume", lambda: len(
        [x for x in runs_of(cli, "pulse") if x["trigger"] == "schedule"]) >= 2)
    r = cli.ok("cron", "suspend", "pulse")
    assert r.stdout == "CronJob pulse suspended: no run starts until hks-func cron resume pulse.\n"
    time.sleep(1)  # a run started just before may still be going
    count = len(runs_of(cli, "pulse"))
    time.sleep(2.5)
    assert len(runs_of(cli, "pulse")) == count
    assert cron_json(cli, "suspend", "pulse")["suspend"] is True  # again: no change
    assert cli.ok("cron", "resume", "pulse", "-o", "name").stdout == "pulse\n"
    answer = cron_json(cli, "delete", "pulse")
    assert answer["deleted"] is True and answer["id"].startswith("cj-")
    for sub in ("get", "runs", "trigger", "suspend", "resume", "delete"):
        one_line_error(cli("cron", sub, "pulse"), 1, "404", "CronJob pulse", "cron list")
    assert "pulse" not in cli.ok("cron", "list", "-o", "name").stdout.split()


# ---------------------------------------------------------------- names of functions

def test_functions_are_named_by_name_or_id_as_invoke_does(hksd, work, cli):
    by_id = cron_json(cli, "create", "by-id", "-s", RARE, "--function", work.echo["id"])
    by_name = cron_json(cli, "create", "by-name", "-s", RARE, "--function", "echo")
    assert by_id["target"]["function"]["id"] == by_name["target"]["function"]["id"] \
        == work.echo["id"]
    # in the project's directory, its .hks/function.json names it
    here = cron_json(cli, "create", "by-dir", "-s", RARE, "--task", "jobs", "-c", "true",
                     cwd=cli.home / "jobs")
    assert here["target"]["task"]["template"] == work.jobs["id"]
    one_line_error(cli("cron", "create", "nope", "-s", RARE, "--function", "no-such-fn"), 1,
                   "--function", "no function named 'no-such-fn'")
    one_line_error(cli("cron", "create", "nope", "-s", RARE, "--task", "Not_A_Name", "-c",
                       "true"), 2, "neither a function name nor an id")
    # an id of no function of the project: hksd says so (422 on the target's field)
    one_line_error(cli("cron", "create", "nope", "-s", RARE, "--function",
                       "fn-00000000000000000000"), 1, "422", "no function", "fix --function")
    # two functions of one name: the ids are named
    ids = []
    for d in ("twin-a", "twin-b"):
        write(cli.home / d / "func.yaml", "name: twin\nruntime: node\n")
        write(cli.home / d / "index.js", ECHO_JS)
        ids.append(json.loads(cli.ok("deploy", "-o", "json", cwd=cli.home / d).stdout)["id"])
    line = one_line_error(cli("cron", "create", "nope", "-s", RARE, "--function", "twin"), 1,
                          "2 functions are named 'twin'")
    assert ids[0] in line and ids[1] in line
    for name in ("by-id", "by-name", "by-dir"):
        cli.ok("cron", "delete", name)
    for fid in ids:
        cli.ok("delete", fid)


# ---------------------------------------------------------------- errors

def test_hksd_refusals_show_its_message_on_one_line(hksd, work, cli):
    line = one_line_error(cli("cron", "create", "bad", "--schedule", "61 * * * *",
                              "--function", "echo"), 1, "422",
                          "minute: 61 is above the maximum 59", "fix --schedule")
    assert line.startswith("hks-func: error: create CronJob bad: hksd answered 422 invalid: ")
    one_line_error(cli("cron", "create", "bad", "--schedule", "* * * *", "--function", "echo"),
                   1, "422", "fix --schedule")
    one_line_error(cli("cron", "create", "bad", "--schedule", "@every 5m", "--function",
                       "echo"), 1, "422", "fix --schedule")
    one_line_error(cli("cron", "create", "bad", "--schedule", "daily", "--timezone",
                       "Mars/Olympus_Mons", "--function", "echo"), 1, "422", "fix --timezone")
    one_line_error(cli("cron", "create", "bad", "--schedule", "daily", "--task", "jobs",
                       "--timeout", "100h", "-c", "true"), 1, "422", "fix --timeout")
    one_line_error(cli("cron", "create", "bad", "--schedule", "daily", "--function", "echo",
                       "-H", "Host: x"), 1, "422", "fix --header")
    # a name taken: 409
    cli.ok("cron", "create", "taken", "-s", RARE, "--function", "echo")
    one_line_error(cli("cron", "create", "taken", "-s", RARE, "--function", "echo"), 1, "409",
                   "already exists", "hks-func cron get taken")
    # a token without the scope: 403 names it; another project's token sees nothing
    read_only = token(hksd, scope="cronjobs:read functions:read")
    one_line_error(cli("cron", "delete", "taken", env={"HKS_TOKEN": read_only}), 1, "403",
                   "cronjobs:write")
    assert cli.ok("cron", "get", "taken", env={"HKS_TOKEN": read_only}).stdout
    other = token(hksd, project="someone-else")
    one_line_error(cli("cron", "get", "taken", env={"HKS_TOKEN": other}), 1, "404")
    r = cli.ok("cron", "list", env={"HKS_TOKEN": other})
    assert r.stdout == "" and r.stderr == "No CronJobs in project someone-else.\n"
    one_line_error(cli("cron", "list", env={"HKS_TOKEN": "garbage"}), 1, "401")
    one_line_error(cli("cron", "list", env={"HKS_SERVER": "http://127.0.0.1:1"}), 1,
                   "cannot reach hksd")
    # a body file that cannot be read or is not text
    one_line_error(cli("cron", "create", "bad", "-s", RARE, "--function", "echo", "--file",
                       str(cli.home / "missing.json")), 1, "--file", "missing.json")
    (cli.home / "binary.bin").write_bytes(b"\xff\xfe\x00")
    one_line_error(cli("cron", "create", "bad", "-s", RARE, "--function", "echo", "--file",
                       str(cli.home / "binary.bin")), 1, "not UTF-8")
    assert "bad" not in cli.ok("cron", "list", "-o", "name").stdout.split()
    cli.ok("cron", "delete", "taken")


@pytest.mark.parametrize("args", [
    ["cron"],
    ["cron", "bogus"],
    ["cron", "-o", "json", "list"],
    ["cron", "list", "extra"],
    ["cron", "list", "-o", "yaml"],
    ["cron", "create"],
    ["cron", "create", "x"],
    ["cron", "create", "x", "--schedule", "daily"],
    ["cron", "create", "--schedule", "daily", "--function", "f"],
    ["cron", "create", "Bad_Name", "--schedule", "daily", "--function", "f"],
    ["cron", "create", "a" * 53, "--schedule", "daily", "--function", "f"],
    ["cron", "create", "x", "y", "--schedule", "daily", "--function", "f"],
    ["cron", "create", "x", "--schedule", "daily", "--function", "f", "--task", "g"],
    ["cron", "create", "x", "--schedule", "daily", "--task", "f"],
    ["cron", "create", "x", "--schedule", "daily", "--task", "f", "-c", "a", "--", "b"],
    ["cron", "create", "x", "--schedule", "daily", "--task", "f", "-c", "  "],
    ["cron", "create", "x", "--schedule", "daily", "--task", "f", "-c", "echo 'open"],
    ["cron", "create", "x", "--schedule", "daily", "--task", "f", "-c", "a", "--data", "d"],
    ["cron", "create", "x", "--schedule", "daily", "--task", "f", "-c", "a", "-H", "K: v"],
    ["cron", "create", "x", "--schedule", "daily", "--function", "f", "--env", "A=1"],
    ["cron", "create", "x", "--schedule", "daily", "--function", "f", "--timeout", "5s"],
    ["cron", "create", "x", "--schedule", "daily", "--function", "f", "--", "ls"],
    ["cron", "create", "x", "--schedule", "daily", "--function", "f", "-d", "a", "--file", "b"],
    ["cron", "create", "x", "--schedule", "daily", "--function", "f", "-X", "BREW"],
    ["cron", "create", "x", "--schedule", "daily", "--function", "f", "--path", "no-slash"],
    ["cron", "create", "x", "--schedule", "daily", "--function", "f", "-H", "no colon"],
    ["cron", "create", "x", "--schedule", "daily", "--function", "f", "--concurrency", "Maybe"],
    ["cron", "create", "x", "--schedule", "daily", "--function", "f", "--deadline", "soon"],
    ["cron", "create", "x", "--schedule", "daily", "--function", "f", "--keep-failed", "101"],
    ["cron", "create", "x", "--schedule", "daily", "--task", "f", "-c", "a", "--env", "1=x"],
    ["cron", "create", "x", "--schedule", "daily", "--task", "f", "-c", "a", "--timeout", "x"],
    ["cron", "create", "x", "--schedule"],
    ["cron", "get"],
    ["cron", "get", "a", "b"],
    ["cron", "get", "Bad!"],
    ["cron", "runs", "x", "--limit", "0"],
    ["cron", "runs", "x", "--limit", "1001"],
    ["cron", "trigger"],
    ["cron", "trigger", "x", "--timeout", "5s"],
    ["cron", "suspend"],
    ["cron", "resume", "x", "--frob"],
    ["cron", "delete", "x", "y"],
])
def test_usage_errors_exit_2_with_one_line(cli, args):
    r = cli(*args)  # logged in: a usage error is found before hksd is asked
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "usage error" in lines[0] and "hint:" in lines[0], r.stderr
    assert lines[0].startswith("hks-func cron"), lines[0]


def test_not_logged_in_is_a_usage_error(tmp_path):
    home = tmp_path / "empty-home"
    home.mkdir()
    one_line_error(Cli(home)("cron", "list"), 2, "hks-func login")


# ---------------------------------------------------------------- help

@pytest.mark.parametrize("sub", ["create", "list", "get", "runs", "trigger", "suspend", "resume",
                                 "delete"])
def test_every_cron_command_has_help_with_examples(cli, sub):
    r = cli.ok("cron", sub, "--help")
    assert r.stdout.startswith("Usage: hks-func cron %s" % sub) and "Examples:" in r.stdout
    assert "\n  hks-func cron %s" % sub in r.stdout and r.stderr == ""
    assert cli.ok("help", "cron", sub).stdout == r.stdout


def test_cron_help_lists_its_commands(cli):
    r = cli.ok("cron", "--help")
    assert r.stdout.startswith("Usage: hks-func cron COMMAND") and "Examples:" in r.stdout
    for sub in ("create", "list", "get", "runs", "trigger", "suspend", "resume", "delete"):
        assert "\n  %s " % sub in r.stdout
    assert cli.ok("help", "cron").stdout == r.stdout
    assert "\n  cron " in cli.ok("--help").stdout
