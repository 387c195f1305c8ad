"""logdir/labels/storage.py on its own: both backends keep the Storage protocol, and reading the
whole history (history(), replay()) never moves where reading new records goes on."""
import inspect
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tensorboard_al_plugin.logdir.labels import LabelError, LabelStore  # noqa: E402
from tensorboard_al_plugin.logdir.labels import storage as storage_mod  # noqa: E402
from tensorboard_al_plugin.logdir.labels.records import encode_record  # noqa: E402


def _stub_gfile():
    from tensorboard.compat.tensorflow_stub.io import gfile

    return gfile


def _record(seq, writer, rows, label):
    return {"seq": seq, "writer": writer, "time": "t", "author": "a", "op": "assign", "label": label,
            "set": [[label, rows]], "prev": [[None, rows]]}


@pytest.fixture(params=["append", "segments"])
def open_storage(request, tmp_path):
    """``open_storage()``: another storage object on the same directory."""
    if request.param == "append":
        directory, gfile = str(tmp_path / "labels"), None
    else:
        directory, gfile = "memory://storage-%s/emb" % uuid.uuid4().hex, _stub_gfile()
    return lambda: storage_mod.open_storage(directory, request.param, gfile, durable=False)


def _append(storage, label, rows):
    with storage.locked():
        list(storage.read_new(0))
        record = _record(storage.next_seq(0), storage.writer, rows, label)
        return storage.append(record)


def test_both_backends_have_every_member_of_the_storage_protocol(tmp_path):
    members = {name for name, _ in inspect.getmembers(storage_mod.Storage, inspect.isfunction)}
    members |= set(storage_mod.Storage.__annotations__)
    assert {"read_new", "iter_all", "append", "has_tsv", "damaged_counts", "needs_reload"} <= members
    for storage in (storage_mod.AppendStorage(str(tmp_path / "labels"), False),
                    storage_mod.SegmentStorage("memory://protocol-%s/emb" % uuid.uuid4().hex, _stub_gfile())):
        assert sorted(m for m in members if not hasattr(storage, m)) == [], storage.layout


def test_reading_the_whole_history_leaves_reading_new_records_where_it_was(open_storage):
    writer, reader = open_storage(), open_storage()
    for i in range(3):
        _append(writer, "a%d" % i, [i])
    reader.reset(None)
    assert [r["label"] for _, r, _ in reader.read_new(0)] == ["a0", "a1", "a2"]
    for i in range(3, 5):
        _append(writer, "a%d" % i, [i])

    everything = list(reader.iter_all())
    assert [r["label"] for _, r, _ in everything] == ["a%d" % i for i in range(5)]
    assert [reader.read_at(loc)["label"] for loc, _, _ in everything] == ["a%d" % i for i in range(5)]
    # Only the two records written since the last read are new, before and after another full read.
    assert [r["label"] for _, r, _ in reader.read_new(3)] == ["a3", "a4"]
    assert list(reader.iter_all()) == everything
    assert list(reader.read_new(5)) == []


def test_a_damaged_record_is_yielded_with_its_problem_and_counts_only_where_lines_are_numbered(tmp_path):
    directory = str(tmp_path / "labels")
    storage = storage_mod.open_storage(directory, "append", None, durable=False)
    _append(storage, "ok", [0])
    with open(os.path.join(directory, storage_mod.HISTORY_FILE), "ab") as f:
        f.write(b"00000000 {\"not\": \"a record\"}\n")
    _append(storage, "later", [1])
    reads = list(storage.iter_all())
    assert [r and r["label"] for _, r, _ in reads] == ["ok", None, "later"]
    assert "record 2" in reads[1][2] and "damaged" in reads[1][2]
    assert storage.damaged_counts and not storage_mod.SegmentStorage.damaged_counts

    with pytest.warns(storage_mod.LabelStoreWarning, match="record 2"):
        store = LabelStore(directory, 4, storage="append", durable=False, default_author="me")
    assert store.version == 3 and store.replay() == store.state()  # the damaged line keeps its number


def test_a_segment_with_seq_0_is_no_record_for_either_reading(tmp_path):
    gfile = _stub_gfile()
    directory = "memory://seq0-%s/emb" % uuid.uuid4().hex
    storage = storage_mod.open_storage(directory, "segments", gfile, durable=False)
    with gfile.GFile(directory + "/segments/0000000000-abc.json", "wb") as f:
        f.write(encode_record(_record(0, "abc", [0], "zero")))
    _append(storage, "one", [1])
    fresh = storage_mod.open_storage(directory, "segments", gfile, durable=False)
    fresh.reset(None)
    assert [r["label"] for _, r, _ in fresh.read_new(0)] == ["one"]
    assert [r["label"] for _, r, _ in fresh.iter_all()] == ["one"]


def test_open_storage_picks_by_path_and_refuses_a_bad_choice(tmp_path):
    assert storage_mod.open_storage(str(tmp_path / "a"), None, None, True).layout == "append"
    mem = "memory://pick-%s/emb" % uuid.uuid4().hex
    assert storage_mod.open_storage(mem, None, _stub_gfile(), True).layout == "segments"
    with pytest.raises(LabelError, match="needs a local directory"):
        storage_mod.open_storage(mem, "append", None, True)
    with pytest.raises(LabelError, match="must be 'append' or 'segments'"):
        storage_mod.open_storage(str(tmp_path / "b"), "tape", None, True)


def test_snapshots_and_labels_tsv_are_written_atomically_with_the_store_s_permissions(tmp_path):
    directory = str(tmp_path / "labels")
    old_umask = os.umask(0o002)
    try:
        store = LabelStore(directory, 3, durable=False, default_author="me")
        store.assign([0], "cat")
        assert store.wait_snapshot(timeout=60)  # the write's snapshot is written in the background
    finally:
        os.umask(old_umask)
    for name in (storage_mod.SNAPSHOT_FILE, storage_mod.PROJECTOR_TSV):
        assert os.stat(os.path.join(directory, name)).st_mode & 0o777 == 0o644
    assert [n for n in os.listdir(directory) if ".tmp-" in n] == []
