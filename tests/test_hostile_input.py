"""Hostile web pages and hostile input (issue 10, section 3), against a real tensorboard and the real CLI.

DNS rebinding (Host check), CSV formula injection (escape on export, undone
on import), `export --out` onto links/FIFOs/directories, labels with control,
bidi or only invisible characters, JSON bodies with lone surrogates, deep
nesting or NaN, records on disk that pass their checksum but hold impossible
values, a bad `--al_user`, imports from FIFOs/devices/huge files, and `ls`
of a log directory with broken sources.
"""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest

from tests.tbserver import PLUGIN, TensorBoard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
E = {"run": "digits", "embedding": "digits"}
ARGS = ["--run", "digits", "--embedding", "digits"]
Q = "?run=digits&embedding=digits"
# Metadata of a small embedding whose cells a spreadsheet would run as formulas.
HOSTILE_META = {"name": ['=HYPERLINK("http://evil.example","x")', "+1", "-2", "@SUM(A1)", "'=quoted", "plain"],
                "=cmd": ["a", "b", "c", "d", "e", "f"]}


def cli(*args, timeout=120):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "tensorboard_al_plugin.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def one_error_line(r, *needles):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tensorboard-al: error: "), r.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def make_logdir(dest):
    shutil.copytree(os.path.join(ROOT, "demo_logs"), dest)
    from tensorboard_al_plugin import write_embedding

    write_embedding(str(dest), np.arange(12, dtype=np.float32).reshape(6, 2), name="hostile",
                    metadata=HOSTILE_META)
    return str(dest)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    return make_logdir(tmp_path_factory.mktemp("hostile") / "logs")


@pytest.fixture(scope="module")
def tb(logdir):
    with TensorBoard(logdir) as server:
        server.wait_for_embeddings()
        yield server


def state(tb, q=Q):
    return tb.get_json(PLUGIN + "/labels" + q)


def raw_post(tb, route, body: bytes, headers=None):
    h = {"X-Requested-With": "tensorboard-al", "Content-Type": "application/json"}
    h.update(headers or {})
    return tb.request(PLUGIN + route, method="POST", body=body, headers=h)


# ------------------------------------------------------------------ DNS rebinding


def test_a_foreign_host_can_neither_read_nor_write(tb):
    before = state(tb)
    evil = {"Host": "evil.example:%d" % tb.port}
    for path in ("/embeddings", "/tensor" + Q, "/metadata" + Q, "/labels" + Q, "/labels/export" + Q,
                 "/index.js", "/sprite" + Q + "&page=0"):
        r = tb.get(PLUGIN + path, headers=evil)
        assert r.status == 403, (path, r.status)
        error = r.json()["error"]
        assert "evil.example:%d is not allowed" % tb.port in error
        assert "--al_allowed_hosts evil.example " in error
    r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=[3], label="rebound"), headers=evil)
    assert r.status == 403
    assert state(tb) == before


@pytest.mark.parametrize("host", ["localhost", "LocalHost.:1234", "app.localhost", "127.0.0.1", "127.1.2.3:9",
                                  "[::1]:6006", "10.20.30.40:6006", "[fe80::1]"])
def test_localhost_names_and_ip_literals_are_answered(tb, host):
    r = tb.get(PLUGIN + "/embeddings", headers={"Host": host})
    assert r.status == 200, (host, r.body[:200])


def test_more_hosts_can_be_allowed_by_flag(logdir):
    with TensorBoard(logdir, extra_args=["--al_allowed_hosts", "labeler.example, other.example"]) as server:
        assert server.get(PLUGIN + "/embeddings", headers={"Host": "labeler.example:80"}).status == 200
        assert server.get(PLUGIN + "/embeddings", headers={"Host": "other.example"}).status == 200
        assert server.get(PLUGIN + "/embeddings", headers={"Host": "evil.example"}).status == 403


# ------------------------------------------------------------------ bad flags at start-up


@pytest.mark.parametrize("flag, value", [("--al_user", " bad user"), ("--al_user", "a\u202eb"),
                                         ("--al_allowed_hosts", "http://x.example/")])
def test_tensorboard_refuses_to_start_with_a_bad_flag(tmp_path, flag, value):
    from tests.tbserver import free_port

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run([sys.executable, "-m", "tensorboard.main", "--logdir", str(tmp_path), "--host", "127.0.0.1",
                        "--port", str(free_port()), flag, value], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and flag in errors[0], r.stderr


# ------------------------------------------------------------------ label text


@pytest.mark.parametrize("label, message", [
    ("ab\u202ec", "contains U+202E RIGHT-TO-LEFT OVERRIDE at position 2"),
    ("x\u2066y", "contains U+2066 LEFT-TO-RIGHT ISOLATE at position 1"),
    ("a\u0085b", "contains control character U+0085 at position 1"),
    ("\u200b\u200d", "only invisible characters (U+200B ZERO WIDTH SPACE, U+200D ZERO WIDTH JOINER)"),
    ("\u3164", "only invisible characters (U+3164 HANGUL FILLER)"),
    ("cat\u200b", "ends with the invisible character U+200B ZERO WIDTH SPACE"),
    ("\ufeffcat", "contains U+FEFF ZERO WIDTH NO-BREAK SPACE at position 0"),
])
def test_labels_with_control_bidi_or_only_invisible_characters_get_400(tb, label, message):
    before = state(tb)
    r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=[1], label=label))
    assert r.status == 400 and message in r.json()["error"], r.body
    assert state(tb) == before


def test_labels_are_nfc_and_rename_merge_targets_and_authors_are_checked(tb):
    s = tb.post(PLUGIN + "/labels/assign", dict(E, rows=[30, 31], label="cafe\u0301")).json()
    assert s["labels"][30] == "caf\u00e9" and "caf\u00e9" in [c["name"] for c in s["classes"]]
    # Right-to-left text with its marks inside is a fine label.
    s = tb.post(PLUGIN + "/labels/assign", dict(E, rows=[32], label="\u05d0\u200f-1")).json()
    assert s["labels"][32] == "\u05d0\u200f-1"
    before = state(tb)
    for route, body in (("rename", {"from": "caf\u00e9", "to": "evil\u202e"}),
                        ("merge", {"classes": ["caf\u00e9"], "into": "\u2067x"})):
        r = tb.post(PLUGIN + "/labels/" + route, dict(E, **body))
        assert r.status == 400 and ("U+202E" in r.json()["error"] or "U+2067" in r.json()["error"]), r.body
    r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=[33], label="ok"), headers={"X-AL-User": "bob\x1b[31m"})
    assert r.status == 400 and "author" in r.json()["error"] and "U+001B" in r.json()["error"]
    assert state(tb) == before


# ------------------------------------------------------------------ JSON bodies


def test_lone_surrogates_deep_nesting_and_non_finite_numbers_get_400(tb):
    before = state(tb)
    r = raw_post(tb, "/labels/assign", b'{"run":"digits","embedding":"digits","rows":[1],"label":"x\\ud800"}')
    assert r.status == 400 and "surrogate U+D800" in r.json()["error"], r.body
    deep = b'{"run":"digits","embedding":"digits","rows":[1],"label":"x","extra":' + b"[" * 100000 + b"]" * 100000 + b"}"
    r = raw_post(tb, "/labels/assign", deep)
    assert r.status == 400 and "nested deeper" in r.json()["error"], r.body
    for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e999"):
        r = raw_post(tb, "/labels/assign", b'{"run":"digits","embedding":"digits","rows":[1],"label":"x",'
                                           b'"base_version":' + literal + b"}")
        assert r.status == 400 and "JSON" in r.json()["error"], (literal, r.body)
    assert state(tb) == before
    # The store still takes labels, and writes its files.
    r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=[1], label="after"))
    assert r.status == 200 and r.json()["labels"][1] == "after"


@pytest.mark.parametrize("start, live", [
    (b'"perplexity": NaN', b'"label_importance": NaN'),
    (b'"perplexity": Infinity', b'"repulsion_emphasis": -Infinity'),
    (b'"perplexity": 1e999', b'"theta": 1e999'),
    (b'"perplexity": "thirty"', b'"label_importance": "high"'),
    (b'"perplexity": -5', b'"supervision_start": -1'),
    (b'"random_state": 1.5', b'"learning_rate": 0'),
    (b'"label_importance": NaN', b'"label_importance": [[[[1]]]]'),
])
def test_bad_layout_parameters_get_400_and_the_session_keeps_working(tb, start, live):
    r = raw_post(tb, "/layout/start", b'{"run":"digits","embedding":"digits","method":"tsne",' + start + b"}")
    assert r.status == 400, (start, r.status, r.body)
    r = tb.post(PLUGIN + "/layout/start", dict(E, method="pca", n_components=2))
    assert r.status == 200, r.body
    assert tb.get(PLUGIN + "/layout/status" + Q).status == 200
    r = raw_post(tb, "/layout/params", b'{"run":"digits","embedding":"digits",' + live + b"}")
    assert r.status == 400, (live, r.body)
    status = tb.get(PLUGIN + "/layout/status" + Q)
    assert status.status == 200 and status.json()["state"] != "error"


# ------------------------------------------------------------------ CSV formula injection


FORMULAS = ["=1+2", "+SUM(A1)", "-3", "@cmd", "'=already quoted", "''+two quotes", "'plain quote", "a=b"]


def test_export_escapes_formulas_in_labels_authors_and_metadata(tb):
    q = "?run=.&embedding=hostile"
    s = state(tb, q)
    for row, label in enumerate(FORMULAS[:6]):
        r = tb.post(PLUGIN + "/labels/assign", {"run": ".", "embedding": "hostile", "rows": [row], "label": label,
                                                "base_version": s["version"]}, headers={"X-AL-User": "=evil()"})
        assert r.status == 200, r.body
        s = r.json()
    r = tb.get(PLUGIN + "/labels/export" + q)
    assert r.status == 200
    text = r.body.decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["index", "label", "author", "time", "name", "'=cmd"]
    assert [row[1] for row in rows[1:]] == ["'=1+2", "'+SUM(A1)", "'-3", "'@cmd", "''=already quoted",
                                           "'''+two quotes"]
    assert {row[2] for row in rows[1:]} == {"'=evil()"}
    assert [row[4] for row in rows[1:]] == ["'" + v if v[0] in "=+-@" else "''=quoted" if v == "'=quoted" else v
                                           for v in HOSTILE_META["name"]]
    # An escaped cell is quoted, as OWASP recommends.
    assert '"\'=1+2"' in text and "\n" + '0,"\'=1+2",' in text
    for line in text.splitlines():
        for cell in next(csv.reader([line])):
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r")


def test_cli_export_import_round_trip_is_exact(tmp_path):
    logdir = make_logdir(tmp_path / "logs")
    args = ["--run", ".", "--embedding", "hostile"]
    src = tmp_path / "in.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["index", "label"])
        for i, label in enumerate(FORMULAS[:6]):
            w.writerow([i, label.replace("'", "", 1) if i == 4 else label])  # row 4 imported as "=already..."
    r = cli("import", logdir, *args, str(src), "--no-formula-escape", "--user=-me")
    assert r.returncode == 0, r.stderr
    want = [row[1] for row in csv.reader(io.StringIO(cli("export", logdir, *args, "--no-formula-escape").stdout))]
    assert want[1:] == ["=1+2", "+SUM(A1)", "-3", "@cmd", "=already quoted", "''+two quotes"]
    out = tmp_path / "out.csv"
    r = cli("export", logdir, *args, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "'=1+2" in out.read_text()

    # Into a fresh log directory: export -> import gives the same labels, keys match escaped metadata.
    other = make_logdir(tmp_path / "other")
    r = cli("import", other, *args, str(out), "--user", "x")
    assert r.returncode == 0, r.stderr
    by_key = tmp_path / "other2"
    make_logdir(by_key)
    r = cli("import", str(by_key), *args, str(out), "--key", "name")
    assert r.returncode == 0, r.stderr
    for d in (other, str(by_key)):
        got = cli("export", d, *args, "--no-formula-escape")
        assert [row[1] for row in csv.reader(io.StringIO(got.stdout))] == want


def test_escape_is_reversible_for_every_quote_prefix():
    from tensorboard_al_plugin.logdir.label_io import escape_formula, unescape_formula

    for value in ["", "'", "''", "=", "'=", "''=", "'''-x", "'x", "x", "-", "\t", "'\r", "@@", "a'=b"]:
        assert unescape_formula(escape_formula(value)) == value
        assert escape_formula(value)[:1] not in ("=", "+", "-", "@", "\t", "\r")


# ------------------------------------------------------------------ export --out


def test_export_out_refuses_links_fifos_and_directories(tmp_path):
    logdir = make_logdir(tmp_path / "logs")
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    for out, kind in ((link, "symbolic link"), (fifo, "FIFO"), (folder, "directory")):
        r = cli("export", logdir, *ARGS, "--out", str(out), timeout=60)
        one_error_line(r, str(out), kind)
    assert os.path.islink(link) and target.read_text() == "keep me"
    assert os.path.exists(fifo) and not os.path.isfile(fifo)
    assert os.listdir(folder) == []
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".partial")]
    r = cli("export", logdir, *ARGS, "--out", str(tmp_path / "missing" / "x.csv"))
    one_error_line(r, "does not exist")
    r = cli("export", logdir, *ARGS, "--out", "s3://bucket/labels.csv")
    one_error_line(r, "s3://bucket/labels.csv", "takes a local file")
    # A regular file is replaced, keeping its mode.
    existing = tmp_path / "existing.csv"
    existing.write_text("old")
    os.chmod(existing, 0o640)
    r = cli("export", logdir, *ARGS, "--out", str(existing))
    assert r.returncode == 0, r.stderr
    assert existing.read_text().startswith("index,label") and (os.stat(existing).st_mode & 0o777) == 0o640
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".partial")]


# ------------------------------------------------------------------ import


def test_import_refuses_fifos_devices_and_oversized_files_quickly(tmp_path):
    from tensorboard_al_plugin.logdir.label_io import MAX_IMPORT_BYTES

    logdir = make_logdir(tmp_path / "logs")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    one_error_line(cli("import", logdir, *ARGS, str(fifo), timeout=60), "FIFO", "only regular files")
    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")
    one_error_line(cli("import", logdir, *ARGS, str(zero), timeout=60), "character device")
    one_error_line(cli("import", logdir, *ARGS, str(tmp_path), timeout=60), "directory")
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as f:  # sparse: no disk space used
        f.write(b"index,label\n")
        f.truncate(MAX_IMPORT_BYTES + 1)
    one_error_line(cli("import", logdir, *ARGS, str(huge), timeout=60), "import limit of 512 MiB")
    assert cli("export", logdir, *ARGS).stdout.strip().splitlines() == ["index,label,author,time,digit"]


def test_import_streams_and_stops_at_the_byte_limit(tmp_path):
    from tensorboard_al_plugin.logdir import label_io
    from tensorboard_al_plugin.logdir.labels import LabelError, LabelStore

    store = LabelStore(str(tmp_path / "labels"), 100, durable=False, default_author="t")
    path = tmp_path / "in.csv"
    path.write_text("index,label\n" + "".join("%d,l%d\n" % (i, i % 3) for i in range(100)))
    with pytest.raises(LabelError, match="import limit"):
        label_io.import_labels(store, str(path), max_bytes=200)
    assert store.state()["version"] == 0
    st = label_io.import_labels(store, str(path), max_bytes=10_000)
    assert st["labels"][:4] == ["l0", "l1", "l2", "l0"]
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(b"index,label\n0,caf\xe9\n")
    with pytest.raises(LabelError, match="line 2: not UTF-8"):
        label_io.import_labels(store, str(bad))
    bidi = tmp_path / "bidi.csv"
    bidi.write_text("index,label\n0,ok\n1,a\u202eb\n", encoding="utf-8")
    with pytest.raises(LabelError, match="line 3: label .* contains U\\+202E RIGHT-TO-LEFT OVERRIDE"):
        label_io.import_labels(store, str(bidi))


# ------------------------------------------------------------------ records on disk


def record_line(record) -> bytes:
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(body), body)


IMPOSSIBLE = [
    {"op": "assign", "label": "a\tb", "set": [["a\tb", [2]]], "prev": [[None, [2]]]},
    {"op": "assign", "label": "nl", "set": [["x\ny", [2]]], "prev": [[None, [2]]]},
    {"op": "assign", "label": "neg", "set": [["neg", [-1]]], "prev": [[None, [-1]]]},
    {"op": "assign", "label": "str", "set": [["str", ["3"]]], "prev": [[None, ["3"]]]},
    {"op": "assign", "label": "bool", "set": [["bool", [True]]], "prev": [[None, [True]]]},
    {"op": "assign", "label": "num", "set": [[7, [3]]], "prev": [[None, [3]]]},
    {"op": "assign", "label": "auth", "author": "x\ny", "set": [["auth", [3]]], "prev": [[None, [3]]]},
    {"op": "undo", "set": [], "prev": [], "target": ["not", "a dict"]},
    {"op": "assign", "label": "rlo", "set": [["a\u202eb", [4]]], "prev": [[None, [4]]]},
    {"op": "assign", "label": "seq", "seq": "1", "set": [["seq", [4]]], "prev": [[None, [4]]]},
]


def test_impossible_history_records_are_skipped_with_a_warning(tmp_path):
    from tensorboard_al_plugin.logdir.labels import LabelStore, LabelStoreWarning

    d = str(tmp_path / "labels")
    s = LabelStore(d, 10, durable=False, default_author="t")
    s.assign([0], "good")
    with open(os.path.join(d, "history.jsonl"), "ab") as f:
        for i, rec in enumerate(IMPOSSIBLE):
            f.write(record_line(dict({"seq": 2 + i, "writer": "w", "time": "2026-01-01T00:00:00.000Z",
                                      "author": "x"}, **rec)))
    with pytest.warns(LabelStoreWarning) as caught:
        t = LabelStore(d, 10, durable=False, default_author="t")
        st = t.state()
    assert len([w for w in caught if "damaged" in str(w.message)]) == len(IMPOSSIBLE)
    assert st["labels"] == ["good"] + [None] * 9 and [c["name"] for c in st["classes"]] == ["good"]
    assert t.history()[0]["changes"] == [{"label": "good", "rows": [0]}]
    st = t.assign([5], "after")  # the store writes on, and its snapshot and labels.tsv stay sane
    t.snapshot()
    assert st["labels"][5] == "after"
    with open(os.path.join(d, "labels.tsv"), encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 11


@pytest.mark.parametrize("change", [
    {"labels": [5] + [-1] * 9},          # class index out of range
    {"labels": [-2] + [-1] * 9},         # below -1
    {"classes": ["good\t"]},             # a label with a tab
    {"row_stamps": [9] + [-1] * 9},      # stamp index out of range
    {"stamps": [["x\ny", "t"]]},         # author with a newline
    {"labels": ["0"] + [-1] * 9},        # wrong type
    {"version": "3"},
    {"history_offset": -5},
])
def test_an_impossible_snapshot_is_skipped_and_the_history_replayed(tmp_path, change):
    from tensorboard_al_plugin.logdir.labels import LabelStore, LabelStoreWarning

    d = str(tmp_path / "labels")
    s = LabelStore(d, 10, durable=False, default_author="t")
    s.assign([0], "good")
    s.snapshot()
    path = os.path.join(d, "snapshot.json")
    with open(path, encoding="utf-8") as f:
        snap = json.load(f)
    snap.update(change)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(snap, f)
    with pytest.warns(LabelStoreWarning, match="snapshot .* is unusable"):
        t = LabelStore(d, 10, durable=False, default_author="t")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert t.state()["labels"] == ["good"] + [None] * 9


def test_a_running_server_skips_an_impossible_record(tb, logdir):
    history = os.path.join(logdir, "digits", "plugins", "active_labeling", "digits", "labels", "history.jsonl")
    v = state(tb)["version"]
    with open(history, "ab") as f:
        f.write(record_line({"seq": v + 1, "writer": "w", "time": "t", "author": "x", "op": "assign",
                             "label": "a\tb", "set": [["a\tb", [40]], ["bad", ["41"]]], "prev": []}))
    s = state(tb)
    assert s["labels"][40] is None and s["labels"][41] is None
    r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=[40], label="fine"))
    assert r.status == 200 and r.json()["labels"][40] == "fine"


# ------------------------------------------------------------------ ls


def test_ls_prints_one_line_per_broken_source_and_no_traceback(tmp_path):
    logdir = tmp_path / "logs"
    shutil.copytree(os.path.join(ROOT, "demo_logs"), logdir)
    (logdir / "dir_tensor").mkdir()
    (logdir / "dir_tensor" / "projector_config.pbtxt").write_text('embeddings { tensor_path: "d" }')
    (logdir / "dir_tensor" / "d").mkdir()
    (logdir / "garbage").mkdir()
    (logdir / "garbage" / "projector_config.pbtxt").write_bytes(b"\xff\xfe{{{ not a config\n")
    escape = logdir / "ru\x1b[31mn\nx"
    escape.mkdir()
    (escape / "projector_config.pbtxt").write_text('embeddings { tensor_path: "t.tsv" }')
    (escape / "t.tsv").write_text("1\t2\n3\n")
    r = cli("ls", str(logdir))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert "\x1b" not in r.stdout and "\x1b" not in r.stderr
    lines = r.stdout.splitlines()
    table = [line for line in lines if line.split()[-1] in ("ok", "BROKEN", "status")]
    problems = [line for line in lines if line not in table]
    assert len(table) == 5 and sum(line.endswith("BROKEN") for line in table) == 3, r.stdout
    assert len(problems) == 3, r.stdout
    assert sorted(p.split("/")[0] for p in problems) == ["dir_tensor", "garbage", "ru\\x1b[31mn\\x0ax"]


def test_a_record_without_author_or_time_still_loads_and_snapshots(tmp_path):
    from tensorboard_al_plugin.logdir.labels import LabelStore

    d = tmp_path / "labels"
    d.mkdir()
    (d / "history.jsonl").write_bytes(record_line({"seq": 1, "writer": "w", "op": "assign",
                                                   "set": [["a", [0]]], "prev": [[None, [0]]]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither the record nor the snapshot holding its blank stamp is refused
        LabelStore(str(d), 3, durable=False, default_author="t").snapshot()
        store = LabelStore(str(d), 3, durable=False, default_author="t")
        assert store.state()["labels"] == ["a", None, None] and store.problems == []


def test_a_class_stored_before_nfc_is_still_one_class(tmp_path):
    """Stores written before labels were normalised may hold a decomposed (NFD) name.

    Assigning, renaming and merging with the composed (NFC) name reach that same
    class instead of failing or creating a second class that looks identical.
    """
    import unicodedata

    from tensorboard_al_plugin.logdir.labels import LabelStore

    nfd = unicodedata.normalize("NFD", "café")
    assert nfd != "café"
    store = LabelStore(str(tmp_path / "labels"), 6, durable=False)
    # What the previous release wrote for a decomposed label (no normalisation then).
    store._write("assign", None, None, lambda m: ([(0, nfd), (1, nfd)], {"label": nfd}))
    reopened = LabelStore(str(tmp_path / "labels"), 6, durable=False)
    assert reopened.state()["labels"][:2] == [nfd, nfd]
    state = reopened.assign([2], "café")
    assert [c["name"] for c in state["classes"]] == [nfd]
    assert state["labels"][:3] == [nfd, nfd, nfd]
    state = reopened.merge(["café"], "thé")
    assert state["labels"][:3] == ["thé"] * 3
    reopened.undo()
    state = reopened.rename("café", "coffee")
    assert state["labels"][:3] == ["coffee"] * 3 and [c["name"] for c in state["classes"]] == ["coffee"]
