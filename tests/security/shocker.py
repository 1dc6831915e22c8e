"""Attack: open_by_handle_at ("shocker" container breakout).

name_to_handle_at() on /code, then open_by_handle_at() with that handle and
with a forged handle for the host's root inode (ext4 root inode 2). Needs
CAP_DAC_READ_SEARCH; must fail with EPERM (or SIGSYS)."""
import ctypes
import os

from _common import attempt, deny_errnos, finish, gate, sysc

gate("shocker")
deny = deny_errnos()
AT_FDCWD = -100
MAX_HANDLE_SZ = 128


class FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * MAX_HANDLE_SZ)]


def name_to_handle():
    fh = FileHandle()
    fh.handle_bytes = MAX_HANDLE_SZ
    mount_id = ctypes.c_int(0)
    r = sysc("name_to_handle_at", AT_FDCWD, b"/code", ctypes.byref(fh), ctypes.byref(mount_id), 0)
    r["handle_type"] = fh.handle_type
    r["handle_bytes"] = fh.handle_bytes
    return r


def open_by_handle(forge):
    fh = FileHandle()
    fh.handle_bytes = MAX_HANDLE_SZ
    mount_id = ctypes.c_int(0)
    sysc("name_to_handle_at", AT_FDCWD, b"/code", ctypes.byref(fh), ctypes.byref(mount_id), 0)
    if forge:
        # classic shocker: FILEID_INO32_GEN (1) for inode 2 (root of an ext fs)
        fh.handle_bytes = 8
        fh.handle_type = 1
        ctypes.memset(fh.f_handle, 0, MAX_HANDLE_SZ)
        fh.f_handle[0] = 2
    fd = os.open("/code", os.O_RDONLY)
    return sysc("open_by_handle_at", fd, ctypes.byref(fh), os.O_RDONLY)


info = attempt(name_to_handle)  # informational (allowed or not: not itself an attack)
results = {
    "open_by_handle_at(own handle)": attempt(lambda: open_by_handle(False)),
    "open_by_handle_at(forged root inode)": attempt(lambda: open_by_handle(True)),
}
finish("shocker", results, deny, {"name_to_handle_at": info})
