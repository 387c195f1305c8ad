"""CSV export and CSV/TSV import of a label store.

Export columns: ``index`` (row number in the tensor), ``label``, ``author``,
``time`` (ISO 8601 UTC), then every metadata column (a metadata column whose
name clashes with one of those four is written as ``metadata_<name>``).
Import reads ``index`` and ``label`` columns (other columns ignored), or a
metadata column named by ``key`` instead of ``index``; rows with an empty
label are left as they are.  The whole import is one undoable action.

Formula escape (on by default, both ways): a spreadsheet runs a cell that
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return as a
formula (CSV injection).  Export writes such a cell with a ``'`` in front,
in double quotes, as OWASP recommends; so that the escape can be undone
exactly, a cell that is one or more ``'`` followed by one of those
characters gets one more ``'``.  Import takes one ``'`` off every cell that
is one or more ``'`` followed by one of those characters, so export ->
import gives back the same labels (and matches metadata keys).  Header
cells are escaped too.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
import stat
from typing import Dict, Iterator, List, Optional

from . import fs
from .labels import LabelError, LabelStore, validate_label

_FIXED_COLUMNS = ("index", "label", "author", "time")
#: Import reads at most this many bytes of a file (a clear error beyond).
MAX_IMPORT_BYTES = 512 * 1024 * 1024
#: ...and at most this many characters in one line.
MAX_IMPORT_LINE_CHARS = 16 * 1024 * 1024
# The first character of a cell a spreadsheet would run as a formula.
_FORMULA_START = "=+\\-@\t\r"
_ESCAPE_RE = re.compile("'*[%s]" % _FORMULA_START)
_UNESCAPE_RE = re.compile("'+[%s]" % _FORMULA_START)
_NEEDS_QUOTES_RE = re.compile('[",\r\n]')


def escape_formula(cell: str) -> str:
    """``cell`` with a ``'`` in front when a spreadsheet would read it as a formula (see the module doc)."""
    return "'" + cell if _ESCAPE_RE.match(cell) else cell


def unescape_formula(cell: str) -> str:
    """Undo :func:`escape_formula`: ``unescape_formula(escape_formula(s)) == s`` for every string."""
    return cell[1:] if _UNESCAPE_RE.match(cell) else cell


def _check_metadata(metadata_columns, n_rows: int) -> Dict[str, List[str]]:
    metadata_columns = dict(metadata_columns or {})
    for name, values in metadata_columns.items():
        if len(values) != n_rows:
            raise LabelError("metadata column %r has %d values but the embedding has %d rows"
                             % (name, len(values), n_rows))
    return metadata_columns


def export_csv(store: LabelStore, out, *, metadata_columns: Optional[Dict[str, List[str]]] = None,
               all_rows: bool = False, formula_escape: bool = True) -> int:
    """Write the labels as CSV to ``out`` (a text file object or a local path); return rows written.

    Only labelled rows unless ``all_rows``; unlabelled rows then have empty
    label, author and time.  ``metadata_columns`` maps a column name to its
    values, one string per row.  ``formula_escape``: escape cells a
    spreadsheet would run as formulas (see the module doc).
    """
    metadata = _check_metadata(metadata_columns, store.n_rows)
    header = list(_FIXED_COLUMNS) + [
        "metadata_" + name if name in _FIXED_COLUMNS else name for name in metadata]
    labels, authors, times = store.row_details()
    columns = list(metadata.values())
    if hasattr(out, "write"):
        return _write_csv(out, header, labels, authors, times, columns, all_rows, formula_escape)
    with open(out, "w", newline="", encoding="utf-8") as f:
        return _write_csv(f, header, labels, authors, times, columns, all_rows, formula_escape)


def _write_csv(f, header, labels, authors, times, columns, all_rows, formula_escape) -> int:
    def line(cells) -> str:
        # The csv module's minimal quoting, plus quotes around every escaped cell.
        out = []
        for cell in cells:
            escaped = formula_escape and _ESCAPE_RE.match(cell)
            if escaped:
                cell = "'" + cell
            if escaped or _NEEDS_QUOTES_RE.search(cell):
                cell = '"%s"' % cell.replace('"', '""')
            out.append(cell)
        return ",".join(out) + "\n"

    f.write(line(header))
    written = 0
    for i, label in enumerate(labels):
        if label is None and not all_rows:
            continue
        f.write(line([str(i), label or "", authors[i] or "", times[i] or ""] + [c[i] for c in columns]))
        written += 1
    return written


def import_labels(store: LabelStore, text_or_path, *, key: Optional[str] = None,
                  metadata_columns: Optional[Dict[str, List[str]]] = None, author: Optional[str] = None,
                  source: Optional[str] = None, formula_escape: bool = True,
                  max_bytes: int = MAX_IMPORT_BYTES) -> dict:
    """Import labels from CSV or TSV as one undoable action; return the new LabelState.

    ``text_or_path``: the file's text (anything containing a newline), a
    local path, or a text file object.  A path must name a regular file (or
    a link to one) of at most ``max_bytes`` bytes; it is read as a stream.
    The delimiter is a tab when the header line has one, else a comma.
    Columns are found by name (case-insensitive): ``label`` and ``index``,
    or ``key`` (a metadata column whose value must name exactly one row).
    ``formula_escape``: undo the export's formula escape (see the module
    doc) in header, label and key cells.  Labels are normalised to NFC.
    Raises LabelError naming the line of the first bad row; nothing is
    written then.
    """
    lines, name, close = _open_lines(text_or_path, max_bytes)
    try:
        return _import(store, lines, name=source or name, key=key, metadata_columns=metadata_columns,
                       author=author, unescape=unescape_formula if formula_escape else (lambda cell: cell))
    finally:
        close()


def _import(store, lines, *, name, key, metadata_columns, author, unescape) -> dict:
    where = (name + " line") if name else "line"
    empty = LabelError("%s is empty: expected a header row with 'index' and 'label' columns"
                       % (name or "the import"))
    # The delimiter comes from the first line that is not blank.
    seen = []
    for text in _decoded(lines, where):
        seen.append(text)
        if text.strip():
            break
    else:
        raise empty
    seen[0] = seen[0].lstrip("\ufeff")  # a byte order mark (files: decoded as utf-8-sig already)
    delimiter = "\t" if "\t" in seen[-1] else ","
    reader = csv.reader(itertools.chain(seen, _decoded(lines, where, len(seen))), delimiter=delimiter)
    rows = _rows(reader, where)
    header = None
    for line, row in rows:
        if any(cell.strip() for cell in row):
            header = [unescape(cell.strip()).lower() for cell in row]
            break
    if header is None:
        raise empty
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
        label = unescape(row[label_col].strip())
        if not label:
            continue  # unlabelled row (an --all-rows export): left as it is
        try:
            label = validate_label(label)
        except LabelError as e:
            raise LabelError("%s %d: %s" % (where, line, e)) from None
        cell = unescape(row[key_col].strip())
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


def _decoded(lines: Iterator, where: str, done: int = 0) -> Iterator[str]:
    """The lines of ``lines`` (bytes are decoded as UTF-8 line by line, so an error names its line);
    text that is not UTF-8 or a line too long is a LabelError naming the line."""
    n = done
    for text in lines:
        n += 1
        if len(text) >= MAX_IMPORT_LINE_CHARS and not text.endswith(("\n", "\r", b"\n", b"\r")):
            raise LabelError("%s %d: longer than %d characters" % (where, n, MAX_IMPORT_LINE_CHARS))
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise LabelError("%s %d: not UTF-8 text (%s at character %d)" % (where, n, e.reason, e.start + 1)) \
                    from None
        yield text


def _readlines(f) -> Iterator:
    while True:
        line = f.readline(MAX_IMPORT_LINE_CHARS)
        if not line:
            return
        yield line


class _Capped(io.RawIOBase):
    """A binary file that raises LabelError once more than ``limit`` bytes were read from it."""

    def __init__(self, raw, limit: int, name: str):
        self._raw, self._limit, self._name, self._count = raw, limit, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(buffer) or 0
        self._count += n
        if self._count > self._limit:
            raise LabelError("cannot import %s: it has more than the import limit of %s"
                             % (self._name, fs.size_text(self._limit)))
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _open_lines(text_or_path, max_bytes: int):
    """(iterator of text lines, name, close) for import's text, text file object or local path.

    A path must be a regular file (symbolic links to one are followed): a
    FIFO, device, socket or directory is refused before a byte is read, and
    reading stops with a LabelError beyond ``max_bytes``.
    """
    if hasattr(text_or_path, "readline"):
        return _readlines(text_or_path), str(getattr(text_or_path, "name", "")), lambda: None
    if not isinstance(text_or_path, str):
        raise LabelError("expected CSV text, a path or a file, got %s" % type(text_or_path).__name__)
    if "\n" in text_or_path:
        return _readlines(io.StringIO(text_or_path, newline="")), "", lambda: None
    path = text_or_path
    try:
        # Non-blocking: opening a FIFO for reading would otherwise wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise LabelError("cannot read %s: %s" % (path, e.strerror or e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LabelError("cannot import %s: it is %s; only regular files are read"
                             % (path, fs.file_kind(st.st_mode)))
        if st.st_size > max_bytes:
            raise LabelError("cannot import %s: it has %d bytes, more than the import limit of %s"
                             % (path, st.st_size, fs.size_text(max_bytes)))
        raw = io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    binary = io.BufferedReader(_Capped(raw, max_bytes, path))
    return _readlines(binary), path, binary.close
