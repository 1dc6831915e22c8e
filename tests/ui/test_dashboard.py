"""The dashboard end to end: a real hksd (started here) and tests/ui/dashboard.mjs driving Debian's
Chromium through playwright-core (installed by `make ui-deps`). Screenshots: build/ui-artifacts."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))
from hksd_process import HKSD, REPO, Daemon  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCRIPT = pathlib.Path(__file__).with_name("dashboard.mjs")
ARTIFACTS = REPO / "build" / "ui-artifacts"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(HKSD),
                                reason="needs root and build/hksd")

SCOPES = ("functions:deploy functions:invoke functions:read functions:delete functions:execute "
          "cronjobs:read cronjobs:write")


def test_dashboard_in_chromium():
    for need in (CHROMIUM, REPO / "ui" / "node_modules" / "playwright-core"):
        assert os.path.exists(need), "%s is missing: run make ui-deps (and make deps)" % need
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    d = Daemon()
    try:
        env = dict(os.environ, HKSD_URL=d.url, HKS_TOKEN=d.token(SCOPES, sub="e2e", ttl="30m"),
                   ARTIFACTS=str(ARTIFACTS), CHROMIUM=CHROMIUM)
        run = subprocess.run(["node", str(SCRIPT)], env=env, capture_output=True, text=True,
                             timeout=300)
        print(run.stdout)
        assert run.returncode == 0, run.stdout + run.stderr + "\nhksd:\n" + d.logs()[-4000:]
        assert "not ok" not in run.stdout
        shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
        assert len(shots) == 9, shots
    finally:
        assert d.stop() == 0, d.logs()
        shutil.rmtree(d.state, ignore_errors=True)
