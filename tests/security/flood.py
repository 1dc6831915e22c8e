"""Attack: output flood on argv[2] ("stdout" or "stderr", default stdout).
Writes 64 KiB blocks forever (1 GiB safety cap). With --output-limit the run
must end with status "output_limit" and the stream truncated to the limit."""
import os
import sys

from _common import gate

gate("flood")
stream = sys.argv[2] if len(sys.argv) > 2 else "stdout"
fd = 1 if stream == "stdout" else 2
block = b"A" * 65535 + b"\n"
total = 0
while total < (1 << 30):
    total += os.write(fd, block)
sys.stderr.write("ATTACK SUCCEEDED: wrote %d bytes without being stopped\n" % total)
sys.exit(3)
