"""The label store: durable, shared, undoable labels of one embedding (docs/LABEL_STORE.md).

One module per part, each usable on its own:

* validate.py: what a label and an author may be (:func:`validate_label`,
  :class:`LabelError`);
* records.py: the history record and snapshot formats, their checksummed
  lines and the checks of what is read back;
* model.py: :class:`LabelModel`, the labels in memory (records in, state
  out, labels.tsv);
* storage.py: the :class:`Storage` protocol and its two backends, an
  append-only history file under ``flock`` (local paths) and one file per
  record (object stores);
* store.py: :class:`LabelStore`, which joins them.

``from tensorboard_al_plugin.logdir.labels import LabelStore`` (and the
other names below) is the import to use.
"""

from .model import UNDO_DEPTH, LabelModel
from .records import FORMAT, FORMAT_VERSION, encode_record
from .storage import (
    HISTORY_FILE,
    LOCK_FILE,
    PROJECTOR_TSV,
    SEGMENT_DIR,
    SNAPSHOT_FILE,
    AppendStorage,
    LabelStoreWarning,
    SegmentStorage,
    Storage,
    projector_metadata_path,
)
from .store import SNAPSHOT_EVERY_RECORDS, SNAPSHOT_EVERY_SECONDS, SNAPSHOT_MAX_SHARE, ConflictError, LabelStore
from .validate import MAX_AUTHOR_LENGTH, MAX_LABEL_LENGTH, LabelError, os_user, validate_author, validate_label

# The names these had when the store was one module (tests use them).
_Model = LabelModel
_encode_record = encode_record

__all__ = [
    "AppendStorage",
    "ConflictError",
    "FORMAT",
    "FORMAT_VERSION",
    "HISTORY_FILE",
    "LOCK_FILE",
    "LabelError",
    "LabelModel",
    "LabelStore",
    "LabelStoreWarning",
    "MAX_AUTHOR_LENGTH",
    "MAX_LABEL_LENGTH",
    "PROJECTOR_TSV",
    "SEGMENT_DIR",
    "SNAPSHOT_EVERY_RECORDS",
    "SNAPSHOT_EVERY_SECONDS",
    "SNAPSHOT_MAX_SHARE",
    "SNAPSHOT_FILE",
    "SegmentStorage",
    "Storage",
    "UNDO_DEPTH",
    "os_user",
    "projector_metadata_path",
    "validate_author",
    "validate_label",
]
