"""HKS Functions runtime launcher for Python (standard library only, Python 3.9+).

    python3 /hks/runtime/launcher.py oneshot   # execute: wait for "go" on fd 3, run /code/<entry>
    python3 /hks/runtime/launcher.py serve     # function: ASGI http server for function/func.py

oneshot (control socket on fd 3, SOCK_SEQPACKET, one JSON object per datagram):
  launcher -> host  {"op":"ready","runtime":"python","version":"3.11.2","pid":N}
  host -> launcher  {"op":"go","entry":"main.py","argv":[...],"env":{...}}
  EOF before "go": exit 0 silently.  Malformed "go": one line on stderr, exit 2.
  Then fd 3 is closed and the entry runs as `python3 /code/<entry>` would: __main__, sys.argv,
  sys.path[0], the interpreter's own traceback printing (the launcher's frames are removed),
  SystemExit, atexit and flushing left to the interpreter itself.
  Cases a pre-started interpreter cannot reproduce exactly are handed to a fresh interpreter by
  execv (same pid, same fds): a source that does not compile (so that the syntax/encoding error
  text is the bare interpreter's), a directory, zip or .pyc entry, an entry that cannot be opened,
  and "go" env variables that configure the interpreter at start-up (PYTHON* other than
  PYTHONPATH, PYTHONUNBUFFERED, PYTHONDONTWRITEBYTECODE, PYTHONBREAKPOINT, PYTHONASYNCIODEBUG,
  which are applied in place).
  Known difference: one launcher frame stays below the program's module frame (visible to
  sys._getframe(1), inspect.stack(), traceback.print_stack()); the recursion limit is raised by
  the launcher's depth (measured at start: 2 on 3.9-3.11, 1 on 3.12+) so that the program gets
  the same usable depth as under bare python; sys.getrecursionlimit() therefore reports 1002
  (3.11) where bare python says 1000.

serve: an asyncio HTTP/1.1 server for the Knative Functions python `http` template
  (function/func.py with new(), func-python semantics), in _hks_serve.py next to this file,
  imported only in this mode. Listens on HKS_LISTEN_FD, else HKS_SOCKET, else TCP $PORT (8080);
  see that module's docstring for the environment it reads.

Start-up cost before "ready" is kept near bare python's: nothing is imported beyond what the
interpreter loads itself (the "go" message is parsed by json's C scanner, _json).
"""

import os
import sys

CODE_DIR = "/code"
CONTROL_FD = 3
_MAX_MESSAGE = 1 << 21


def _version():
    return "%d.%d.%d" % tuple(sys.version_info[:3])


def _ready_message():
    return ('{"op":"ready","runtime":"python","version":"%s","pid":%d}'
            % (_version(), os.getpid())).encode()


def _json_loads(text):
    """json.loads without importing json (and re, enum, ...) into every sandbox: the C scanner
    json itself uses, with json.loads' defaults; json proper if it is not there."""
    loaded = "_json" in sys.modules
    try:
        from _json import make_scanner
    except ImportError:
        import json
        return json.loads(text)
    finally:
        if not loaded:
            sys.modules.pop("_json", None)  # the program starts with bare python's sys.modules

    class _Context:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = float  # NaN, Infinity, -Infinity
        memo = {}
    ws = " \t\n\r"
    start = len(text) - len(text.lstrip(ws))
    try:
        value, end = make_scanner(_Context)(text, start)
    except StopIteration:
        raise ValueError("Expecting value")
    if text[end:].strip(ws):
        raise ValueError("Extra data")
    return value


def _die(msg, code=2):
    try:
        sys.stderr.write("hks-launcher: %s\n" % msg)
        sys.stderr.flush()
    finally:
        os._exit(code)


# ====================================================================== oneshot

# PYTHON* variables a running interpreter can honour without a restart
_LAZY_PYTHON_ENV = frozenset(["PYTHONBREAKPOINT", "PYTHONASYNCIODEBUG", "PYTHONPATH",
                              "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"])


def _interpreter_argv(script, argv):
    """argv that runs `script` in a fresh interpreter with the options this one got."""
    orig = list(getattr(sys, "orig_argv", None) or [sys.executable, sys.argv[0]])
    opts = []
    if sys.argv and sys.argv[0] in orig[1:]:
        opts = orig[1:orig.index(sys.argv[0], 1)]
    return [orig[0]] + opts + [script] + list(argv)


def _reexec(script, argv):
    """Hand the run to a fresh interpreter (exact bare-python behaviour, cold start)."""
    args = _interpreter_argv(script, argv)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    try:
        os.execv(sys.executable or args[0], args)
    except OSError as e:
        _die("cannot start %s: %s" % (sys.executable, e))


def _parse_go(data):
    """(entry, argv, env) from the "go" datagram, or exit 2 with one line on stderr."""
    try:
        msg = _json_loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        _die("bad go message: not JSON (%s)" % e)
    if not isinstance(msg, dict) or msg.get("op") != "go":
        _die("bad go message: expected {\"op\":\"go\",...}")
    entry = msg.get("entry")
    if not isinstance(entry, str) or not entry or entry.startswith("/") or "\0" in entry \
            or ".." in entry.split("/"):
        _die("bad go message: entry must be a relative path inside %s without '..'" % CODE_DIR)
    argv = msg.get("argv")
    if argv is None:
        argv = []
    if not isinstance(argv, list) or not all(isinstance(a, str) and "\0" not in a for a in argv):
        _die("bad go message: argv must be a list of strings")
    env = msg.get("env")
    if env is None:
        env = {}
    if not isinstance(env, dict):
        _die("bad go message: env must be an object of strings")
    for k, v in env.items():
        if not isinstance(v, str) or not k or "=" in k or "\0" in k or "\0" in v:
            _die("bad go message: bad env entry %r" % (k,))
    return entry, argv, env


def _unbuffer_stdio():
    """What -u / PYTHONUNBUFFERED does to sys.stdout and sys.stderr at start-up."""
    import io
    for name, fd in (("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        if old is None:
            continue
        try:
            old.flush()
            raw = io.FileIO(fd, "wb", closefd=False)
            raw.name = "<%s>" % name
            new = io.TextIOWrapper(raw, encoding=old.encoding, errors=old.errors, newline="\n",
                                   line_buffering=False, write_through=True)
            new.mode = "w"
        except Exception:
            continue
        setattr(sys, name, new)
        setattr(sys, "__%s__" % name, new)


def _freeze_startup_objects():
    """Move every object the interpreter and the launcher made so far into the collector's
    permanent generation (gc.freeze): the program's collections, and the final one at exit, then
    skip them. They are what bare python would keep alive to the end anyway; their memory has
    gone cold while the sandbox waited, and walking it cost ~2.5 ms per execution."""
    loaded = "gc" in sys.modules
    import gc
    gc.freeze()
    if not loaded:
        sys.modules.pop("gc", None)  # the program starts with bare python's sys.modules


def _oneshot_prepare(recursion_offset):
    """Handshake, then everything the entry needs; returns (code, globals) to exec."""
    fd = CONTROL_FD
    _freeze_startup_objects()
    try:
        os.write(fd, _ready_message())
        data = os.read(fd, _MAX_MESSAGE)
    except (BrokenPipeError, ConnectionResetError):
        os._exit(0)
    except OSError as e:
        _die("control fd %d: %s" % (fd, e))
    if not data:
        os._exit(0)  # EOF before go: the pool is shutting the sandbox down
    entry, argv, env = _parse_go(data)
    os.close(fd)  # the program never sees the control channel

    reexec = False
    environ = os.environ
    for k, v in env.items():
        if k.startswith("PYTHON") and k not in _LAZY_PYTHON_ENV and environ.get(k) != v:
            reexec = True
        environ[k] = v
    path = CODE_DIR + "/" + entry
    try:
        os.chdir(CODE_DIR)
    except OSError as e:
        _die("%s: %s" % (CODE_DIR, e))
    if reexec:
        _reexec(path, argv)

    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError:
        _reexec(path, argv)  # directory (runs __main__.py), missing, unreadable: as bare python
    bootstrap = sys.modules.get("_frozen_importlib_external")
    if path.endswith(".pyc") or source[:4] == getattr(bootstrap, "MAGIC_NUMBER", None) \
            or b"PK\x05\x06" in source[-65558:]:
        _reexec(path, argv)  # compiled file or zip application
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, UnicodeError, OverflowError, MemoryError):
        _reexec(path, argv)  # the file parser's own error text (and its null-byte handling)

    # sys.argv, sys.path, the start-up variables a running interpreter can still apply
    sys.argv[:] = [path] + argv
    if hasattr(sys, "orig_argv"):
        sys.orig_argv[:] = _interpreter_argv(path, argv)
    if not environ.get("PYTHONSAFEPATH"):
        sys.path[0] = os.path.dirname(os.path.realpath(path))
    else:
        del sys.path[0]
    if "PYTHONPATH" in env:
        extra = [os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep)]
        pos = 0 if environ.get("PYTHONSAFEPATH") else 1
        sys.path[pos:pos] = extra
    if env.get("PYTHONDONTWRITEBYTECODE"):
        sys.dont_write_bytecode = True
    if env.get("PYTHONUNBUFFERED"):
        _unbuffer_stdio()

    # a fresh __main__ laid out as the interpreter lays it out for `python3 FILE`
    main = type(sys)("__main__")
    g = main.__dict__
    g["__annotations__"] = {}
    g["__builtins__"] = sys.modules["builtins"]
    g["__file__"] = path
    g["__cached__"] = None
    loader = getattr(bootstrap, "SourceFileLoader", None)
    if loader is not None:
        g["__loader__"] = loader("__main__", path)
    sys.modules["__main__"] = main
    # the launcher's module frame and exec() sit below the program: give the program the
    # same usable depth as under bare python
    if recursion_offset > 0:
        sys.setrecursionlimit(sys.getrecursionlimit() + recursion_offset)
    return code, g


def _probe_depth(n=0):
    """Frames left below the recursion limit. How much deeper the program's module code runs
    than a bare program's (2 on 3.9-3.11, 1 on 3.12+) is this probe called from the launcher's
    top level (where a bare program's module code runs) minus the same probe called from code
    exec()'d at the top level (where the program runs); both calls must stay at top level."""
    try:
        return _probe_depth(n + 1)
    except RecursionError:
        return n




def _strip_launcher_frames(tb):
    me = _strip_launcher_frames.__code__.co_filename
    while tb is not None and tb.tb_frame.f_code.co_filename == me:
        tb = tb.tb_next
    return tb


def _oneshot_uncaught(exc):
    """Report an uncaught exception as Python's PyErr_Print does, then exit like bare python."""
    tb = _strip_launcher_frames(exc.__traceback__)
    exc.__traceback__ = tb
    typ = type(exc)
    sys.last_type, sys.last_value, sys.last_traceback = typ, exc, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = exc
    hook = getattr(sys, "excepthook", None)
    if hook is None:
        sys.stderr.write("sys.excepthook is missing\n")
        sys.__excepthook__(typ, exc, tb)
    else:
        try:
            hook(typ, exc, tb)
        except SystemExit:
            raise
        except BaseException as e2:
            e2.__traceback__ = _strip_launcher_frames(e2.__traceback__)
            sys.stderr.write("Error in sys.excepthook:\n")
            sys.__excepthook__(type(e2), e2, e2.__traceback__)
            sys.stderr.write("\nOriginal exception was:\n")
            sys.__excepthook__(typ, exc, tb)
    if isinstance(exc, KeyboardInterrupt):
        # let the interpreter end the way it does on an unhandled ^C (killed by SIGINT),
        # with the report above as the only output
        sys.excepthook = lambda *a: None
        raise KeyboardInterrupt
    raise SystemExit(1)


# ====================================================================== main

def _usage():
    sys.stderr.write("usage: launcher.py oneshot|serve\n")
    sys.exit(2)


if __name__ == "__main__":
    _mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if _mode == "oneshot":
        _depth = _probe_depth()  # top level on purpose: see _probe_depth
        _probe = {"probe": _probe_depth}
        exec("depth = probe()", _probe)
        _code, _globals = _oneshot_prepare(_depth - _probe["depth"])
        del _depth, _probe
        _failed = None
        try:
            exec(_code, _globals)
        except SystemExit:
            raise
        except BaseException as _exc:
            _failed = _exc
        if _failed is not None:  # reported outside the handler: no exception is being handled
            _oneshot_uncaught(_failed)
    elif _mode == "serve":
        import _hks_serve  # next to this file (sys.path[0] is its directory)
        _hks_serve.main()
    else:
        _usage()
