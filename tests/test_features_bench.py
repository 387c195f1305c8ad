"""benchmarks/features_bench.py --quick: the Table 1 benchmark runs end to end and says what it could not run."""
import importlib.util
import json
import os

import pytest

pytest.importorskip("tensorflow")  # the RN column trains an Exemplar-CNN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_bench():
    spec = importlib.util.spec_from_file_location("features_bench", os.path.join(ROOT, "benchmarks",
                                                                                 "features_bench.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_table1_on_digits_scores_pix_pre_rn_and_says_the_imagenet_weights_are_not_present(
        tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    bench = load_bench()
    assert bench.main(["--quick", "--quiet", "--only", "digits", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "features_table1.json").read_text())
    row = res["results"]["digits"]
    assert row["n"] == 300 and res["quick"]
    for col in ("Pix", "Pre", "RN"):
        acc = row["columns"][col]["tsne_knn4"]
        assert len(acc["folds"]) == 5 and 0.3 < acc["mean"] <= 1
    for col in ("IM", "TF", "TR"):
        assert row["columns"][col]["not_run"].startswith(
            "weights not present: resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    md = (tmp_path / "features_table1.md").read_text()
    assert "| digits | 300 |" in md and "IM, TF, TR: weights not present" in md
    assert res["machine"]["cpus"] and len(res["load_before"]) == 3
    assert (tmp_path / "features_table1.png").stat().st_size > 10000
