"""Attack: bpf().

BPF_MAP_CREATE (array map) and BPF_PROG_LOAD (socket filter "r0 = 0; exit").
Must fail with EPERM (or the profile's deny errno / SIGSYS). (On this kernel
unprivileged_bpf_disabled also yields EPERM; the seccomp profile must deny it
regardless.)"""
import ctypes

from _common import attempt, deny_errnos, finish, gate, sysc

gate("bpf")
deny = deny_errnos()
BPF_MAP_CREATE, BPF_PROG_LOAD = 0, 5
BPF_MAP_TYPE_ARRAY, BPF_PROG_TYPE_SOCKET_FILTER = 2, 1


def map_create():
    attr = (ctypes.c_uint32 * 32)()
    attr[0] = BPF_MAP_TYPE_ARRAY
    attr[1] = 4   # key_size
    attr[2] = 4   # value_size
    attr[3] = 1   # max_entries
    return sysc("bpf", BPF_MAP_CREATE, attr, ctypes.sizeof(attr))


def prog_load():
    # mov64 r0, 0 ; exit
    insns = (ctypes.c_uint64 * 2)(0x00000000000000b7, 0x0000000000000095)
    license = ctypes.create_string_buffer(b"GPL")
    attr = (ctypes.c_uint64 * 16)()
    attr[0] = BPF_PROG_TYPE_SOCKET_FILTER | (2 << 32)   # prog_type, insn_cnt
    attr[1] = ctypes.addressof(insns)                    # insns
    attr[2] = ctypes.addressof(license)                  # license
    return sysc("bpf", BPF_PROG_LOAD, attr, ctypes.sizeof(attr))


results = {
    "bpf(BPF_MAP_CREATE)": attempt(map_create),
    "bpf(BPF_PROG_LOAD)": attempt(prog_load),
}
finish("bpf", results, deny)
