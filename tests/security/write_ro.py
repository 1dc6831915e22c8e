"""Attack: write to the read-only parts of the sandbox (/code, /usr, /, /etc).

The test binds a world-writable host directory (mode 0777, containing a
world-writable victim.txt) as /code with --ro-bind, so only the read-only
bind can stop these writes: on /code every attempt must fail with EROFS.
On /usr, / and /etc the error must be EROFS or EACCES, and statvfs must
report ST_RDONLY for /code, /usr and /."""
import errno
import os
import sys

from _common import emit, gate, EXIT_BLOCKED, EXIT_SUCCEEDED, EXIT_UNEXPECTED

gate("write_ro")
NAME = "pwned-by-sandbox"


def op(fn):
    try:
        fn()
        return {"ok": True}
    except OSError as e:
        return {"ok": False, "errno": e.errno, "errname": errno.errorcode.get(e.errno)}


def create(path):
    def f():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, b"pwned\n")
        os.close(fd)
    return f


def append(path):
    def f():
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"pwned\n")
        os.close(fd)
    return f


def truncate(path):
    return lambda: os.truncate(path, 0)


only_erofs = {
    "create /code/" + NAME: op(create("/code/" + NAME)),
    "append /code/victim.txt": op(append("/code/victim.txt")),
    "truncate /code/victim.txt": op(truncate("/code/victim.txt")),
    "unlink /code/victim.txt": op(lambda: os.unlink("/code/victim.txt")),
    "rename /code/victim.txt": op(lambda: os.rename("/code/victim.txt", "/code/renamed.txt")),
    "mkdir /code/" + NAME: op(lambda: os.mkdir("/code/" + NAME + ".d")),
    "chmod /code/victim.txt": op(lambda: os.chmod("/code/victim.txt", 0o4777)),
    "utime /code/victim.txt": op(lambda: os.utime("/code/victim.txt", (0, 0))),
}
erofs_or_eacces = {
    "create /usr/" + NAME: op(create("/usr/" + NAME)),
    "create /usr/lib/" + NAME: op(create("/usr/lib/" + NAME)),
    "mkdir /usr/" + NAME: op(lambda: os.mkdir("/usr/" + NAME + ".d")),
    "append /usr/bin/python3": op(append(os.path.realpath("/usr/bin/python3"))),
    "create /" + NAME: op(create("/" + NAME)),
    "append /etc/passwd": op(append("/etc/passwd")),
    "create /etc/" + NAME: op(create("/etc/" + NAME)),
    "create /bin/" + NAME: op(create("/bin/" + NAME)),
}
results = {}
for k, v in only_erofs.items():
    v["verdict"] = "succeeded" if v["ok"] else ("blocked" if v["errno"] == errno.EROFS else "unexpected")
    results[k] = v
for k, v in erofs_or_eacces.items():
    v["verdict"] = "succeeded" if v["ok"] else (
        "blocked" if v["errno"] in (errno.EROFS, errno.EACCES) else "unexpected")
    results[k] = v

ST_RDONLY = os.ST_RDONLY
for path in ("/code", "/usr", "/"):
    ro = bool(os.statvfs(path).f_flag & ST_RDONLY)
    results["statvfs %s ST_RDONLY" % path] = {"ok": not ro, "rdonly": ro,
                                               "verdict": "blocked" if ro else "unexpected"}

# control: /tmp must be writable (so the checks above are not vacuous)
tmp_ok = op(create("/tmp/" + NAME))
verdicts = [v["verdict"] for v in results.values()]
verdict = "succeeded" if "succeeded" in verdicts else ("unexpected" if "unexpected" in verdicts else "blocked")
emit({"attack": "write_ro", "results": results, "verdict": verdict, "tmp_writable": tmp_ok["ok"]})
if verdict == "succeeded":
    sys.stderr.write("ATTACK SUCCEEDED: wrote to read-only paths: %s\n" % [
        k for k, v in results.items() if v["verdict"] == "succeeded"])
    sys.exit(EXIT_SUCCEEDED)
sys.exit(EXIT_BLOCKED if verdict == "blocked" else EXIT_UNEXPECTED)
