"""Faults, each against a real hksd: kill -9 of hksd mid-request, of its sandbox spawner, of a
sandbox's init and of a function instance mid-request; the state directory's file system full (a
small tmpfs mounted as the state directory), the audit log included. In each case the caller gets
a clear answer (or, when hksd itself dies, a connection error), nothing is left behind (processes,
cgroups, mounts, state files: compared before and after) and the service recovers by itself.
The registry down or slow during a push is in test_registry.py (it needs the registry fixtures)."""

import http.client
import json
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

import host_state
from hksd_process import HKSD, Daemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(HKSD),
                                reason="needs root and build/hksd")

ALL = "functions:execute functions:deploy functions:invoke functions:read functions:delete " \
      "cronjobs:write cronjobs:read"
DEPLOY = "/internal/v1/operations/deploy-function"
INVOKE = "/internal/v1/operations/invoke-function"
EXECUTE = "/internal/v1/operations/execute"

# a node function that answers after ?s= seconds and says which instance it is
NODE_SLOW = r'''
module.exports = { handle: async (context) => {
  const s = Number(context.query.s || 0);
  if (context.query.tag) console.log('got ' + context.query.tag);
  if (s) await new Promise((r) => setTimeout(r, s * 1000));
  return { statusCode: 200, body: JSON.stringify({ mark: process.env.FN_MARK }) };
} };
'''


def wait_until(check, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def call(d, method, path, body=None, token=None, timeout=60):
    """(status, headers, parsed JSON or raw bytes)"""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=timeout)
    headers = {"Authorization": "Bearer " + (token or d.token(ALL))}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    try:
        payload = json.loads(payload)
    except ValueError:
        pass
    return resp.status, dict(resp.getheaders()), payload


def deploy(d, token, **spec):
    body = {"runtime": "node", "code": NODE_SLOW, "ttl_seconds": 600}
    body.update(spec)
    status, _, r = call(d, "POST", DEPLOY, body, token)
    assert status == 201, r
    return r["id"]


def in_background(fn):
    """Run fn in a thread; the returned dict gets "result" or "error" (the exception)."""
    out = {}

    def run():
        try:
            out["result"] = fn()
        except (OSError, http.client.HTTPException) as e:
            out["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    out["thread"] = t
    return out


def procs_with_env(mark):
    """pids whose environment holds FN_MARK=mark (a function's instance)."""
    needle = ("FN_MARK=" + mark).encode()
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/environ" % entry, "rb") as f:
                    if needle in f.read().split(b"\0"):
                        found.add(int(entry))
            except OSError:
                pass
    return found


def sandbox_inits(spawner):
    """The inits of a spawner's sandboxes: its children running as the sandbox user."""
    kids = host_state.children_map().get(spawner, [])
    return {p for p in kids if p in host_state.uid_processes()}


def metric(d, name):
    _, _, text = d.request("GET", "/metrics")
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric " + name)


def ours(pid, cgroups):
    """cgroups named after pid or one of its descendants (the spawners)."""
    owners = host_state.descendants(pid) | {pid}
    return {c for c in cgroups if host_state.cgroup_owner(c) in owners}


def stop_clean(d):
    assert d.stop() == 0, d.logs()[-3000:]


# ------------------------------------------------------------------ kill -9 of hksd

def test_kill_9_of_hksd_mid_request_then_a_restart_recovers():
    d = Daemon()
    d2 = None
    try:
        token = d.token(ALL)
        mark = uuid.uuid4().hex
        fid = deploy(d, token, env={"FN_MARK": mark})
        status, _, r = call(d, "POST", "/fn/%s/" % fid, {}, token)
        assert status == 200 and r["mark"] == mark
        spawner = host_state.snapshot(d.proc.pid, d.state)["spawners"]
        # in flight when hksd dies: an execution, a call of the function's URL, one through
        # invoke-function
        running = [
            in_background(lambda: call(d, "POST", EXECUTE, {
                "runtime": "python", "code": "import time\ntime.sleep(30)\n"}, token)),
            in_background(lambda: call(d, "POST", "/fn/%s/?s=30" % fid, {}, token)),
            in_background(lambda: call(d, "POST", INVOKE, {"id": fid, "query": "s=30"}, token)),
        ]
        time.sleep(1.5)  # the execution runs in its sandbox, the invocations in the instance
        assert len(sandbox_inits(spawner[0])) >= 3, "warm sandboxes, the instance, the execution"
        below = host_state.descendants(d.proc.pid)
        owners = below | {d.proc.pid}  # a sandbox's cgroup is named after its spawner
        assert any(host_state.cgroup_owner(c) in owners for c in host_state.hks_cgroups())
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=10)
        for job in running:
            job["thread"].join(timeout=15)
            # no HTTP answer at all: the connection was cut (the client sees it as such)
            assert "error" in job and "result" not in job, job
        # the spawner notices its socket closed: every sandbox killed, every cgroup removed
        assert wait_until(lambda: not any(os.path.exists("/proc/%d" % p) for p in below), 10)
        assert not procs_with_env(mark)
        assert wait_until(lambda: not any(host_state.cgroup_owner(c) in owners
                                          for c in host_state.hks_cgroups()), 10)
        assert host_state.mounts_under(d.state) == []
        d.log.close()

        d2 = Daemon(state=d.state)
        state = host_state.state_entries(d2.state)
        assert state["sock"] == [], state  # no socket of a dead instance
        assert state["functions"] == [fid + ".json"] and state["fn"] == [fid], state
        status, _, r = call(d2, "POST", "/fn/%s/" % fid, {}, token)
        assert status == 200 and r["mark"] == mark, r
        status, _, r = call(d2, "POST", EXECUTE, {"runtime": "python", "code": "print(2)"}, token)
        assert status == 200 and r["stdout"] == "2\n", r
        # the audit log survived whole
        assert subprocess.run([HKSD, "audit", "verify"], env=d2.env,
                              capture_output=True).returncode == 0
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        if d2 is not None:
            stop_clean(d2)
        shutil.rmtree(d.state, ignore_errors=True)


# ------------------------------------------------------------------ kill -9 of the spawner

def test_kill_9_of_the_spawner_is_a_503_then_hksd_restarts_it_and_serves():
    d = Daemon(env={"HKSD_POOL_PYTHON": "2", "HKSD_POOL_NODE": "1"})
    try:
        token = d.token(ALL)
        mark = uuid.uuid4().hex
        fid = deploy(d, token, env={"FN_MARK": mark})
        status, _, r = call(d, "POST", "/fn/%s/" % fid, {}, token)
        assert status == 200
        instance = procs_with_env(mark)  # host pids (the function sees its namespace's)
        assert instance
        old = host_state.snapshot(d.proc.pid, d.state)
        assert len(old["spawners"]) == 1, old
        spawner = old["spawners"][0]
        old_sandboxes = host_state.descendants(spawner)
        execution = in_background(lambda: call(d, "POST", EXECUTE, {
            "runtime": "python", "code": "import time\ntime.sleep(30)\n"}, token))
        invocation = in_background(lambda: call(d, "POST", "/fn/%s/?s=30" % fid, {}, token))
        time.sleep(1.5)
        os.kill(spawner, signal.SIGKILL)

        # the caller of the execution gets a 503 saying what happened, and may retry
        execution["thread"].join(timeout=20)
        status, headers, r = execution["result"]
        assert status == 503 and r["error"]["code"] == "unavailable", r
        assert "spawner" in r["error"]["message"], r
        assert headers.get("Retry-After") == "1"
        # the invocation lost its instance: a 502, not a hang
        invocation["thread"].join(timeout=20)
        status, _, r = invocation["result"]
        assert status == 502 and r["error"]["code"] == "bad_gateway", r
        # every sandbox of the dead spawner is gone, and its cgroups with them
        assert wait_until(lambda: not any(os.path.exists("/proc/%d" % p)
                                          for p in old_sandboxes), 10)
        assert not procs_with_env(mark)

        # hksd replaced the spawner by itself and serves again
        assert wait_until(lambda: d.request("GET", "/readyz")[0] == 200, 30), d.logs()[-2000:]
        assert d.proc.poll() is None
        now = host_state.snapshot(d.proc.pid, d.state)
        assert len(now["spawners"]) == 1 and now["spawners"] != old["spawners"], now
        assert metric(d, "hks_spawner_restarts_total") == 1
        assert wait_until(lambda: not {c for c in host_state.hks_cgroups()
                                       if host_state.cgroup_owner(c) == spawner}, 10)
        status, _, r = call(d, "POST", EXECUTE, {"runtime": "python", "code": "print(3)"}, token)
        assert status == 200 and r["stdout"] == "3\n", r
        status, _, r = call(d, "POST", EXECUTE, {"runtime": "node", "code": "console.log(4)"},
                            token)
        assert status == 200 and r["stdout"] == "4\n", r
        status, _, r = call(d, "POST", "/fn/%s/" % fid, {}, token)
        assert status == 200 and r["mark"] == mark, r
        assert procs_with_env(mark) and not procs_with_env(mark) & instance
        # the warm pools are refilled
        assert wait_until(lambda: metric(d, 'hks_pool_ready{runtime="python"}') == 2, 30)
        assert "sandbox spawner restarted" in d.logs()
        pid = d.proc.pid
        stop_clean(d)
        # a clean stop after the restart leaves no cgroup of either spawner
        assert wait_until(lambda: not ours(pid, host_state.hks_cgroups()) and
                          not any(host_state.cgroup_owner(c) in (spawner, *now["spawners"])
                                  for c in host_state.hks_cgroups()), 10)
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        shutil.rmtree(d.state, ignore_errors=True)


# ------------------------------------------------------------------ kill -9 of a sandbox's init

def test_kill_9_of_a_sandbox_init_is_a_clear_result_and_leaves_nothing():
    # no warm sandbox: the execution's is the only one below the spawner
    d = Daemon(env={"HKSD_POOL_PYTHON": "0", "HKSD_POOL_NODE": "0"})
    try:
        token = d.token(ALL)
        spawner = host_state.snapshot(d.proc.pid, d.state)["spawners"][0]
        before = host_state.snapshot(d.proc.pid, d.state)
        execution = in_background(lambda: call(d, "POST", EXECUTE, {
            "runtime": "python", "code": "import time\nprint('started', flush=True)\n"
                                         "time.sleep(30)\n"}, token))
        assert wait_until(lambda: len(sandbox_inits(spawner)) == 1, 15)
        (init,) = sandbox_inits(spawner)
        inside = host_state.descendants(init)
        assert inside, "the program runs below the sandbox's init"
        time.sleep(0.5)
        os.kill(init, signal.SIGKILL)
        execution["thread"].join(timeout=20)
        status, _, r = execution["result"]
        # the execution's answer says what happened: its sandbox was destroyed under it
        assert status == 200, r
        assert r["status"] == "internal_error", r
        assert r["message"] == "the sandbox's init died unexpectedly", r
        assert r["exit_code"] is None and r["warm"] is False, r
        assert not any(os.path.exists("/proc/%d" % p) for p in inside | {init})
        # its cgroup, its /code directory: gone, as before the execution
        after = host_state.snapshot(d.proc.pid, d.state)
        assert wait_until(lambda: host_state.snapshot(d.proc.pid, d.state)["cgroups"]
                          == before["cgroups"], 10)
        assert after["state"]["pool"] == before["state"]["pool"], after
        assert after["sandbox_processes"] == 0
        status, _, r = call(d, "POST", EXECUTE, {"runtime": "python", "code": "print(5)"}, token)
        assert status == 200 and r["stdout"] == "5\n", r
    finally:
        stop_clean(d)
        shutil.rmtree(d.state, ignore_errors=True)


# ------------------------------------------------------------------ kill -9 of an instance

def test_kill_9_of_a_function_instance_mid_request_is_a_502_and_the_next_request_works():
    d = Daemon()
    try:
        token = d.token(ALL)
        mark = uuid.uuid4().hex
        fid = deploy(d, token, env={"FN_MARK": mark}, max_scale=1)
        status, _, r = call(d, "POST", "/fn/%s/" % fid, {}, token)
        assert status == 200
        before = host_state.snapshot(d.proc.pid, d.state)
        pending = [in_background(lambda: call(d, "POST", "/fn/%s/?s=20&tag=a" % fid, {}, token)),
                   in_background(lambda: call(d, "POST", INVOKE,
                                              {"id": fid, "query": "s=20&tag=b"}, token))]
        time.sleep(1.0)
        victims = procs_with_env(mark)
        assert victims, "no instance process"
        for p in victims:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for job in pending:
            job["thread"].join(timeout=20)
            status, headers, r = job["result"]
            assert status == 502 and r["error"]["code"] == "bad_gateway", r
            assert r["error"]["message"], r
            assert "X-Request-Id" in headers
        # each reached the function once: a request that went out is never sent again (it may
        # have had effects), even on a fresh instance
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        conn.request("GET", "/internal/v1/functions/%s/logs" % fid,
                     headers={"Authorization": "Bearer " + token})
        lines = [json.loads(ln)["line"] for ln in conn.getresponse().read().splitlines()]
        conn.close()
        assert lines.count("got a") == 1 and lines.count("got b") == 1, lines
        # the next request gets a fresh instance
        status, _, r = call(d, "POST", "/fn/%s/" % fid, {}, token)
        assert status == 200 and r["mark"] == mark, r
        assert procs_with_env(mark) and not procs_with_env(mark) & victims
        status, _, r = call(d, "POST", INVOKE, {"id": fid}, token)
        assert status == 200 and r["status"] == 200, r
        _, _, rec = call(d, "GET", "/internal/v1/functions/" + fid, None, token)
        assert rec["errors"] >= 2 and rec["instances"]["running"] == 1, rec
        # the dead instance left no socket, no cgroup, no process
        after = host_state.snapshot(d.proc.pid, d.state)
        assert len(after["state"]["sock"]) == 1, after["state"]
        assert after["cgroup_count"] == before["cgroup_count"], (before["cgroups"],
                                                                 after["cgroups"])
        assert not any(os.path.exists("/proc/%d" % p) for p in victims)
    finally:
        stop_clean(d)
        shutil.rmtree(d.state, ignore_errors=True)


# ------------------------------------------------------------------ the state directory full

@pytest.fixture
def small_state():
    """A 24 MiB tmpfs as the state directory (short path: sockets live there)."""
    path = tempfile.mkdtemp(prefix="hksf-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", path],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)
        os.rmdir(path)


def fill(path):
    """Write a file until the file system is full, to the last page; returns it."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while os.write(fd, b"\0" * size) > 0:
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def test_a_full_state_directory_is_a_507_leaves_nothing_half_written_and_recovers(small_state):
    d = Daemon(state=small_state)
    try:
        token = d.token(ALL)
        mark = uuid.uuid4().hex
        fid = deploy(d, token, env={"FN_MARK": mark})
        status, _, _ = call(d, "POST", "/fn/%s/" % fid, {}, token)
        assert status == 200
        before = host_state.state_entries(small_state)
        audit_before = pathlib.Path(small_state, "audit.log").read_bytes()
        filler = fill(small_state)

        status, headers, r = call(d, "POST", DEPLOY, {"runtime": "node", "code": NODE_SLOW,
                                                      "name": "full"}, token)
        assert status == 507 and r["error"]["code"] == "insufficient_storage", r
        assert "no space" in r["error"]["message"].lower(), r
        assert headers.get("Retry-After")
        status, _, r = call(d, "POST", DEPLOY, {"runtime": "python", "files": [
            {"name": "function/func.py", "content": "x = 1\n" * 20000}]}, token)
        assert status == 507, r
        status, _, r = call(d, "POST", "/internal/v1/cronjobs", {
            "name": "full", "schedule": "@daily", "target": {"function": {"id": fid}}}, token)
        assert status == 507 and r["error"]["code"] == "insufficient_storage", r
        # executions: their code cannot be written either; each tries to leave an audit record
        for _ in range(12):
            status, _, r = call(d, "POST", EXECUTE, {"runtime": "python",
                                                     "code": "print(1)\n" * 200}, token)
            assert status == 507 and "no space" in r["error"]["message"].lower(), r
        # the audit log's own full disk: the record is missing, counted, never half-written
        assert metric(d, "hks_audit_write_failures_total") >= 1
        # a deployed function still answers (its log lines are dropped, not its answers)
        status, _, r = call(d, "POST", "/fn/%s/" % fid, {}, token)
        assert status == 200 and r["mark"] == mark, r
        # nothing half-written: no new function, no temporary file, no code directory
        during = host_state.state_entries(small_state)
        for key in ("functions", "fn", "cronjobs"):
            assert during[key] == before[key], (key, before[key], during[key])
        audit_full = pathlib.Path(small_state, "audit.log").read_bytes()
        assert audit_full.startswith(audit_before) and audit_full.endswith(b"\n")
        for line in audit_full.splitlines():
            json.loads(line)

        os.unlink(filler)
        # space again: the service works without a restart
        fid2 = deploy(d, token, name="after")
        status, _, r = call(d, "POST", "/fn/%s/" % fid2, {}, token)
        assert status == 200, r
        status, _, r = call(d, "POST", EXECUTE, {"runtime": "python", "code": "print(6)"}, token)
        assert status == 200 and r["stdout"] == "6\n", r
        status, _, r = call(d, "POST", "/internal/v1/cronjobs", {
            "name": "after", "schedule": "@daily", "target": {"function": {"id": fid2}}}, token)
        assert status == 201, r
        verify = subprocess.run([HKSD, "audit", "verify"], env=d.env, capture_output=True,
                                text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        actions = [json.loads(ln)["action"] for ln in
                   pathlib.Path(small_state, "audit.log").read_text().splitlines()]
        assert actions[-3:] == ["function.deploy", "execute", "cronjob.create"], actions[-5:]
    finally:
        stop_clean(d)
