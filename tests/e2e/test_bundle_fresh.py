"""The committed bundle (tensorboard_al_plugin/static/index.js, what a pip
install serves) is the build of the current frontend sources."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FRONTEND = os.path.join(ROOT, "frontend")


def test_committed_bundle_matches_the_sources():
    node = shutil.which("node")
    if node is None or not os.path.isdir(os.path.join(FRONTEND, "node_modules", "esbuild")):
        pytest.skip("node or the frontend's node_modules are missing (npm --prefix frontend ci)")
    r = subprocess.run([node, "build.mjs", "--check"], cwd=FRONTEND, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
