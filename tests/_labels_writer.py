"""Child program of tests/test_labels_processes.py: writes labels and acknowledges each.

    python tests/_labels_writer.py DIRECTORY N_ROWS START COUNT AUTHOR STORAGE DURABLE [GO_FILE]

Write number i (START <= i < START+COUNT) assigns label "w<i>" to row
i % N_ROWS.  DURABLE is 1 to fsync every append, 0 not to (a SIGKILL
cannot lose what write() handed to the kernel; fsync guards against power
loss, and costs milliseconds on a busy disk).  After the store returns, prints "<i> <version>" and flushes: a
printed line is an acknowledged write.  With GO_FILE, waits until that file
exists before the first write, so two children start together.  The
environment variable AL_TEST_SNAPSHOT_EVERY, when set, is the store's
SNAPSHOT_EVERY_RECORDS.
"""
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tensorboard_al_plugin.logdir import labels  # noqa: E402
from tensorboard_al_plugin.logdir.labels import LabelStore  # noqa: E402


def main():
    if os.environ.get("AL_TEST_SNAPSHOT_EVERY"):  # snapshots (in the background) every few records
        labels.store.SNAPSHOT_EVERY_RECORDS = int(os.environ["AL_TEST_SNAPSHOT_EVERY"])
    directory, n_rows, start, count, author, storage, durable = sys.argv[1:8]
    go_file = sys.argv[8] if len(sys.argv) > 8 else None
    n_rows, start, count = int(n_rows), int(start), int(count)
    # Segment files written through the stub gfile on a local disk appear
    # before their bytes do; readers skip and retry them, with a warning each.
    warnings.simplefilter("ignore")
    gfile = None
    if storage == "segments":
        from tensorboard.compat.tensorflow_stub.io import gfile
    store = LabelStore(directory, n_rows, default_author=author, gfile=gfile, storage=storage,
                       durable=durable == "1")
    if go_file:
        while not os.path.exists(go_file):
            time.sleep(0.005)
    out = sys.stdout
    for i in range(start, start + count):
        state = store.assign([i % n_rows], "w%d" % i)
        out.write("%d %d\n" % (i, state["version"]))
        out.flush()


if __name__ == "__main__":
    main()
