"""The t-SNE benchmark's small version: what it computes is right (never its timings)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import tsne_bench  # noqa: E402


def test_timing_figures_are_median_early_mean_and_whole_run_mean():
    times = [0.004] * 10 + [0.001] * 65            # seconds per iteration, chunks of 10
    t = tsne_bench.timing(times)
    assert t["early_ms_per_iter"] == pytest.approx(4.0)     # the first 100 iterations
    assert t["mean_ms_per_iter"] == pytest.approx(1000 * np.mean(times))
    assert t["ms_per_iter"] == pytest.approx(1.0)


def test_ratios_compare_with_the_fastest_opentsne_method_and_the_same_checkout():
    def run(engine, early, mean, sup=False, dim=2):
        return dict(data="d", dim=dim, engine=engine, supervised=sup, ms_per_iter=mean,
                    early_ms_per_iter=early, mean_ms_per_iter=mean)
    results = [run("ours", 2.0, 1.0), run("ours", 3.0, 1.3, sup=True),
               run("ours@before", 2.0, 1.0), run("ours@before", 8.0, 2.5, sup=True),
               run("opentsne-fft", 4.0, 2.0), run("opentsne-bh", 5.0, 1.5),
               run("opentsne-bh", 10.0, 10.0, dim=3), run("ours", 1.0, 1.0, dim=3)]
    tsne_bench.add_ratios(results)
    sup = results[1]
    assert sup["sup_ratio_early"] == pytest.approx(1.5)
    assert sup["sup_ratio_mean"] == pytest.approx(1.3)
    assert sup["ratio_to_opentsne_early"] == pytest.approx(3.0 / 4.0)  # FFT is faster early
    assert sup["opentsne_best_early"] == "opentsne-fft"
    assert sup["ratio_to_opentsne_mean"] == pytest.approx(1.3 / 1.5)   # BH over the whole run
    assert sup["opentsne_best_mean"] == "opentsne-bh"
    assert results[3]["sup_ratio_early"] == pytest.approx(4.0)        # its own unsupervised run
    assert results[7]["ratio_to_opentsne_mean"] == pytest.approx(0.1)  # 3D: against 3D only
    assert "sup_ratio_mean" not in results[0]


def test_big_case_small_version_times_both_engines_on_one_affinity_matrix(tmp_path):
    pytest.importorskip("openTSNE")
    n, iters = 1500, 2
    env = dict(os.environ, TSNE_BENCH_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "tsne_bench.py"),
                          "--big", "--big-n", str(n), "--phase-iters", str(iters), "--threads", "1",
                          "--results", str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    with open(tmp_path / "tsne_bench_big.json") as f:
        got = json.load(f)
    assert got["meta"]["n"] == n and got["meta"]["iters_per_phase"] == iters
    assert "threads used: 1" in got["meta"]["machine"]
    aff = got["affinities"]
    assert "error" not in aff and aff["nnz"] > n
    runs = got["results"]
    names = [(r["dim"], r["engine"], bool(r.get("supervised"))) for r in runs]
    assert names == [(2, "ours", False), (2, "ours", True), (2, "opentsne-fft", False),
                     (2, "opentsne-bh", False), (3, "ours", False), (3, "ours", True),
                     (3, "opentsne-bh", False)]
    for r in runs:
        assert "error" not in r, r
        assert r["nnz"] == aff["nnz"]                 # the one affinity matrix, for every engine
        assert r["finite"] and r["peak_rss_mb"] > 0
        assert r["early_ms_per_iter"] > 0 and r["late_ms_per_iter"] > 0
        assert r["mean_ms_per_iter"] == pytest.approx(
            (r["early_ms_per_iter"] + r["late_ms_per_iter"]) / 2)
    for d in (2, 3):
        plain, sup = [r for r in runs if r["dim"] == d and r["engine"] == "ours"]
        best = min(r["late_ms_per_iter"] for r in runs
                   if r["dim"] == d and r["engine"].startswith("opentsne"))
        assert sup["sup_ratio_late"] == pytest.approx(sup["late_ms_per_iter"] / plain["late_ms_per_iter"])
        assert plain["ratio_to_opentsne_late"] == pytest.approx(plain["late_ms_per_iter"] / best)
    md = (tmp_path / "tsne_bench_big.md").read_text()
    assert f"{n:,} points" in md and "NOT a whole run" in md
    assert md.count("\n| 2D |") == 4 and md.count("\n| 3D |") == 3


def test_interleaved_small_version_steps_every_engine_in_one_process(tmp_path):
    pytest.importorskip("openTSNE")
    env = dict(os.environ, TSNE_BENCH_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "tsne_bench.py"),
                          "--interleaved", "--quick", "--iters", "20", "--threads", "1",
                          "--only", "digits-2d", "--results", str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    with open(tmp_path / "tsne_bench.json") as f:
        rows = json.load(f)["interleaved"]
    assert [(r["data"], r["dim"]) for r in rows] == [("digits", 2)]
    engines = rows[0]["engines"]
    assert set(engines) == {"ours", "ours-sup", "opentsne-fft", "opentsne-bh"}
    for e in engines.values():
        assert e["iters"] == 20 and e["early_ms"] > 0 and e["whole_cpu_ms"] > 0
    md = (tmp_path / "tsne_bench_interleaved.md").read_text()
    row = [ln for ln in md.splitlines() if ln.startswith("| digits (1797) | 2D")][0].split(" | ")
    ours, sup = engines["ours"], engines["ours-sup"]
    assert row[5] == f"{sup['early_ms'] / ours['early_ms']:.2f}"   # sup/unsup early
    best = min(engines[k]["early_ms"] for k in ("opentsne-fft", "opentsne-bh"))
    assert row[6] == f"{sup['early_ms'] / best:.2f}"                # against openTSNE's fastest


def test_big_case_interleaved_on_this_engines_affinities(tmp_path):
    pytest.importorskip("openTSNE")
    n = 1500
    env = dict(os.environ, TSNE_BENCH_CACHE=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "tsne_bench.py"),
                          "--big", "--big-n", str(n), "--phase-iters", "2", "--threads", "1",
                          "--interleaved", "--big-affinities", "ours", "--only", "2d",
                          "--results", str(tmp_path)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    with open(tmp_path / "tsne_bench_big.json") as f:
        got = json.load(f)
    aff = got["affinities"]
    assert aff["source"] == "ours" and "this engine's perplexity_affinities" in aff["step"]
    assert (tmp_path / "cache" / f"big{n}_ours_P.npz").exists()
    runs = got["results"]
    assert sorted((r["engine"], r["supervised"]) for r in runs) == [
        ("opentsne-bh", False), ("opentsne-fft", False), ("ours", False), ("ours", True)]
    for r in runs:
        assert r["interleaved"] and r["dim"] == 2 and r["nnz"] == aff["nnz"] and r["finite"]
        assert r["early_cpu_ms"] > 0 and r["late_ms_per_iter"] > 0
    plain, sup = (next(r for r in runs if r["engine"] == "ours" and r["supervised"] is s)
                  for s in (False, True))
    assert sup["sup_ratio_early"] == pytest.approx(sup["early_ms_per_iter"] / plain["early_ms_per_iter"])
    md = (tmp_path / "tsne_bench_big.md").read_text()
    assert "this engine's perplexity_affinities" in md and md.count("(interleaved) |") == 4


def test_big_case_whole_run_interleaved(tmp_path):
    # --big-whole N: N iterations from the start on each engine's own schedule, beside the phase rows
    pytest.importorskip("openTSNE")
    n, whole = 1500, 12
    env = dict(os.environ, TSNE_BENCH_CACHE=str(tmp_path / "cache"))
    base = [sys.executable, os.path.join(ROOT, "benchmarks", "tsne_bench.py"), "--big", "--big-n",
            str(n), "--threads", "1", "--interleaved", "--big-affinities", "ours", "--only", "2d",
            "--results", str(tmp_path)]
    for extra in (["--phase-iters", "2"], ["--big-whole", str(whole)]):
        out = subprocess.run(base + extra, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
    with open(tmp_path / "tsne_bench_big.json") as f:
        runs = json.load(f)["results"]
    wholes = [r for r in runs if r.get("whole")]
    assert len(wholes) == 4 and len(runs) == 8   # the phase rows are kept beside them
    for r in wholes:
        assert r["iters"] == whole and r["finite"] and r["mean_ms_per_iter"] > 0
    plain, sup = (next(r for r in wholes if r["engine"] == "ours" and r["supervised"] is s)
                  for s in (False, True))
    assert sup["sup_ratio_mean"] == pytest.approx(sup["mean_ms_per_iter"] / plain["mean_ms_per_iter"])
    best = min(r["mean_ms_per_iter"] for r in wholes if r["engine"].startswith("opentsne"))
    assert sup["ratio_to_opentsne_mean"] == pytest.approx(sup["mean_ms_per_iter"] / best)
    phase_sup = next(r for r in runs if not r.get("whole") and r["supervised"])
    assert "sup_ratio_mean" in phase_sup and phase_sup["iters"] == 2
    md = (tmp_path / "tsne_bench_big.md").read_text()
    assert md.count("(whole run) |") == 4
    row = next(ln for ln in md.splitlines() if "ours f=r=0.1" in ln and "(whole run)" in ln)
    assert row.split(" | ")[-2] == f"{sup['sup_ratio_mean']:.2f}"
