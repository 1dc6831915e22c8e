"""Attack: fork until the pids limit stops us (bounded observation).

Forks children that just sleep, until fork() fails. With --pids N the first
failure must be EAGAIN after fewer than N forks. The children are left
behind on purpose: the sandbox must kill them when the program exits.
HKS_PIDS (from the test) is the configured limit; default 64."""
import errno
import os
import sys
import time

from _common import emit, gate, EXIT_BLOCKED, EXIT_SUCCEEDED, EXIT_UNEXPECTED

gate("forkbomb")
limit = int(os.environ.get("HKS_PIDS", "64"))
SAFETY_CAP = 2000  # if nothing stops us by then, the pids limit is missing

count, err = 0, None
while count < SAFETY_CAP:
    try:
        pid = os.fork()
    except OSError as e:
        err = e.errno
        break
    if pid == 0:
        try:
            time.sleep(120)
        finally:
            os._exit(0)
    count += 1

obs = {"attack": "forkbomb", "forks": count, "errno": err,
       "errname": errno.errorcode.get(err) if err else None, "limit": limit}
if err is None:
    obs["verdict"] = "succeeded"
    emit(obs)
    sys.stderr.write("ATTACK SUCCEEDED: forked %d processes without hitting a limit\n" % count)
    sys.exit(EXIT_SUCCEEDED)
ok = err == errno.EAGAIN and count < limit
obs["verdict"] = "blocked" if ok else "unexpected"
emit(obs)
sys.exit(EXIT_BLOCKED if ok else EXIT_UNEXPECTED)
