"""Attack: fill a tmpfs (argv[2], default /tmp) until the disk is full.

Writes 1 MiB blocks until write() fails. With --tmpfs-size 16M the failure
must be ENOSPC after at most 16 MiB (+ slack). argv[3] names the expected
errno (default ENOSPC; EFBIG when the test lowers --fsize below the tmpfs
size instead). A cap of 1 GiB ends the attack as "succeeded" (unbounded)."""
import errno
import os
import sys

from _common import emit, gate, EXIT_BLOCKED, EXIT_SUCCEEDED, EXIT_UNEXPECTED

gate("fill_tmp")
target = sys.argv[2] if len(sys.argv) > 2 else "/tmp"
expected = getattr(errno, sys.argv[3]) if len(sys.argv) > 3 else errno.ENOSPC
name = os.path.join(target, "fill-" + (sys.argv[1] if len(sys.argv) > 1 else "x"))
block = b"\xa5" * (1 << 20)
written, err = 0, None
CAP = 1 << 30
try:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    while written < CAP:
        n = os.write(fd, block)
        written += n
        if n < len(block):
            continue  # partial write: the next one reports the error
    os.close(fd)
except OSError as e:
    err = e.errno
# a second file must not get more space either
second = None
try:
    with open(name + ".2", "wb") as f:
        f.write(block)
        f.flush()
        os.fsync(f.fileno())
    second = os.path.getsize(name + ".2")
except OSError as e:
    second = "errno %d" % e.errno
st = os.statvfs(target)
obs = {"attack": "fill_tmp", "target": target, "bytes_written": written, "errno": err,
       "errname": errno.errorcode.get(err) if err else None, "second_file": second,
       "fs_size_bytes": st.f_blocks * st.f_frsize}
if err is None:
    obs["verdict"] = "succeeded"
    emit(obs)
    sys.stderr.write("ATTACK SUCCEEDED: wrote %d bytes to %s\n" % (written, target))
    sys.exit(EXIT_SUCCEEDED)
obs["verdict"] = "blocked" if err == expected else "unexpected"
emit(obs)
sys.exit(EXIT_BLOCKED if err == expected else EXIT_UNEXPECTED)
