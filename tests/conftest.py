import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

DEMO_LOGS = os.path.join(ROOT, "demo_logs")


@pytest.fixture
def demo_logdir(tmp_path):
    """A private copy of the bundled demo_logs (tests may label it)."""
    if not os.path.isdir(DEMO_LOGS):
        pytest.fail("demo_logs is missing: run `tensorboard-al demo --out demo_logs`")
    dest = tmp_path / "demo_logs"
    shutil.copytree(DEMO_LOGS, dest)
    return str(dest)
