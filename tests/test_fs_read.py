"""fs.read_bytes reads what the file holds, not its limit: no 1 GiB buffer for a small metadata file."""
import os
import sys
import tracemalloc

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tensorboard_al_plugin.logdir import fs  # noqa: E402


def test_reading_a_small_file_never_allocates_its_limit(tmp_path):
    # Before, read(limit + 1) allocated the limit first: 1 GiB for each metadata
    # file the server read, 256 MiB for each sprite page it served.
    path = tmp_path / "metadata.tsv"
    path.write_bytes(b"a\nb\n" * 1000)
    tracemalloc.start()
    try:
        data = fs.read_bytes(str(path), str(tmp_path), fs.MAX_METADATA_BYTES, "metadata file")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert data == b"a\nb\n" * 1000
    assert peak < 1 << 20, peak


def test_a_file_over_the_limit_is_still_refused(tmp_path):
    path = tmp_path / "big.tsv"
    path.write_bytes(b"x" * 100)
    with pytest.raises(fs.SourceError, match="limit"):
        fs.read_bytes(str(path), str(tmp_path), 99, "metadata file")
    assert fs.read_bytes(str(path), str(tmp_path), 100) == b"x" * 100
