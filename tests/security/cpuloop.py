"""Attack: burn CPU forever. With --cpu 1s --wall 10s the run must end with
status "timeout", timeout_reason "cpu", long before the wall limit."""
from _common import emit, gate

gate("cpuloop")
emit({"attack": "cpuloop", "stage": "started"})
x = 0
while True:
    x += 1
