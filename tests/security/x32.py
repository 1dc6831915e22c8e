"""Attack: an x32-ABI syscall (nr | 0x40000000) from inline machine code.

    mov eax, 0x40000027   ; __X32_SYSCALL_BIT | getpid
    syscall
    ret

A filter that only compares syscall numbers would let x32 numbers through to
the default action (or the kernel's x32 table). The default profile must kill
the process with SIGSYS (signal 31): the record then shows status "error",
signal 31, and only the "calling" line below is printed."""
import ctypes
import sys

from _common import emit, gate, run_machine_code, EXIT_SUCCEEDED

gate("x32")
CODE = bytes([0xB8, 0x27, 0x00, 0x00, 0x40,   # mov eax, 0x40000027
              0x0F, 0x05,                     # syscall
              0xC3])                          # ret
emit({"attack": "x32", "stage": "calling", "nr": 0x40000027})
r = run_machine_code(CODE, ctypes.c_long)
emit({"attack": "x32", "stage": "returned", "ret": r, "verdict": "succeeded"})
sys.stderr.write("ATTACK SUCCEEDED: x32 syscall returned %d instead of SIGSYS\n" % r)
sys.exit(EXIT_SUCCEEDED)
