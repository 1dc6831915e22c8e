"""hks-sandbox as a command: options, exit statuses, profile checking, the unprivileged mode and
the spawner protocol driven from outside (as hksd will drive it)."""

import contextlib
import json
import os
import pathlib
import pwd
import socket
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SANDBOX = os.environ.get("HKS_SANDBOX") or str(REPO / "build" / "hks-sandbox")
PROFILE = str(REPO / "policies" / "seccomp" / "function.json")

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="sandboxes with cgroups need root")


def run(*args, input=None, user=None, timeout=30):
    return subprocess.run([SANDBOX, *args], input=input, capture_output=True, timeout=timeout,
                          user=user)


def test_help_documents_every_option():
    out = run("--help").stdout.decode()
    for option in ["--profile", "--memory", "--pids", "--cpus", "--wall", "--cpu", "--ro-bind",
                   "--bind", "--tmpfs-size", "--fsize", "--nofile", "--output-limit", "--network",
                   "--setenv", "--chdir", "--json", "--check-profile", "--no-cgroup"]:
        assert option in out, option


@pytest.mark.parametrize("args,needle", [
    (["--memory", "lots", "--", "/bin/true"], "--memory: 'lots' is not a size"),
    (["--wall", "-1s", "--", "/bin/true"], "--wall"),
    (["--pids", "0", "--", "/bin/true"], "--pids"),
    (["--ro-bind", "/tmp:relative", "--", "/bin/true"], "absolute DST"),
    (["--setenv", "NOEQUALS", "--", "/bin/true"], "NAME=VALUE"),
    ([], "no program given"),
    (["--frobnicate"], "unrecognized option"),
])
def test_usage_errors_exit_2_with_a_message(args, needle):
    r = run(*args)
    assert r.returncode == 2
    assert needle in r.stderr.decode()


def test_shipped_profile_checks_clean():
    r = run("--check-profile", PROFILE)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert "ok (" in r.stdout.decode()


def test_check_profile_names_each_problem(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read", "not_a_syscall"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["write"], "action": "SCMP_ACT_SOMETIMES"}]}))
    r = run("--check-profile", str(bad))
    out = r.stdout.decode()
    assert r.returncode == 1
    assert 'syscalls[0].names[1]: unknown syscall "not_a_syscall"' in out
    assert "syscalls[1]: action SCMP_ACT_SOMETIMES" in out


def test_missing_profile_is_an_internal_error():
    r = run("--profile", "/nonexistent.json", "--", "/bin/true")
    assert r.returncode == 125
    assert "/nonexistent.json" in r.stderr.decode()
    r = run("--json", "--profile", "/nonexistent.json", "--", "/bin/true")
    record = json.loads(r.stdout)
    assert r.returncode == 125
    assert record["status"] == "internal_error"
    assert "/nonexistent.json: No such file or directory" in record["message"]


@needs_root
def test_passthrough_keeps_streams_and_exit_code():
    r = run("--", "/bin/sh", "-c", "echo out; echo err >&2; exit 42")
    assert r.returncode == 42
    assert r.stdout == b"out\n"
    assert r.stderr == b"err\n"


@needs_root
def test_passthrough_killed_by_signal_is_128_plus_n():
    r = run("--", "/bin/sh", "-c", "kill -SEGV $$")
    assert r.returncode == 128 + 11


@needs_root
def test_timeout_without_json_says_why():
    r = run("--wall", "300ms", "--", "/bin/sleep", "10")
    assert r.returncode == 137
    assert "timeout (wall)" in r.stderr.decode()


@needs_root
def test_stdin_is_passed_and_environment_is_minimal():
    r = run("--json", "--setenv", "GREETING=hi", "--", "/bin/sh", "-c", "cat; env | sort",
            input=b"data\n")
    record = json.loads(r.stdout)
    assert record["status"] == "ok"
    lines = record["stdout"].splitlines()
    assert lines[0] == "data"
    assert sorted(lines[1:]) == sorted(["GREETING=hi", "HOME=/tmp", "LANG=C.UTF-8",
                                        "PATH=/usr/local/bin:/usr/bin:/bin", "PWD=/tmp"])


@needs_root
def test_binary_output_survives_as_replacement_characters():
    r = run("--json", "--", "/usr/bin/printf", "a\\377b")
    assert json.loads(r.stdout)["stdout"] == "a\ufffdb"


@needs_root
def test_host_environment_does_not_leak():
    env = dict(os.environ, SECRET_TOKEN="s3cr3t")
    r = subprocess.run([SANDBOX, "--json", "--", "/usr/bin/env"], capture_output=True, env=env,
                       timeout=30)
    assert "s3cr3t" not in json.loads(r.stdout)["stdout"]


@needs_root
def test_ordinary_user_can_sandbox_without_cgroups():
    """Where unprivileged user namespaces are allowed, a plain user gets the same isolation
    (without cgroup limits, which need delegation) and is told so when cgroups are refused."""
    nobody = pwd.getpwnam("nobody")
    refused = run("--", "/bin/true", user=nobody.pw_uid)
    assert refused.returncode == 125
    assert "--no-cgroup" in refused.stderr.decode()
    r = run("--no-cgroup", "--json", "--", "/bin/sh", "-c", "id -u; cat /proc/self/uid_map",
            user=nobody.pw_uid)
    record = json.loads(r.stdout)
    assert record["status"] == "ok", record
    assert record["cgroup"] == "none"
    uid_line = record["stdout"].splitlines()
    assert uid_line[0] == "1000"
    assert uid_line[1].split() == ["1000", str(nobody.pw_uid), "1"]


def _recv(sock):
    data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 4)
    return json.loads(data), fds


@contextlib.contextmanager
def spawner_with_profile():
    """A spawner process driven over a SEQPACKET socket, the default profile loaded."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    proc = subprocess.Popen([SANDBOX, "spawner", "--fd", str(child.fileno())],
                            pass_fds=[child.fileno()])
    child.close()
    try:
        parent.send(json.dumps({"op": "load_profile", "id": 1, "name": "function",
                                "path": PROFILE}).encode())
        reply, _ = _recv(parent)
        assert reply["op"] == "loaded" and reply["insns"] > 10
        yield parent, proc
    finally:
        parent.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise


@needs_root
def test_spawner_protocol_from_outside():
    with spawner_with_profile() as (sock, proc):
        r, w = os.pipe()
        os.write(w, b"print(sum(range(10)))")
        os.close(w)
        request = {"op": "run", "id": 2, "profile": "function", "stdin": True,
                   "argv": ["/usr/bin/python3", "-"], "limits": {"wall_ms": 10000}}
        socket.send_fds(sock, [json.dumps(request).encode()], [r])
        os.close(r)
        started, _ = _recv(sock)
        assert started == {"op": "started", "id": 2, "pid": started["pid"]}
        result, fds = _recv(sock)
        assert result["op"] == "result" and result["result"]["status"] == "ok"
        with os.fdopen(fds[0], "rb") as out, os.fdopen(fds[1], "rb") as err:
            assert out.read() == b"45\n"
            assert err.read() == b""
    assert proc.returncode == 0


def _hks_cgroups_of(pid):
    found = []
    for root, dirs, _files in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(root, d) for d in dirs if d.startswith("hks-%d-" % pid)]
        if root.count("/") > 6:
            dirs[:] = []
    return found


@needs_root
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_signal_to_the_cli_ends_the_sandbox_cleanly(sig):
    import signal
    import time
    marker = "98765.%d" % os.getpid()
    proc = subprocess.Popen([SANDBOX, "--", "/bin/sleep", marker], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while not _hks_cgroups_of(proc.pid) and time.time() < deadline:
        time.sleep(0.02)
    assert _hks_cgroups_of(proc.pid), "the sandbox never started"
    time.sleep(0.2)
    proc.send_signal(getattr(signal, sig))
    assert proc.wait(timeout=10) == 128 + getattr(signal, sig)
    assert _hks_cgroups_of(proc.pid) == []
    assert subprocess.run(["pgrep", "-f", marker]).returncode == 1


@needs_root
def test_sigterm_to_the_spawner_kills_its_sandboxes_and_cleans_up():
    import signal
    import time
    with spawner_with_profile() as (sock, proc):
        marker = "97531.%d" % os.getpid()
        sock.send(json.dumps({"op": "run", "id": 2, "profile": "function",
                              "argv": ["/bin/sleep", marker]}).encode())
        assert _recv(sock)[0]["op"] == "started"
        # on cgroup v1 a helper process creates the cgroup just after the start
        deadline = time.time() + 5
        while not _hks_cgroups_of(proc.pid) and time.time() < deadline:
            time.sleep(0.01)
        assert len(_hks_cgroups_of(proc.pid)) > 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert _hks_cgroups_of(proc.pid) == []
        assert subprocess.run(["pgrep", "-f", marker]).returncode == 1


@needs_root
def test_supervisor_killed_hard_takes_the_sandbox_with_it():
    """SIGKILL leaves hks-sandbox no time to clean up: the sandbox must die with it (parent-death
    signal, kept across the sandbox's uid change), and the next run removes the stale cgroup."""
    import signal
    import time
    marker = "86420.%d" % os.getpid()
    proc = subprocess.Popen([SANDBOX, "--", "/bin/sleep", marker])
    deadline = time.time() + 10
    while subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode != 0:
        assert time.time() < deadline, "the sandbox never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    deadline = time.time() + 5
    while subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0:
        assert time.time() < deadline, "the sandbox outlived its supervisor"
        time.sleep(0.02)
    assert _hks_cgroups_of(proc.pid) != []
    assert run("--", "/bin/true").returncode == 0
    assert _hks_cgroups_of(proc.pid) == []


@needs_root
def test_closed_output_pipe_ends_the_run_without_leftovers():
    """`hks-sandbox -- yes | head -1`: the reader goes away; the supervisor must not die of
    SIGPIPE (which would leave the cgroup) but end the sandbox and say why."""
    proc = subprocess.Popen([SANDBOX, "--", "/usr/bin/yes"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.read(2) == b"y\n"
    proc.stdout.close()
    assert proc.wait(timeout=10) == 137
    assert b"reader of the program's output went away" in proc.stderr.read()
    assert _hks_cgroups_of(proc.pid) == []
