"""Attack: leave a process behind.

Double-forks a daemon (setsid, stdio detached unless argv[3] == "keep-stdio")
that appends a byte to /out/marker every 100 ms for 10 minutes; the main
program waits for the daemon's first write, prints what it did and exits 0.
The test (which bound a host directory at /out) then checks that the marker
stops growing and that no process with the suite marker in its command line
remains on the host."""
import os
import sys
import time

from _common import emit, gate

gate("grandchild")
out = sys.argv[2] if len(sys.argv) > 2 else "/out"
keep_stdio = len(sys.argv) > 3 and sys.argv[3] == "keep-stdio"
marker = os.path.join(out, "marker")
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    # grandchild: a daemon
    if not keep_stdio:
        devnull = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
    first = True
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with open(marker, "ab") as f:
            f.write(b".")
        if first:
            os.write(w, str(os.getpid()).encode())
            os.close(w)
            first = False
        time.sleep(0.1)
    os._exit(0)
os.close(w)
gpid = os.read(r, 32).decode()
os.waitpid(pid, 0)
emit({"attack": "grandchild", "daemon_pid": int(gpid) if gpid else None,
      "keep_stdio": keep_stdio, "marker": marker})
sys.exit(0)
