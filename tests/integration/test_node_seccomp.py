"""The node role against a real hksd: with node.install_seccomp on, hksd writes
policies/seccomp/*.json into the (here temporary) kubelet seccomp directory at start, removes the
stale profiles its manifest lists and leaves everything else alone; off by default; a directory it
must not write into is a startup error naming the path. The installed profile is then used by the
real sandbox: it is what a function container on Knative gets."""

import json
import os
import pathlib
import subprocess
import tempfile

import pytest

from hksd_process import HKSD, REPO, Daemon, free_port

SANDBOX = os.environ.get("HKS_SANDBOX") or str(REPO / "build" / "hks-sandbox")
SHIPPED = REPO / "policies" / "seccomp" / "function.json"
MANIFEST = ".hksd-profiles.json"


@pytest.fixture
def kubelet_dir():
    with tempfile.TemporaryDirectory(prefix="hks-kubelet-") as root:
        yield pathlib.Path(root)


def node_env(target):
    return {"HKSD_NODE_INSTALL_SECCOMP": "true", "HKSD_NODE_SECCOMP_DIR": str(target)}


def test_profiles_are_installed_and_stale_ones_removed(kubelet_dir):
    target = kubelet_dir / "seccomp" / "hks"
    target.mkdir(parents=True)
    # what an older hksd left: a profile it listed in its manifest, and files of others
    (target / "retired.json").write_text('{"defaultAction": "SCMP_ACT_ERRNO"}\n')
    (target / MANIFEST).write_text(json.dumps({"written_by": "hksd",
                                               "profiles": ["function.json", "retired.json"]}))
    (target / "other-team.json").write_text('{"theirs": true}\n')
    (kubelet_dir / "seccomp" / "audit.json").write_text('{"beside": true}\n')

    d = Daemon(env=node_env(target))
    try:
        logs = d.logs()
    finally:
        assert d.stop() == 0

    assert sorted(p.name for p in target.iterdir()) == [MANIFEST, "function.json",
                                                        "other-team.json"]
    assert (target / "other-team.json").read_text() == '{"theirs": true}\n'
    assert (kubelet_dir / "seccomp" / "audit.json").read_text() == '{"beside": true}\n'
    assert json.loads((target / MANIFEST).read_text())["profiles"] == ["function.json"]
    assert '"msg":"seccomp profile installed"' in logs
    assert '"msg":"stale seccomp profile removed"' in logs and '"name":"retired.json"' in logs

    installed = json.loads((target / "function.json").read_text())
    shipped = json.loads(SHIPPED.read_text())
    assert "comment" not in (target / "function.json").read_text()
    assert installed["defaultAction"] == shipped["defaultAction"]
    assert installed["architectures"] == shipped["architectures"]
    assert len(installed["syscalls"]) == len(shipped["syscalls"]) + 2
    assert installed["syscalls"][-2:] == [
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": family, "op": "SCMP_CMP_EQ"}]} for family in (2, 10)]
    assert oct((target / "function.json").stat().st_mode & 0o7777) == "0o644"

    # the real sandbox under the installed profile: TCP sockets (a function serving $PORT) work,
    # everything else the shipped profile refuses stays refused
    probe = ("import socket, ctypes, errno\n"
             "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.bind(('127.0.0.1', 0));"
             " s.listen(1); print('tcp ok')\n"
             "libc = ctypes.CDLL(None, use_errno=True)\n"
             "print('netlink', libc.socket(16, 3, 0), ctypes.get_errno())\n")
    for profile, expect_tcp in ((target / "function.json", True), (SHIPPED, False)):
        run = subprocess.run([SANDBOX, "--profile", str(profile), "--no-profile-cache", "--",
                              "/usr/bin/python3", "-c", probe], capture_output=True, timeout=60)
        out = run.stdout.decode()
        if expect_tcp:
            assert run.returncode == 0, run.stderr.decode()
            assert "tcp ok" in out
            assert "netlink -1 1" in out  # AF_NETLINK still EPERM
        else:
            assert "tcp ok" not in out and run.returncode != 0


def test_the_node_role_is_off_by_default(kubelet_dir):
    target = kubelet_dir / "seccomp" / "hks"
    d = Daemon(env={"HKSD_NODE_SECCOMP_DIR": str(target)})
    try:
        config = subprocess.run([HKSD, "--print-config"], env=d.env, capture_output=True,
                                check=True)
    finally:
        assert d.stop() == 0
    assert json.loads(config.stdout)["node"] == {"install_seccomp": False,
                                                 "seccomp_dir": str(target)}
    assert not (kubelet_dir / "seccomp").exists()


def start_must_fail(env):
    state = tempfile.mkdtemp(prefix="hksd-test-")
    run = subprocess.run([HKSD, "--listen", "127.0.0.1:%d" % free_port()], capture_output=True, timeout=60,
                         env=dict(os.environ, HKSD_STATE_DIR=state, HKSD_POOL_PYTHON="0",
                                  HKSD_POOL_NODE="0", **env))
    assert run.returncode != 0
    return run.stderr.decode()


def test_a_symlinked_directory_is_a_startup_error(kubelet_dir):
    elsewhere = kubelet_dir / "elsewhere"
    elsewhere.mkdir()
    (kubelet_dir / "seccomp").mkdir()
    target = kubelet_dir / "seccomp" / "hks"
    target.symlink_to(elsewhere)
    stderr = start_must_fail(node_env(target))
    line = json.loads(stderr.strip().splitlines()[-1])
    assert line["level"] == "error" and line["msg"] == "start"
    assert "node role" in line["error"] and str(target) in line["error"]
    assert "symlink: refused" in line["error"]
    assert list(elsewhere.iterdir()) == []


def test_a_relative_directory_is_a_startup_error(kubelet_dir):
    stderr = start_must_fail(node_env("var/lib/kubelet/seccomp/hks"))
    assert "must be an absolute path" in stderr
