"""Rounds you can watch (issue 14), in a real headless Chromium against a real `tensorboard`:
every classifier retrain is a round; the Rounds panel steps through them, rings the rows each
round labeled, and in model view moves the thumbnails to the classifier's view of that round."""
import os

from tests.e2e.conftest import debug, error_messages, open_tab, pick_embedding, wait_for
from tests.e2e.test_suggest_panel import label_group
from tests.tbserver import PLUGIN, TensorBoard

SHOTS = os.environ.get("AL_SCREENSHOTS")


def labeled_rows(frame):
    rows = debug(frame, "d.rows()")
    return {r for r in range(rows) if debug(frame, "d.labelOf(args[0])", r) is not None}


def label_and_wait(frame, tb, row, k, name):
    before = labeled_rows(frame)
    label_group(frame, row, k, name)
    version = debug(frame, "d.labelVersion()")
    # The server's word, as the tab polls it: a model of these labels, or the refusal of a one-class model.
    wait_for(lambda: (lambda p: p["status"] == "needs_labels" or (p["status"] == "ready" and p["version"] == version))(
        tb.get_json(PLUGIN + "/active/predictions?run=digits&embedding=digits")),
        90, "the classifier to retrain on the labels of %s" % name, frame)
    return labeled_rows(frame) - before


def test_step_through_rounds_and_watch_the_model_view(page, tb):
    frame = open_tab(page, tb.url)
    pick_embedding(frame, "digits")
    zero = label_and_wait(frame, tb, 0, 6, "zero")    # one class: no model yet, so no round
    one = label_and_wait(frame, tb, 1, 6, "one")      # round 1
    two = label_and_wait(frame, tb, 2, 6, "two")      # round 2
    assert len(zero) == len(one) == len(two) == 7

    # Collapsed: the tab has not asked for rounds yet; opening lists them.
    assert debug(frame, "d.roundCount()") == 0
    frame.click("[data-testid=al-rounds-toggle]")
    wait_for(lambda: debug(frame, "d.roundCount()") == 2, 60, "the two rounds to be listed", frame)
    assert frame.locator("[data-testid=al-rounds-strip] button").count() == 2

    # Round 1 labeled zero and one (the first model needs both classes): exactly those rows are ringed.
    frame.click("[data-testid=al-round-1]")
    assert debug(frame, "d.round()") == 1
    assert set(debug(frame, "d.suggested()")) == zero | one
    assert "Round 1 of 2" in frame.text_content("[data-testid=al-rounds-info]")
    assert "14 labels" in frame.text_content("[data-testid=al-rounds-info]")
    frame.click("[data-testid=al-rounds-next]")
    assert debug(frame, "d.round()") == 2
    assert set(debug(frame, "d.suggested()")) == two
    # The accuracy estimates arrive while the panel is open.
    wait_for(lambda: "estimating" not in frame.text_content("[data-testid=al-rounds-info]"), 90,
             "the accuracy estimate of round 2", frame)
    assert "%" in frame.text_content("[data-testid=al-rounds-info]")

    # Model view: the map moves to the classifier's view of the round, and again for the other round.
    probe = sorted(two)[:3] + sorted(zero)[:3]
    layout_at = debug(frame, "d.headingTo(args[0])", probe)
    frame.check("[data-testid=al-rounds-model-view]")
    wait_for(lambda: debug(frame, "d.positionsSource()") == "model", 30, "the model view", frame)
    round2_at = debug(frame, "d.headingTo(args[0])", probe)
    assert round2_at != layout_at
    frame.click("[data-testid=al-rounds-prev]")
    wait_for(lambda: debug(frame, "d.headingTo(args[0])", probe) != round2_at, 30, "round 1's places", frame)
    assert set(debug(frame, "d.suggested()")) == zero | one
    if SHOTS:
        wait_for(lambda: not debug(frame, "d.animating()"), 10, "the move to finish", frame)
        page.screenshot(path=os.path.join(SHOTS, "rounds_model_view.png"))

    # Play steps through to the newest round by itself.
    frame.click("[data-testid=al-rounds-play]")
    assert frame.text_content("[data-testid=al-rounds-play]") == "Stop"
    wait_for(lambda: frame.text_content("[data-testid=al-rounds-play]") == "Play", 20, "playing to end", frame)
    assert debug(frame, "d.round()") == 2

    # Model view off: the layout comes back exactly; closing the panel clears the rings.
    frame.uncheck("[data-testid=al-rounds-model-view]")
    wait_for(lambda: debug(frame, "d.positionsSource()") != "model", 10, "the layout again", frame)
    assert debug(frame, "d.headingTo(args[0])", probe) == layout_at
    frame.click("[data-testid=al-rounds-toggle]")
    wait_for(lambda: debug(frame, "d.round()") == 0, 10, "the rounds panel to close", frame)
    assert debug(frame, "d.suggested()") == []
    assert error_messages(frame) == []


def test_replay_a_benchmark_recording(page, tmp_path):
    """`tensorboard-al benchmark --record-rounds` writes each strategy's run on each fold as an
    embedding; the tab replays it: the rounds' queried rows are ringed and the model view moves."""
    import subprocess
    import sys

    logs = str(tmp_path / "logs")
    subprocess.run([sys.executable, "-m", "tensorboard_al_plugin.cli", "benchmark", "--dataset", "digits",
                    "--strategies", "entropy", "--folds", "2", "--max-actions", "30", "--record-rounds", logs,
                    "--out", str(tmp_path / "out"), "--quiet"], check=True, capture_output=True, timeout=300)
    with TensorBoard(logs, without_tensorflow=True) as tb:
        tb.wait_for_embeddings()
        q = "?run=rounds/digits&embedding=entropy-fold1"
        recorded = tb.get_json(PLUGIN + "/rounds" + q)["rounds"]
        assert len(recorded) == 3 and all(r["accuracy_on"] == "held-out set" for r in recorded)
        frame = open_tab(page, tb.url)
        pick_embedding(frame, "rounds/digits / entropy-fold1")
        frame.click("[data-testid=al-rounds-toggle]")
        wait_for(lambda: debug(frame, "d.roundCount()") == 3, 60, "the recorded rounds", frame)
        for k in (1, 2, 3):
            frame.click("[data-testid=al-round-%d]" % k)
            assert set(debug(frame, "d.suggested()")) == {row for row, _ in recorded[k - 1]["changed"]}
            assert "held-out set" in frame.text_content("[data-testid=al-rounds-info]")
        frame.check("[data-testid=al-rounds-model-view]")
        wait_for(lambda: debug(frame, "d.positionsSource()") == "model", 30, "the model view", frame)
        probe = list(range(0, 1400, 100))
        at3 = debug(frame, "d.headingTo(args[0])", probe)
        frame.click("[data-testid=al-round-1]")
        wait_for(lambda: debug(frame, "d.headingTo(args[0])", probe) != at3, 30, "round 1's places", frame)
        if SHOTS:
            wait_for(lambda: not debug(frame, "d.animating()"), 10, "the move to finish", frame)
            page.screenshot(path=os.path.join(SHOTS, "rounds_replay.png"))
        assert error_messages(frame) == []
