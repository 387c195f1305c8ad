"""The layout at 10^5-10^6 rows, as the server runs it: prepare (neighbours,
affinities, PCA start) and supervised iterations, with the phases' times,
the progress estimate the tab and CLI show, and the process's peak memory.

    .venv/bin/python benchmarks/make_big_logdir.py --rows 1000000 --out /tmp/al-big/logdir_1m
    flock /tmp/al-big.lock .venv/bin/python benchmarks/layout_1m.py \\
        --embedding /tmp/al-big/logdir_1m/plugins/active_labeling/fmnist1m --threads 2

Labels: half the rows (seeded) labeled with their metadata class, f = r = 0.1,
as in every real session. Iterations: ``--early`` inside early exaggeration
and ``--late`` after it (exaggeration 1), not a whole run. Writes
benchmarks/results/layout_1m.{json,md}. No peer here: openTSNE at this size
is in benchmarks/knn_bench.py (affinities) and tsne_bench.py --big (iterations).
"""
import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedding", required=True, help="an embedding folder written by write_embedding")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--dims", type=int, default=2, choices=(2, 3))
    ap.add_argument("--early", type=int, default=20)
    ap.add_argument("--late", type=int, default=20)
    ap.add_argument("--labeled", type=float, default=0.5)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "layout_1m"))
    args = ap.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import numba

    from tensorboard_al_plugin.tsne import SemiSupervisedTSNE

    numba.set_num_threads(args.threads)
    with open(os.path.join(args.embedding, "manifest.json")) as f:
        manifest = json.load(f)
    n, d = manifest["rows"], manifest["dims"]
    X = np.fromfile(os.path.join(args.embedding, manifest["tensor"]), dtype="<f4").reshape(n, d)
    with open(os.path.join(args.embedding, manifest["metadata"]), encoding="utf-8") as f:
        lines = f.read().split("\n")
    # one column: no header line (the Projector's format); several: a header, the first column taken
    if len(manifest.get("metadata_columns", [])) > 1:
        col = [line.split("\t", 1)[0] for line in lines[1:n + 1]]
    else:
        col = lines[:n]
    classes, codes = np.unique(np.asarray(col), return_inverse=True)
    rng = np.random.default_rng(0)
    labels = np.where(rng.random(n) < args.labeled, codes, -1).astype(np.int64)

    phases = []
    last = {"phase": None, "t": time.perf_counter()}
    t0 = time.perf_counter()

    def progress(phase, fraction, *rest):
        now = time.perf_counter()
        if phase != last["phase"]:
            phases.append({"phase": phase, "start_s": round(now - t0, 2)})
            last["phase"] = phase
            print("%7.1f s  %s" % (now - t0, phase), flush=True)

    load0 = os.getloadavg()[0]
    run = SemiSupervisedTSNE(n_components=args.dims, random_state=0).prepare(
        X, labels=labels, phase_progress=progress)
    prepare_s = time.perf_counter() - t0
    print("prepare %.1f s, peak %.0f MiB" % (prepare_s, peak_mib()), flush=True)
    times = []
    for i in range(args.early + args.late):
        if i == args.early:
            # jump past early exaggeration: the late figure is a plain iteration
            while run.exaggeration_at(run.iteration) != 1.0:
                run.iteration += 1
        t = time.perf_counter()
        run.step(1)
        times.append(time.perf_counter() - t)
    early = 1000 * float(np.mean(times[1:args.early]))
    late = 1000 * float(np.mean(times[args.early:]))
    result = {
        "rows": n, "dims_in": d, "dims_out": args.dims, "threads": args.threads,
        "labeled": args.labeled, "classes": len(classes),
        "prepare_s": round(prepare_s, 1), "phases": phases,
        "early_ms_per_iter": round(early, 1), "late_ms_per_iter": round(late, 1),
        "iterations": [args.early, args.late],
        "peak_rss_mib": round(peak_mib()), "features_mib": round(X.nbytes / 2**20),
        "load_start": round(load0, 2), "load_end": round(os.getloadavg()[0], 2),
        "machine": "%s, %d cores, Python %s" % (platform.machine(), os.cpu_count(), platform.python_version()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(result, indent=1))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
