"""What a label and an author may be: the rules and their one-sentence errors.

Used at the door (the store's write methods, the HTTP routes, the CSV import)
and again on what is read back from disk (records.py), where a file in a
shared log directory is untrusted input.  See "Labels" in docs/LABEL_STORE.md.
"""

from __future__ import annotations

import getpass
import re
import unicodedata

MAX_LABEL_LENGTH = 256
MAX_AUTHOR_LENGTH = 128

# Characters a label or author may not contain anywhere: control characters
# (C0 incl. tab and newline, DEL, C1) and the Unicode line/paragraph
# separators, which would break a TSV/CSV line or the Projector's metadata
# file; the bidi embeddings, overrides and isolates (U+202A-202E,
# U+2066-2069), which make text display in another order than it has (a
# label could pass for another one); U+FEFF (a byte order mark); and lone
# surrogates, which cannot be written as UTF-8.  The bidi *marks* U+200E,
# U+200F and U+061C are allowed inside a label: right-to-left writers need
# them to place neutral characters, and they reorder nothing beyond their
# neighbours.  Like every invisible character they may not start or end a
# label (see _INVISIBLE).
_BAD_CHARS_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")
_CHAR_NAMES = {"\t": "a tab", "\n": "a newline", "\r": "a carriage return"}
# Characters that draw nothing.  A label may not consist of them only, nor
# begin or end with one ("cat" and "cat" + U+200B would look like one class).
# Besides whitespace (str.isspace): soft hyphen, combining grapheme joiner,
# the Arabic letter mark, Hangul and Khmer fillers, Mongolian free variation
# selectors and vowel separator, zero-width space and (non-)joiners, the bidi
# marks, word joiner and invisible operators, blank Braille pattern,
# variation selectors.
_INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f"
    "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\u2800\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10))) + "".join(map(chr, range(0xE0100, 0xE01F0))))



class LabelError(ValueError):
    """Bad input (label, rows, class name, import line); the message is one sentence."""


def validate_label(label) -> str:
    """Return ``label`` in Unicode NFC if it is a valid label, else raise :class:`LabelError`.

    Valid: a ``str`` of 1..256 characters (after NFC) without tab, newline or
    any other control character, bidi override or isolate, byte order mark or
    lone surrogate; not only invisible characters; and not starting or ending
    with whitespace or an invisible character (which would make "cat" and
    "cat " two classes that look the same).  The message names the character
    and its position.
    """
    return validate_text(label, "label", MAX_LABEL_LENGTH)


def validate_author(author) -> str:
    """Return ``author`` (NFC) if valid (like a label, at most 128 characters), else raise LabelError."""
    return validate_text(author, "author", MAX_AUTHOR_LENGTH)


def _char_name(ch: str) -> str:
    name = _CHAR_NAMES.get(ch)
    if name:
        return name
    category = unicodedata.category(ch)
    if category == "Cc":
        return "control character U+%04X" % ord(ch)
    if category == "Cs":
        return "a lone surrogate U+%04X" % ord(ch)
    return "U+%04X %s" % (ord(ch), unicodedata.name(ch, "(unnamed)"))


def validate_text(value, what: str, max_length: int) -> str:
    """``value`` (NFC) if it is valid ``what`` ("label", "author", "class"...) of at most ``max_length``
    characters under the label rules (see :func:`validate_label`), else LabelError."""
    if not isinstance(value, str):
        raise LabelError("%s must be a string, got %s" % (what, type(value).__name__))
    bad = _BAD_CHARS_RE.search(value)
    if bad:
        raise LabelError("%s %r contains %s at position %d" % (what, value, _char_name(bad.group()), bad.start()))
    value = unicodedata.normalize("NFC", value)
    if not value:
        raise LabelError("%s is empty" % what)
    if len(value) > max_length:
        raise LabelError(
            "%s is %d characters long; at most %d are allowed" % (what, len(value), max_length)
        )
    if value != value.strip():
        raise LabelError("%s %r has leading or trailing whitespace" % (what, value))
    if all(ch in _INVISIBLE or ch.isspace() for ch in value):
        raise LabelError("%s %r has only invisible characters (%s)"
                         % (what, value, ", ".join(_char_name(ch) for ch in dict.fromkeys(value))))
    for position in (0, len(value) - 1):
        if value[position] in _INVISIBLE:
            raise LabelError("%s %r %s with the invisible character %s"
                             % (what, value, "starts" if position == 0 else "ends",
                                _char_name(value[position])))
    return value


def os_user() -> str:
    """The OS user running the server (the default author), or "unknown"."""
    try:
        name = getpass.getuser()
    except Exception:  # no user name in the environment or password db
        return "unknown"
    try:
        return validate_author(name)
    except LabelError:
        return "unknown"
