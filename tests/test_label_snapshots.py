"""The label store's snapshots leave the write path: written in the background from a copy,
never older over newer, never losing or garbling a label (also across processes)."""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tensorboard_al_plugin.logdir import labels  # noqa: E402
from tensorboard_al_plugin.logdir.labels import LabelStore  # noqa: E402
from tensorboard_al_plugin.logdir.labels.model import LabelModel  # noqa: E402
from tensorboard_al_plugin.logdir.labels.records import encode_json, encode_json_chunks  # noqa: E402

WRITER = os.path.join(ROOT, "tests", "_labels_writer.py")


def test_a_write_returns_before_its_snapshot_is_written(tmp_path):
    # At 10^6 rows a snapshot takes the better part of a second; the write that
    # asks for one (the first of a process, then every 100 records or 10 s) must
    # not wait for it.  Before, the write wrote it inline and waited here.
    store = LabelStore(str(tmp_path / "l"), 10, durable=False, default_author="t")
    release, calls, timed_out = threading.Event(), [], []
    real = store._storage.write_snapshot

    def held_back(*args, **kwargs):
        calls.append(threading.current_thread() is threading.main_thread())
        if not release.wait(20):
            timed_out.append(True)
        return real(*args, **kwargs)

    store._storage.write_snapshot = held_back
    state = store.assign([1, 2], "cat")  # the first write of this store object asks for a snapshot
    release.set()
    assert state["labels"][1:3] == ["cat", "cat"]
    assert store.wait_snapshot(timeout=60)
    assert calls == [False] and not timed_out  # written once, by another thread, while the write had returned
    with open(os.path.join(store.directory, labels.SNAPSHOT_FILE)) as f:
        assert json.load(f)["version"] == 1
    with open(store.projector_metadata_path) as f:
        assert f.read().splitlines()[2] == "cat\tt\t1"


def test_the_background_snapshot_holds_the_labels_of_the_write_that_asked_for_it(tmp_path, monkeypatch):
    # The copy is made inside the write; writes after it are in the history after
    # the snapshot's end, and a load replays them.
    monkeypatch.setattr(labels.store, "SNAPSHOT_EVERY_RECORDS", 3)
    monkeypatch.setattr(labels.store, "SNAPSHOT_MAX_SHARE", 1e9)  # the share is not what this tests
    d = str(tmp_path / "l")
    store = LabelStore(d, 20, durable=False, default_author="t")
    for i in range(10):
        store.assign([i], "c%d" % i)
        store.wait_snapshot()
    store.assign([19], "after")  # no snapshot asked for: 11 - 9 < 3
    store.wait_snapshot()
    with open(os.path.join(d, labels.SNAPSHOT_FILE)) as f:
        snap = json.load(f)
    assert snap["version"] == 10  # written at the 1st, 4th, 7th and 10th write
    assert snap["history_offset"] < os.path.getsize(os.path.join(d, labels.HISTORY_FILE))
    again = LabelStore(d, 20, durable=False)
    assert again.state() == store.state() == store.replay()


def test_background_snapshots_take_at_most_their_share_of_the_time(tmp_path, monkeypatch):
    # At 10^6 rows a snapshot takes ~0.8 s; one every 100 writes of someone labelling
    # without pause would keep the background busy most of the time.
    monkeypatch.setattr(labels.store, "SNAPSHOT_EVERY_RECORDS", 1)
    d = str(tmp_path / "l")
    store = LabelStore(d, 10, durable=False, default_author="t")
    store.assign([0], "a")  # the first write snapshots
    store.wait_snapshot()
    store._snapshot_seconds = 1000.0  # as if it had taken 1000 s: the next may start 10,000 s later
    for i in range(1, 5):
        store.assign([i], "b")
    store.wait_snapshot()
    with open(os.path.join(d, labels.SNAPSHOT_FILE)) as f:
        assert json.load(f)["version"] == 1
    assert store.flush()  # asked for, it writes at once
    with open(os.path.join(d, labels.SNAPSHOT_FILE)) as f:
        assert json.load(f)["version"] == 5
    assert LabelStore(d, 10, durable=False).state() == store.state()


def test_an_older_snapshot_never_replaces_a_newer_one(tmp_path):
    # Two processes snapshot without a lock around the slow part; the one that
    # finishes last may hold fewer records.  It must leave the newer one there.
    d = str(tmp_path / "l")
    store = LabelStore(d, 10, durable=False, default_author="t")
    store.assign([0], "a")
    store.wait_snapshot()
    with store._lock:
        old_copy = store._freeze()  # what a slow background snapshot copied at version 1
    store.assign([1], "b")
    store.snapshot()  # version 2, written first
    with store._snapshot_writing:
        store._write_frozen(*old_copy)  # version 1, finished later
    with open(os.path.join(d, labels.SNAPSHOT_FILE)) as f:
        assert json.load(f)["version"] == 2
    with open(store.projector_metadata_path) as f:
        assert f.read().splitlines()[2] == "b\tt\t1"
    assert not [n for n in os.listdir(d) if ".tmp-" in n]  # the older one's temp files are gone


def test_snapshot_removes_only_the_temp_files_of_writers_that_are_gone(tmp_path):
    # Snapshot files are written without the lock: a temp file may be another
    # process's snapshot in progress.  Before, every temp file was deleted.
    d = str(tmp_path / "l")
    store = LabelStore(d, 4, durable=False, default_author="t")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = os.path.join(d, "snapshot.json.tmp-%d-deadbeef" % gone.pid)
    live = os.path.join(d, "labels.tsv.tmp-%d-0badf00d" % os.getppid())  # pytest's parent runs
    ours = os.path.join(d, "snapshot.json.tmp-%d-00c0ffee" % os.getpid())  # another store object of ours
    for path in (dead, live, ours):
        with open(path, "wb") as f:
            f.write(b"partial")
    store.assign([0], "a")
    store.snapshot()
    assert not os.path.exists(dead)
    assert os.path.exists(live) and os.path.exists(ours)
    old = time.time() - labels.storage.STALE_TEMP_SECONDS - 60  # untouched for longer: stuck, removed
    os.utime(live, (old, old))
    store.snapshot()
    assert not os.path.exists(live) and os.path.exists(ours)


def test_a_failed_background_snapshot_is_reported_and_the_next_one_succeeds(tmp_path, monkeypatch):
    monkeypatch.setattr(labels.store, "SNAPSHOT_EVERY_RECORDS", 2)
    monkeypatch.setattr(labels.store, "SNAPSHOT_MAX_SHARE", 1e9)  # the share is not what this tests
    d = str(tmp_path / "l")
    store = LabelStore(d, 10, durable=False, default_author="t")
    real, failures = store._storage.write_snapshot, []

    def failing_once(*args, **kwargs):
        if not failures:
            failures.append(1)
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    store._storage.write_snapshot = failing_once
    with pytest.warns(labels.LabelStoreWarning, match="could not write the label snapshot.*No space left"):
        store.assign([0], "a")
        store.wait_snapshot()
    store.assign([1], "b")  # 2 records since the last snapshot written (none): asks again
    store.wait_snapshot()
    with open(os.path.join(d, labels.SNAPSHOT_FILE)) as f:
        assert json.load(f)["version"] == 2
    store.assign([2], "c")
    assert LabelStore(d, 10, durable=False).state() == store.state()


def test_a_short_append_is_taken_back_and_the_write_fails(tmp_path, monkeypatch):
    # os.write may write part of a record (a full disk). Before, the part stayed
    # and the write was acknowledged: a label the next load would not find.
    d = str(tmp_path / "l")
    store = LabelStore(d, 10, durable=False, default_author="t")
    store.assign([0], "a")
    size = os.path.getsize(os.path.join(d, labels.HISTORY_FILE))
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:10]))
    with pytest.raises(OSError, match="only 10 of"):
        store.assign([1], "b")
    monkeypatch.setattr(os, "write", real_write)
    assert os.path.getsize(os.path.join(d, labels.HISTORY_FILE)) == size
    assert store.assign([2], "c")["labels"][:3] == ["a", None, "c"]
    store.wait_snapshot()
    assert LabelStore(d, 10, durable=False).state() == store.state() == store.replay()


@pytest.mark.parametrize("rows_per_chunk", [1, 2, 3, 1000])
def test_labels_tsv_and_snapshot_written_in_pieces_are_the_whole_text(rows_per_chunk):
    m = LabelModel(7)
    m.apply({"op": "assign", "author": "ann", "time": "t", "set": [["cat", [1, 5]], ["dog", [6]]]}, 0)
    columns = (["class", "label"], [list("abcdefg"), list("ABCDEFG")])
    whole = "".join(m.projector_tsv_chunks(columns, rows_per_chunk=10 ** 6))
    assert "".join(m.projector_tsv_chunks(columns, rows_per_chunk=rows_per_chunk)) == whole
    assert whole.splitlines()[0] == "label\tauthor\tindex\tclass\tlabel (metadata)"
    assert whole.splitlines()[2] == "cat\tann\t1\tb\tB" and whole.splitlines()[1] == "\t\t0\ta\tA"
    snap = m.to_snapshot()
    assert b"".join(encode_json_chunks(snap, rows_per_chunk)) == encode_json(snap)


def _replay_first(store, version):
    """LabelState of the first ``version`` records of the history (the snapshot not used)."""
    model = LabelModel(store.n_rows)
    for loc, record, _problem in store._storage.iter_all():
        if model.version == version:
            break
        if record is None:
            model.version += 1
        else:
            model.apply(record, loc)
    return model.state()


def test_snapshots_written_while_two_processes_append_load_to_the_history_they_cover(tmp_path):
    # Two writer processes, each snapshotting in the background every 3 records
    # while the other appends; meanwhile loads here (snapshot + the records after
    # it) must always equal a replay of the same number of records.
    directory = str(tmp_path / "labels")
    go = str(tmp_path / "go")
    n_rows, each = 3000, 150
    env = dict(os.environ, AL_TEST_SNAPSHOT_EVERY="3")
    children = [subprocess.Popen([sys.executable, WRITER, directory, str(n_rows), str(start), str(each),
                                  author, "append", "0", go], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 cwd=ROOT, env=env)
                for start, author in ((0, "alice"), (each, "bob"))]
    time.sleep(0.5)
    open(go, "w").close()
    loads = from_snapshot = 0
    while any(c.poll() is None for c in children) or loads < 5:
        store = LabelStore(directory, n_rows, durable=False)
        state = store.state()
        assert state == _replay_first(store, state["version"])
        loads += 1
        from_snapshot += store._written_version > 0
    outputs = [c.communicate(timeout=120) for c in children]
    for c, (out, err) in zip(children, outputs):
        assert c.returncode == 0, err.decode()
        assert len(out.splitlines()) == each
    assert from_snapshot > 0  # the loads did start from snapshots
    store = LabelStore(directory, n_rows, durable=False)
    assert store.state()["version"] == 2 * each
    assert store.state() == store.replay() and store.problems == []
    assert not [n for n in os.listdir(directory) if ".tmp-" in n]
