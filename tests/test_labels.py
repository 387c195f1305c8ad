"""The label store: operations, undo/redo, replay, crashes, bad input, export/import.

Every behaviour test runs on each storage the store supports: a local
directory (append-only history + flock), fsspec's ``memory://`` through
TensorBoard's stub gfile (segment files), segment files on a local directory,
and TensorFlow's ``ram://`` when TensorFlow is installed.
"""
import io
import json
import os
import random
import re
import sys
import threading
import uuid
import warnings

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tensorboard_al_plugin.logdir import label_io, labels  # noqa: E402
from tensorboard_al_plugin.logdir.labels import (  # noqa: E402
    ConflictError,
    LabelError,
    LabelStore,
    LabelStoreWarning,
    validate_label,
)

N = 20


def _stub_gfile():
    from tensorboard.compat.tensorflow_stub.io import gfile

    return gfile


class Backend:
    """Makes stores of one storage kind; ``open()`` again gives another store on the same files."""

    def __init__(self, kind, tmp_path):
        self.kind = kind
        self.storage = None
        self.gfile = None
        if kind == "local":
            self.directory = str(tmp_path / "labels")
        elif kind == "local-segments":
            self.directory = str(tmp_path / "labels")
            self.gfile = _stub_gfile()
            self.storage = "segments"
        elif kind == "memory":
            self.directory = "memory://labels-%s/emb" % uuid.uuid4().hex
            self.gfile = _stub_gfile()
        elif kind == "ram":
            tf = pytest.importorskip("tensorflow")
            self.directory = "ram://labels-%s/emb" % uuid.uuid4().hex
            self.gfile = tf.io.gfile

    def open(self, n_rows=N, **kwargs):
        kwargs.setdefault("default_author", "tester")
        return LabelStore(self.directory, n_rows, gfile=self.gfile, storage=self.storage,
                          durable=False, **kwargs)

    def read(self, name):
        if self.gfile is None:
            with open(os.path.join(self.directory, name), "rb") as f:
                return f.read()
        with self.gfile.GFile(self.directory + "/" + name, "rb") as f:
            return f.read()

    def write(self, name, data):
        if self.gfile is None:
            with open(os.path.join(self.directory, name), "wb") as f:
                f.write(data)
            return
        with self.gfile.GFile(self.directory + "/" + name, "wb") as f:
            f.write(data)

    def history_names(self):
        """Files holding history records, oldest first."""
        if self.kind == "local":
            return [labels.HISTORY_FILE]
        names = sorted(self.gfile.listdir(self.directory + "/" + labels.SEGMENT_DIR))
        return [labels.SEGMENT_DIR + "/" + n for n in names]


@pytest.fixture(params=["local", "memory", "local-segments", "ram"])
def backend(request, tmp_path):
    return Backend(request.param, tmp_path)


# ------------------------------------------------------------------ operations


def test_assign_clear_rename_merge_undo_redo_round_trip(backend):
    s = backend.open()
    st = s.assign([1, 2, 3], "cat")
    assert st["version"] == 1 and st["labels"][1:4] == ["cat"] * 3 and st["can_undo"]
    s.assign([3, 4], "dog")
    s.clear([2])
    st = s.rename("cat", "kitten")
    assert st["labels"][:5] == [None, "kitten", None, "dog", "dog"]
    assert st["classes"] == [{"name": "kitten", "count": 1}, {"name": "dog", "count": 2}]
    st = s.merge(["kitten", "dog"], "animal")
    assert st["labels"][:5] == [None, "animal", None, "animal", "animal"]
    assert st["classes"] == [{"name": "animal", "count": 3}]

    expected_back = [
        [None, "kitten", None, "dog", "dog"],  # undo merge
        [None, "cat", None, "dog", "dog"],  # undo rename
        [None, "cat", "cat", "dog", "dog"],  # undo clear
        [None, "cat", "cat", "cat", None],  # undo assign dog
        [None] * 5,  # undo assign cat
    ]
    for want in expected_back:
        st = s.undo()
        assert st["labels"][:5] == want
    assert not st["can_undo"] and st["can_redo"]
    with pytest.raises(ConflictError, match="nothing to undo"):
        s.undo()
    for want in reversed(expected_back[:-1]):
        st = s.redo()
        assert st["labels"][:5] == want
    st = s.redo()
    assert st["labels"][:5] == [None, "animal", None, "animal", "animal"]
    assert not st["can_redo"]
    with pytest.raises(ConflictError, match="nothing to redo"):
        s.redo()
    assert st["version"] == 15


def test_new_action_after_undo_clears_redo(backend):
    s = backend.open()
    s.assign([0], "a")
    s.assign([1], "b")
    assert s.undo()["can_redo"]
    st = s.assign([2], "c")
    assert not st["can_redo"]
    assert st["labels"][:3] == ["a", None, "c"]


def test_undo_undoes_the_newest_action_whoever_made_it(backend):
    alice = backend.open(default_author="alice")
    bob = backend.open(default_author="bob")
    alice.assign([0], "a")
    bob.assign([1], "b")
    st = alice.undo()
    assert st["labels"][:2] == ["a", None]
    assert alice.history()[-1]["author"] == "alice" and alice.history()[-1]["target"] == 2


def test_undo_and_redo_work_across_reloads_and_stores(backend):
    s = backend.open()
    s.assign([0, 1], "a")
    s.assign([2], "b")
    s.snapshot()
    s.assign([3], "c")
    del s
    t = backend.open()
    assert t.state()["can_undo"]
    assert t.undo()["labels"][:4] == ["a", "a", "b", None]
    u = backend.open()  # another process/tab, sees t's undo
    assert u.state()["can_redo"]
    assert u.undo()["labels"][:4] == ["a", "a", None, None]
    assert t.redo()["labels"][:4] == ["a", "a", "b", None]
    assert u.state()["labels"][:4] == ["a", "a", "b", None]


def test_write_from_a_stale_base_version_merges_row_by_row(backend):
    tab1 = backend.open()
    tab2 = backend.open()
    base = tab1.state()["version"]
    tab2.assign([0, 1], "dog")
    st = tab1.assign([1, 2], "cat", base_version=base)  # tab1 never saw tab2's write
    assert st["labels"][:3] == ["dog", "cat", "cat"]  # row 0 kept, row 1 last writer wins
    assert st["version"] == 2
    assert tab2.state() == st
    assert tab1.history()[-1]["base_version"] == base


def test_rename_onto_existing_class_merges_and_keeps_colour_order(backend):
    s = backend.open()
    s.assign([0], "a")
    s.assign([1], "b")
    s.assign([2], "c")
    st = s.rename("a", "z")
    assert [c["name"] for c in st["classes"]] == ["z", "b", "c"]
    st = s.rename("z", "c")
    assert st["classes"] == [{"name": "b", "count": 1}, {"name": "c", "count": 2}]


def test_state_sees_what_another_store_appended(backend):
    a = backend.open()
    b = backend.open()
    a.assign([0], "x")
    assert b.state()["labels"][0] == "x"
    b.assign([1], "y")
    st = a.state()
    assert st["labels"][:2] == ["x", "y"] and st["version"] == 2


def test_history_lists_records_with_author_time_and_rows(backend):
    s = backend.open()
    s.assign([3, 1], "a", author="alice", base_version=0)
    s.rename("a", "b", author="bob")
    s.undo()
    h = s.history()
    assert [r["seq"] for r in h] == [1, 2, 3]
    assert [r["op"] for r in h] == ["assign", "rename", "undo"]
    assert h[0]["author"] == "alice" and h[0]["label"] == "a" and h[0]["base_version"] == 0
    assert h[0]["changes"] == [{"label": "a", "rows": [1, 3]}]
    assert h[0]["previous"] == [{"label": None, "rows": [1, 3]}]
    assert h[1]["from"] == "a" and h[1]["to"] == "b"
    assert h[2]["target"] == 2 and h[2]["author"] == "tester"
    assert h[0]["time"].endswith("Z") and "T" in h[0]["time"]
    assert [r["seq"] for r in s.history(since=2)] == [3]


def test_row_details_give_author_and_time_of_current_label(backend):
    s = backend.open()
    s.assign([0, 1], "a", author="alice")
    s.assign([1], "b", author="bob")
    s.clear([0])
    labels_, authors, times = s.row_details()
    assert labels_[:3] == [None, "b", None]
    assert authors[:3] == [None, "bob", None]
    assert times[0] is None and times[1].endswith("Z")


def test_threads_sharing_one_store_lose_no_write(backend):
    s = backend.open(n_rows=200)

    def work(t):
        for i in range(25):
            s.assign([t * 25 + i], "t%d" % t)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    st = s.state()
    assert st["version"] == 100
    assert st["labels"][:100] == ["t%d" % (i // 25) for i in range(100)]
    assert backend.open(n_rows=200).state() == st


# ------------------------------------------------------------------ replay and snapshot


def _random_actions(store, rng, n_actions):
    for _ in range(n_actions):
        st = store.state()
        classes = [c["name"] for c in st["classes"]]
        kind = rng.random()
        try:
            if kind < 0.5 or not classes:
                rows = rng.sample(range(store.n_rows), rng.randint(1, 5))
                store.assign(rows, "c%d" % rng.randint(0, 6))
            elif kind < 0.6:
                store.clear(rng.sample(range(store.n_rows), 2))
            elif kind < 0.7:
                store.rename(rng.choice(classes), "c%d" % rng.randint(0, 9))
            elif kind < 0.75:
                store.merge(rng.sample(classes, min(2, len(classes))), "m%d" % rng.randint(0, 3))
            elif kind < 0.9:
                store.undo()
            else:
                store.redo()
        except (ConflictError, LabelError):
            pass


def test_replay_of_history_equals_live_state_and_reload(backend, monkeypatch):
    monkeypatch.setattr(labels.store, "SNAPSHOT_EVERY_RECORDS", 7)  # several snapshots on the way
    s = backend.open(n_rows=30)
    _random_actions(s, random.Random(5), 120)
    live = s.state()
    assert live["version"] > 60
    assert s.replay() == live
    assert backend.open(n_rows=30).state() == live


def test_snapshot_and_projector_tsv_are_written(backend):
    s = backend.open(n_rows=4)
    s.assign([1], "cat", author="ann")
    s.snapshot()
    tsv = backend.read(labels.PROJECTOR_TSV).decode("utf-8")
    assert tsv == "label\tauthor\tindex\n\t\t0\ncat\tann\t1\n\t\t2\n\t\t3\n"
    # The stock Projector drops whitespace-only lines; none may be blank, or rows shift.
    assert all(line.strip() for line in tsv.splitlines())
    assert s.projector_metadata_path.endswith(labels.PROJECTOR_TSV)


def test_opening_a_store_writes_projector_tsv_and_first_write_updates_it(backend):
    s = backend.open(n_rows=2)
    assert backend.read(labels.PROJECTOR_TSV).decode("utf-8") == "label\tauthor\tindex\n\t\t0\n\t\t1\n"
    assert labels.projector_metadata_path(backend.directory) == s.projector_metadata_path
    s.assign([0], "a")
    assert s.wait_snapshot(timeout=60)  # the first write's snapshot is written in the background
    assert backend.read(labels.PROJECTOR_TSV).decode("utf-8").splitlines()[1] == "a\ttester\t0"


def test_unusable_snapshot_falls_back_to_history_with_warning(backend):
    s = backend.open()
    s.assign([0], "a")
    s.snapshot()
    s.assign([1], "b")
    s.wait_snapshot()  # none in the background overwrites the damage below
    if backend.kind == "local":
        backend.write(labels.SNAPSHOT_FILE, b'{"format": "tensorboard-al-labels", "form')
    else:
        names = [n for n in backend.gfile.listdir(backend.directory) if n.startswith("snapshot-")]
        for n in names:
            backend.write(n, b"{broken")
    with pytest.warns(LabelStoreWarning, match="snapshot"):
        t = backend.open()
    assert t.state()["labels"][:2] == ["a", "b"]


# ------------------------------------------------------------------ crashes and corruption


@pytest.mark.filterwarnings("ignore::tensorboard_al_plugin.logdir.labels.LabelStoreWarning")
def test_torn_last_record_is_skipped_with_warning_and_repaired(backend):
    s = backend.open()
    s.assign([0], "a")
    s.wait_snapshot()  # the first write's snapshot, in the background, holds "a" only
    s.assign([1], "b")
    last = backend.history_names()[-1]
    data = backend.read(last)
    backend.write(last, data[:-20])  # a crash in the middle of the last write
    if backend.kind == "local":
        with pytest.warns(LabelStoreWarning, match="cut short by a crash"):
            t = backend.open()
        assert os.path.exists(os.path.join(backend.directory, labels.HISTORY_FILE + ".torn-%d" % len(
            backend.read(labels.HISTORY_FILE))))
    else:
        with pytest.warns(LabelStoreWarning, match="damaged or incomplete"):
            t = backend.open()
    assert t.state()["labels"][:2] == ["a", None] and t.state()["version"] == 1
    st = t.assign([2], "c")
    assert st["labels"][:3] == ["a", None, "c"]
    assert backend.open().state() == st == t.replay()


def test_torn_tail_while_another_writer_holds_the_lock_is_left_alone(tmp_path):
    # A line without its newline may be a write in progress: only cut it
    # when nobody holds the lock.
    d = str(tmp_path / "l")
    s = LabelStore(d, 3, durable=False)
    s.assign([0], "a")
    with open(os.path.join(d, labels.HISTORY_FILE), "ab") as f:
        f.write(b"0000abcd {\"seq\":2,")
    with s._storage.locked():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            t = LabelStore(d, 3, durable=False)
    assert t.state()["version"] == 1
    with pytest.warns(LabelStoreWarning, match="cut short by a crash"):
        assert t.assign([1], "b")["version"] == 2


def test_corrupt_record_in_the_middle_is_reported_and_later_records_kept(backend):
    s = backend.open()
    s.assign([0], "a")
    s.assign([1], "b")
    s.assign([2], "c")
    if backend.kind == "local":
        data = backend.read(labels.HISTORY_FILE)
        lines = data.splitlines(True)
        lines[1] = lines[1].replace(b'"b"', b'"X"')  # bit rot: checksum no longer matches
        backend.write(labels.HISTORY_FILE, b"".join(lines))
        match = r"history\.jsonl: record 2 \(byte %d\) is damaged \(checksum mismatch\)" % len(lines[0])
    else:
        name = backend.history_names()[1]
        backend.write(name, backend.read(name).replace(b'"b"', b'"X"'))
        match = "%s.*damaged or incomplete" % name.split("/")[-1]
    for n in backend.gfile.listdir(backend.directory) if backend.gfile else []:
        if n.startswith("snapshot-"):
            backend.write(n, b"{}")  # force a replay through the damaged record
    if backend.kind == "local":
        os.remove(os.path.join(backend.directory, labels.SNAPSHOT_FILE))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = backend.open()
    assert any(re.search(match, str(w.message)) for w in caught), [str(w.message) for w in caught]
    assert t.state()["labels"][:3] == ["a", None, "c"]
    assert t.problems
    st = t.assign([3], "d")
    assert st["labels"][:4] == ["a", None, "c", "d"]


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "label, message",
    [
        ("a\tb", "contains a tab at position 1"),
        ("x" * 257, "257 characters long; at most 256"),
        ("", "label is empty"),
        ("bell\x07", "control character U+0007 at position 4"),
        ("two\nlines", "contains a newline"),
        (" padded", "leading or trailing whitespace"),
        (7, "label must be a string, got int"),
        (None, "label must be a string, got NoneType"),
    ],
)
def test_bad_label_is_refused_with_a_clear_message(backend, label, message):
    s = backend.open()
    with pytest.raises(LabelError, match=re.escape(message)):
        s.assign([0], label)
    assert s.state()["version"] == 0


def test_label_of_256_characters_is_fine():
    assert validate_label("é" * 256) == "é" * 256


@pytest.mark.parametrize(
    "rows, message",
    [
        ([N], "row index 20 is out of range: this embedding has rows 0..19"),
        ([-1], "row index -1 is out of range"),
        ([], "rows is empty"),
        ([True], "row index must be a whole number, got True"),
        ([1.5], "row index must be a whole number, got 1.5"),
        ("12", "rows must be a list of row indices, got str"),
    ],
)
def test_bad_rows_are_refused_with_a_clear_message(backend, rows, message):
    s = backend.open()
    with pytest.raises(LabelError, match=re.escape(message)):
        s.assign(rows, "a")
    with pytest.raises(LabelError):
        s.clear(rows)


def test_unknown_classes_and_bad_arguments_are_refused(backend):
    s = backend.open()
    s.assign([0], "a")
    with pytest.raises(LabelError, match="unknown class 'nope'"):
        s.rename("nope", "b")
    with pytest.raises(LabelError, match="to itself"):
        s.rename("a", "a")
    with pytest.raises(LabelError, match="unknown class 'nope'"):
        s.merge(["a", "nope"], "b")
    with pytest.raises(LabelError, match="non-empty list"):
        s.merge([], "b")
    with pytest.raises(LabelError, match="author"):
        s.assign([0], "b", author="bad\tname")
    with pytest.raises(LabelError, match="base_version"):
        s.assign([0], "b", base_version="3")
    assert s.state()["version"] == 1


def test_numpy_row_indices_are_accepted(backend):
    np = pytest.importorskip("numpy")
    s = backend.open()
    assert s.assign(np.array([1, 2]), "a")["labels"][1:3] == ["a", "a"]


def test_reopening_with_fewer_rows_warns_and_keeps_what_fits(tmp_path):
    d = str(tmp_path / "l")
    LabelStore(d, 10, durable=False).assign([1, 8], "a")
    with pytest.warns(LabelStoreWarning, match="beyond the embedding's 5 rows"):
        s = LabelStore(d, 5, durable=False)
    assert s.state()["labels"] == [None, "a", None, None, None]


# ------------------------------------------------------------------ export / import


def test_export_then_import_into_a_fresh_store_gives_the_same_labels(backend, tmp_path):
    s = backend.open(n_rows=6)
    s.assign([0, 2], "cat", author="ann")
    s.assign([5], "dog, big", author="bob")  # a comma: CSV quoting
    meta = {"name": ["n%d" % i for i in range(6)], "label": ["x"] * 6}
    buf = io.StringIO()
    assert label_io.export_csv(s, buf, metadata_columns=meta) == 3
    text = buf.getvalue()
    lines = text.splitlines()
    assert lines[0] == "index,label,author,time,name,metadata_label"
    assert lines[1].startswith("0,cat,ann,") and lines[1].endswith(",n0,x")
    assert lines[3].startswith('5,"dog, big",bob,')

    all_buf = io.StringIO()
    assert label_io.export_csv(s, all_buf, all_rows=True) == 6
    assert all_buf.getvalue().splitlines()[2] == "1,,,"

    other = Backend(backend.kind, tmp_path / "other")
    t = other.open(n_rows=6)
    st = label_io.import_labels(t, all_buf.getvalue(), author="importer")
    assert st["labels"] == s.state()["labels"]
    assert st["version"] == 1 and t.history()[0]["op"] == "import"
    assert t.undo()["labels"] == [None] * 6  # one undoable action


def test_import_tsv_by_metadata_key_and_from_a_path(tmp_path):
    s = LabelStore(str(tmp_path / "l"), 4, durable=False, default_author="t")
    meta = {"File": ["a.png", "b.png", "c.png", "d.png"]}
    path = tmp_path / "in.tsv"
    path.write_text("file\tlabel\textra\nc.png\tcat\t1\n\nb.png\t\t2\na.png\tdog\t3\n", encoding="utf-8")
    st = label_io.import_labels(s, str(path), key="file", metadata_columns=meta)
    assert st["labels"] == ["dog", None, "cat", None]
    assert s.history()[0]["source"] == "in.tsv"


def test_export_to_a_path(tmp_path):
    s = LabelStore(str(tmp_path / "l"), 3, durable=False, default_author="t")
    s.assign([2], "z")
    out = tmp_path / "labels.csv"
    assert label_io.export_csv(s, str(out)) == 1
    assert out.read_text(encoding="utf-8").splitlines()[1].startswith("2,z,t,")


@pytest.mark.parametrize(
    "text, message",
    [
        ("index,label\n0,a\nseven,b\n", "line 3: index 'seven' is not a whole number"),
        ("index,label\n0,a\n99,b\n", "line 3: row index 99 is out of range: this embedding has rows 0..19"),
        ("index,label\n0,a\n1,b\u0007\n", "line 3: label 'b\\\\x07' contains control character U\\+0007"),
        ("index,label\n0,a\n1," + "y" * 257 + "\n", "line 3: label is 257 characters long"),
        ("index,label\n0,a\n0,b\n", "line 3: row 0 already gets label 'a' on line 2"),
        ("index,label\n0\n", "line 2: expected at least 2 columns, found 1"),
        ("row,label\n0,a\n", "line 1: no 'index' column in the header"),
        ("index,name\n0,a\n", "line 1: no 'label' column"),
        ("index,label\n0,\n", "has no labelled rows"),
        ("\n\n", "is empty"),
        (" , \n0,a\n", "line 2: no 'label' column in the header \\(found: 0, a\\)"),
        # Python 3.10's csv module refuses a NUL itself ("line contains NUL"); 3.11+ passes it on
        ('index,label\n0,a\n1,"b\x00"\n',
         "line 3: (label 'b\\\\x00' contains control character U\\+0000|line contains NUL)"),
    ],
)
def test_malformed_import_is_refused_naming_the_line(tmp_path, text, message):
    s = LabelStore(str(tmp_path / "l"), N, durable=False, default_author="t")
    with pytest.raises(LabelError, match=message):
        label_io.import_labels(s, text)
    assert s.state()["version"] == 0  # nothing written


def test_import_by_key_refuses_ambiguous_or_unknown_values(tmp_path):
    s = LabelStore(str(tmp_path / "l"), 3, durable=False, default_author="t")
    meta = {"name": ["a", "a", "b"]}
    with pytest.raises(LabelError, match="line 2: name 'a' matches 2 rows"):
        label_io.import_labels(s, "name,label\na,x\n", key="name", metadata_columns=meta)
    with pytest.raises(LabelError, match="line 2: name 'q' matches no row"):
        label_io.import_labels(s, "name,label\nq,x\n", key="name", metadata_columns=meta)
    with pytest.raises(LabelError, match="key column 'size' is not a metadata column"):
        label_io.import_labels(s, "size,label\nq,x\n", key="size", metadata_columns=meta)


def test_on_disk_history_is_crc_prefixed_json_lines(tmp_path):
    s = LabelStore(str(tmp_path / "l"), 3, durable=False, default_author="t")
    s.assign([1], "a")
    line = (tmp_path / "l" / labels.HISTORY_FILE).read_bytes().splitlines()[0]
    crc, body = line.split(b" ", 1)
    record = json.loads(body)
    assert int(crc, 16) == __import__("zlib").crc32(body)
    assert record["seq"] == 1 and record["set"] == [["a", [1]]] and record["prev"] == [[None, [1]]]


def test_late_record_of_a_racing_writer_is_ordered_by_seq_then_writer(backend):
    # Without locks, two writers can claim the same seq; the record of the one
    # whose file lands later may sort first.  Every reader must then agree on
    # (seq, writer) order, snapshot or not.
    if backend.kind == "local":
        pytest.skip("local stores serialize writers with a lock")
    s = backend.open()
    s.assign([0], "a")  # seq 1
    s.assign([0, 1], "b")  # seq 2
    s.snapshot()
    racer = {"seq": 2, "writer": "0", "time": "2026-01-01T00:00:00.000Z", "author": "racer",
             "op": "assign", "label": "r", "set": [["r", [1, 2]]], "prev": [[None, [1, 2]]]}
    backend.write(labels.SEGMENT_DIR + "/0000000002-0.json", labels._encode_record(racer))
    st = s.state()
    assert st["labels"][:3] == ["b", "b", "r"]  # "r" (2, "0") sorts before "b" (2, <writer>)
    assert st["version"] == 3
    assert st == s.replay()
    assert backend.open().state() == st
    assert s.assign([3], "c")["version"] == 4
    assert [r["author"] for r in s.history()] == ["tester", "racer", "tester", "tester"]


def test_torn_segment_of_a_dead_writer_does_not_disable_snapshots(backend, monkeypatch):
    if backend.kind == "local":
        pytest.skip("segment layout only")
    s = backend.open()
    s.assign([0], "a")  # seq 1
    torn = labels._encode_record({"seq": 2, "writer": "0", "time": "t", "author": "x", "op": "assign",
                                  "set": [["x", [5]]], "prev": [[None, [5]]]})
    backend.write(labels.SEGMENT_DIR + "/0000000002-0.json", torn[:-15])
    with pytest.warns(LabelStoreWarning):
        s.assign([1], "b")  # seq 2 too, sorts after the torn one
    s.snapshot()
    replayed = []
    monkeypatch.setattr(labels._Model, "apply", lambda self, r, loc, _orig=labels._Model.apply: (
        replayed.append(r["seq"]), _orig(self, r, loc))[-1])
    with pytest.warns(LabelStoreWarning, match="damaged or incomplete"):
        t = backend.open()
    assert replayed == []  # loaded from the snapshot, not from a full replay
    assert t.state()["labels"][:2] == ["a", "b"]


def test_import_accepts_crlf_line_ends_and_a_byte_order_mark(tmp_path):
    s = LabelStore(str(tmp_path / "l"), 3, durable=False, default_author="t")
    st = label_io.import_labels(s, "\ufeffIndex,Label\r\n2,b\r\n0,a\r\n")
    assert st["labels"] == ["a", None, "b"]
    with pytest.raises(LabelError, match="line 3: row index 7"):
        label_io.import_labels(s, "index,label\r\n2,b\r\n7,a\r\n")


def test_a_70000_row_store_loads_in_under_a_second(tmp_path):
    # benchmarks/labels_bench.py measures the realistic case (~50 ms); this
    # guards against loading becoming proportional to the history.
    import time

    d = str(tmp_path / "big")
    n = 70_000
    s = LabelStore(d, n, durable=False, default_author="t")
    label_io.import_labels(s, "index,label\n" + "".join("%d,c%d\n" % (i, i % 10) for i in range(n)))
    for i in range(50):
        s.assign([i], "tail")
    t = time.perf_counter()
    st = LabelStore(d, n, durable=False).state()
    assert time.perf_counter() - t < 1.0
    assert st["labels"][:51] == ["tail"] * 50 + ["c0"]


def test_undo_never_reads_a_record_outside_the_segments_folder(tmp_path):
    """A snapshot is a file anyone who can write the log directory can edit: an undo
    target pointing out of the segments folder must be refused, not read (before, a
    well-formed record placed outside was read and undone)."""
    b = Backend("local-segments", tmp_path)
    store = b.open()
    store.assign([0, 1], "a")
    store.snapshot()
    segment = b.history_names()[-1]
    outside = tmp_path / "outside.json"
    outside.write_bytes(b.read(segment))
    name = sorted(n for n in os.listdir(b.directory) if n.startswith("snapshot-"))[-1]
    snap = json.loads(b.read(name))
    snap["undo"] = [[snap["undo"][0][0], "../../outside.json"]]
    b.write(name, json.dumps(snap).encode("utf-8"))
    with pytest.raises(ConflictError, match="is not a segment of this store"):
        b.open().undo()
    assert b.open().state()["labels"][:2] == ["a", "a"]
