"""Attack: i386-ABI syscall through `int 0x80` from 64-bit code.

    mov eax, 20    ; i386 getpid
    int 0x80
    ret

The 32-bit entry uses a different syscall table (AUDIT_ARCH_I386): a filter
that does not check the architecture would apply x86_64 numbers to it. The
default profile must kill the process with SIGSYS (signal 31): the record
then shows status "error", signal 31, and only the "calling" line below."""
import ctypes
import sys

from _common import emit, gate, run_machine_code, EXIT_SUCCEEDED

gate("int80")
CODE = bytes([0xB8, 0x14, 0x00, 0x00, 0x00,   # mov eax, 20
              0xCD, 0x80,                     # int 0x80
              0xC3])                          # ret
emit({"attack": "int80", "stage": "calling", "nr": 20})
r = run_machine_code(CODE, ctypes.c_int)
emit({"attack": "int80", "stage": "returned", "ret": r, "verdict": "succeeded"})
sys.stderr.write("ATTACK SUCCEEDED: int 0x80 syscall returned %d instead of SIGSYS\n" % r)
sys.exit(EXIT_SUCCEEDED)
