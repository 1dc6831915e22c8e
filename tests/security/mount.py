"""Attack: mount / remount / unmount / chroot / pivot_root / new mount API.

mount tmpfs, bind mounts, remount /code read-write, umount /code, chroot,
pivot_root, fsopen("tmpfs"), open_tree(/code, OPEN_TREE_CLONE). All need
CAP_SYS_ADMIN (or CAP_SYS_CHROOT); each must fail with EPERM (or SIGSYS).
Inside a user namespace that kept its capabilities, tmpfs/bind mounts would
succeed, so this distinguishes "capabilities dropped / seccomp" from not."""
import os

from _common import attempt, deny_errnos, finish, gate, sysc

gate("mount")
deny = deny_errnos()
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC = 1, 32, 4096, 16384
MNT_DETACH = 2
AT_FDCWD = -100
OPEN_TREE_CLONE = 1
NR_OPEN_TREE, NR_FSOPEN = 428, 430

os.makedirs("/tmp/mnt", exist_ok=True)
results = {
    "mount tmpfs /tmp/mnt": attempt(lambda: sysc("mount", b"none", b"/tmp/mnt", b"tmpfs", 0, b"size=1m")),
    "mount proc /tmp/mnt": attempt(lambda: sysc("mount", b"proc", b"/tmp/mnt", b"proc", 0, None)),
    "bind mount /code /tmp/mnt": attempt(lambda: sysc("mount", b"/code", b"/tmp/mnt", None, MS_BIND | MS_REC, None)),
    "remount /code rw": attempt(lambda: sysc("mount", None, b"/code", None, MS_REMOUNT | MS_BIND, None)),
    "remount / rw": attempt(lambda: sysc("mount", None, b"/", None, MS_REMOUNT, None)),
    "umount2 /code": attempt(lambda: sysc("umount2", b"/code", MNT_DETACH)),
    "umount2 /proc": attempt(lambda: sysc("umount2", b"/proc", MNT_DETACH)),
    "chroot /tmp": attempt(lambda: sysc("chroot", b"/tmp")),
    "pivot_root /tmp /tmp/mnt": attempt(lambda: sysc("pivot_root", b"/tmp", b"/tmp/mnt")),
    "fsopen tmpfs": attempt(lambda: sysc(NR_FSOPEN, b"tmpfs", 0)),
    "open_tree /code clone": attempt(lambda: sysc(NR_OPEN_TREE, AT_FDCWD, b"/code", OPEN_TREE_CLONE)),
}
finish("mount", results, deny)
