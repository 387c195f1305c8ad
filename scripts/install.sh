#!/usr/bin/env bash
# One command from a fresh clone to a working tab:
#   bash scripts/install.sh            # install everything
#   bash scripts/install.sh --serve    # ... then run tensorboard on the bundled demo_logs
# Installs: Debian's chromium (for the browser tests), a virtualenv in .venv with
# the package (editable), TensorFlow (optional at run time, used by tests for
# checkpoint tensors) and the test tools; builds the frontend bundle with esbuild.
# Safe to run again: steps already done are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
SERVE=0
for arg in "$@"; do
  case "$arg" in
    --serve) SERVE=1 ;;
    *) echo "install.sh: unknown option $arg (use --serve)" >&2; exit 2 ;;
  esac
done

say() { printf '\n== %s\n' "$*"; }

# 1. System packages: Chromium for the end-to-end tests (Playwright drives it; it
#    never downloads a browser) and Node.js/npm for the frontend build.
APT_WANT=()
[ -x /usr/bin/chromium ] || APT_WANT+=(chromium)
command -v npm >/dev/null || APT_WANT+=(nodejs npm)
if [ ${#APT_WANT[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${APT_WANT[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${APT_WANT[@]}" >/dev/null
  else
    echo "note: missing ${APT_WANT[*]}; install them (apt-get install ${APT_WANT[*]}): without chromium the browser tests are skipped, without npm the committed bundle is used" >&2
  fi
fi

# 2. Python environment.
STAMP_INPUT="$(cat setup.py; $PY --version 2>&1)"
STAMP=$(printf '%s' "$STAMP_INPUT" | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  $PY -m venv .venv
fi
if [ "$(cat .venv/.al-install-stamp 2>/dev/null)" != "$STAMP" ]; then
  say "installing Python packages (tensorboard, numpy, scipy, scikit-learn, numba, TensorFlow, test tools)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test,tensorflow,bench]"
  echo "$STAMP" > .venv/.al-install-stamp
fi

# 3. Frontend bundle (committed too, so a plain pip install works without Node).
if command -v npm >/dev/null && [ -f frontend/package.json ]; then
  LOCK_STAMP=$(cat frontend/package.json frontend/package-lock.json 2>/dev/null | sha256sum | cut -c1-16)
  if [ ! -d frontend/node_modules ] || [ "$(cat frontend/node_modules/.al-stamp 2>/dev/null)" != "$LOCK_STAMP" ]; then
    say "installing frontend packages"
    npm --prefix frontend ci --no-audit --no-fund --loglevel=error
    echo "$LOCK_STAMP" > frontend/node_modules/.al-stamp
  fi
  say "building the frontend bundle"
  npm --prefix frontend run --silent build
else
  echo "note: npm not found; using the committed bundle in tensorboard_al_plugin/static/" >&2
fi

# 4. The demo log directory is committed; rebuild it only if it is missing.
if [ ! -f demo_logs/digits/plugins/active_labeling/digits/manifest.json ]; then
  say "writing demo_logs"
  .venv/bin/tensorboard-al demo --out demo_logs --quiet
fi

say "installed. Run:  .venv/bin/tensorboard --logdir demo_logs   and open the 'Active Labeling' tab"
if [ "$SERVE" = 1 ]; then
  exec .venv/bin/tensorboard --logdir "$ROOT/demo_logs"
fi
