"""Attack: read files outside the binds.

Tries /etc/shadow, /root, host directories, and a secret directory that the
test created on the host (path given in HKS_SECRET_DIR / HKS_SECRET_FILE, not
bound into the sandbox) by its host path, through /proc/*/root and via ../
traversal from /code; then searches the whole visible tree for the secret's
file name. Every attempt must fail with ENOENT (the path does not exist in
the sandbox's mount namespace)."""
import errno
import os
import sys

from _common import emit, gate, EXIT_BLOCKED, EXIT_SUCCEEDED, EXIT_UNEXPECTED

gate("read_outside")

secret_dir = os.environ.get("HKS_SECRET_DIR", "/nonexistent-secret-dir")
secret_file = os.environ.get("HKS_SECRET_FILE", os.path.join(secret_dir, "secret.txt"))
secret_name = os.path.basename(secret_file)
# paths of another (concurrently running) sandbox: its bind target and host source
other_paths = [p for p in os.environ.get("HKS_OTHER_PATHS", "").split(":") if p]


def try_read(path):
    try:
        with open(path, "rb") as f:
            data = f.read(64)
        return {"ok": True, "bytes": len(data)}
    except OSError as e:
        return {"ok": False, "errno": e.errno, "errname": errno.errorcode.get(e.errno)}


def try_list(path):
    try:
        entries = os.listdir(path)
        return {"ok": True, "entries": sorted(entries)[:20]}
    except OSError as e:
        return {"ok": False, "errno": e.errno, "errname": errno.errorcode.get(e.errno)}


results = {}
# must not exist at all inside (ENOENT), per the contract's filesystem layout
strict = {
    "read /etc/shadow": try_read("/etc/shadow"),
    "read /etc/gshadow": try_read("/etc/gshadow"),
    "list /root": try_list("/root"),
    "list /home": try_list("/home"),
    "list /var": try_list("/var"),
    "list /work": try_list("/work"),
    "read /root/.bash_history": try_read("/root/.bash_history"),
    "list secret dir": try_list(secret_dir),
    "read secret file": try_read(secret_file),
    "read secret via /proc/self/root": try_read("/proc/self/root" + secret_file),
    "read secret via ../ from /code": try_read("/code/../../../.." + secret_file),
}
for p in other_paths:
    strict["other sandbox: read " + p] = try_read(p)
    strict["other sandbox: list " + os.path.dirname(p)] = try_list(os.path.dirname(p))
# may be ENOENT or EACCES (pid 1 may be the sandbox's own init), never readable
lenient = {
    "read secret via /proc/1/root": try_read("/proc/1/root" + secret_file),
    "list /proc/1/root/root": try_list("/proc/1/root/root"),
}
verdicts = {}
for k, v in strict.items():
    v["verdict"] = "succeeded" if v["ok"] else ("blocked" if v["errno"] == errno.ENOENT else "unexpected")
    results[k] = v
for k, v in lenient.items():
    v["verdict"] = "succeeded" if v["ok"] else (
        "blocked" if v["errno"] in (errno.ENOENT, errno.EACCES) else "unexpected")
    results[k] = v

# search the visible tree (the host's system dirs are bound, skip them)
found = []
skip = {"/proc", "/sys", "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"}
scanned = 0
for root, dirs, files in os.walk("/", onerror=lambda e: None):
    if root in skip:
        dirs[:] = []
        continue
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip]
    scanned += 1
    if secret_name in files or os.path.basename(secret_dir) in dirs:
        found.append(root)
results["search visible tree for secret"] = {
    "ok": bool(found), "found_in": found, "dirs_scanned": scanned,
    "verdict": "succeeded" if found else "blocked"}

etc = try_list("/etc")
verdicts = [v["verdict"] for v in results.values()]
verdict = "succeeded" if "succeeded" in verdicts else ("unexpected" if "unexpected" in verdicts else "blocked")
emit({"attack": "read_outside", "results": results, "verdict": verdict,
      "etc_entries": etc.get("entries"), "root_entries": sorted(os.listdir("/"))})
if verdict == "succeeded":
    sys.stderr.write("ATTACK SUCCEEDED: read outside the binds: %s\n" % [
        k for k, v in results.items() if v["verdict"] == "succeeded"])
    sys.exit(EXIT_SUCCEEDED)
sys.exit(EXIT_BLOCKED if verdict == "blocked" else EXIT_UNEXPECTED)
