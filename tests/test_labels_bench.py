"""The small version of benchmarks/labels_bench.py and benchmarks/server_memory.py: what they compute is right
(every write in the history, reloads equal replays, the server's answers), never how fast."""
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, ROOT)

import labels_bench  # noqa: E402
import server_memory  # noqa: E402

from tensorboard_al_plugin.logdir.embeddings import write_embedding  # noqa: E402


def test_labels_bench_small_checks_every_write_and_the_reload(tmp_path):
    out = str(tmp_path / "labels_bench.json")
    assert labels_bench.main(["--rows", "3000", "--writes", "40", "--threads", "1", "2", "--no-history",
                              "--out", out]) == 0
    with open(out) as f:
        result = json.load(f)
    assert [w["threads"] for w in result["write_latency"]] == [1, 2]
    for w in result["write_latency"]:
        assert w["writes"] == 40 and w["rows"] == 3000
        assert w["checked"] == "every write in the history; snapshot + tail == replay"
        assert 0 < w["write_latency_ms"]["median"] <= w["write_latency_ms"]["p99"] <= w["write_latency_ms"]["max"]
    assert "load_average_1_5_15_min" in result["machine"]


def test_server_memory_small_follows_the_tab_and_checks_the_answers(tmp_path):
    logdir = str(tmp_path / "logs")
    rng = np.random.default_rng(3)
    write_embedding(logdir, rng.normal(size=(300, 4)), name="e", images=rng.random((300, 8, 8)),
                    metadata={"class": ["c%d" % (i % 3) for i in range(300)]})
    result = server_memory.measure(logdir, ".", "e", writes=3)
    assert result["rows"] == 300 and result["http_assign_ms"]["writes"] == 3
    steps = [s["step"] for s in result["steps"]]
    assert steps[:5] == ["started", "GET embeddings (scan)", "GET metadata", "GET labels (opens the store)",
                         "GET sprite page 0"]
    assert all(s["peak_mib"] >= s["rss_mib"] > 0 for s in result["steps"])
    assert result["peak_rss_mib"] == max(s["peak_mib"] for s in result["steps"])
    # The writes went to a scratch copy: the log directory itself has no label history.
    labels_dir = os.path.join(logdir, "plugins", "active_labeling", "e", "labels")
    assert not os.path.exists(os.path.join(labels_dir, "history.jsonl"))
