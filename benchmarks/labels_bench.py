"""Label store benchmark: write latency (p50, p99, max) with snapshots, snapshot, reload; 70,000 or 10^6 rows.

    .venv/bin/python benchmarks/labels_bench.py [--rows 70000] [--threads 2]
    flock /tmp/al-big.lock .venv/bin/python benchmarks/labels_bench.py --big --threads 2   # 10^6 rows

Write latency (every run): a fresh local store of ``--rows`` rows with one
metadata column (opening it writes the first labels.tsv: "open_empty_s"),
then ``--writes`` assigns of 50 random rows each (seeded), fsynced, with no
pause between them (the worst case: a person labels a few a second), from
``--threads`` threads at once (two tabs or two people on one server); the
store's snapshot policy is on (every 100 records or 10 s, written in the
background), so the maximum includes the writes made while a snapshot is
written.  Then: ``snapshot()`` (median of 3), reopen + ``state()`` with
SNAPSHOT_EVERY_RECORDS - 1 records after the snapshot (median of 3), a
replay of the whole history, and the process's peak memory.  The answers
are checked: every write is in the history and the reloaded labels equal
the replayed ones.

History (not with ``--big``): the store built the way a labeling session
builds it: 700 actions of 100 rows each (every row labelled, 10 classes),
9,300 single-row corrections (10,000 actions in all), then the worst case
for loading, SNAPSHOT_EVERY_RECORDS - 1 actions after the last snapshot
that a load must replay from the history.  Load = ``LabelStore(...)`` plus
``state()``, the median of 7 runs in a fresh store object.  Throughput =
``assign`` calls per second of one row each, with and without fsync, on a
local disk and on ``memory://`` (segment files through TensorBoard's stub
gfile).

``--code-root DIR`` measures the package of another checkout (a worktree
of the commit before a change) with this same script, for a before/after
pair on the same machine at the same load.  The machine's load average at
the start and the end is written beside the times; results go to benchmarks/results/labels_bench.json (labels_bench_1m.json
with ``--big``) and a table of both to labels_bench.md.
"""
import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter

# --code-root DIR measures the package of another checkout (e.g. a worktree of an older commit)
# with this script: before and after in one invocation, on the same machine at the same load.
_CODE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if "--code-root" in sys.argv:
    _CODE_ROOT = os.path.abspath(sys.argv[sys.argv.index("--code-root") + 1])
sys.path.insert(0, _CODE_ROOT)

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


def _percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(round(q * (len(sorted_values) - 1))))]


CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _wait_snapshot(store):
    """Until a background snapshot is written (code from before snapshots left the write path has none)."""
    getattr(store, "wait_snapshot", lambda: True)()


def write_latency(directory, n_rows, writes, threads, rows_per_write=50, seed=0):
    """Latency of ``writes`` assigns of ``rows_per_write`` random rows from ``threads`` threads, snapshots on."""
    columns = (["class"], [[CLASSES[i % 10] for i in range(n_rows)]])
    t = time.perf_counter()
    store = LabelStore(directory, n_rows, default_author="bench", metadata=lambda: columns)
    open_empty_s = time.perf_counter() - t
    latencies = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)
    done = [0] * threads

    def worker(k):
        rng = random.Random(seed * 1000 + k)
        barrier.wait()
        for i in range(k, writes, threads):
            rows = rng.sample(range(n_rows), min(rows_per_write, n_rows))
            t0 = time.perf_counter()
            store.assign(rows, "c%d" % (i % 10), author="bench%d" % k)
            latencies[k].append(time.perf_counter() - t0)
            done[k] += 1

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    t = time.perf_counter()
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    wall_s = time.perf_counter() - t
    _wait_snapshot(store)
    assert sum(done) == writes, done
    lat = sorted(x for per in latencies for x in per)
    history = store.history()
    assert len(history) == writes and sorted(Counter(r["author"] for r in history).values()) == sorted(done)
    state = store.state()
    assert state == store.replay()  # the snapshots written meanwhile agree with the history

    snapshot_s, _ = _median_time(store.snapshot, repeat=3)
    for i in range(labels.SNAPSHOT_EVERY_RECORDS - 1):  # the worst tail a load replays
        store.assign([i * 7919 % n_rows], "tail%d" % (i % 3))
    _wait_snapshot(store)
    expected = store.state()

    def reopen():
        assert LabelStore(directory, n_rows, default_author="bench").state() == expected

    reopen_s, _ = _median_time(reopen, repeat=3)
    replay_s, _ = _median_time(store.replay, repeat=1)
    return {
        "rows": n_rows, "writes": writes, "rows_per_write": rows_per_write, "threads": threads,
        "open_empty_store_s": round(open_empty_s, 4),
        "write_latency_ms": {"median": round(1000 * statistics.median(lat), 2),
                             "p90": round(1000 * _percentile(lat, 0.90), 2),
                             "p99": round(1000 * _percentile(lat, 0.99), 2),
                             "max": round(1000 * lat[-1], 2)},
        "writes_per_s": round(writes / wall_s, 1),
        "snapshot_s_median": round(snapshot_s, 4),
        "reopen_plus_state_s_median_with_%d_record_tail" % (labels.SNAPSHOT_EVERY_RECORDS - 1): round(reopen_s, 4),
        "full_history_replay_s": round(replay_s, 4),
        "history_bytes": os.path.getsize(os.path.join(directory, labels.HISTORY_FILE)),
        "snapshot_bytes": os.path.getsize(os.path.join(directory, labels.SNAPSHOT_FILE)),
        "labels_tsv_bytes": os.path.getsize(os.path.join(directory, labels.PROJECTOR_TSV)),
        "checked": "every write in the history; snapshot + tail == replay",
    }


def history_bench(tmp, n):
    """The 70,000-row store with 10,000 actions: load, snapshot, state, replay, throughput."""
    from tensorboard.compat.tensorflow_stub.io import gfile as stub_gfile

    local = os.path.join(tmp, "local")
    t = time.perf_counter()
    store = _build(local, n)
    build_s = time.perf_counter() - t
    _wait_snapshot(store)
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
    _wait_snapshot(_build(mem, n, gfile=stub_gfile, actions=1000))

    def load_mem():
        s = LabelStore(mem, n, default_author="bench", gfile=stub_gfile)
        assert s.state()["version"] == 1000 + labels.SNAPSHOT_EVERY_RECORDS - 1

    load_mem_s, _ = _median_time(load_mem)
    return {
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
            "memory_fs_segments": round(_throughput("memory://labels-bench/t3", n, True, gfile=stub_gfile)),
        },
        "load_under_1s": load_s < 1.0,
    }


def _runs(results_dir):
    """(run, latency figures) of every labels_bench*.json with latency figures, each after then before."""
    import glob

    for path in sorted(glob.glob(os.path.join(results_dir, "labels_bench*.json"))):
        with open(path) as f:
            after = json.load(f)
        for run in [after] + ([after["before"]] if "before" in after else []):
            for figures in run.get("write_latency", []):
                yield run, figures


def write_table(results_dir):
    """labels_bench.md from the labels_bench*.json files of ``results_dir``."""
    lines = ["# Label store benchmark", "",
             "`benchmarks/labels_bench.py` (70,000 rows) and `--big` (10^6 rows); written by the script. "
             "\"before\": the same script run on a worktree of the commit before snapshots left the write path "
             "(`--compare-root`), in the same invocation.", "",
             "| code | rows | threads | open empty | write p50 | p99 | max | writes/s | snapshot | reopen + state "
             "| full replay | peak RSS | load avg (start, end) | machine |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    writes = set()
    for r, w in _runs(results_dir):
        m, ms = r["machine"], w["write_latency_ms"]
        writes.add("{:,}".format(w["writes"]))
        reopen = next(v for k, v in w.items() if k.startswith("reopen_plus_state"))
        lines.append("| {} | {:,} | {} | {:.2f} s | {} ms | {} ms | {} ms | {} | {:.2f} s | {:.2f} s | {:.2f} s "
                     "| {} MiB | {} / {} | {} cores, Python {} |".format(
                         r.get("code") or "-", w["rows"], w["threads"], w["open_empty_store_s"], ms["median"],
                         ms["p99"], ms["max"], w["writes_per_s"], w["snapshot_s_median"], reopen,
                         w["full_history_replay_s"], r.get("peak_rss_mib"), m["load_average_1_5_15_min"]["start"][0],
                         m["load_average_1_5_15_min"]["end"][0], m["cpus"], m["python"]))
    lines += ["", "Writes: %s assigns of 50 random rows from 1 or 2 threads, fsynced, no pause between them, with "
              "the store's snapshot policy (every 100 records or 10 s; inline before, in the background after). "
              "Times of a shared 2-core machine (load average beside them): compare rows of one invocation. "
              "16-core figures were not measured." % "/".join(sorted(writes)), ""]
    with open(os.path.join(results_dir, "labels_bench.md"), "w") as f:
        f.write("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="rows (default 70,000; 10^6 with --big)")
    parser.add_argument("--big", action="store_true", help="10^6 rows, write latency only (run under flock)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="writer threads, one latency run each (default 1 2)")
    parser.add_argument("--writes", type=int, default=600, help="assigns per latency run (default %(default)s)")
    parser.add_argument("--no-history", action="store_true", help="skip the 10,000-action history part")
    parser.add_argument("--out", default=None, help="JSON file (default benchmarks/results/labels_bench[_1m].json)")
    parser.add_argument("--code-root", default=None, help="measure the package of this checkout instead")
    parser.add_argument("--compare-root", default=None,
                        help="also measure this checkout (e.g. a worktree of the commit before) in the same "
                             "invocation, first, and keep it in the results as 'before'")
    parser.add_argument("--code", default="", help="what the code is (e.g. 'after (commit)'), kept in the results")
    args = parser.parse_args(argv)
    n = args.rows or (1_000_000 if args.big else 70_000)
    results_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    out = args.out or os.path.join(results_dir, "labels_bench_1m.json" if args.big else "labels_bench.json")

    before = None
    if args.compare_root:
        import subprocess

        fd, before_json = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        argv_before = [a for a in (argv if argv is not None else sys.argv[1:])]
        i = argv_before.index("--compare-root")
        root = argv_before[i + 1]
        del argv_before[i:i + 2]
        for flag in ("--out", "--code"):
            if flag in argv_before:
                j = argv_before.index(flag)
                del argv_before[j:j + 2]
        subprocess.run([sys.executable, os.path.abspath(__file__)] + argv_before
                       + ["--code-root", root, "--code", "before", "--out", before_json],
                       check=True, stdout=subprocess.DEVNULL)
        with open(before_json) as f:
            before = json.load(f)
        os.remove(before_json)

    load_before = os.getloadavg()  # the machine may be shared: times mean little without it
    tmp = tempfile.mkdtemp(prefix="labels-bench-")
    try:
        result = {"rows": n, "code": args.code, "code_root": _CODE_ROOT}
        result["write_latency"] = [write_latency(os.path.join(tmp, "latency-%d" % k), n, args.writes, k)
                                   for k in args.threads]
        if not (args.big or args.no_history):
            result.update(history_bench(tmp, n))
        result["targets"] = {"write_p99_under_50ms": all(w["write_latency_ms"]["p99"] < 50
                                                         for w in result["write_latency"]),
                             "snapshot_under_1s": all(w["snapshot_s_median"] < 1 for w in result["write_latency"]),
                             "reopen_under_1s": all(v < 1 for w in result["write_latency"]
                                                    for k, v in w.items() if k.startswith("reopen_plus_state"))}
        result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        result["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                             "platform": platform.platform(),
                             "load_average_1_5_15_min": {"start": [round(x, 2) for x in load_before],
                                                         "end": [round(x, 2) for x in os.getloadavg()]},
                             "note": "16-core figures were not measured (2-core machine shared with other work)"}
        result["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if before is not None:
            result["before"] = before
            result["ratio_before_to_after"] = [
                {"threads": a["threads"], **{q: round(b["write_latency_ms"][q] / a["write_latency_ms"][q], 2)
                                             for q in ("median", "p99", "max")},
                 "snapshot": round(b["snapshot_s_median"] / a["snapshot_s_median"], 2),
                 "open_empty": round(b["open_empty_store_s"] / a["open_empty_store_s"], 2)}
                for a, b in zip(result["write_latency"], before["write_latency"])]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    if os.path.dirname(os.path.abspath(out)) == results_dir:
        write_table(results_dir)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
