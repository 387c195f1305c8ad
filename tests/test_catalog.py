"""Discovery: never blocks start-up, picks up new embeddings, works through non-local file systems."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

from tensorboard_al_plugin import write_embedding
from tensorboard_al_plugin.logdir import catalog as catalog_mod
from tensorboard_al_plugin.logdir.catalog import Catalog

HERE = os.path.dirname(os.path.abspath(__file__))


def test_has_embeddings_answers_at_once_while_a_slow_scan_runs(tmp_path, monkeypatch):
    release = threading.Event()
    real_scan = catalog_mod.scan_logdir

    def slow_scan(*args, **kwargs):
        release.wait(10)
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(catalog_mod, "scan_logdir", slow_scan)
    write_embedding(str(tmp_path), np.zeros((3, 2)), name="e")
    catalog = Catalog(str(tmp_path))
    started = time.perf_counter()
    assert catalog.has_embeddings() is False  # no answer yet: scanning in the background
    assert catalog.has_embeddings() is False
    assert time.perf_counter() - started < 0.5
    assert catalog.scanning
    release.set()
    deadline = time.time() + 10
    while catalog.scanning and time.time() < deadline:
        time.sleep(0.05)
    assert catalog.has_embeddings() is True


def test_listing_picks_up_embeddings_written_after_start(tmp_path):
    catalog = Catalog(str(tmp_path))
    assert catalog.list(max_age_s=0) == []
    write_embedding(str(tmp_path), np.zeros((3, 2)), name="late", run="r")
    assert [(s.run, s.name) for s in catalog.list(max_age_s=0)] == [("r", "late")]
    # get() rescans when asked for a name it has not seen yet.
    write_embedding(str(tmp_path), np.zeros((4, 2)), name="later", run="r")
    assert catalog.get("r", "later").rows == 4


def test_the_tensor_is_read_afresh_when_the_embedding_is_rewritten(tmp_path):
    write_embedding(str(tmp_path), np.zeros((3, 2)), name="e")
    catalog = Catalog(str(tmp_path))
    assert catalog.tensor(catalog.get(".", "e")).sum() == 0
    time.sleep(0.01)
    write_embedding(str(tmp_path), np.ones((3, 2)), name="e")
    catalog.rescan()
    assert catalog.tensor(catalog.get(".", "e")).sum() == 6


def test_writer_and_discovery_work_on_a_non_local_filesystem():
    """fsspec's memory:// through TensorBoard's stub file layer (TensorFlow hidden), in a child process."""
    script = textwrap.dedent("""
        import json
        import numpy as np
        from tensorboard_al_plugin import write_embedding
        from tensorboard_al_plugin.logdir.catalog import scan_logdir
        from tensorboard_al_plugin.logdir.projector import tensorflow_available
        assert not tensorflow_available()
        x = np.arange(12, dtype=np.float32).reshape(6, 2)
        write_embedding("memory://logs", x, name="m", run="run1", images=np.zeros((6, 8, 8), np.uint8),
                        metadata={"k": list("abcdef")})
        [s] = scan_logdir("memory://logs")
        print(json.dumps({"listing": s.to_json(), "tensor": s.load_tensor().tolist(),
                          "meta": s.load_metadata(), "page": len(s.load_sprite_page(0))}))
    """)
    env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "no_tensorflow") + os.pathsep + os.path.dirname(HERE))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    e = out["listing"]
    assert (e["run"], e["name"], e["rows"], e["dims"], e["ok"]) == ("run1", "m", 6, 2, True)
    assert out["tensor"][5] == [10.0, 11.0]
    assert out["meta"] == [["k"], [list("abcdef")]]
    assert out["page"] > 0


def test_a_tensor_file_gone_after_discovery_is_a_source_error_naming_it(tmp_path):
    from tensorboard_al_plugin.logdir.source import SourceError
    import pytest

    write_embedding(str(tmp_path), np.ones((4, 3)), name="e")
    catalog = Catalog(str(tmp_path))
    deadline = time.time() + 10
    while not catalog.list() and time.time() < deadline:
        time.sleep(0.05)
    (source,) = catalog.list()
    os.remove(os.path.join(str(tmp_path), "plugins", "active_labeling", "e", "tensor.bin"))
    with pytest.raises(SourceError, match="tensor.bin"):
        catalog.tensor(source)
