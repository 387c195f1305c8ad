"""Label routes in a real tensorboard: forged writes, bad input, concurrent tabs and servers, export."""

import csv
import io
import json
import os
import threading

import pytest

from tests.tbserver import PLUGIN, TensorBoard

E = {"run": "digits", "embedding": "digits"}


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    import shutil

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dest = tmp_path_factory.mktemp("labels") / "logs"
    shutil.copytree(os.path.join(root, "demo_logs"), dest)
    return str(dest)


@pytest.fixture(scope="module")
def tb(logdir):
    with TensorBoard(logdir, extra_args=["--al_user", "annotator1"]) as server:
        server.wait_for_embeddings()
        yield server


def state(tb):
    return tb.get_json(PLUGIN + "/labels?run=digits&embedding=digits")


def post(tb, action, **body):
    return tb.post(PLUGIN + "/labels/" + action, dict(E, **body))


def test_assign_undo_redo_rename_merge_clear_round_trip(tb):
    base = state(tb)["version"]
    r = post(tb, "assign", rows=[0, 10, 20], label="zero", base_version=base)
    assert r.status == 200
    s = r.json()
    assert [s["labels"][i] for i in (0, 10, 20)] == ["zero"] * 3 and s["can_undo"]
    s = post(tb, "assign", rows=[1, 11], label="one", base_version=s["version"]).json()
    s = post(tb, "rename", **{"from": "one", "to": "uno", "base_version": s["version"]}).json()
    assert {c["name"]: c["count"] for c in s["classes"]} == {"zero": 3, "uno": 2}
    s = post(tb, "merge", classes=["zero", "uno"], into="small", base_version=s["version"]).json()
    assert {c["name"]: c["count"] for c in s["classes"]} == {"small": 5}
    s = post(tb, "undo", base_version=s["version"]).json()
    assert {c["name"]: c["count"] for c in s["classes"]} == {"zero": 3, "uno": 2}
    s = post(tb, "redo", base_version=s["version"]).json()
    assert {c["name"]: c["count"] for c in s["classes"]} == {"small": 5}
    s = post(tb, "clear", rows=[0, 1], base_version=s["version"]).json()
    assert s["labels"][0] is None and s["labels"][10] == "small"
    assert state(tb) == s
    history = tb.get_json(PLUGIN + "/labels/history?run=digits&embedding=digits")["records"]
    assert history[-1]["author"] == "annotator1"  # from --al_user


def test_answer_changes_gives_this_writes_rows_instead_of_every_label(tb):
    """At 10^6 rows every label is 6 MB of JSON per write: a tab asks for the changes only."""
    s0 = state(tb)
    # the stored spelling of an existing class comes back (NFC form of the same name)
    post(tb, "assign", rows=[5], label="caf\u00e9", base_version=s0["version"])
    base = state(tb)
    r = post(tb, "assign", rows=[3, 4], label="cafe\u0301", base_version=base["version"], answer="changes")
    assert r.status == 200
    a = r.json()
    assert "labels" not in a
    assert a["version"] == base["version"] + 1 and a["changes_from"] == base["version"]
    assert a["changes"] == [{"label": "caf\u00e9", "rows": [3, 4]}]
    whole = state(tb)
    applied = list(base["labels"])
    for change in a["changes"]:
        for row in change["rows"]:
            applied[row] = change["label"]
    assert applied == whole["labels"]
    assert {k: v for k, v in a.items() if k not in ("changes", "changes_from")} == \
        {k: v for k, v in whole.items() if k != "labels"}
    c = post(tb, "clear", rows=[3], base_version=a["version"], answer="changes").json()
    assert c["changes"] == [{"label": None, "rows": [3]}] and "labels" not in c
    # another writer first (no base given, or a base behind): the whole state, labels and all
    behind = post(tb, "assign", rows=[6], label="x", answer="changes").json()
    assert "labels" in behind and "changes" not in behind
    u = post(tb, "undo", base_version=behind["version"], answer="changes").json()
    assert "labels" in u
    r = post(tb, "assign", rows=[1], label="x", base_version=u["version"], answer="all")
    assert r.status == 400 and "answer" in r.json()["error"]


def test_author_header_overrides_the_server_default(tb):
    s = state(tb)
    r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=[100], label="x", base_version=s["version"]),
                headers={"X-AL-User": "alice"})
    assert r.status == 200
    records = tb.get_json(PLUGIN + "/labels/history?run=digits&embedding=digits&since=%d" % s["version"])["records"]
    assert [r["author"] for r in records] == ["alice"]


def test_forged_post_without_the_custom_header_is_refused(tb):
    before = state(tb)
    r = tb.post(PLUGIN + "/labels/assign", dict(E, rows=[5], label="forged"), header=False)
    assert r.status == 403 and "X-Requested-With" in r.json()["error"]
    r = tb.request(PLUGIN + "/labels/assign", method="POST", body=b"rows=5&label=forged",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 403
    assert state(tb) == before


@pytest.mark.parametrize("body, code, message", [
    (dict(rows=[1], label="a\tb"), 400, "tab"),
    (dict(rows=[1], label="a\nb"), 400, "newline"),
    (dict(rows=[1], label="x" * 257), 400, "256"),
    (dict(rows=[1], label=""), 400, "empty"),
    (dict(rows=[1], label="bell\x07"), 400, "control"),
    (dict(rows=[1797], label="x"), 400, "out of range"),
    (dict(rows=[-1], label="x"), 400, "out of range"),
    (dict(rows=["1"], label="x"), 400, "row indices"),
    (dict(rows=[1]), 400, '"label" is required'),
    (dict(rows=[1], label=5), 400, "must be a string"),
])
def test_bad_label_writes_get_400_and_change_nothing(tb, body, code, message):
    before = state(tb)
    r = post(tb, "assign", **body)
    assert r.status == code
    assert message in r.json()["error"]
    assert state(tb) == before


def test_malformed_requests(tb):
    r = tb.get(PLUGIN + "/labels/assign")
    assert r.status == 405
    r = tb.request(PLUGIN + "/labels/assign", method="POST", body=b"{not json",
                   headers={"X-Requested-With": "tensorboard-al", "Content-Type": "application/json"})
    assert r.status == 400 and "not valid JSON" in r.json()["error"]
    huge = json.dumps(dict(E, rows=list(range(1797)) * 1200, label="x")).encode()
    r = tb.request(PLUGIN + "/labels/assign", method="POST", body=huge,
                   headers={"X-Requested-With": "tensorboard-al", "Content-Type": "application/json"})
    assert r.status == 413
    r = tb.post(PLUGIN + "/labels/assign", {"run": "../../etc", "embedding": "digits", "rows": [1], "label": "x"})
    assert r.status == 404 and "unknown run" in r.json()["error"]


def test_two_tabs_writing_at_once_lose_nothing(tb):
    rows_a, rows_b = list(range(200, 260)), list(range(260, 320))
    errors = []

    def tab(rows, label):
        for r in rows:
            resp = post(tb, "assign", rows=[r], label=label, base_version=0)  # stale base on purpose
            if resp.status != 200:
                errors.append(resp.body)

    threads = [threading.Thread(target=tab, args=(rows_a, "tab_a")), threading.Thread(target=tab, args=(rows_b, "tab_b"))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    labels = state(tb)["labels"]
    assert all(labels[r] == "tab_a" for r in rows_a) and all(labels[r] == "tab_b" for r in rows_b)


def test_two_tensorboard_processes_on_one_logdir_lose_nothing(tb, logdir):
    with TensorBoard(logdir) as other:
        other.wait_for_embeddings()
        errors = []

        def writer(server, rows, label):
            for r in rows:
                resp = server.post(PLUGIN + "/labels/assign", dict(E, rows=[r], label=label))
                if resp.status != 200:
                    errors.append(resp.body)

        a = threading.Thread(target=writer, args=(tb, range(400, 450), "server_a"))
        b = threading.Thread(target=writer, args=(other, range(450, 500), "server_b"))
        a.start(), b.start(), a.join(), b.join()
        assert not errors
        for server in (tb, other):
            labels = server.get_json(PLUGIN + "/labels?run=digits&embedding=digits")["labels"]
            assert labels[400:450] == ["server_a"] * 50 and labels[450:500] == ["server_b"] * 50


def test_export_route_gives_csv_with_metadata(tb):
    s = state(tb)
    r = tb.get(PLUGIN + "/labels/export?run=digits&embedding=digits")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.body.decode())))
    assert list(rows[0]) == ["index", "label", "author", "time", "digit"]
    assert len(rows) == sum(v is not None for v in s["labels"])
    for row in rows:
        assert s["labels"][int(row["index"])] == row["label"]
    r = tb.get(PLUGIN + "/labels/export?run=digits&embedding=digits&all_rows=1")
    assert len(list(csv.DictReader(io.StringIO(r.body.decode())))) == 1797


def test_labels_get_a_projector_entry_of_their_own(tb, logdir):
    with open(os.path.join(logdir, "digits", "projector_config.pbtxt")) as f:
        text = f.read()
    assert 'tensor_name: "digits (labels)"' in text
    assert "plugins/active_labeling/digits/labels/labels.tsv" in text
