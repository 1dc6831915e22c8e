"""The python runtime launcher (runtimes/python/launcher.py) driven through the real sandbox.

oneshot: `hks-sandbox --json --ro-bind runtimes/python:/hks/runtime --ro-bind CODE:/code
--pass-fd FD -- /usr/bin/python3 /hks/runtime/launcher.py oneshot` with a SOCK_SEQPACKET control
socket: the ready/go handshake, stdio, argv, env, exit codes, and output, tracebacks and exit
statuses compared byte for byte with bare `/usr/bin/python3 /code/ENTRY` run in the same sandbox.

serve: the launcher in the sandbox accepting on a listening unix socket the test created
(HKS_LISTEN_FD), HTTP over that socket from the test: the Knative python http template itself,
a test function (tests/runtime_fixtures/python/serve_app), framing, limits, errors, health.
The SIGTERM tests run the launcher outside the sandbox (hks-sandbox turns SIGTERM into a kill).

Also: runtimes/python/manifest.py inside the sandbox.
"""

import contextlib
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtimes" / "python"
LAUNCHER = RUNTIME / "launcher.py"
TEMPLATE = RUNTIME / "templates" / "http"
FIXTURES = REPO / "tests" / "runtime_fixtures" / "python"
PYTHON = "/usr/bin/python3"
SANDBOX = os.environ.get("HKS_SANDBOX") or str(REPO / "build" / "hks-sandbox")

if os.geteuid() != 0:
    pytest.skip("the sandbox tests need root", allow_module_level=True)
if not (os.path.isfile(SANDBOX) and os.access(SANDBOX, os.X_OK)):
    pytest.skip("hks-sandbox not found at %s (run make)" % SANDBOX, allow_module_level=True)
if not os.path.exists(PYTHON):
    pytest.skip("%s missing" % PYTHON, allow_module_level=True)

PY_VERSION = subprocess.run([PYTHON, "-c", "import platform; print(platform.python_version())"],
                            capture_output=True, text=True).stdout.strip()


# ============================================================== helpers

@pytest.fixture
def code():
    """make(files) -> a directory under /tmp (reachable by the sandbox's host uid) holding
    files {relative path: str or bytes}."""
    made = []

    def make(files):
        d = pathlib.Path(tempfile.mkdtemp(prefix="rtpy-", dir="/tmp"))
        made.append(d)
        os.chmod(d, 0o755)
        for rel, content in files.items():
            p = d / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            for parent in p.relative_to(d).parents:
                os.chmod(d / parent, 0o755)
            if isinstance(content, str):
                content = content.encode()
            p.write_bytes(content)
            os.chmod(p, 0o644)
        return d
    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def _record(out, err, rc, argv):
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
    assert len(lines) == 1, "hks-sandbox printed no single JSON record (exit %s): %r / %r\n%s" % (
        rc, out[-2000:], err[-2000:], " ".join(argv))
    rec = json.loads(lines[0])
    rec["_rc"] = rc
    rec["_sandbox_stderr"] = err.decode(errors="replace")
    return rec


class Oneshot:
    def __init__(self, ready, rec, go_sent_at):
        self.ready = ready
        self.rec = rec
        self.go_sent_at = go_sent_at

    def __getitem__(self, k):
        return self.rec[k]


def run_oneshot(code_dir, go, sandbox_args=(), stdin=b"", close_before_go=False, raw_go=None,
                timeout=60):
    """Launcher in the sandbox: returns Oneshot(ready message, JSON record, time of go)."""
    ctl, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    argv = [SANDBOX, "--json", "--ro-bind", "%s:/hks/runtime" % RUNTIME,
            "--ro-bind", "%s:/code" % code_dir, "--pass-fd", str(child.fileno()),
            *sandbox_args, "--", PYTHON, "/hks/runtime/launcher.py", "oneshot"]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, pass_fds=[child.fileno()])
    child.close()
    ready = None
    t_go = None
    try:
        ctl.settimeout(30)
        data = ctl.recv(65536)
        ready = json.loads(data) if data else None
        if close_before_go:
            ctl.close()
        else:
            t_go = time.time()
            ctl.send(raw_go if raw_go is not None else json.dumps(go).encode())
        out, err = p.communicate(stdin, timeout=timeout)
    except BaseException:
        p.kill()
        p.communicate()
        raise
    finally:
        ctl.close()
    return Oneshot(ready, _record(out, err, p.returncode, argv), t_go)


def run_bare(code_dir, entry, argv=(), env=None, stdin=b"", sandbox_args=(), timeout=60):
    """Bare `/usr/bin/python3 /code/ENTRY ARGV...` in the same sandbox: the reference."""
    args = [SANDBOX, "--json", "--ro-bind", "%s:/code" % code_dir, *sandbox_args]
    for k, v in (env or {}).items():
        args += ["--setenv", "%s=%s" % (k, v)]
    args += ["--", PYTHON, "/code/" + entry, *argv]
    p = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout)
    return _record(p.stdout, p.stderr, p.returncode, args)


_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")


def _same(value):
    """Output with object addresses (different in every process) masked."""
    return _ADDRESS.sub(" at 0x...>", value) if isinstance(value, str) else value


def assert_same_as_bare(code_dir, entry="main.py", argv=(), env=None, stdin=b"", sandbox_args=()):
    """Run ENTRY through the launcher and bare; stdout, stderr, exit code and status identical
    (byte for byte, but for object addresses such as <function f at 0x7f...>)."""
    r = run_oneshot(code_dir, {"op": "go", "entry": entry, "argv": list(argv), "env": env or {}},
                    sandbox_args=sandbox_args, stdin=stdin)
    b = run_bare(code_dir, entry, argv, env, stdin, sandbox_args)
    for key in ("stdout", "stderr", "exit_code", "signal", "status"):
        assert _same(r[key]) == _same(b[key]), "%s differs\nlauncher: %r\nbare:     %r" % (
            key, r[key], b[key])
    return r, b


# ============================================================== oneshot: protocol

def test_ready_message(code):
    d = code({"main.py": "print('hi')\n"})
    r = run_oneshot(d, {"op": "go", "entry": "main.py"})
    assert r.ready["op"] == "ready"
    assert r.ready["runtime"] == "python"
    assert r.ready["version"] == PY_VERSION
    assert isinstance(r.ready["pid"], int) and r.ready["pid"] > 0
    assert r["status"] == "ok" and r["exit_code"] == 0
    assert r["stdout"] == "hi\n" and r["stderr"] == ""


def test_eof_before_go_exits_0_silently(code):
    d = code({"main.py": "print('must not run')\n"})
    r = run_oneshot(d, None, close_before_go=True)
    assert r.ready["op"] == "ready"
    assert r["status"] == "ok" and r["exit_code"] == 0
    assert r["stdout"] == "" and r["stderr"] == ""


@pytest.mark.parametrize("raw", [
    b"not json",
    b"\xff\xfe",
    b'["go"]',
    b'{"op":"run","entry":"main.py"}',
    b'{"op":"go"}',
    b'{"op":"go","entry":""}',
    b'{"op":"go","entry":"/etc/passwd"}',
    b'{"op":"go","entry":"../main.py"}',
    b'{"op":"go","entry":"sub/../../main.py"}',
    b'{"op":"go","entry":"main.py","argv":"a b"}',
    b'{"op":"go","entry":"main.py","argv":[1]}',
    b'{"op":"go","entry":"main.py","env":["A=1"]}',
    b'{"op":"go","entry":"main.py","env":{"A":1}}',
    b'{"op":"go","entry":"main.py","env":{"A=B":"1"}}',
])
def test_bad_go_exits_2_with_one_line(code, raw):
    d = code({"main.py": "print('must not run')\n"})
    r = run_oneshot(d, None, raw_go=raw)
    assert r["exit_code"] == 2, r.rec
    assert r["stdout"] == ""
    assert r["stderr"].endswith("\n") and r["stderr"].count("\n") == 1, r["stderr"]
    assert "go" in r["stderr"]


def test_missing_entry_like_bare_python(code):
    d = code({"main.py": "print('x')\n"})
    r, b = assert_same_as_bare(d, "missing.py")
    assert r["exit_code"] == 2
    assert "can't open file '/code/missing.py'" in r["stderr"]


# ============================================================== oneshot: the program's world

INTROSPECT = r'''
import os, sys
import helper
print("argv", sys.argv)
print("orig_argv", sys.orig_argv)
print("path0", sys.path[0])
print("cwd", os.getcwd())
print("name", __name__, __file__, __spec__, __package__, __cached__, __doc__)
print("loader", type(__loader__).__name__, __loader__.name, __loader__.path)
print("globals", list(globals()))
print("annotations", __annotations__)
import __main__
print("main is me", __main__.__dict__ is globals())
print("env", os.environ.get("GREETING"), os.environ.get("EMPTY"), "HKS_CONTROL_FD" in os.environ)
print("stdin", repr(sys.stdin.read()))
try:
    os.fstat(3)
    print("fd 3 open")
except OSError as e:
    print("fd 3", e.errno)
print("helper", helper.value(), helper.__file__)
try:
    import launcher
    print("launcher importable")
except ImportError as e:
    print("launcher", type(e).__name__)
print("stdout", sys.stdout.encoding, sys.stdout.errors, sys.stdout.line_buffering,
      type(sys.stdout.buffer).__name__)
print("stderr", sys.stderr.encoding, sys.stderr.errors)
print("flags", sys.flags.dont_write_bytecode, sys.dont_write_bytecode)
print("excepthook", sys.excepthook is sys.__excepthook__)
print("to stderr", file=sys.stderr)
sys.exit(7)
'''


def test_program_sees_what_bare_python_gives(code):
    d = code({"main.py": INTROSPECT, "helper.py": "def value():\n    return 42\n"})
    env = {"GREETING": "héllo wörld", "EMPTY": ""}
    argv = ["a", "b c", "", "ünï", "--flag=1"]
    r, b = assert_same_as_bare(d, "main.py", argv, env, stdin=b"line1\nline2\n")
    out = r["stdout"]
    assert "argv ['/code/main.py', 'a', 'b c', '', 'ünï', '--flag=1']" in out
    assert "path0 /code\n" in out and "cwd /code\n" in out
    assert "env héllo wörld  False" in out
    assert "stdin 'line1\\nline2\\n'" in out
    assert "fd 3 9" in out  # EBADF: the control channel is closed
    assert "helper 42 /code/helper.py" in out
    assert "launcher ModuleNotFoundError" in out
    assert "main is me True" in out
    assert r["stderr"] == "to stderr\n"
    assert r["exit_code"] == 7 and r["status"] == "error"


def test_same_modules_loaded_as_bare_python(code):
    d = code({"main.py": "import sys\nprint(sorted(sys.modules))\nprint(sys.getrecursionlimit() > 0)\n"})
    r, _ = assert_same_as_bare(d)
    assert "'json'" not in r["stdout"] and "'_json'" not in r["stdout"]


def test_entry_in_subdirectory(code):
    d = code({"app/run.py": "import sys, os, util\nprint(sys.path[0], __file__, os.getcwd(), util.X)\n",
              "app/util.py": "X = 'util'\n"})
    r, _ = assert_same_as_bare(d, "app/run.py", ["x"])
    assert r["stdout"] == "/code/app /code/app/run.py /code util\n"


def test_package_imports_and_relative_data(code):
    d = code({"main.py": "from pkg.mod import f\nprint(f())\nprint(open('data.txt').read())\n",
              "pkg/__init__.py": "",
              "pkg/mod.py": "from .inner import g\ndef f():\n    return g() + 1\n",
              "pkg/inner.py": "def g():\n    return 41\n",
              "data.txt": "some data"})
    r, _ = assert_same_as_bare(d)
    assert r["stdout"] == "42\nsome data\n"


def test_unicode_and_binary_output(code):
    prog = (
        "import sys\n"
        "print('héllo 世界 🎉 ∑ \\u00e9')\n"
        "sys.stdout.flush()\n"
        "sys.stdout.buffer.write(bytes(range(256)))\n"
        "sys.stdout.buffer.write(b'\\n\\x00end')\n"
        "print('ошибка ❌', file=sys.stderr)\n"
        "sys.stderr.buffer.write(b'\\xff\\xfe raw\\n')\n"
    )
    d = code({"main.py": prog})
    r, _ = assert_same_as_bare(d)
    assert r["stdout"].startswith("héllo 世界 🎉 ∑ é\n")
    assert r["stderr"].startswith("ошибка ❌\n")


def test_stdin_binary_and_large(code):
    data = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4
    d = code({"main.py": "import sys, hashlib\nb = sys.stdin.buffer.read()\n"
                         "print(len(b), hashlib.sha256(b).hexdigest())\n"})
    r, _ = assert_same_as_bare(d, stdin=data)
    import hashlib
    assert r["stdout"] == "%d %s\n" % (len(data), hashlib.sha256(data).hexdigest())


def test_atexit_threads_and_flush(code):
    prog = (
        "import atexit, sys, threading, time\n"
        "atexit.register(lambda: print('atexit ran', flush=False))\n"
        "def work():\n"
        "    time.sleep(0.2)\n"
        "    print('thread done')\n"
        "threading.Thread(target=work).start()\n"
        "sys.stdout.write('no newline at the end')\n"
        "raise RuntimeError('main failed while a thread runs')\n"
    )
    d = code({"main.py": prog})
    r, _ = assert_same_as_bare(d)
    assert "thread done" in r["stdout"] and "atexit ran" in r["stdout"]
    assert r["exit_code"] == 1


# ============================================================== oneshot: tracebacks

TRACEBACK_PROGRAMS = {
    "nested_modules": {
        "main.py": "import helper\n\ndef outer():\n    helper.middle({'a': {}})\n\nouter()\n",
        "helper.py": "def middle(d):\n    return inner(d)\n\ndef inner(d):\n    return d['a']['b']\n",
    },
    "chained_from": {
        "main.py": "def load():\n    try:\n        int('x')\n    except ValueError as e:\n"
                   "        raise LookupError('cannot load') from e\nload()\n",
    },
    "chained_context": {
        "main.py": "try:\n    1 / 0\nexcept ZeroDivisionError:\n    [][3]\n",
    },
    "suppressed_context": {
        "main.py": "try:\n    1 / 0\nexcept ZeroDivisionError:\n    raise KeyError('k') from None\n",
    },
    "exception_group": {
        "main.py": "def f():\n    raise ExceptionGroup('many', [ValueError(1), TypeError('t'),"
                   " ExceptionGroup('inner', [OSError(2, 'nope')])])\nf()\n",
    },
    "notes": {
        "main.py": "e = ValueError('with notes')\ne.add_note('note one')\ne.add_note('note two')\n"
                   "raise e\n",
    },
    "carets": {
        "main.py": "x = {'a': [1, 2]}\ny = None\nprint(x['a'][1] + y.attr)\n",
    },
    "attribute_suggestion": {
        "main.py": "import os\nos.pathh\n",
    },
    "name_suggestion": {
        "main.py": "values = 1\nprint(valuse)\n",
    },
    "bad_str": {
        "main.py": "class E(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\n"
                   "raise E()\n",
    },
    "custom_class_module": {
        "main.py": "class MyError(Exception):\n    pass\nraise MyError('custom', 2)\n",
    },
    "recursion": {
        "main.py": "def f(n):\n    return f(n + 1)\nf(0)\n",
    },
    "usable_recursion_depth": {
        "main.py": "def f(n):\n    try:\n        return f(n + 1)\n    except RecursionError:\n"
                   "        return n\nprint(f(0))\n",
    },
    "syntax_error_in_entry": {
        "main.py": "print('before')\ndef broken(:\n    pass\n",
    },
    "syntax_error_in_import": {
        "main.py": "import bad\n",
        "bad.py": "x = (1,\n",
    },
    "indentation_error": {
        "main.py": "if True:\nprint('x')\n",
    },
    "tab_error": {
        "main.py": "if 1:\n\tx = 1\n        y = 2\n",
    },
    "non_utf8_source": {
        "main.py": b"x = 1\ny = '\xff'\n",
    },
    "latin1_declared": {
        "main.py": b"# -*- coding: latin-1 -*-\nprint('\xe9t\xe9')\nraise ValueError('\xe9')\n",
    },
    "bom": {
        "main.py": b"\xef\xbb\xbfprint('bom')\n1/0\n",
    },
    "null_byte": {
        "main.py": b"print('a')\x00\nprint('b')\n",
    },
    "custom_excepthook": {
        "main.py": "import sys\ndef hook(t, v, tb):\n    print('hooked', t.__name__, v, tb.tb_frame.f_code.co_filename,"
                   " tb.tb_next is None, file=sys.stderr)\nsys.excepthook = hook\nraise ValueError('v')\n",
    },
    "broken_excepthook": {
        "main.py": "import sys\ndef hook(t, v, tb):\n    raise TypeError('hook broke')\n"
                   "sys.excepthook = hook\nraise ValueError('original')\n",
    },
    "excepthook_exits": {
        "main.py": "import sys\ndef hook(t, v, tb):\n    sys.exit(5)\nsys.excepthook = hook\n"
                   "raise ValueError('x')\n",
    },
    "traceback_module": {
        "main.py": "import traceback, sys\ntry:\n    {}['k']\nexcept KeyError:\n    traceback.print_exc()\n"
                   "print(''.join(traceback.format_exception(*sys.exc_info())) if sys.exc_info()[0] else 'none')\n",
    },
    "warnings": {
        "main.py": "import warnings\nwarnings.warn('careful')\ndef f():\n    warnings.warn('deprecated', "
                   "DeprecationWarning, stacklevel=2)\nf()\nwarnings.warn('again', UserWarning)\n",
    },
    "error_in_atexit": {
        "main.py": "import atexit\ndef bye():\n    raise RuntimeError('in atexit')\natexit.register(bye)\n"
                   "print('main done')\n",
    },
    "generator_and_lambda": {
        "main.py": "g = (1 // x for x in [1, 0])\nlist(map(lambda v: v, g))\n",
    },
    "unicode_in_traceback": {
        "main.py": "données = {'clé': 1}\nprint(données['clef'])  # 世界\n",
    },
    "keyboard_interrupt": {
        "main.py": "print('about to interrupt', flush=True)\nraise KeyboardInterrupt\n",
    },
    "pickle_main_class": {
        "main.py": "import pickle\nclass P:\n    pass\nprint(type(pickle.loads(pickle.dumps(P()))).__qualname__)\n"
                   "print(pickle.dumps(P())[:40])\n",
    },
}


@pytest.mark.parametrize("name", sorted(TRACEBACK_PROGRAMS))
def test_output_and_traceback_identical_to_bare_python(code, name):
    d = code(TRACEBACK_PROGRAMS[name])
    r, b = assert_same_as_bare(d)
    if name not in ("usable_recursion_depth", "pickle_main_class", "null_byte", "excepthook_exits"):
        assert r["stderr"], "expected an error report"
    assert "launcher" not in r["stderr"] and "/hks/runtime" not in r["stderr"]


# ============================================================== oneshot: exits

EXITS = {
    "sys.exit()": ("import sys\nsys.exit()\n", 0),
    "sys.exit(0)": ("import sys\nsys.exit(0)\n", 0),
    "sys.exit(3)": ("import sys\nsys.exit(3)\n", 3),
    "sys.exit(None)": ("import sys\nsys.exit(None)\n", 0),
    "sys.exit('msg')": ("import sys\nsys.exit('fatal: bad input')\n", 1),
    "sys.exit(True)": ("import sys\nsys.exit(True)\n", 1),
    "sys.exit(256)": ("import sys\nsys.exit(256)\n", 0),
    "sys.exit(-1)": ("import sys\nsys.exit(-1)\n", 255),
    "sys.exit(2.5)": ("import sys\nsys.exit(2.5)\n", 1),
    "sys.exit([1])": ("import sys\nsys.exit([1, 2])\n", 1),
    "raise SystemExit(4)": ("raise SystemExit(4)\n", 4),
    "raise SystemExit": ("raise SystemExit\n", 0),
    "SystemExit(two args)": ("raise SystemExit(1, 2)\n", 1),
    "exit() builtin": ("exit(6)\n", 6),
    "quit() builtin": ("quit()\n", 0),
    "os._exit": ("import os\nprint('lost', end='')\nos._exit(9)\n", 9),
    "exit in finally": ("try:\n    raise ValueError('v')\nfinally:\n    import sys\n    sys.exit(8)\n", 8),
    "exit from thread": ("import threading, sys\nt = threading.Thread(target=sys.exit, args=(3,))\n"
                         "t.start(); t.join()\nprint('main continues')\n", 0),
    "exit in atexit": ("import atexit, sys\natexit.register(sys.exit, 4)\nprint('x')\n", 0),
    "stdout closed": ("import sys, os\nos.close(1)\nprint('x')\n", 120),
}


@pytest.mark.parametrize("name", sorted(EXITS))
def test_exit_codes_identical_to_bare_python(code, name):
    prog, expected = EXITS[name]
    d = code({"main.py": prog})
    r, b = assert_same_as_bare(d)
    assert r["exit_code"] == expected, r.rec


# ============================================================== oneshot: interpreter env

def test_interpreter_env_vars_match_bare(code):
    prog = ("import sys, os\nif os.environ.get('PYTHONHASHSEED'):\n"
            "    print(hash('abc'), sys.flags.hash_randomization)\n"
            "print(sys.path[:3])\nprint(type(sys.stdout.buffer).__name__, sys.stdout.write_through)\n"
            "print(sys.dont_write_bytecode, sys.flags.optimize)\nassert False, 'asserts on'\n")
    d = code({"main.py": prog, "lib/x.py": ""})
    for env in ({"PYTHONHASHSEED": "0"}, {"PYTHONOPTIMIZE": "1"}, {"PYTHONUNBUFFERED": "1"},
                {"PYTHONPATH": "/code/lib:relative"}, {"PYTHONDONTWRITEBYTECODE": "1"},
                {"PYTHONSAFEPATH": "1"}, {"PYTHONIOENCODING": "latin-1"}):
        r, _ = assert_same_as_bare(d, env=env)
    # PYTHONHASHSEED is honoured (by a fresh interpreter): the hash is the fixed one
    r = run_oneshot(d, {"op": "go", "entry": "main.py", "env": {"PYTHONHASHSEED": "0"}})
    r2 = run_oneshot(d, {"op": "go", "entry": "main.py", "env": {"PYTHONHASHSEED": "0"}})
    assert r["stdout"].split()[0] == r2["stdout"].split()[0]


# ============================================================== oneshot: sandbox statuses

def test_timeout_status(code):
    d = code({"main.py": "print('spinning', flush=True)\nwhile True:\n    pass\n"})
    r = run_oneshot(d, {"op": "go", "entry": "main.py"}, sandbox_args=["--wall", "1s"])
    assert r["status"] == "timeout", r.rec
    assert r["stdout"] == "spinning\n"


def test_oom_status(code):
    d = code({"main.py": "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n"})
    r = run_oneshot(d, {"op": "go", "entry": "main.py"}, sandbox_args=["--memory", "64M"])
    assert r["status"] == "oom", r.rec


def test_output_limit_status(code):
    d = code({"main.py": "import sys\nwhile True:\n    sys.stdout.write('x' * 4096)\n"})
    r = run_oneshot(d, {"op": "go", "entry": "main.py"}, sandbox_args=["--output-limit", "64K"])
    assert r["status"] == "output_limit", r.rec
    assert r["stdout_truncated"] is True
    assert len(r["stdout"]) <= 64 * 1024


def test_go_to_first_line_is_fast(code):
    d = code({"main.py": "import time\nprint(repr(time.time()))\n"})
    best = None
    for _ in range(5):
        r = run_oneshot(d, {"op": "go", "entry": "main.py"})
        assert r["status"] == "ok", r.rec
        lat = float(r["stdout"]) - r.go_sent_at
        best = lat if best is None else min(best, lat)
    print("go -> first line of user code: %.2f ms (best of 5)" % (best * 1000))
    assert best < 0.1, "go -> first line took %.1f ms" % (best * 1000)


# ============================================================== serve: plumbing

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        http.client.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Served:
    """A running serve-mode launcher; .request() over its unix socket; .record after stop."""

    def __init__(self, path, proc):
        self.path = path
        self.proc = proc
        self.record = None
        self.stderr = ""

    def conn(self, timeout=30):
        return UnixHTTPConnection(self.path, timeout)

    def request(self, method, url, body=None, headers=None, conn=None, **kw):
        own = conn is None
        c = conn or self.conn()
        try:
            c.request(method, url, body=body, headers=headers or {}, **kw)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data, r.getheaders()
        finally:
            if own:
                c.close()

    def raw(self, data, read_until_close=True, timeout=10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.path)
        s.sendall(data)
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
                if not read_until_close:
                    break
        except socket.timeout:
            chunks.append(b"<timeout>")
        s.close()
        return b"".join(chunks)


@contextlib.contextmanager
def serve_in_sandbox(code_dir, env=None, sandbox_args=()):
    d = pathlib.Path(tempfile.mkdtemp(prefix="rtpy-sock-", dir="/tmp"))
    path = str(d / "fn.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(64)
    ctl, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    argv = [SANDBOX, "--json", "--wall", "180s", "--cpu", "180s",
            "--ro-bind", "%s:/hks/runtime" % RUNTIME, "--ro-bind", "%s:/code" % code_dir,
            "--pass-fd", str(lsock.fileno()), "--pass-fd", str(child.fileno()),
            "--setenv", "HKS_LISTEN_FD=3", "--setenv", "HKS_CONTROL_FD=4",
            "--setenv", "PYTHONDONTWRITEBYTECODE=1"]
    for k, v in (env or {}).items():
        argv += ["--setenv", "%s=%s" % (k, v)]
    argv += list(sandbox_args) + ["--", PYTHON, "/hks/runtime/launcher.py", "serve"]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, pass_fds=[lsock.fileno(), child.fileno()])
    child.close()
    lsock.close()  # the sandbox holds the listening socket now
    served = Served(path, p)
    try:
        ctl.settimeout(30)
        try:
            msg = ctl.recv(65536)
        except socket.timeout:
            msg = b""
        if not msg:
            p.kill()
            out, err = p.communicate()
            pytest.fail("serve mode never became ready: %r %r" % (out[-3000:], err[-3000:]))
        ready = json.loads(msg)
        assert ready["op"] == "ready" and ready["runtime"] == "python", ready
        served.ready = ready
        served.ctl = ctl
        yield served
    finally:
        ctl.close()
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)  # hks-sandbox kills the sandbox
        out, err = p.communicate(timeout=30)
        try:
            served.record = _record(out, err, p.returncode, argv)
            served.stderr = served.record["stderr"]
        except AssertionError:
            served.stderr = err.decode(errors="replace")
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def app():
    """The test function (serve_app) in one sandbox for the module; HKS_MAX_BODY=1M."""
    with serve_in_sandbox(FIXTURES / "serve_app",
                          env={"HKS_MAX_BODY": "1M", "TEST_MARKER": "marker-42",
                               "HKS_BODY_TIMEOUT": "2"}) as s:
        yield s


# ============================================================== serve: the Knative template

def test_knative_template_served(sandbox_bin):
    with serve_in_sandbox(TEMPLATE) as s:
        st, h, body, _ = s.request("GET", "/")
        assert (st, body, h["content-type"]) == (200, b"OK", "text/plain")
        assert h["content-length"] == "2"
        st, _, body, _ = s.request("POST", "/", body=json.dumps({"message": "Hello World"}),
                                   headers={"content-type": "application/json"})
        assert (st, body) == (200, b"OK")
        assert s.request("GET", "/health/liveness")[::2] == (200, b"Alive")
        assert s.request("GET", "/health/readiness")[::2] == (200, b"Ready")
        assert s.ready["version"] == PY_VERSION
    assert "Function starting" in s.stderr
    assert "OK: Request Received" in s.stderr
    assert '"GET / HTTP/1.1" 200 2' in s.stderr


def test_knative_template_unit_test_passes(sandbox_bin):
    """The template's tests/test_func.py (a pytest-asyncio test) against its function/func.py,
    in the sandbox; the coroutine is run with asyncio (pytest-asyncio is not installed here)."""
    prog = ("import asyncio, sys\nsys.path.insert(0, '/code')\n"
            "from tests.test_func import test_function_handle\n"
            "asyncio.run(test_function_handle())\nprint('template test passed')\n")
    argv = [SANDBOX, "--json", "--ro-bind", "%s:/code" % TEMPLATE,
            "--setenv", "PYTHONDONTWRITEBYTECODE=1", "--", PYTHON, "-c", prog]
    p = subprocess.run(argv, capture_output=True, timeout=60)
    rec = _record(p.stdout, p.stderr, p.returncode, argv)
    assert rec["status"] == "ok" and rec["stdout"] == "template test passed\n", rec


def test_template_layout():
    files = sorted(str(p.relative_to(TEMPLATE)) for p in TEMPLATE.rglob("*") if p.is_file())
    assert files == ["README.md", "func.yaml", "function/__init__.py", "function/func.py",
                     "pyproject.toml", "tests/test_func.py"]
    fy = (TEMPLATE / "func.yaml").read_text()
    assert "specVersion: 0.36.0\n" in fy and "runtime: python\n" in fy
    assert "name: {{NAME}}\n" in fy and "created: {{CREATED}}\n" in fy
    assert (TEMPLATE / "function" / "__init__.py").read_text() == "from .func import new\n"


def test_static_handle_and_default_health(sandbox_bin):
    with serve_in_sandbox(FIXTURES / "serve_static") as s:
        assert s.request("PUT", "/anything")[::2] == (200, b"static PUT")
        assert s.request("GET", "/health/liveness")[::2] == (200, b"OK")
        assert s.request("GET", "/health/readiness")[::2] == (200, b"OK")


def test_load_error_exits_1_with_traceback(code, sandbox_bin):
    d = code({"function/__init__.py": "from .func import new\n",
              "function/func.py": "import does_not_exist\n"})
    ctl, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    argv = [SANDBOX, "--json", "--ro-bind", "%s:/hks/runtime" % RUNTIME, "--ro-bind", "%s:/code" % d,
            "--pass-fd", str(child.fileno()), "--setenv", "HKS_CONTROL_FD=3",
            "--setenv", "HKS_SOCKET=/tmp/fn.sock", "--", PYTHON, "/hks/runtime/launcher.py", "serve"]
    p = subprocess.run(argv, capture_output=True, pass_fds=[child.fileno()], timeout=30)
    child.close()
    ctl.settimeout(5)
    assert ctl.recv(100) == b""  # EOF: no ready message
    rec = _record(p.stdout, p.stderr, p.returncode, argv)
    assert rec["exit_code"] == 1
    assert "ModuleNotFoundError: No module named 'does_not_exist'" in rec["stderr"]
    assert 'File "/code/function/func.py", line 1' in rec["stderr"]


# ============================================================== serve: the test function

def test_scope(app):
    st, _, body, _ = app.request("GET", "/scope?x=1&y=%20z", headers={"X-Custom-Header": "Va lue"})
    assert st == 200
    scope = json.loads(body)
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == {"bytes": "/scope"}
    assert scope["query_string"] == {"bytes": "x=1&y=%20z"}
    assert scope["root_path"] == ""
    headers = [(k["bytes"], v["bytes"]) for k, v in scope["headers"]]
    assert ("x-custom-header", "Va lue") in headers
    assert ("host", "localhost") in headers
    assert all(k == k.lower() for k, _ in headers)
    assert scope["server"][1] is None and isinstance(scope["server"][0], str)
    assert scope["client"] == ["", 0]


def test_percent_decoded_path(app):
    st, _, body, _ = app.request("GET", "/no%20such/%C3%A9")
    assert st == 404


def test_start_hook_cfg_and_environment(app):
    st, _, body, _ = app.request("GET", "/cfg")
    info = json.loads(body)
    assert info["cfg_has_path"] and info["marker"] == "marker-42"
    assert info["cwd"] == "/code" and info["sys_path0"] == "/code"
    assert info["environ_has_listen_fd"] is False
    assert info["calls"][0] == "start"


@pytest.mark.parametrize("size", [0, 1, 100_000, 1024 * 1024])
def test_echo_content_length(app, size):
    payload = os.urandom(size)
    st, h, body, _ = app.request("POST", "/echo", body=payload,
                                 headers={"content-type": "application/octet-stream"})
    assert st == 200 and body == payload
    assert h["x-method"] == "POST" and h["content-length"] == str(size)


def test_echo_chunked_request(app):
    parts = [os.urandom(n) for n in (1, 1000, 65536, 300_000, 7)]
    st, h, body, _ = app.request("PUT", "/echo", body=iter(parts), encode_chunked=True,
                                 headers={"Transfer-Encoding": "chunked"})
    assert st == 200 and body == b"".join(parts)
    assert h["x-method"] == "PUT"


def test_expect_100_continue(app):
    payload = b"x" * 5000
    raw = app.raw(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\nExpect: 100-continue\r\n"
                  b"Connection: close\r\n\r\n" % len(payload) + payload)
    assert raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert raw.endswith(payload)


def test_body_over_limit_is_413(app):
    big = b"y" * (1024 * 1024 + 1)
    st, h, body, _ = app.request("POST", "/echo", body=big)
    assert st == 413 and h.get("connection") == "close"
    st, _, _, _ = app.request("POST", "/echo", body=iter([big[:600_000], big[600_000:]]),
                              encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    assert st == 413
    # with Expect: 100-continue the body is refused before it is sent
    raw = app.raw(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n"
                  b"Expect: 100-continue\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 413 ")
    # and the server is fine afterwards
    assert app.request("POST", "/echo", body=b"ok")[::2] == (200, b"ok")


@pytest.mark.parametrize("code_", [200, 201, 202, 204, 304, 400, 404, 418, 500, 503])
def test_status_codes_and_headers(app, code_):
    st, h, body, headers = app.request("GET", "/status/%d" % code_)
    assert st == code_
    assert h["x-custom"] == "yes"
    assert [v for k, v in headers if k.lower() == "set-cookie"] == ["a=1", "b=2"]
    if code_ in (204, 304):
        assert body == b"" and "content-length" not in h
    else:
        assert body == b"status %d" % code_


def test_head_request(app):
    st, h, body, _ = app.request("HEAD", "/status/200")
    assert st == 200 and body == b"" and h["content-length"] == str(len(b"status 200"))


def test_streaming_response_several_mb(app):
    c = app.conn(timeout=60)
    c.request("GET", "/stream?mb=8&chunk=65536")
    r = c.getresponse()
    assert r.status == 200
    assert r.getheader("transfer-encoding") == "chunked"
    total = 0
    i = 0
    first_at = None
    t0 = time.monotonic()
    while True:
        piece = r.read(65536)
        if not piece:
            break
        if first_at is None:
            first_at = time.monotonic() - t0
        for b in set(piece):
            assert b in (i % 251, (i + 1) % 251)
        total += len(piece)
        i = total // 65536
    assert total == 8 * 1024 * 1024
    c.close()


def test_streaming_small_chunks(app):
    st, h, body, _ = app.request("GET", "/stream?mb=0.25&chunk=1000")
    assert st == 200 and len(body) == 256 * 1024


def test_handler_exception_is_500_and_server_continues(app):
    c = app.conn()
    st, h, body, _ = app.request("GET", "/raise", conn=c)
    assert st == 500 and body == b"Error: deliberate failure"
    assert h["content-type"] == "text/plain"
    # same connection still usable, and new ones too
    assert app.request("GET", "/status/200", conn=c)[0] == 200
    c.close()
    assert app.request("GET", "/status/201")[0] == 201


def test_no_response_is_500(app):
    st, _, body, _ = app.request("GET", "/noresponse")
    assert st == 500


def test_str_body_is_500(app):
    st, _, body, _ = app.request("GET", "/str-body")
    assert st == 500 and b"bytes" in body


def test_exception_after_response_start_truncates(app):
    c = app.conn()
    c.request("GET", "/raise-after-start")
    r = c.getresponse()
    assert r.status == 200
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        r.read()
    c.close()
    assert app.request("GET", "/status/200")[0] == 200


def test_receive_after_response_is_disconnect(app):
    assert app.request("POST", "/receive-after", body=b"x")[0] == 200
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        calls = json.loads(app.request("GET", "/cfg")[2])["calls"]
        if "after-response:http.disconnect" in calls:
            break
        time.sleep(0.05)
    assert "after-response:http.disconnect" in calls


def test_health_from_hooks(app):
    assert app.request("GET", "/health/liveness")[::2] == (200, b"alive=True")
    # ready() returns a bare bool: func-python keeps its default message "OK"
    assert app.request("GET", "/health/readiness")[::2] == (200, b"OK")
    assert json.loads(app.request("POST", "/toggle")[2]) == {"healthy": False}
    try:
        assert app.request("GET", "/health/liveness")[::2] == (500, b"alive=False")
        assert app.request("GET", "/health/readiness")[::2] == (500, b"OK")
    finally:
        assert json.loads(app.request("POST", "/toggle")[2]) == {"healthy": True}
    assert app.request("GET", "/health/readiness")[0] == 200


def test_keep_alive_reuses_one_connection(app):
    c = app.conn()
    c.request("GET", "/status/200")
    r = c.getresponse()
    r.read()
    sock = c.sock
    assert sock is not None
    for i in range(20):
        c.request("POST", "/echo", body=b"n%d" % i)
        r = c.getresponse()
        assert r.read() == b"n%d" % i
        assert c.sock is sock  # never reconnected
    c.close()


def test_pipelined_requests(app):
    raw = app.raw(b"GET /status/201 HTTP/1.1\r\nHost: h\r\n\r\n"
                  b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                  b"GET /status/202 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert raw.count(b"HTTP/1.1 ") == 3
    assert raw.index(b"HTTP/1.1 201") < raw.index(b"HTTP/1.1 200") < raw.index(b"HTTP/1.1 202")
    assert b"\r\n\r\nabc" in raw


def test_http_1_0(app):
    raw = app.raw(b"GET /status/200 HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close" in raw.lower() and raw.endswith(b"status 200")
    raw = app.raw(b"GET /stream?mb=0.1 HTTP/1.0\r\n\r\n")  # no length, no chunking: until close
    assert b"transfer-encoding" not in raw.lower()
    assert len(raw.split(b"\r\n\r\n", 1)[1]) == int(0.1 * 1024 * 1024)


@pytest.mark.parametrize("req,status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n", 431),
])
def test_malformed_requests(app, req, status):
    raw = app.raw(req)
    assert raw.startswith(b"HTTP/1.1 %d " % status), raw[:200]
    assert app.request("GET", "/status/200")[0] == 200


def test_stalled_body_gets_408(app):
    t0 = time.monotonic()
    raw = app.raw(b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc", timeout=15)
    assert raw.startswith(b"HTTP/1.1 408 "), raw[:200]
    assert 1.5 < time.monotonic() - t0 < 10


def test_client_gone_mid_stream_server_survives(app):
    c = app.conn()
    c.request("GET", "/stream?mb=32&chunk=65536")
    r = c.getresponse()
    r.read(100_000)
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    time.sleep(0.3)
    assert app.request("GET", "/status/200")[0] == 200


def test_concurrent_requests(app):
    results = []

    def one():
        results.append(app.request("GET", "/sleep?s=1")[::2])
    threads = [threading.Thread(target=one) for _ in range(4)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [(200, b"slept")] * 4
    assert time.monotonic() - t0 < 3.0  # concurrent, not one after the other


def test_stop_message_on_control_socket(sandbox_bin):
    """{"op":"stop"} on HKS_CONTROL_FD: graceful stop inside the sandbox (SIGTERM to
    hks-sandbox would kill it)."""
    with serve_in_sandbox(FIXTURES / "serve_app") as s:
        result = {}

        def slow():
            result["r"] = s.request("GET", "/sleep?s=1")[::2]
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.3)
        s.ctl.send(b'{"op":"stop"}')
        t.join(10)
        assert s.proc.wait(15) == 0
    assert result["r"] == (200, b"slept")
    assert s.record["status"] == "ok" and s.record["exit_code"] == 0, s.record
    assert "function stop() called" in s.stderr
    assert "stop requested on the control socket" in s.stderr


def test_zz_errors_and_requests_logged_on_stderr(sandbox_bin):
    with serve_in_sandbox(FIXTURES / "serve_app") as s:
        assert s.request("GET", "/raise")[0] == 500
        assert s.request("GET", "/status/204")[0] == 204
    err = s.stderr
    assert "Traceback (most recent call last):" in err
    assert 'File "/code/function/func.py"' in err
    assert "ValueError: deliberate failure" in err
    assert '"GET /raise HTTP/1.1" 500' in err
    assert '"GET /status/204 HTTP/1.1" 204' in err


# ============================================================== serve: outside the sandbox (signals)

@contextlib.contextmanager
def serve_plain(code_dir, env=None, listen="unix"):
    d = pathlib.Path(tempfile.mkdtemp(prefix="rtpy-plain-", dir="/tmp"))
    ctl, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    e = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
         "HKS_FUNCTION_DIR": str(code_dir), "HKS_CONTROL_FD": str(child.fileno()),
         "STOP_MARKER": str(d / "stopped")}
    path = str(d / "fn.sock")
    if listen == "unix":
        e["HKS_SOCKET"] = path
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        e.update(PORT=str(port), HKS_HOST="127.0.0.1")
    e.update(env or {})
    p = subprocess.Popen([PYTHON, str(LAUNCHER), "serve"], env=e, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, pass_fds=[child.fileno()])
    child.close()
    try:
        ctl.settimeout(20)
        msg = ctl.recv(65536)
        assert msg, "no ready message: %r" % (p.communicate(timeout=10),)
        s = Served(path, p)
        s.dir = d
        if listen != "unix":
            s.port = port
        yield s
    finally:
        ctl.close()
        if p.poll() is None:
            p.kill()
        p.communicate()
        shutil.rmtree(d, ignore_errors=True)


def test_sigterm_graceful_shutdown(sandbox_bin):
    with serve_plain(FIXTURES / "serve_app") as s:
        idle = s.conn()
        assert s.request("GET", "/status/200", conn=idle)[0] == 200  # then left idle
        result = {}

        def slow():
            result["r"] = s.request("GET", "/sleep?s=1.5")[::2]
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.4)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(OSError):  # no longer accepting (socket removed / refused)
            s.request("GET", "/status/200")
        t.join(10)
        assert result.get("r") == (200, b"slept")  # the in-flight request finished
        rc = s.proc.wait(10)
        elapsed = time.monotonic() - t0
        out, err = s.proc.communicate()
        assert rc == 0, err.decode()
        assert elapsed < 5, "the idle keep-alive connection held the shutdown"
        assert (s.dir / "stopped").read_text() == "stopped"  # stop() ran
        assert b"function stop() called" in err
        idle.close()


def test_sigterm_grace_expires(sandbox_bin):
    with serve_plain(FIXTURES / "serve_app", env={"HKS_SHUTDOWN_GRACE": "1"}) as s:
        result = {}

        def slow():
            try:
                result["r"] = s.request("GET", "/sleep?s=30")
            except Exception as e:
                result["e"] = e
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.4)
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        rc = s.proc.wait(15)
        assert rc == 0
        assert time.monotonic() - t0 < 5
        t.join(10)
        assert "e" in result  # the request was cut off
        assert (s.dir / "stopped").read_text() == "stopped"


def test_tcp_port(sandbox_bin):
    with serve_plain(TEMPLATE, listen="tcp") as s:
        c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
        c.request("GET", "/")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"OK")
        c.request("GET", "/health/readiness")
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"Ready")
        c.close()
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(10) == 0
        out, err = s.proc.communicate()
        assert b"Function stopping" in err


# ============================================================== manifest

def test_manifest_in_sandbox(sandbox_bin):
    argv = [SANDBOX, "--json", "--ro-bind", "%s:/hks/runtime" % RUNTIME, "--",
            PYTHON, "/hks/runtime/manifest.py"]
    p = subprocess.run(argv, capture_output=True, timeout=60)
    rec = _record(p.stdout, p.stderr, p.returncode, argv)
    assert rec["status"] == "ok", rec
    m = json.loads(rec["stdout"])
    assert m["name"] == "python" and m["version"] == PY_VERSION
    assert set(m["entry"]) == {"oneshot", "serve"}
    mods = m["modules"]
    assert mods == sorted(mods) and len(set(mods)) == len(mods)
    for name in ("json", "asyncio", "sqlite3", "os", "sys", "math", "http", "urllib"):
        assert name in mods
    assert "pytest" in mods  # python3-pytest from /usr/lib/python3/dist-packages
    assert "launcher" not in mods and "manifest" not in mods
    assert not any(n.startswith("_") for n in mods)
    # every listed module is really importable inside the sandbox (spot check, no GUI ones)
    sample = [n for n in mods if n in ("json", "sqlite3", "pytest", "decimal", "zoneinfo")]
    prog = "import importlib\nfor n in %r:\n    importlib.import_module(n)\nprint('ok')\n" % sample
    p = subprocess.run([SANDBOX, "--json", "--", PYTHON, "-c", prog], capture_output=True, timeout=60)
    assert json.loads(p.stdout)["stdout"] == "ok\n"
