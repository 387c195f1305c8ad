"""features: pixels and streaming PCA (no TensorFlow needed), spec errors, import cost.

The CNN and Exemplar-CNN paths, which need TensorFlow, are in test_features_keras.py.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tensorboard_al_plugin.features import FeatureError, extract_features, make_extractor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))


def images(n=40, h=8, w=8, c=1, seed=0):
    return np.random.default_rng(seed).random((n, h, w, c)).astype(np.float32)


def stream(x, size=16):
    """A fresh generator of batches of ``x`` per call, as fit() receives; counts the passes."""
    def batches():
        batches.passes += 1
        for s in range(0, len(x), size):
            yield x[s:s + size]
    batches.passes = 0
    return batches


def test_pixels_are_the_images_flattened_in_order():
    x = images(30, 8, 6, 3)
    ex = make_extractor("pixels")
    f = ex.transform(stream(x, 7)())
    assert f.dtype == np.float32 and np.array_equal(f, x.reshape(30, -1))
    assert not ex.needs_fit and not ex.needs_colour
    assert ex.describe() == "pixels 8x6x3, flattened, 144-d"


def test_pixels_of_a_batch_of_another_size_is_one_line_naming_the_batch():
    with pytest.raises(FeatureError, match=r"batch 1: expected images of shape \(8, 8, 1\).*got \(9, 8, 1\)"):
        make_extractor("pixels").transform([images(4), images(4, 9, 8)])


def test_no_images_is_one_line():
    with pytest.raises(FeatureError, match="no images"):
        make_extractor("pixels").transform([])
    with pytest.raises(FeatureError, match="no images"):
        make_extractor("pca").fit(lambda: iter([]))


def test_pca_in_one_chunk_equals_scikit_learn_pca_up_to_sign():
    from sklearn.decomposition import PCA
    x = images(120, 8, 8, 1)
    ex = make_extractor("pca:5").fit(stream(x, 50))
    f = ex.transform(stream(x, 50)())
    ref = PCA(5).fit_transform(x.reshape(120, -1))
    signs = np.sign((f * ref).sum(axis=0))
    np.testing.assert_allclose(f * signs, ref, atol=1e-4)
    assert f.shape == (120, 5) and ex.n_components_ == 5
    assert ex.describe() == "pixels 8x8x1, first 5 principal components (covariance), 5-d"


def test_pca_streams_in_chunks_and_keeps_nearly_all_the_variance_of_a_full_pca():
    from sklearn.decomposition import PCA
    rng = np.random.default_rng(1)
    # 5 strong directions in 64 dimensions, plus noise
    x = (rng.normal(size=(1100, 5)) @ rng.normal(size=(5, 64)) + 0.05 * rng.normal(size=(1100, 64)))
    x = ((x - x.min()) / (x.max() - x.min())).astype(np.float32).reshape(1100, 8, 8, 1)
    batches = stream(x, 64)
    ex = make_extractor("pca:5")
    ex.chunk_rows = 200  # several partial_fit calls, the last chunk short (1100 = 5 * 200 + 100)
    ex.fit(batches)
    assert batches.passes == 1
    kept = ex.transform(batches()).var(axis=0).sum()
    best = PCA(5).fit_transform(x.reshape(1100, -1)).var(axis=0).sum()
    assert kept > 0.999 * best


def test_pca_chunks_of_large_images_stay_within_the_memory_budget(monkeypatch):
    from sklearn.decomposition import IncrementalPCA

    import tensorboard_al_plugin.features.pixels as pixels
    monkeypatch.setattr(pixels, "CHUNK_BYTES", 2 ** 20, raising=False)  # 1 MiB: 341 rows of 16 x 16 x 3
    monkeypatch.setattr(pixels, "COVARIANCE_MAX_DIMS", 100)  # as for images too large for the covariance fit
    sizes = []
    real = IncrementalPCA.partial_fit
    monkeypatch.setattr(IncrementalPCA, "partial_fit", lambda self, X, *a, **k: (sizes.append(X.shape),
                                                                                  real(self, X, *a, **k))[1])
    x = images(1200, 16, 16, 3)
    make_extractor("pca:20").fit(stream(x, 50))
    assert sum(n for n, _ in sizes) == 1200 and len(sizes) >= 3
    # a partial_fit chunk is at most one budget plus the batch that crossed it, plus a short tail
    assert max(n * d * 4 for n, d in sizes) <= 2 * 2 ** 20


def test_pca_with_fewer_images_or_pixels_than_components_keeps_what_there_is():
    assert extract_features(images(12, 4, 4), "pca").shape == (12, 12)   # 12 images < 50
    assert extract_features(images(80, 4, 4), "pca").shape == (80, 16)   # 16 pixels < 50
    with pytest.raises(FeatureError, match="at least 2 images"):
        extract_features(images(1), "pca")


def test_the_covariance_fit_equals_the_incremental_one_and_scikit_learn(monkeypatch):
    from sklearn.decomposition import PCA

    import tensorboard_al_plugin.features.pixels as pixels
    rng = np.random.default_rng(3)
    # 8 directions of clearly different strength (distinct axes), plus a little noise
    x = rng.normal(size=(600, 8)) * np.linspace(3, 1, 8) @ rng.normal(size=(8, 432)) + 0.05 * rng.normal(size=(600, 432))
    x = ((x - x.min()) / (x.max() - x.min())).astype(np.float32).reshape(600, 12, 12, 3)
    batches = stream(x, 64)
    fast = make_extractor("pca:8").fit(batches)
    assert batches.passes == 1 and "(covariance)" in fast.describe()
    monkeypatch.setattr(pixels, "COVARIANCE_MAX_DIMS", 0)
    slow = make_extractor("pca:8").fit(stream(x, 64))
    assert "(incremental PCA)" in slow.describe()
    ref = PCA(8).fit_transform(x.reshape(600, -1))
    for f in (fast.transform(stream(x, 64)()), slow.transform(stream(x, 64)())):
        signs = np.sign((f * ref).sum(axis=0))
        np.testing.assert_allclose(f * signs, ref, atol=2e-3)


def test_pca_before_fit_says_to_fit_first():
    with pytest.raises(FeatureError, match=r"call fit\(batches\) before transform"):
        make_extractor("pca").transform([images(3)])


def test_extract_features_scales_uint8_and_refuses_floats_outside_0_1():
    u = (images(5) * 255).astype(np.uint8)
    np.testing.assert_allclose(extract_features(u[..., 0]), u.reshape(5, -1) / 255.0, rtol=1e-6)
    with pytest.raises(FeatureError, match=r"float images must be in \[0, 1\]"):
        extract_features(images(5) * 255)
    with pytest.raises(FeatureError, match="expected .N, H, W. or .N, H, W, C."):
        extract_features(np.zeros((5, 64)))


def test_extract_features_drops_alpha():
    rgba = images(4, 5, 5, 4)
    np.testing.assert_array_equal(extract_features(rgba), rgba[..., :3].reshape(4, -1))


@pytest.mark.parametrize("spec, kw, message", [
    ("sift", {}, "unknown feature spec 'sift'; choose from pixels, pca, pca:N, cnn, cnn:NAME, model:PATH, rn"),
    ("pca:fifty", {}, "the number of components after 'pca:' must be a whole number"),
    ("pca:0", {}, "n_components must be a whole number >= 1, got 0"),
    ("", {}, "feature spec: expected a string"),
    ("pixels", {"exemplar": "frozen"}, "exemplar='frozen' trains on top of a CNN"),
    ("rn", {"exemplar": "frozen"}, "spec 'rn' trains the whole small CNN"),
    ("pixels", {"exemplar": "half"}, "exemplar: expected None, 'frozen' or 'full', got 'half'"),
    ("pca", {"weights": "w.h5"}, "weights= is for 'cnn...' specs"),
    ("cnn", {"layer": "pool"}, "layer= picks a layer of 'model:PATH'"),
    ("rn", {"epochs": 0}, "epochs: expected a whole number >= 1, got 0"),
    ("rn", {"max_rotation": 270}, r"max_rotation: expected degrees in \[0, 180\], got 270"),
    ("cnn:alexnet", {}, "unknown CNN 'alexnet' in 'cnn:alexnet'; choose from resnet50, vgg16"),
    ("model:", {}, "model:PATH"),
])
def test_a_bad_spec_is_one_line_saying_what_is_wrong(spec, kw, message):
    with pytest.raises(FeatureError, match=message) as e:
        make_extractor(spec, **kw)
    assert "\n" not in str(e.value) and isinstance(e.value, ValueError)


def run_python(code, pythonpath=ROOT, **env):
    env = dict(os.environ, PYTHONPATH=pythonpath, **env)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()[-1]


def test_importing_features_and_using_pixels_and_pca_imports_no_tensorflow():
    out = run_python("import sys, numpy as np\n"
                     "from tensorboard_al_plugin.features import extract_features\n"
                     "extract_features(np.random.default_rng(0).random((60, 8, 8)), 'pca:4')\n"
                     "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    assert out == "[]"


def test_the_server_does_not_import_features():
    out = run_python("import sys, tensorboard_al_plugin.plugin, tensorboard_al_plugin.sessions, "
                     "tensorboard_al_plugin.workspace, tensorboard_al_plugin.trainer\n"
                     "print([m for m in sys.modules if m.startswith('tensorboard_al_plugin.features')])")
    assert out == "[]"


def test_missing_imagenet_weights_fail_at_once_naming_the_file_without_importing_tensorflow(tmp_path):
    out = run_python(
        "import json, sys\n"
        "from tensorboard_al_plugin.features import make_extractor, FeatureError\n"
        "try:\n"
        "    make_extractor('cnn')\n"
        "except FeatureError as e:\n"
        "    print(json.dumps([str(e), 'tensorflow' in sys.modules]))\n",
        KERAS_HOME=str(tmp_path))
    message, tf_imported = json.loads(out)
    assert not tf_imported
    assert os.path.join(str(tmp_path), "models", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5") in message
    assert "--weights FILE" in message and "nothing is downloaded" in message and "\n" not in message


def test_without_tensorflow_cnn_features_say_how_to_install_it(tmp_path):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"")
    model = tmp_path / "m.keras"
    model.write_bytes(b"")
    code = ("from tensorboard_al_plugin.features import make_extractor, FeatureError\n"
            "for spec, kw in [('cnn:vgg16', {{'weights': {w!r}}}), ('model:{m}', {{}}), ('rn', {{}})]:\n"
            "    try:\n"
            "        make_extractor(spec, **kw).fit(lambda: iter([]))\n"
            "    except FeatureError as e:\n"
            "        print(e, end=' | ')\n"
            "print()").format(w=str(weights), m=str(model))
    out = run_python(code, pythonpath=os.path.join(HERE, "no_tensorflow") + os.pathsep + ROOT)
    assert out.count("CNN features need TensorFlow: pip install 'tensorboard-al[tensorflow]'") == 3, out
