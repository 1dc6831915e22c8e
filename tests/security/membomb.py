"""Attack: memory bomb. Allocates and touches 1 MiB chunks forever (up to a
4 GiB safety cap). With --memory 64M the memory cgroup must OOM-kill it:
status "oom". A MemoryError (an address-space rlimit instead of the cgroup)
exits 4."""
import sys

from _common import emit, gate, EXIT_SUCCEEDED, EXIT_UNEXPECTED

gate("membomb")
emit({"attack": "membomb", "stage": "started"})
chunks = []
try:
    for i in range(4096):
        chunks.append(bytes([i & 0xFF | 1]) * (1 << 20))  # filled, so every page is touched
except MemoryError:
    emit({"attack": "membomb", "stage": "MemoryError", "mib": len(chunks), "verdict": "unexpected"})
    sys.exit(EXIT_UNEXPECTED)
emit({"attack": "membomb", "stage": "done", "mib": len(chunks), "verdict": "succeeded"})
sys.stderr.write("ATTACK SUCCEEDED: allocated %d MiB\n" % len(chunks))
sys.exit(EXIT_SUCCEEDED)
