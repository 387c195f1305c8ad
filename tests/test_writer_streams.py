"""write_embedding streams the thumbnails: an np.memmap is read one sprite page at a time and
an iterable of batches is taken batch by batch; never are all pixels in memory."""
import io
import json
import os
import sys
import tracemalloc

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tensorboard_al_plugin.logdir import embeddings, source  # noqa: E402
from tensorboard_al_plugin.logdir.embeddings import write_embedding  # noqa: E402

N, SIDE = 6000, 16


def _images(tmp_path):
    """(N, 16, 16) float32 images in [0, 1] as an np.memmap on disk (seeded)."""
    path = str(tmp_path / "images.f32")
    images = np.memmap(path, np.float32, "w+", shape=(N, SIDE, SIDE))
    rng = np.random.default_rng(7)
    for start in range(0, N, 1000):
        images[start:start + 1000] = rng.random((1000, SIDE, SIDE), dtype=np.float32)
    images.flush()
    return np.memmap(path, np.float32, "r", shape=(N, SIDE, SIDE))


def _expected(images, row):
    """Thumbnail of ``row`` as the writer makes it at 32 px: scaled to 0..255, each pixel 2 x 2."""
    x = np.clip(images[row] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return x.repeat(2, axis=0).repeat(2, axis=1)


def _thumbnail(emb_dir, row):
    manifest = json.load(open(os.path.join(emb_dir, "manifest.json")))
    sprite = manifest["sprite"]
    page, cell = divmod(row, sprite["per_page"])
    y, x = (cell // sprite["per_row"]) * sprite["thumb_height"], (cell % sprite["per_row"]) * sprite["thumb_width"]
    with Image.open(os.path.join(emb_dir, sprite["pages"][page])) as im:
        return np.asarray(im)[y:y + sprite["thumb_height"], x:x + sprite["thumb_width"]]


@pytest.fixture
def small_pages(monkeypatch):
    # 512 px pages (16 x 16 thumbnails of 32 px): 24 pages for 6,000 rows, so one page is ~1/24 of the pixels.
    monkeypatch.setattr(source, "MAX_PAGE_PX", 512)


def test_a_memmap_of_float_images_is_never_read_whole(tmp_path, small_pages):
    # Before, float images were converted whole (N x 16 x 16 float64, 12 MB, and
    # more while scaling) and upscaled whole (N x 32 x 32 uint8, 6 MB) first.
    images = _images(tmp_path)
    features = np.random.default_rng(1).normal(size=(N, 3)).astype(np.float32)
    all_thumbnails = N * 32 * 32
    # The first write imports Pillow, protobuf and TensorBoard's event writer: not counted.
    write_embedding(str(tmp_path / "warm"), features[:3], name="e", images=np.zeros((3, 16, 16)), thumbnail_size=32)
    tracemalloc.start()
    try:
        emb_dir = write_embedding(str(tmp_path / "logs"), features, name="e", images=images, thumbnail_size=32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < all_thumbnails / 3, "peak %d bytes, all thumbnails %d" % (peak, all_thumbnails)
    manifest = json.load(open(os.path.join(emb_dir, "manifest.json")))
    assert len(manifest["sprite"]["pages"]) == 24
    for row in (0, 255, 256, 3001, N - 1):
        assert np.array_equal(_thumbnail(emb_dir, row), _expected(images, row)), row


def test_batches_from_a_generator_give_the_same_sprite_as_the_array(tmp_path, small_pages):
    images = _images(tmp_path)
    features = np.zeros((N, 2), np.float32)
    from_array = write_embedding(str(tmp_path / "a"), features, name="e", images=images, thumbnail_size=32)
    taken = []

    def batches():  # uneven batch sizes, as a decoder would give them
        sizes = [7, 1, 300, 1000, 2]
        start = 0
        while start < N:
            k = min(sizes[len(taken) % len(sizes)], N - start)
            taken.append(k)
            yield np.asarray(images[start:start + k])
            start += k

    from_batches = write_embedding(str(tmp_path / "b"), features, name="e", images=batches(), thumbnail_size=32)
    assert sum(taken) == N and max(taken) == 1000
    pages = json.load(open(os.path.join(from_array, "manifest.json")))["sprite"]["pages"]
    for page in pages:
        with open(os.path.join(from_array, page), "rb") as f, open(os.path.join(from_batches, page), "rb") as g:
            assert f.read() == g.read(), page


@pytest.mark.parametrize("count, match", [(N - 1, "hold 5999 images, features have 6000 rows"),
                                          (N + 1, "more than the 6000 rows")])
def test_batches_that_do_not_add_up_to_the_rows_are_refused(tmp_path, count, match):
    features = np.zeros((N, 2), np.float32)
    batches = (np.zeros((1, 8, 8), np.uint8) for _ in range(count))
    with pytest.raises(ValueError, match=match):
        write_embedding(str(tmp_path / "logs"), features, name="e", images=batches)
    assert not os.path.exists(os.path.join(str(tmp_path / "logs"), "plugins", "active_labeling", "e",
                                           "manifest.json"))


def test_a_list_of_image_paths_still_works(tmp_path):
    paths = []
    for i in range(3):
        p = str(tmp_path / ("%d.png" % i))
        Image.new("RGB", (40, 20), (80 * i, 0, 0)).save(p)
        paths.append(p)
    emb = write_embedding(str(tmp_path / "logs"), np.zeros((3, 2)), name="e", images=iter(paths),
                          thumbnail_size=16)
    thumb = _thumbnail(emb, 2)
    assert thumb.shape == (16, 16, 4) and tuple(thumb[8, 8]) == (160, 0, 0, 255) and thumb[0, 0, 3] == 0


def test_features_with_a_nan_name_the_row_when_checked_in_slices(tmp_path, monkeypatch):
    x = np.zeros((5000, 3), np.float32)
    x[4321, 1] = np.nan
    monkeypatch.setattr(embeddings, "_FINITE_CHECK_VALUES", 3000)  # 1,000 rows a slice
    with pytest.raises(ValueError, match="features row 4321 holds NaN"):
        write_embedding(str(tmp_path / "logs"), x, name="e")
