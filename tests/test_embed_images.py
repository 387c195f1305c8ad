"""The image-source reader of `tensorboard-al embed` (logdir/images.py): listing folders, CSVs and
.npy arrays, refusing paths that escape the source, and decoding every image mode to L, RGB or RGBA."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from tensorboard_al_plugin.logdir import images


def save(path, img, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, **kw)
    return path


def grey(w=8, h=8, value=100):
    return Image.fromarray(np.full((h, w), value, np.uint8), "L")


def reasons(src):
    return {s.where: s.reason for s in src.skipped}


def test_folder_lists_images_recursively_in_sorted_order_and_ignores_other_and_hidden_files(tmp_path):
    root = tmp_path / "src"
    for rel in ["b.png", "a/z.JPG", "a/y.webp", "c/d/e.tif", "c/f.bmp", "c/g.tiff", "c/h.jpeg"]:
        save(str(root / rel), grey().convert("RGB"))
    (root / "notes.txt").write_text("not an image")
    save(str(root / ".hidden.png"), grey())
    save(str(root / ".thumbs" / "x.png"), grey())
    src = images.open_source(str(root))
    assert src.kind == "folder"
    assert src.paths == ["a/y.webp", "a/z.JPG", "b.png", "c/d/e.tif", "c/f.bmp", "c/g.tiff", "c/h.jpeg"]
    assert sorted(src.ignored) == [".hidden.png", ".thumbs/", "notes.txt"]
    assert src.skipped == []


def test_folder_refuses_symlinks_that_lead_outside_and_skips_links_to_files_already_listed(tmp_path):
    root = tmp_path / "src"
    save(str(root / "in.png"), grey())
    outside = save(str(tmp_path / "secret" / "s.png"), grey())
    os.symlink(outside, root / "out.png")
    os.symlink(str(tmp_path / "secret"), root / "outdir")
    os.symlink(str(root / "in.png"), root / "same.png")
    src = images.open_source(str(root))
    assert src.paths == ["in.png"]
    why = reasons(src)
    assert "resolves outside the source folder" in why["out.png"]
    assert "outside the source folder" in why["outdir/"] and "not followed" in why["outdir/"]
    assert why["same.png"] == "the same file as in.png (a link to it)"


def test_header_names_a_text_file_with_an_image_extension_and_a_truncated_file(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    (root / "text.png").write_text("hello, I am not a PNG")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(buf, "PNG")
    (root / "trunc.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    src = images.open_source(str(root))
    with pytest.raises(images.ImageError, match="is not an image"):
        images.header(src, src.paths.index("text.png"))
    with pytest.raises(images.ImageError, match="truncated"):
        images.header(src, src.paths.index("trunc.png"))
        images.load_image(src, src.paths.index("trunc.png"))


def test_truncated_jpeg_is_an_error_when_decoded_not_a_grey_half_image(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)).save(buf, "JPEG")
    (root / "t.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])
    src = images.open_source(str(root))
    assert images.header(src, 0)[:2] == (64, 64)  # the header is whole
    with pytest.raises(images.ImageError, match="truncated or corrupt"):
        images.load_image(src, 0)


@pytest.mark.parametrize("make, expect_mode, expect_pixel", [
    (lambda: Image.new("1", (4, 4), 1), "L", 255),
    (lambda: Image.fromarray(np.full((4, 4), 257 * 100, np.uint16)), "L", 100),  # 16-bit grey
    (lambda: Image.fromarray(np.full((4, 4), 0.5, np.float32), "F"), "L", 128),  # float in [0, 1]
    (lambda: Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "RGB", (255, 0, 0)),
    (lambda: Image.new("LA", (4, 4), (200, 10)), "RGBA", (200, 200, 200, 10)),
    (lambda: Image.new("RGB", (4, 4), (51, 102, 153)).convert("P"), "RGB", (51, 102, 153)),
])
def test_every_mode_becomes_L_RGB_or_RGBA_keeping_what_it_shows(make, expect_mode, expect_pixel):
    out = images.canonical(make())
    assert out.mode == expect_mode
    assert out.getpixel((0, 0)) == expect_pixel


def test_palette_image_with_transparency_keeps_it(tmp_path):
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    p.putpixel((1, 1), 1)
    path = save(str(tmp_path / "src" / "p.png"), p, transparency=0)
    src = images.open_source(os.path.dirname(path))
    img = images.load_image(src, 0)
    assert img.mode == "RGBA"
    assert img.getpixel((0, 0))[3] == 0 and img.getpixel((1, 1)) == (255, 0, 0, 255)


def test_16_bit_png_and_tiff_are_scaled_from_0_65535(tmp_path):
    a = np.array([[0, 65535], [257 * 10, 257 * 200]], np.uint16)
    root = tmp_path / "src"
    save(str(root / "a.png"), Image.fromarray(a))
    save(str(root / "b.tif"), Image.fromarray(a))
    src = images.open_source(str(root))
    for i in range(2):
        assert np.asarray(images.load_image(src, i)).tolist() == [[0, 255], [10, 200]]


def test_exif_rotation_is_applied_to_the_image_and_its_size(tmp_path):
    img = Image.fromarray(np.zeros((10, 30, 3), np.uint8))  # 30 wide, 10 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by 90 degrees
    path = save(str(tmp_path / "src" / "r.jpg"), img, exif=exif)
    src = images.open_source(os.path.dirname(path))
    assert images.header(src, 0)[:2] == (10, 30)
    assert images.load_image(src, 0).size == (10, 30)


def test_thumbnail_fits_the_image_centred_and_upscales_small_ones_crisply():
    img = Image.fromarray(np.arange(4, dtype=np.uint8).reshape(2, 2) * 60, "L")
    t = images.thumbnail(img, 8, 1)
    assert t.shape == (8, 8, 1)
    assert (t[:4, :4] == 0).all() and (t[:4, 4:] == 60).all() and (t[4:, :4] == 120).all()  # nearest x4
    wide = Image.new("RGB", (20, 10), (255, 0, 0))
    t = images.thumbnail(wide, 10, 4)
    assert t[0, 0, 3] == 0 and tuple(t[5, 5]) == (255, 0, 0, 255)  # letterboxed, transparent bars


def test_model_input_composites_alpha_over_white_and_stretches_to_the_size():
    img = Image.new("RGBA", (4, 2), (0, 0, 0, 0))
    x = images.model_input(img, (3, 3), 3)
    assert x.shape == (3, 3, 3) and (x == 255).all()
    assert images.model_input(Image.new("RGB", (5, 5), (30, 60, 90)), (2, 2), 1).shape == (2, 2, 1)


def write_csv(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_csv_reads_paths_relative_to_its_folder_and_keeps_the_other_columns(tmp_path):
    save(str(tmp_path / "imgs" / "a.png"), grey())
    save(str(tmp_path / "imgs" / "b.png"), grey())
    csv_path = write_csv(tmp_path / "list.csv", "File,species,width\nimgs/b.png,cat,3\nimgs/a.png,\"dog, big\",4\n")
    src = images.open_source(csv_path)
    assert src.kind == "csv"
    assert src.paths == ["imgs/b.png", "imgs/a.png"]
    # "width" is one of the embed command's own columns: the CSV's keeps its values under another name.
    assert src.columns == {"species": ["cat", "dog, big"], "width_csv": ["3", "4"]}


def test_csv_skips_escaping_missing_duplicate_and_malformed_lines_naming_each(tmp_path):
    folder = tmp_path / "data"
    save(str(folder / "a.png"), grey())
    outside = save(str(tmp_path / "outside.png"), grey())
    os.symlink(outside, folder / "link.png")
    text = ("path\tnote\n"
            "a.png\tfirst\n"
            "../outside.png\tescapes\n"
            "%s\tabsolute outside\n"
            "link.png\tsymlink out\n"
            "missing.png\tgone\n"
            "./a.png\tagain\n"
            "a.png\n"
            "\tempty\n") % outside
    src = images.open_source(write_csv(folder / "list.tsv", text))
    assert src.paths == ["a.png"]
    why = reasons(src)
    assert why["list.tsv line 3"] == "../outside.png resolves outside the CSV's folder %s" % folder
    assert "resolves outside" in why["list.tsv line 4"]
    assert "link.png resolves outside" in why["list.tsv line 5"]
    assert why["list.tsv line 6"] == "missing.png does not exist"
    assert why["list.tsv line 7"] == "./a.png is a duplicate of line 2 (the same file)"
    assert why["list.tsv line 8"] == "has 1 fields, the header has 2"
    assert why["list.tsv line 9"] == "the path column is empty"


def test_csv_without_a_path_column_is_one_line_naming_its_columns(tmp_path):
    with pytest.raises(images.ImageSourceError) as e:
        images.open_source(write_csv(tmp_path / "x.csv", "name,label\na.png,cat\n"))
    assert str(e.value).startswith("x.csv has no path column: name one column path or file or filename or image")
    assert str(e.value).endswith("its columns: name, label")


def test_npy_images_of_every_dtype_are_scaled_once_for_the_whole_array(tmp_path):
    for arr, first in [(np.full((3, 4, 4), 7, np.uint8), 7),
                       (np.full((3, 4, 4, 1), 0.5, np.float32), 128),
                       (np.full((3, 4, 4, 3), 200.0), 200),
                       (np.full((3, 4, 4), 257 * 9, np.uint16), 9)]:
        np.save(str(tmp_path / "x.npy"), arr)
        src = images.open_source(str(tmp_path / "x.npy"))
        assert src.kind == "npy" and len(src) == 3 and src.paths[1] == "x.npy[1]"
        assert np.asarray(images.load_image(src, 1)).reshape(-1)[0] == first


def test_npy_of_a_wrong_shape_or_with_a_nan_row(tmp_path):
    np.save(str(tmp_path / "bad.npy"), np.zeros((3, 4)))
    with pytest.raises(images.ImageSourceError, match=r"bad.npy has shape \(3, 4\)"):
        images.open_source(str(tmp_path / "bad.npy"))
    a = np.zeros((3, 4, 4), np.float32)
    a[1, 2, 2] = np.nan
    np.save(str(tmp_path / "nan.npy"), a)
    src = images.open_source(str(tmp_path / "nan.npy"))
    with pytest.raises(images.ImageError, match="NaN"):
        images.load_image(src, 1)


def test_a_source_that_is_none_of_the_three(tmp_path):
    (tmp_path / "x.txt").write_text("?")
    with pytest.raises(images.ImageSourceError, match="neither a folder"):
        images.open_source(str(tmp_path / "x.txt"))
    with pytest.raises(images.ImageSourceError, match="does not exist"):
        images.open_source(str(tmp_path / "nope"))
