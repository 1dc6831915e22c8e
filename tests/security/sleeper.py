"""Attack: outlive the wall-clock limit by sleeping (argv[2] seconds, default
60). With --wall 1s: status "timeout", timeout_reason "wall"."""
import sys
import time

from _common import emit, gate

gate("sleeper")
secs = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
emit({"attack": "sleeper", "stage": "sleeping", "seconds": secs})
time.sleep(secs)
emit({"attack": "sleeper", "stage": "woke up", "verdict": "succeeded"})
sys.exit(3)
