"""CSV export and CSV/TSV import of a label store.

Export columns: ``index`` (row number in the tensor), ``label``, ``author``,
``time`` (ISO 8601 UTC), then every metadata column (a metadata column whose
name clashes with one of those four is written as ``metadata_<name>``).
Import reads ``index`` and ``label`` columns (other columns ignored), or a
metadata column named by ``key`` instead of ``index``; rows with an empty
label are left as they are.  The whole import is one undoable action.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Dict, List, Optional

from .labels import LabelError, LabelStore, validate_label

_FIXED_COLUMNS = ("index", "label", "author", "time")


def _check_metadata(metadata_columns, n_rows: int) -> Dict[str, List[str]]:
    metadata_columns = dict(metadata_columns or {})
    for name, values in metadata_columns.items():
        if len(values) != n_rows:
            raise LabelError("metadata column %r has %d values but the embedding has %d rows"
                             % (name, len(values), n_rows))
    return metadata_columns


def export_csv(store: LabelStore, out, *, metadata_columns: Optional[Dict[str, List[str]]] = None,
               all_rows: bool = False) -> int:
    """Write the labels as CSV to ``out`` (a text file object or a local path); return rows written.

    Only labelled rows unless ``all_rows``; unlabelled rows then have empty
    label, author and time.  ``metadata_columns`` maps a column name to its
    values, one string per row.
    """
    metadata = _check_metadata(metadata_columns, store.n_rows)
    header = list(_FIXED_COLUMNS) + [
        "metadata_" + name if name in _FIXED_COLUMNS else name for name in metadata]
    labels, authors, times = store.row_details()
    columns = list(metadata.values())
    if hasattr(out, "write"):
        return _write_csv(out, header, labels, authors, times, columns, all_rows)
    with open(out, "w", newline="", encoding="utf-8") as f:
        return _write_csv(f, header, labels, authors, times, columns, all_rows)


def _write_csv(f, header, labels, authors, times, columns, all_rows) -> int:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(header)
    written = 0
    for i, label in enumerate(labels):
        if label is None and not all_rows:
            continue
        writer.writerow([i, label or "", authors[i] or "", times[i] or ""] + [c[i] for c in columns])
        written += 1
    return written


def import_labels(store: LabelStore, text_or_path, *, key: Optional[str] = None,
                  metadata_columns: Optional[Dict[str, List[str]]] = None, author: Optional[str] = None,
                  source: Optional[str] = None) -> dict:
    """Import labels from CSV or TSV as one undoable action; return the new LabelState.

    ``text_or_path``: the file's text (anything containing a newline), a
    local path, or a text file object.  The delimiter is a tab when the
    header line has one, else a comma.  Columns are found by name
    (case-insensitive): ``label`` and ``index``, or ``key`` (a metadata
    column whose value must name exactly one row).  Raises LabelError naming
    the line of the first bad row; nothing is written then.
    """
    text, name = _read_text(text_or_path)
    name = source or name
    where = (name + " line") if name else "line"
    text = text.lstrip("\ufeff")
    header_line = next((line for line in text.split("\n") if line.strip()), None)
    if header_line is None:
        raise LabelError("%s is empty: expected a header row with 'index' and 'label' columns"
                         % (name or "the import"))
    delimiter = "\t" if "\t" in header_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = _rows(reader, where)
    header = None
    for line, row in rows:
        if any(cell.strip() for cell in row):
            header = [cell.strip().lower() for cell in row]
            break
    if header is None:
        raise LabelError("%s is empty: expected a header row with 'index' and 'label' columns"
                         % (name or "the import"))
    want = "index" if key is None else key.lower()
    if "label" not in header:
        raise LabelError("%s %d: no 'label' column in the header (found: %s)"
                         % (where, line, ", ".join(header)))
    if want not in header:
        raise LabelError("%s %d: no %r column in the header (found: %s)"
                         % (where, line, want, ", ".join(header)))
    label_col, key_col = header.index("label"), header.index(want)

    rows_by_key = None
    if key is not None:
        metadata = _check_metadata(metadata_columns, store.n_rows)
        column = next((v for k, v in metadata.items() if k.lower() == key.lower()), None)
        if column is None:
            raise LabelError("key column %r is not a metadata column of this embedding (have: %s)"
                             % (key, ", ".join(metadata) or "none"))
        rows_by_key = {}
        for i, value in enumerate(column):
            rows_by_key.setdefault(value, []).append(i)

    assignments: Dict[int, str] = {}
    first_line: Dict[int, int] = {}
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(label_col, key_col):
            raise LabelError("%s %d: expected at least %d columns, found %d"
                             % (where, line, max(label_col, key_col) + 1, len(row)))
        label = row[label_col].strip()
        if not label:
            continue  # unlabelled row (an --all-rows export): left as it is
        try:
            validate_label(label)
        except LabelError as e:
            raise LabelError("%s %d: %s" % (where, line, e)) from None
        cell = row[key_col].strip()
        if rows_by_key is None:
            try:
                index = int(cell)
            except ValueError:
                raise LabelError("%s %d: index %r is not a whole number" % (where, line, cell)) from None
            if not 0 <= index < store.n_rows:
                raise LabelError("%s %d: row index %d is out of range: this embedding has rows 0..%d"
                                 % (where, line, index, store.n_rows - 1))
        else:
            matches = rows_by_key.get(cell, ())
            if len(matches) != 1:
                raise LabelError("%s %d: %s %r matches %s"
                                 % (where, line, key, cell,
                                    "no row" if not matches else "%d rows (%s...), not exactly one"
                                    % (len(matches), ", ".join(map(str, matches[:3])))))
            index = matches[0]
        if index in assignments and assignments[index] != label:
            raise LabelError("%s %d: row %d already gets label %r on line %d"
                             % (where, line, index, assignments[index], first_line[index]))
        assignments[index] = label
        first_line.setdefault(index, line)
    if not assignments:
        raise LabelError("%s has no labelled rows" % (name or "the import"))
    return store._import(assignments, author=author, source=os.path.basename(name) if name else "")


def _rows(reader, where):
    """(line number, cells) of each CSV row; a line the csv module refuses becomes a LabelError."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise LabelError("%s %d: %s" % (where, reader.line_num, e)) from None
        yield reader.line_num, row


def _read_text(text_or_path):
    if hasattr(text_or_path, "read"):
        return text_or_path.read(), str(getattr(text_or_path, "name", ""))
    if not isinstance(text_or_path, str):
        raise LabelError("expected CSV text, a path or a file, got %s" % type(text_or_path).__name__)
    if "\n" in text_or_path:
        return text_or_path, ""
    try:
        with open(text_or_path, encoding="utf-8-sig", newline="") as f:
            return f.read(), text_or_path
    except (OSError, UnicodeDecodeError) as e:
        raise LabelError("cannot read %s: %s" % (text_or_path, e)) from None
