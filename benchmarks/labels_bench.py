"""Label store benchmark: load time of a 70,000-row store, append throughput.

    .venv/bin/python benchmarks/labels_bench.py [--rows 70000] [--out benchmarks/results/labels_bench.json]

The store is built the way a labeling session builds it: 700 actions of 100
rows each (every row labelled, 10 classes), 9,300 single-row corrections
(10,000 actions in all), then the worst case for loading,
SNAPSHOT_EVERY_RECORDS - 1 actions after the last snapshot that a load must
replay from the history.  Load = ``LabelStore(...)`` plus ``state()``, the
median of 7 runs in a fresh store object.  Throughput = ``assign`` calls per
second of one row each, with and without fsync, on a local disk and on
``memory://`` (segment files through TensorBoard's stub gfile).  The machine's
load average at the start and the end is written beside the times.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tensorboard_al_plugin.logdir import labels  # noqa: E402
from tensorboard_al_plugin.logdir.labels import LabelStore  # noqa: E402


def _build(directory, n_rows, gfile=None, actions=10_000):
    store = LabelStore(directory, n_rows, default_author="bench", durable=False, gfile=gfile)
    step = 100
    done = 0
    for i, start in enumerate(range(0, n_rows, step)):
        store.assign(range(start, min(start + step, n_rows)), "class%d" % (i % 10))
        done += 1
    for i in range(actions - done):  # then single-row corrections
        store.assign([i * 13 % n_rows], "class%d" % (i % 10))
    store.snapshot()
    for i in range(labels.SNAPSHOT_EVERY_RECORDS - 1):
        store.assign([i * 7 % n_rows], "tail%d" % (i % 3))
    return store


def _median_time(fn, repeat=7):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def _throughput(directory, n_rows, durable, n=500, gfile=None):
    store = LabelStore(directory, n_rows, default_author="bench", durable=durable, gfile=gfile)
    store.assign([0], "warm")  # the first write of a process also writes the snapshot
    t = time.perf_counter()
    for i in range(n):
        store.assign([i % n_rows], "c%d" % (i % 10))
    return n / (time.perf_counter() - t)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=70_000)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "results", "labels_bench.json"))
    args = parser.parse_args()
    n = args.rows
    from tensorboard.compat.tensorflow_stub.io import gfile as stub_gfile

    load_before = os.getloadavg()  # the machine may be shared: times mean little without it

    tmp = tempfile.mkdtemp(prefix="labels-bench-")
    try:
        local = os.path.join(tmp, "local")
        t = time.perf_counter()
        store = _build(local, n)
        build_s = time.perf_counter() - t
        expected = store.state()
        history_bytes = os.path.getsize(os.path.join(local, labels.HISTORY_FILE))
        snapshot_bytes = os.path.getsize(os.path.join(local, labels.SNAPSHOT_FILE))

        def load():
            s = LabelStore(local, n, default_author="bench")
            assert s.state() == expected

        load_s, load_all = _median_time(load)
        snap_s, _ = _median_time(store.snapshot, repeat=5)
        state_s, _ = _median_time(store.state, repeat=20)
        replay_s, _ = _median_time(lambda: store.replay(), repeat=3)

        mem = "memory://labels-bench/emb"
        _build(mem, n, gfile=stub_gfile, actions=1000)

        def load_mem():
            s = LabelStore(mem, n, default_author="bench", gfile=stub_gfile)
            assert s.state()["version"] == 1000 + labels.SNAPSHOT_EVERY_RECORDS - 1

        load_mem_s, _ = _median_time(load_mem)

        result = {
            "rows": n,
            "actions": expected["version"],
            "classes": len(expected["classes"]),
            "history_bytes": history_bytes,
            "snapshot_bytes": snapshot_bytes,
            "build_s": round(build_s, 3),
            "load_s": {
                "local_snapshot_plus_%d_record_tail_median" % (labels.SNAPSHOT_EVERY_RECORDS - 1): round(load_s, 4),
                "local_all_runs": [round(x, 4) for x in load_all],
                "memory_fs_segments_1000_actions_median": round(load_mem_s, 4),
                "full_history_replay_no_snapshot": round(replay_s, 4),
            },
            "state_call_s": round(state_s, 5),
            "snapshot_write_s": round(snap_s, 4),
            "assigns_per_s": {
                "local_fsync": round(_throughput(os.path.join(tmp, "t1"), n, True)),
                "local_no_fsync": round(_throughput(os.path.join(tmp, "t2"), n, False)),
                "memory_fs_segments": round(_throughput("memory://labels-bench/t3", n, True,
                                                        gfile=stub_gfile)),
            },
            "load_under_1s": load_s < 1.0,
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "platform": platform.platform(),
                        "load_average_1_5_15_min": {"start": [round(x, 2) for x in load_before],
                                                    "end": [round(x, 2) for x in os.getloadavg()]}},
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps(result, indent=2))
    return 0 if result["load_under_1s"] else 1


if __name__ == "__main__":
    sys.exit(main())
