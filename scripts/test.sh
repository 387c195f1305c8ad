#!/usr/bin/env bash
# The test command: installs what is missing (scripts/install.sh), then runs the
# frontend unit tests and the Python suite (unit, HTTP against a real
# tensorboard, and browser tests in headless Chromium).
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if command -v npm >/dev/null && [ -f frontend/package.json ]; then
  echo; echo "== frontend type check and unit tests"
  npm --prefix frontend run --silent typecheck
  npm --prefix frontend test
fi
echo; echo "== python tests"
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -q -p no:cacheprovider "${@:-tests}"
