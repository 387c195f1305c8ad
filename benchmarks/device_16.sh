#!/usr/bin/env bash
# Issue #13's 16-core figures in one call of the device machine per part.
#
# No 16-core machine has been at hand for this project so far; when a session is lent one
# (16 cores, 15 minutes of machine time in all, at most 10 minutes a call), this is the
# prepared script to run there, so that the time goes on measuring.
#
# Here, once (fills .device/, which .gitignore ignores): ~52 MB, under the 64 MiB
# that travels with the working tree:
#     bash benchmarks/device_16.sh fetch
#   .device/whl: the wheels the device's Python 3.12 lacks (faiss-cpu, openTSNE 1.0.4);
#   .device/fashion-mnist: Fashion-MNIST's four idx .gz files.
# There (the run tool; carry [".device"]; timeout_s 590):
#     bash benchmarks/device_16.sh all   # one call, ~10 minutes: the steps below, most wanted first
#                                        # (70k 2D interleaved, 70k affinities, 70k 3D, 10^6
#                                        # affinities, a 70k session, 10^6 2D); later ones may be
#                                        # censored by the budget
#   or, with time for two calls (the second while the machine is warm: the kernels stay compiled):
#     bash benchmarks/device_16.sh 70k   # Fashion-MNIST 70k at 16 threads: interleaved
#                                        # supervised / unsupervised / openTSNE, 2D and 3D;
#                                        # a labeling session at r = 1; affinities against openTSNE's;
#                                        # then 10k and digits
#     bash benchmarks/device_16.sh 1m    # 10^6 x 50 clusters at 16 threads: affinities against
#                                        # openTSNE's; 2D 20 + 20 iterations interleaved
# Here, a dry run of the plumbing at 2 threads (digits and 6,000 rows, ~3 minutes):
#     PY=.venv/bin/python OUT=/tmp/device_16 bash benchmarks/device_16.sh quick
#
# Each part starts its steps in order of what they measure for the issue, gives each the time
# left of DEVICE_BUDGET_S (default 560 s, inside the call's 600 s), starts none with less than a
# minute left, and writes a step that ran out of time as censored, not dropped. It leaves in $OUT
# device_16_<part>.log and device_16_<part>.tar.gz (the benchmarks' json, md and png, rewritten
# after every step, so a call cut short still brings back what finished). Copy them into
# benchmarks/results/device_16/ with the date; the md files name the machine and the load.
set -u
part="${1:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here" || exit 1
dev="$here/.device"

if [ "$part" = fetch ]; then
    mkdir -p "$dev/whl" "$dev/fashion-mnist"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$dev/whl" "faiss-cpu==1.15.1" "openTSNE==1.0.4" || exit 1
    src=/usr/share/datasets/fashion-mnist
    [ -d "$src" ] || { echo "Fashion-MNIST not found at $src: apt-get install -y dataset-fashion-mnist"; exit 1; }
    cp "$src"/*-ubyte.gz "$dev/fashion-mnist/" || exit 1
    du -sh "$dev"
    exit 0
fi

case "$part" in
    all|70k|1m|quick) ;;
    *) echo "usage: bash benchmarks/device_16.sh fetch|all|70k|1m|quick" >&2; exit 2 ;;
esac

OUT="${OUT:-/tmp/device_16}"
mkdir -p "$OUT"
PY="${PY:-python3}"
threads="${DEVICE_THREADS:-$( [ "$part" = quick ] && echo 2 || nproc )}"
budget="${DEVICE_BUDGET_S:-560}"
res="${DEVICE_RESULTS:-/tmp/device_16_results/$part}"
log="$OUT/device_16_$part.log"
mkdir -p "$res"
start=$SECONDS
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
export TSNE_BENCH_CACHE="${TSNE_BENCH_CACHE:-/tmp/tsne_bench_cache}"
[ -d "$dev/fashion-mnist" ] && export FASHION_MNIST_DIR="$dev/fashion-mnist"

say() { echo "[$(date -u +%H:%M:%S) +$((SECONDS - start)) s] $*" | tee -a "$log"; }

pack() {  # what has finished so far comes back, even if the call is cut short
    tar -czf "$OUT/device_16_$part.tar.gz.tmp" -C "$res" . 2>/dev/null \
        && mv "$OUT/device_16_$part.tar.gz.tmp" "$OUT/device_16_$part.tar.gz"
}

step() {  # step NAME COMMAND...: with the budget's time left, or censored
    local name="$1"; shift
    local left=$((budget - (SECONDS - start)))
    if [ "$left" -lt 60 ]; then
        say "$name: not started, $left s of the budget left (censored)"
        echo "$name: censored, not started ($left s left)" >> "$res/device_16_steps.txt"
        return
    fi
    say "$name: starting, $left s left; load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
    local t0=$SECONDS
    timeout --signal=TERM --kill-after=10 "$left" "$@" >> "$log" 2>&1
    local rc=$?
    local how="exit $rc"
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && how="censored: still running after $left s (killed)"
    say "$name: $how in $((SECONDS - t0)) s"
    echo "$name: $how in $((SECONDS - t0)) s, threads $threads" >> "$res/device_16_steps.txt"
    pack
}

{
    echo "# device_16.sh $part, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "host: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "memory: $(grep MemTotal /proc/meminfo)"
    echo "threads used: $threads; budget $budget s; python: $($PY -V 2>&1)"
} > "$res/device_16_machine.txt"
cat "$res/device_16_machine.txt" | tee -a "$log"

# the wheels the device lacks, beside its own packages (its numpy, scipy, scikit-learn, numba)
if [ -d "$dev/whl" ] && ! $PY -c "import faiss, openTSNE" 2>/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/device_16_site "$dev"/whl/*.whl >> "$log" 2>&1 || { say "pip install failed"; exit 1; }
    export PYTHONPATH="/tmp/device_16_site${PYTHONPATH:+:$PYTHONPATH}"
fi
$PY -c "import numpy, scipy, sklearn, numba, faiss, openTSNE; print('numpy', numpy.__version__, 'scipy', scipy.__version__, 'scikit-learn', sklearn.__version__, 'numba', numba.__version__, 'faiss', faiss.__version__, 'openTSNE', openTSNE.__version__)" \
    2>&1 | tee -a "$log" "$res/device_16_machine.txt"

# the kernels compiled once, into the package's __pycache__, outside every timed region
step warmup env PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" NUMBA_NUM_THREADS="$threads" \
    $PY -m tensorboard_al_plugin.cli warmup

T=(--threads "$threads")
interleaved() { step "interleaved-$1" $PY benchmarks/tsne_bench.py --interleaved --only "$1" "${T[@]}" --results "$res"; }
affinities_70k() { step affinities-70k $PY benchmarks/knn_bench.py --methods ours,opentsne "${T[@]}" --out "$res"; }
affinities_1m() { step affinities-1m $PY benchmarks/knn_bench.py --big --methods ours,opentsne "${T[@]}" --out "$res"; }
session_70k() {
    step session-70k-r1 $PY benchmarks/labeling_session.py --r 1 "${T[@]}" --results "$res" \
        --figure "$res/labeling_session.png"
}
big_2d() {
    step interleaved-1m-2d $PY benchmarks/tsne_bench.py --big --interleaved --big-affinities ours --only 2d \
        --phase-iters 20 "${T[@]}" --results "$res"
}
case "$part" in
    all)  # one call: what each step measures for the issue, most first
        interleaved fmnist70k-2d; affinities_70k; interleaved fmnist70k-3d; affinities_1m
        session_70k; big_2d ;;
    70k)
        interleaved fmnist70k-2d; interleaved fmnist70k-3d; session_70k; affinities_70k
        interleaved fmnist10k; interleaved digits ;;
    1m)
        affinities_1m; big_2d ;;
    quick)
        step interleaved-digits $PY benchmarks/tsne_bench.py --interleaved --quick --only digits-2d "${T[@]}" \
            --iters 100 --results "$res"
        step session-digits $PY benchmarks/labeling_session.py --quick --iters 100 --r 1 "${T[@]}" --results "$res" \
            --figure "$res/labeling_session.png"
        step affinities-small $PY benchmarks/knn_bench.py --small --methods ours,opentsne "${T[@]}" --out "$res"
        ;;
esac
pack
say "done: $OUT/device_16_$part.tar.gz"
ls -la "$res" | tee -a "$log"
