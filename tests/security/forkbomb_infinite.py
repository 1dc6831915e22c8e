"""Attack: a real fork bomb. Every process forks forever, retrying when
fork() fails. Never exits by itself: the run must end at the wall limit with
status "timeout", and nothing may be left behind on the host.
(The test runs this only after forkbomb.py showed the pids limit works.)"""
import os

from _common import emit, gate

gate("forkbomb_infinite")
emit({"attack": "forkbomb_infinite", "stage": "started"})
while True:
    try:
        os.fork()
    except OSError:
        pass
