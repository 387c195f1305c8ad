"""`tensorboard-al export` and `import`: round trip, --key, --all-rows, and errors naming the bad line."""

import csv
import io
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = ["--run", "digits", "--embedding", "digits"]


def cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "tensorboard_al_plugin.cli", *args], capture_output=True,
                          text=True, env=env)


@pytest.fixture
def logdir(tmp_path):
    dest = tmp_path / "logs"
    shutil.copytree(os.path.join(ROOT, "demo_logs"), dest)
    return str(dest)


def test_import_then_export_round_trip(logdir, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("index,label,comment\n0,zero,first\n1,one,\n10,zero,x\n")
    r = cli("import", logdir, *ARGS, str(src), "--user", "bob")
    assert r.returncode == 0, r.stderr
    assert "3 of 1797 rows labeled in 2 classes" in r.stdout
    out = tmp_path / "out.csv"
    r = cli("export", logdir, *ARGS, "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["index"], r["label"], r["author"], r["digit"]) for r in rows] == [
        ("0", "zero", "bob", "0"), ("1", "one", "bob", "1"), ("10", "zero", "bob", "0")]
    assert list(rows[0]) == ["index", "label", "author", "time", "digit"]
    # Exported CSV imports back to the same labels (as one more action).
    r = cli("import", logdir, *ARGS, str(out))
    assert r.returncode == 0, r.stderr
    r = cli("export", logdir, *ARGS, "--all-rows")
    all_rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(all_rows) == 1797
    assert [r["label"] for r in all_rows[:3]] == ["zero", "one", ""]


def test_import_by_metadata_key_column(tmp_path):
    import numpy as np

    from tensorboard_al_plugin import write_embedding

    logdir = str(tmp_path / "logs")
    write_embedding(logdir, np.zeros((4, 2)), name="e", metadata={"file": ["a.png", "b.png", "c.png", "d.png"]})
    src = tmp_path / "by_file.tsv"
    src.write_text("file\tlabel\nc.png\tcat\na.png\tdog\n")
    r = cli("import", logdir, "--run", ".", "--embedding", "e", str(src), "--key", "file")
    assert r.returncode == 0, r.stderr
    r = cli("export", logdir, "--run", ".", "--embedding", "e")
    assert [(x["index"], x["label"], x["file"]) for x in csv.DictReader(io.StringIO(r.stdout))] == [
        ("0", "dog", "a.png"), ("2", "cat", "c.png")]


@pytest.mark.parametrize("content, message", [
    ("index,label\n0,ok\n5,bad\tlabel\n", "line 3"),
    ("index,label\n0,ok\n99999,x\n", "line 3"),
    ("index,label\nzero,x\n", "line 2"),
    ("row,name\n0,x\n", "line 1: no 'label' column"),
])
def test_bad_import_names_the_line_and_writes_nothing(logdir, tmp_path, content, message):
    src = tmp_path / "bad.csv"
    src.write_text(content)
    r = cli("import", logdir, *ARGS, str(src))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tensorboard-al: error: ") and message in lines[0]
    r = cli("export", logdir, *ARGS)
    assert r.stdout.strip() == "index,label,author,time,digit"


def test_unknown_embedding_lists_what_exists(logdir):
    r = cli("export", logdir, "--run", "digits", "--embedding", "nope")
    assert r.returncode == 1
    assert "found: --run digits --embedding digits" in r.stderr


@pytest.mark.parametrize("args, where", [
    (["export"], "the following arguments are required"),
    (["export", "LOGDIR", "--embedding", "digits"], "the following arguments are required: --run"),
    (["ls", "LOGDIR", "--bogus"], "unrecognized arguments: --bogus"),
    (["benchmark", "--dataset", "cifar"], "invalid choice: 'cifar'"),
    (["benchmark", "--dataset", "digits", "--features", "x.npy"], "give either --dataset or --features/--labels"),
    (["benchmark"], "give --features X.npy and --labels y.npy, or --dataset"),
    (["quality", "--labels", "y.npy"], "give --features X.npy and --labels y.npy, or --dataset"),
])
def test_usage_errors_exit_2_with_the_usage_line(logdir, args, where):
    r = cli(*[logdir if a == "LOGDIR" else a for a in args])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("usage: tensorboard-al")
    assert lines[-1].startswith("tensorboard-al") and ": error: " in lines[-1] and where in lines[-1]


@pytest.mark.parametrize("args, message", [
    (["ls", "MISSING"], "log directory MISSING does not exist"),
    (["export", "LOGDIR", "--run", "digits", "--embedding", "nope"], "no embedding 'nope' in run 'digits'"),
    (["import", "LOGDIR", "--run", "digits", "--embedding", "digits", "MISSING"], "MISSING"),
    (["benchmark", "--features", "MISSING", "--labels", "MISSING"], "features file MISSING does not exist"),
])
def test_bad_input_exits_1_with_one_line(logdir, tmp_path, args, message):
    missing = str(tmp_path / "missing")
    r = cli(*[{"LOGDIR": logdir, "MISSING": missing}.get(a, a) for a in args])
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tensorboard-al: error: ")
    assert message.replace("MISSING", missing) in lines[0]
