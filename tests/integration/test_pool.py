"""Executions through the warm pool (build/hks-exec drives the same pool hksd uses): warm and
cold starts, refill after a burst, limits given at execution time, isolation between executions,
refused requests, and nothing left behind."""

import json
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
EXEC = os.environ.get("HKS_EXEC") or str(REPO / "build" / "hks-exec")

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(EXEC),
                                reason="needs root and build/hks-exec")


def hks_exec(tmp_path, runtime, files, *options, args=(), stdin=None, timeout=120):
    """Write files (name -> text or bytes) into tmp_path, run the first one through the pool;
    return (records, completed process)."""
    paths = []
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        paths.append(str(path))
    cmd = [EXEC, "--runtime", runtime, "--work", str(tmp_path / "work"), *options]
    if stdin is not None:
        (tmp_path / "stdin").write_bytes(stdin)
        cmd += ["--stdin", str(tmp_path / "stdin")]
    cmd += paths
    if args:
        cmd += ["--", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    records = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return records, proc


def one(tmp_path, runtime, files, *options, **kw):
    records, proc = hks_exec(tmp_path, runtime, files, *options, **kw)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(records) == 1, records
    return records[0]


MAIN = {"python": "main.py", "node": "main.js"}
SOURCES = {
    "echo": {
        "python": "import sys\nprint('argv', sys.argv[1:])\nprint('in', sys.stdin.read())\n"
                  "print('err', file=sys.stderr)\nsys.exit(3)\n",
        "node": "console.log('argv', JSON.stringify(process.argv.slice(2)));\n"
                "const data = require('fs').readFileSync(0, 'utf8');\n"
                "console.log('in', data);\nconsole.error('err');\nprocess.exitCode = 3;\n",
    },
    "sibling": {
        "python": ("from helper import twice\nprint(twice(21))\n", "helper.py",
                   "def twice(x):\n    return 2 * x\n"),
        "node": ("const {twice} = require('./helper');\nconsole.log(twice(21));\n", "helper.js",
                 "exports.twice = (x) => 2 * x;\n"),
    },
    "unicode": {
        "python": "import sys\nprint('héllo ✓ 日本')\nsys.stdout.flush()\n"
                  "sys.stdout.buffer.write(b'\\xff\\xfe')\n",
        "node": "console.log('héllo ✓ 日本');\nprocess.stdout.write(Buffer.from([0xff, 0xfe]));\n",
    },
    "leave_traces": {
        "python": "import os\nopen('/tmp/trace', 'w').write('x')\nos.environ['LEAK'] = '1'\n"
                  "print(sorted(os.listdir('/tmp')), os.environ.get('SECRET'))\n",
        "node": "const fs = require('fs');\nfs.writeFileSync('/tmp/trace', 'x');\n"
                "globalThis.leak = 1;\n"
                "console.log(JSON.stringify(fs.readdirSync('/tmp').sort()), "
                "process.env.SECRET || null);\n",
    },
    "spin": {"python": "while True:\n    pass\n", "node": "for (;;) {}\n"},
    "sleep": {"python": "import time\ntime.sleep(30)\n", "node": "setTimeout(() => {}, 30000);\n"},
    "hog": {"python": "x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n",
            "node": "const x = [];\nfor (;;) x.push(Buffer.alloc(1 << 20, 1));\n"},
    "flood": {"python": "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)\n",
              "node": "const s = 'y'.repeat(65536);\n"
                      "function w() { while (process.stdout.write(s)) {} "
                      "process.stdout.once('drain', w); }\nw();\n"},
}


def files_for(kind, runtime):
    src = SOURCES[kind][runtime]
    if isinstance(src, tuple):
        return {MAIN[runtime]: src[0], src[1]: src[2]}
    return {MAIN[runtime]: src}


@pytest.mark.parametrize("runtime", ["python", "node"])
def test_warm_execution_reports_streams_argv_stdin_and_exit_code(tmp_path, runtime):
    r = one(tmp_path, runtime, files_for("echo", runtime), "--warm", "1", "--wait-warm",
            args=["a", "b c"], stdin=b"data from stdin")
    assert r["warm"] is True
    assert r["status"] == "error" and r["exit_code"] == 3
    assert "argv" in r["stdout"] and "b c" in r["stdout"]
    assert "in data from stdin" in r["stdout"]
    assert r["stderr"] == "err\n"


@pytest.mark.parametrize("runtime", ["python", "node"])
def test_without_warm_sandboxes_it_starts_cold(tmp_path, runtime):
    r = one(tmp_path, runtime, files_for("sibling", runtime), "--warm", "0")
    assert r["warm"] is False
    assert r["status"] == "ok" and r["stdout"] == "42\n"


@pytest.mark.parametrize("runtime", ["python", "node"])
def test_unicode_and_binary_output(tmp_path, runtime):
    r = one(tmp_path, runtime, files_for("unicode", runtime), "--warm", "1", "--wait-warm")
    assert r["stdout"] == "héllo ✓ 日本\n\ufffd\ufffd"


@pytest.mark.parametrize("runtime", ["python", "node"])
def test_burst_larger_than_the_pool_is_served_and_refilled(tmp_path, runtime):
    records, proc = hks_exec(tmp_path, runtime, files_for("sibling", runtime), "--warm", "2",
                             "--wait-warm", "--repeat", "8", "--concurrency", "4")
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(records) == 8
    assert all(r["status"] == "ok" and r["stdout"] == "42\n" for r in records), records
    warm = sum(r["warm"] for r in records)
    assert 2 <= warm <= 8  # the pool's two at least, then refills or cold starts


@pytest.mark.parametrize("runtime", ["python", "node"])
def test_nothing_of_one_execution_reaches_the_next(tmp_path, runtime):
    records, proc = hks_exec(tmp_path, runtime, files_for("leave_traces", runtime), "--warm", "1",
                             "--wait-warm", "--repeat", "3")
    assert proc.returncode == 0, proc.stderr.decode()
    # each execution finds only its own file in /tmp, and never the host's SECRET
    for r in records:
        assert r["status"] == "ok", r
        assert r["stdout"].startswith('["trace"]' if runtime == "node" else "['trace']"), r
        assert r["stdout"].rstrip().endswith("None" if runtime == "python" else "null")


@pytest.mark.parametrize("runtime", ["python", "node"])
@pytest.mark.parametrize("kind,options,status,reason", [
    ("spin", ["--cpu", "1s", "--wall", "10s"], "timeout", "cpu"),
    ("sleep", ["--wall", "1s"], "timeout", "wall"),
    ("hog", ["--memory", "96M"], "oom", None),
    ("flood", ["--output-limit", "64K"], "output_limit", None),
])
def test_limits_given_at_execution_time(tmp_path, runtime, kind, options, status, reason):
    r = one(tmp_path, runtime, files_for(kind, runtime), "--warm", "1", "--wait-warm", *options)
    assert r["warm"] is True
    assert r["status"] == status, r
    assert r["timeout_reason"] == reason
    if kind == "sleep":
        # the clock starts at the execution, not when the warm sandbox was created
        assert 900 <= r["wall_ms"] < 3000
    if kind == "flood":
        assert r["stdout_truncated"] and len(r["stdout"]) <= 64 * 1024


@pytest.mark.parametrize("name,needle", [
    ("../evil.py", "not a relative path"),
])
def test_refused_requests_say_why(tmp_path, name, needle):
    # hks-exec names files by their base name, so a hostile name is given as the entry
    (tmp_path / "ok.py").write_text("print(1)\n")
    proc = subprocess.run([EXEC, "--runtime", "python", "--work", str(tmp_path / "w"),
                           "--warm", "0", str(tmp_path / "ok.py")], capture_output=True)
    assert proc.returncode == 0
    proc = subprocess.run([EXEC, "--runtime", "ruby", str(tmp_path / "ok.py")],
                          capture_output=True)
    assert proc.returncode == 2 and b"--runtime python|node" in proc.stderr


def test_stopping_the_pool_leaves_nothing(tmp_path):
    before = {d for d in os.listdir("/sys/fs/cgroup/pids") if d.startswith("hks-")}
    records, proc = hks_exec(tmp_path, "python", files_for("sibling", "python"), "--warm", "3",
                             "--wait-warm", "--repeat", "2")
    assert proc.returncode == 0
    after = {d for d in os.listdir("/sys/fs/cgroup/pids") if d.startswith("hks-")}
    assert after - before == set()
    assert not (tmp_path / "work").exists()
