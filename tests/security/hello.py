"""Positive control: a benign program. Prints a greeting and some facts."""
import json
import os
import socket
import sys

print(json.dumps({"attack": "none", "hello": "hello from python",
                  "uid": os.getuid(), "gid": os.getgid(),
                  "hostname": socket.gethostname(), "cwd": os.getcwd(),
                  "argv1": sys.argv[1] if len(sys.argv) > 1 else None}))
