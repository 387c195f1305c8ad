#!/usr/bin/env bash
# One command from a fresh clone to a working tab:
#   bash scripts/install.sh                     # install everything
#   bash scripts/install.sh --serve             # ... then run tensorboard on the bundled demo_logs (port 6006)
#   bash scripts/install.sh --serve --port 6007 # ... on another port (--port=6007 works too)
#   bash scripts/install.sh --serve -- --bind_all  # anything after -- goes to tensorboard as it is
# Installs: Debian's chromium (for the browser tests), a virtualenv in .venv with
# the package (editable; with faiss-cpu, the neighbour search above 40,000 rows),
# TensorFlow (optional at run time, used by tests for checkpoint tensors),
# umap-learn (the UMAP layout, optional too) and the test tools; builds the frontend bundle with esbuild; compiles the t-SNE kernels
# (tensorboard-al warmup) so the first layout does not.
# Safe to run again: steps already done are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
SERVE=0
PORT=
TB_ARGS=()
usage() {
  echo "usage: bash scripts/install.sh [--serve [--port N] [-- TENSORBOARD_ARGS...]]" >&2
  exit 2
}
set_port() {
  if ! [[ "$1" =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then
    echo "install.sh: --port takes a port number from 1 to 65535, got '$1'" >&2
    exit 2
  fi
  PORT=$1
}
while [ $# -gt 0 ]; do
  case "$1" in
    --serve) SERVE=1 ;;
    --port) [ $# -ge 2 ] || { echo "install.sh: --port needs a number, e.g. --port 6007" >&2; exit 2; }
            set_port "$2"; shift ;;
    --port=*) set_port "${1#--port=}" ;;
    --) shift; TB_ARGS=("$@"); break ;;
    -h|--help) echo "usage: bash scripts/install.sh [--serve [--port N] [-- TENSORBOARD_ARGS...]]"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage ;;
  esac
  shift
done
if [ "$SERVE" = 0 ] && { [ -n "$PORT" ] || [ ${#TB_ARGS[@]} -gt 0 ]; }; then
  echo "install.sh: --port and tensorboard arguments go with --serve (bash scripts/install.sh --serve --port ${PORT:-6007})" >&2
  exit 2
fi

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
  say "installing Python packages (tensorboard, numpy, scipy, scikit-learn, numba, faiss-cpu, TensorFlow, umap-learn, test tools)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test,tensorflow,bench,umap]"
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

# 5. Compile numba's kernels into its on-disk cache now (about 30 s once; seconds
#    when they are cached already), instead of in the first layout.
say "compiling the t-SNE kernels (tensorboard-al warmup)"
.venv/bin/tensorboard-al warmup --quiet

if [ -n "$PORT" ]; then
  TB_ARGS=(--port "$PORT" ${TB_ARGS[@]+"${TB_ARGS[@]}"})
fi
say "installed. Run:  .venv/bin/tensorboard --logdir demo_logs${PORT:+ --port $PORT}   and open http://localhost:${PORT:-6006}, tab 'Active Labeling'"
if [ "$SERVE" = 1 ]; then
  # (the ${a[@]+...} form: an empty array is "unbound" to set -u in bash before 4.4)
  exec .venv/bin/tensorboard --logdir "$ROOT/demo_logs" ${TB_ARGS[@]+"${TB_ARGS[@]}"}
fi
