#!/usr/bin/env bash
# The engine, label-store, HTTP and CLI tests on the other supported Pythons,
# each in a lean virtualenv (the package and pytest; no TensorFlow, no browser):
#   3.10 to 3.13 (but the default Python of .venv) with the newest dependencies
#   pip gives for them, and 3.10 with every dependency of setup.py's
#   install_requires at its floor (a constraints file "name==floor" written
#   from setup.py).
# The default Python (.venv, scripts/install.sh) runs the full suite in scripts/test.sh.
#   bash scripts/test_pythons.sh                 # every stage
#   bash scripts/test_pythons.sh 3.12 3.10-floor # some stages
# A Python that the machine does not have (pyenv versions, or python3.X on PATH)
# is skipped with a printed note. A venv is reused while its inputs (setup.py,
# the Python version, the stage's constraints) are unchanged. Stops at the first
# failing stage with its exit status, so pytest's summary is the last line.
set -euo pipefail
cd "$(dirname "$0")/.."

SUPPORTED=(3.10 3.11 3.12 3.13)
STAGES=("$@")
if [ ${#STAGES[@]} -eq 0 ]; then
  # every supported Python but the default one (.venv runs the full suite), then the floors
  DEFAULT=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
  for v in "${SUPPORTED[@]}"; do
    if [ "$v" = "$DEFAULT" ]; then
      echo "note: Python $v is the default (.venv); scripts/test.sh runs the full suite on it"
    else
      STAGES+=("$v")
    fi
  done
  STAGES+=("${SUPPORTED[0]}-floor")
fi

# Engine-free HTTP/CLI/label-store files join when they exist.
TESTS=(
  tests/test_kernels.py tests/test_tsne.py tests/test_sessions.py              # engine
  tests/test_knn.py                                                            # (FAISS at its floor)
  tests/test_active_emulation.py tests/test_active_strategies.py               # (active/ numba kernels)
  tests/test_labels.py tests/test_labels_processes.py tests/test_projector_labels.py  # label store
  tests/test_label_storage.py tests/test_fs_atomic.py
  tests/test_http_labels.py tests/test_http_layout.py tests/test_http_active.py  # HTTP
  tests/test_logdir_http.py tests/test_catalog.py
  tests/test_cli_labels.py tests/test_writer_cli.py tests/test_cli_speed.py     # CLI
  tests/test_embed_images.py tests/test_embed_cli.py tests/test_features.py    # embed (pixels, pca)
  tests/test_workspace.py tests/test_rounds.py                                 # the server's rooms
  tests/test_hostile_logdir.py tests/test_hostile_input.py
  tests/test_umap_layout.py tests/test_umap_http.py   # skipped: the lean venvs have no umap-learn
)

find_python() {  # prints a working python3.X interpreter, or nothing
  local v=$1 c
  local candidates=()
  if command -v pyenv >/dev/null; then
    for c in "$(pyenv root)"/versions/"$v".*/bin/python"$v"; do candidates+=("$c"); done
  fi
  c=$(command -v "python$v" || true)
  [ -z "$c" ] || candidates+=("$c")
  for c in "${candidates[@]}"; do
    if [ -x "$c" ] && "$c" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$v'.split('.'))))" 2>/dev/null; then
      echo "$c"
      return
    fi
  done
}

floor_constraints() {  # name==floor for each "name>=floor" of setup.py's install_requires
  "$1" - <<'EOF'
import ast, re
tree = ast.parse(open("setup.py").read())
for node in ast.walk(tree):
    if isinstance(node, ast.keyword) and node.arg == "install_requires":
        for req in ast.literal_eval(node.value):
            m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)", req.split(",")[0].split(";")[0])
            if m:
                print(f"{m.group(1)}=={m.group(3)}")
EOF
}

run_stage() {
  local stage=$1 v kind py venv constraints="" stamp
  v=${stage%-floor}
  if [ "$stage" = "$v" ]; then kind="newest deps"; else kind="floor deps"; fi
  echo
  echo "== python $v ($kind): engine, label store, HTTP, CLI"
  py=$(find_python "$v")
  if [ -z "$py" ]; then
    echo "note: Python $v not found, skipping its stage"
    return 0
  fi
  venv=.venvs/py$stage
  if [ "$kind" = "floor deps" ]; then
    constraints=$(floor_constraints "$py")
    echo "floors: $(echo "$constraints" | tr '\n' ' ')"
  fi
  stamp=$(printf '%s\n%s\n%s\n' "$(cat setup.py)" "$("$py" --version 2>&1)" "$constraints" | sha256sum | cut -c1-16)
  if [ "$(cat "$venv/.al-install-stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$venv"
    if ! "$py" -m venv "$venv"; then
      echo "note: $py cannot create a virtualenv (install its venv module), skipping its stage"
      rm -rf "$venv"
      return 0
    fi
    echo "installing the package and pytest into $venv (log: $venv/pip.log)"
    local cargs=()
    if [ -n "$constraints" ]; then
      echo "$constraints" > "$venv/constraints.txt"
      cargs=(-c "$venv/constraints.txt")
    fi
    # fsspec: the label store's memory:// tests
    if ! { "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip &&
           "$venv/bin/python" -m pip install -q --disable-pip-version-check "${cargs[@]}" -e . pytest fsspec
         } > "$venv/pip.log" 2>&1; then
      grep -v "^WARNING: Location .* is ignored" "$venv/pip.log" | tail -n 30
      echo "test_pythons.sh: error: pip could not install the python $stage stage (see $venv/pip.log)"
      return 1
    fi
    echo "$stamp" > "$venv/.al-install-stamp"
  fi
  "$venv/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
    | awk 'tolower($1) ~ /^(numpy|scipy|numba|scikit-learn|tensorboard|pillow|matplotlib|tqdm|faiss-cpu)$/ {printf "%s %s  ", $1, $2} END {print ""}'
  local files=() f
  for f in "${TESTS[@]}"; do [ ! -f "$f" ] || files+=("$f"); done
  # numba's on-disk cache per stage: two numba versions on one Python would
  # otherwise overwrite each other's cache files in the source tree.
  NUMBA_CACHE_DIR="$PWD/$venv/numba-cache" TF_CPP_MIN_LOG_LEVEL=2 \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "${files[@]}"
}

for stage in "${STAGES[@]}"; do
  case "$stage" in
    3.1[0-9]|3.1[0-9]-floor) run_stage "$stage" ;;
    *) echo "test_pythons.sh: error: unknown stage $stage (use 3.10 to 3.13, or 3.10-floor)" >&2; exit 2 ;;
  esac
done
