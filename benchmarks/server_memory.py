"""What a real TensorBoard server holds for a big embedding without a layout: peak memory step by step.

    flock /tmp/al-big.lock .venv/bin/python benchmarks/server_memory.py --big     # /tmp/al-big/logdir_1m
    .venv/bin/python benchmarks/server_memory.py --logdir DIR --embedding NAME [--run .]

Starts ``tensorboard`` (tests/tbserver.py) on the log directory and asks
what the tab asks when it opens an embedding, in order: the embedding
listing, the metadata, the labels, sprite page 0, then ``--writes`` label
writes (assigns of 50 seeded random rows each, asked for ``--answer``:
``changes``, as the tab asks, or the whole new label state), then the labels again.  After each step
the server process's resident memory (VmRSS) and its peak so far (VmHWM,
from /proc/<pid>/status) are recorded, with the step's time and answer size.
The answers are checked (row count, columns, a PNG, every write in the
state).  No layout is started: this is the server's floor for the embedding.
The server runs on a scratch copy of the log directory (hard links to its
files, copies of the label folders), so the writes never reach the
original, which other work may share.
Results: benchmarks/results/server_memory.json and .md (``--big``), with
the machine's load average.
"""
import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from tests.tbserver import PLUGIN, TensorBoard  # noqa: E402


def memory_kib(pid):
    """(VmRSS, VmHWM) of process ``pid`` in KiB."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1])
    return out["VmRSS"], out["VmHWM"]


def scratch_copy(logdir, dest):
    """``logdir`` at ``dest``: its files hard-linked (no space, no time), the label folders' files
    copied so that writes there stay in the copy (a label folder's ``rounds`` left out)."""
    for root, dirs, files in os.walk(logdir):
        rel = os.path.relpath(root, logdir)
        in_labels = "labels" in rel.split(os.sep)
        if in_labels and "rounds" in dirs:
            dirs.remove("rounds")
        os.makedirs(os.path.join(dest, rel), exist_ok=True)
        for name in files:
            src, dst = os.path.join(root, name), os.path.join(dest, rel, name)
            if in_labels:
                shutil.copy2(src, dst)
            else:
                os.link(src, dst)


def measure(logdir, run, embedding, writes=20, rows_per_write=50, seed=0, answer="changes"):
    """Steps of one server's life with the embedding, on a scratch copy of ``logdir``:
    [{step, seconds, bytes, rss_mib, peak_mib}, ...] and the write latencies."""
    scratch = tempfile.mkdtemp(prefix="server-memory-", dir=os.path.dirname(os.path.abspath(logdir)))
    try:
        scratch_copy(logdir, os.path.join(scratch, "logdir"))
        return _measure(os.path.join(scratch, "logdir"), run, embedding, writes, rows_per_write, seed, answer)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _measure(logdir, run, embedding, writes, rows_per_write, seed, answer):
    steps = []
    q = "run=%s&embedding=%s" % (run, embedding)
    with TensorBoard(logdir, timeout_s=300) as tb:
        pid = tb.proc.pid

        def step(name, fn):
            t = time.perf_counter()
            size = fn()
            seconds = time.perf_counter() - t
            rss, hwm = memory_kib(pid)
            steps.append({"step": name, "seconds": round(seconds, 3), "bytes": size,
                          "rss_mib": round(rss / 1024, 1), "peak_mib": round(hwm / 1024, 1)})

        step("started", lambda: 0)
        listing = {}

        def embeddings():
            listing.update(tb.wait_for_embeddings(timeout_s=600))
            return len(json.dumps(listing))

        step("GET embeddings (scan)", embeddings)
        [entry] = [e for e in listing["embeddings"] if e["name"] == embedding and e["run"] == run]
        assert entry["ok"], entry["problems"]
        rows = entry["rows"]

        def metadata():
            r = tb.get(PLUGIN + "/metadata?" + q)
            assert r.status == 200, r.body[:300]
            body = r.json()
            assert body["columns"] and all(len(c) == rows for c in body["data"])
            return len(r.body)

        step("GET metadata", metadata)
        state = {}

        def labels():
            r = tb.get(PLUGIN + "/labels?" + q)
            assert r.status == 200, r.body[:300]
            state.update(r.json())
            assert len(state["labels"]) == rows
            return len(r.body)

        step("GET labels (opens the store)", labels)

        def sprite():
            r = tb.get(PLUGIN + "/sprite?%s&page=0" % q)
            assert r.status == 200 and r.body[:8] == b"\x89PNG\r\n\x1a\n"
            return len(r.body)

        step("GET sprite page 0", sprite)
        rng = random.Random(seed)
        latencies = []
        expected = {}

        def write_labels():
            total = 0
            for i in range(writes):
                chosen = rng.sample(range(rows), rows_per_write)
                label = "bench%d" % (i % 5)
                t = time.perf_counter()
                r = tb.post(PLUGIN + "/labels/assign", {"run": run, "embedding": embedding, "rows": chosen,
                                                         "label": label, "base_version": state["version"],
                                                         "answer": answer})
                latencies.append(time.perf_counter() - t)
                assert r.status == 200, r.body[:300]
                body = r.json()
                if "labels" not in body:  # the changes since the version this write was based on
                    assert body["changes_from"] == state["version"]
                    for change in body.pop("changes"):
                        for row in change["rows"]:
                            state["labels"][row] = change["label"]
                    del body["changes_from"]
                state.update(body)
                expected.update(dict.fromkeys(chosen, label))
                total += len(r.body)
            return total

        step("POST labels/assign x %d" % writes, write_labels)

        def labels_again():
            size = labels()
            assert all(state["labels"][r] == label for r, label in expected.items())
            return size

        step("GET labels (after the writes)", labels_again)
        time.sleep(3)  # the workspace's housekeeping snapshots (labels.tsv) once writing pauses
        step("after the labels.tsv flush", lambda: 0)
        latencies.sort()
        return {"rows": rows, "dims": entry["dims"], "steps": steps,
                "peak_rss_mib": max(s["peak_mib"] for s in steps),
                "http_assign_ms": {"median": round(1000 * statistics.median(latencies), 1),
                                   "p99": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
                                   "max": round(1000 * latencies[-1], 1), "writes": writes, "answer": answer}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--big", action="store_true", help="/tmp/al-big/logdir_1m, embedding fmnist1m (run under flock)")
    ap.add_argument("--logdir", default=None)
    ap.add_argument("--run", default=".")
    ap.add_argument("--embedding", default=None)
    ap.add_argument("--writes", type=int, default=20)
    ap.add_argument("--answer", choices=("changes", "state"), default="changes",
                    help="what a write answers: its changes, as the tab asks (default), or the whole label state")
    ap.add_argument("--threads", type=int, default=2,
                    help="OMP/numba/BLAS threads of the server (default %(default)s; nothing here computes)")
    ap.add_argument("--label", default="", help="what the code is (e.g. a commit), written beside the figures")
    ap.add_argument("--out", default=None, help="JSON (default benchmarks/results/server_memory.json with --big)")
    args = ap.parse_args(argv)
    logdir = args.logdir or ("/tmp/al-big/logdir_1m" if args.big else None)
    embedding = args.embedding or ("fmnist1m" if args.big else None)
    if not logdir or not embedding:
        ap.error("give --big, or --logdir and --embedding")
    for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    load_before = os.getloadavg()
    result = measure(logdir, args.run, embedding, writes=args.writes, answer=args.answer)
    result.update({
        "logdir": logdir, "embedding": embedding, "code": args.label, "threads": args.threads,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1min": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)},
                    "note": "16-core figures were not measured (2-core machine shared with other work)"},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    out = args.out or (os.path.join(HERE, "results", "server_memory.json") if args.big else None)
    print(json.dumps(result, indent=1))
    if out:
        runs = []
        if os.path.exists(out):
            with open(out) as f:
                runs = [r for r in json.load(f).get("runs", []) if r.get("code") != args.label]
        runs.append(result)
        with open(out, "w") as f:
            json.dump({"runs": runs}, f, indent=1)
            f.write("\n")
        write_table(runs, os.path.splitext(out)[0] + ".md")
    return 0


def write_table(runs, path):
    lines = ["# Server memory with a big embedding, no layout (benchmarks/server_memory.py)", "",
             "Resident memory of the real `tensorboard` process (VmRSS, and VmHWM: the peak so far) after each "
             "request the tab makes when it opens an embedding; no layout started. 16-core figures were not "
             "measured (2-core machine shared with other work).", ""]
    for r in runs:
        m = r["machine"]
        lines += ["## %s rows x %d, code %s (load %s -> %s, %d cores)" % (
            "{:,}".format(r["rows"]), r["dims"], r["code"] or "?", m["load_average_1min"]["start"],
            m["load_average_1min"]["end"], m["cpus"]), "",
            "| step | seconds | answer bytes | RSS MiB | peak MiB |", "| --- | ---: | ---: | ---: | ---: |"]
        lines += ["| %s | %.2f | %s | %.0f | %.0f |" % (s["step"], s["seconds"], "{:,}".format(s["bytes"]),
                                                         s["rss_mib"], s["peak_mib"]) for s in r["steps"]]
        w = r["http_assign_ms"]
        lines += ["", "%d label writes over HTTP, each answered with %s: median %s ms, p99 %s ms, max %s ms."
                  % (w["writes"], "its changes" if w.get("answer") == "changes" else "the whole label state",
                     w["median"], w.get("p99", "-"), w["max"]), ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
