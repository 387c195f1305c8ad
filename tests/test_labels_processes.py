"""The label store across processes: SIGKILL while writing, two writers at once.

Children run tests/_labels_writer.py, which prints one line per acknowledged
write.  The children do not fsync (DURABLE=0): a SIGKILL cannot undo a
write() the kernel accepted, and fsync on this shared disk costs ~4 ms a write.
"""
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tensorboard_al_plugin.logdir.labels import LabelStore  # noqa: E402

WRITER = os.path.join(ROOT, "tests", "_labels_writer.py")
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def _spawn(directory, n_rows, start, count, author, storage, go_file=None):
    args = [sys.executable, WRITER, directory, str(n_rows), str(start), str(count), author, storage, "0"]
    if go_file:
        args.append(go_file)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)


def _open(directory, n_rows, storage):
    gfile = None
    if storage == "segments":
        from tensorboard.compat.tensorflow_stub.io import gfile
    return LabelStore(directory, n_rows, gfile=gfile, storage=storage, durable=False)


def _assign_records(store):
    """{write number i: [seq, ...]} from the history ("w<i>" labels)."""
    found = {}
    for record in store.history():
        if record["op"] == "assign":
            found.setdefault(int(record["label"][1:]), []).append(record["seq"])
    return found


def test_sigkill_loop_loses_no_acknowledged_write(tmp_path):
    # 10,000 writes, killed 50 times at random points (a fixed seed): every
    # acknowledged write must be in the history and the store must load.
    directory = str(tmp_path / "labels")
    n_rows, total, kills = 97, 10_000, 50
    rng = random.Random(1234)
    kill_after = sorted(rng.sample(range(1, total), kills))
    acked = {}
    next_i = 0
    for limit in kill_after + [total]:
        child = _spawn(directory, n_rows, next_i, total - next_i, "killer", "append")
        while next_i < limit:
            line = child.stdout.readline()
            if not line:
                break
            i, version = map(int, line.split())
            acked[i] = version
            next_i = i + 1
        if limit < total:
            # Kill at a random moment of the next write (or the one after).
            time.sleep(rng.random() * 0.002)
            child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        err = child.stderr.read().decode()
        child.stderr.close()
        assert child.returncode in (0, -signal.SIGKILL), err
    assert len(acked) == total

    store = _open(directory, n_rows, "append")
    found = _assign_records(store)
    missing = [i for i in acked if i not in found]
    assert not missing, "acknowledged writes lost: %s" % missing[:10]
    for i, version in acked.items():
        assert version in found[i], "write %d acknowledged as version %d" % (i, version)
    assert store.problems == []
    state = store.state()
    assert state == store.replay()
    # Each row holds the label of the last write to it.
    last = {}
    for i in sorted(acked):
        last[i % n_rows] = "w%d" % i
    assert state["labels"] == [last.get(r) for r in range(n_rows)]


@pytest.mark.parametrize("storage, each", [("append", 1000), ("segments", 250)])
def test_two_processes_writing_at_once_keep_every_action(tmp_path, storage, each):
    # Segment files through the stub gfile cost ~5 ms each on this disk, so
    # that layout runs 2 x 250 actions instead of 2 x 1,000.
    directory = str(tmp_path / "labels")
    go = str(tmp_path / "go")
    n_rows = 50  # both writers hit the same rows: last writer wins per row
    children = [
        _spawn(directory, n_rows, 0, each, "alice", storage, go),
        _spawn(directory, n_rows, each, each, "bob", storage, go),
    ]
    time.sleep(0.3)  # both have opened the store
    open(go, "w").close()
    outputs = [c.communicate(timeout=120) for c in children]
    for c, (out, err) in zip(children, outputs):
        assert c.returncode == 0, err.decode()
        assert len(out.splitlines()) == each

    store = _open(directory, n_rows, storage)
    history = store.history()
    assert len(history) == 2 * each
    assert Counter(r["author"] for r in history) == {"alice": each, "bob": each}
    assert sorted(_assign_records(store)) == list(range(2 * each))
    assert [r["seq"] for r in history] == list(range(1, 2 * each + 1))
    state = store.state()
    assert state["version"] == 2 * each
    assert state == store.replay()  # the snapshot agrees with the history
    store.snapshot()
    assert _open(directory, n_rows, storage).state() == state
    # Each writer's own acknowledged versions only ever increase.
    for out, _ in outputs:
        versions = [int(line.split()[1]) for line in out.splitlines()]
        assert versions == sorted(versions)
