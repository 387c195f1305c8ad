#!/usr/bin/env bash
# The test command: installs what is missing (scripts/install.sh), then runs the
# frontend unit tests, the engine, label-store, HTTP and CLI tests on the other
# supported Pythons that this machine has (scripts/test_pythons.sh: 3.10, 3.12,
# 3.13 with the newest dependencies, 3.10 with setup.py's floors; lean venvs in
# .venvs/), and last the whole Python suite (unit, HTTP against a real
# tensorboard, and browser tests in headless Chromium) on the default Python.
#   bash scripts/test.sh                # all of it (CI)
#   bash scripts/test.sh [pytest args]  # only the default Python's pytest run, with these args
# A failing stage stops the run with a non-zero exit; the last line is always
# the summary of a pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if command -v npm >/dev/null && [ -f frontend/package.json ]; then
  echo; echo "== frontend type check and unit tests"
  npm --prefix frontend run --silent typecheck
  npm --prefix frontend test
fi
export TF_CPP_MIN_LOG_LEVEL=2
if [ $# -eq 0 ]; then
  bash scripts/test_pythons.sh
else
  echo; echo "note: pytest arguments given, skipping the other Pythons' stages (bash scripts/test_pythons.sh runs them)"
fi
echo; echo "== python $(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])') (default, .venv): full suite"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "${@:-tests}"
