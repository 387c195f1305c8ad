"""Broken sources and server errors are shown as clear messages; the tab never
hangs silently. Everything here is a real failure of a real `tensorboard`:
broken files in the logdir, a tensor file that vanished, a server that stopped."""
import os

import numpy as np
import pytest

from tests.e2e.conftest import error_messages, open_tab, pick_embedding, wait_for, wait_ready
from tests.tbserver import PLUGIN, TensorBoard

BROKEN = {
    # name -> (file content or None for a missing file, words the problem must mention)
    "missing": (None, ["does not exist"]),
    "ragged": ("0.1\t0.2\n0.3\n0.5\t0.6\n", ["ragged"]),
    "notnumbers": ("0.1\t0.2\n0.3\tabc\n0.5\t0.6\n", ["abc"]),
}


@pytest.fixture
def tb_with_broken(demo_logdir):
    """demo_logs plus a stock-Projector config at the logdir root naming three broken TSV tensors."""
    config = []
    for name, (content, _) in BROKEN.items():
        if content is not None:
            with open(os.path.join(demo_logdir, name + ".tsv"), "w") as f:
                f.write(content)
        config.append('embeddings {\n  tensor_name: "%s"\n  tensor_path: "%s.tsv"\n}\n' % (name, name))
    with open(os.path.join(demo_logdir, "projector_config.pbtxt"), "w") as f:
        f.write("".join(config))
    with TensorBoard(demo_logdir, without_tensorflow=True) as server:
        server.wait_for_embeddings()
        yield server


def test_overview_lists_problems_of_broken_embeddings_and_keeps_the_good_one(page, tb_with_broken):
    frame = open_tab(page, tb_with_broken.url)
    frame.wait_for_selector("[data-testid=al-embedding-row]")
    rows = frame.eval_on_selector_all(
        "[data-testid=al-embedding-row]",
        "els => els.map(e => ({name: e.dataset.name, ok: e.dataset.ok, text: e.textContent}))")
    by_name = {r["name"]: r for r in rows}
    for name, (_, words) in BROKEN.items():
        assert by_name[name]["ok"] == "false", by_name[name]
        assert "Cannot be opened" in by_name[name]["text"]
        for w in words:
            assert w in by_name[name]["text"], (name, by_name[name]["text"])
    assert by_name["digits"]["ok"] == "true"
    # Broken embeddings cannot be picked; the good one still opens.
    disabled = frame.eval_on_selector_all(
        "[data-testid=al-embedding-select] option[disabled]", "els => els.map(e => e.textContent)")
    assert len(disabled) == len(BROKEN) and all("broken" in t for t in disabled)
    pick_embedding(frame, "digits")
    assert error_messages(frame) == []
    assert page.errors == []


def test_a_failing_tensor_request_shows_the_servers_message_with_retry(page, tb):
    # A second embedding, so that the tab opens on the table (a single one opens by itself).
    from tensorboard_al_plugin import write_embedding

    write_embedding(tb.logdir, np.random.default_rng(0).normal(size=(10, 4)), name="other", run="other")
    tb.get(PLUGIN + "/embeddings?refresh=1")
    frame = open_tab(page, tb.url)
    frame.wait_for_selector("[data-testid=al-embedding-list]")
    # The tensor file disappears after the tab listed the embedding: the server's
    # answer to the tensor request is an error, which the tab must show.
    tensor = os.path.join(tb.logdir, "digits", "plugins", "active_labeling", "digits", "tensor.bin")
    os.rename(tensor, tensor + ".away")
    options = frame.eval_on_selector_all(
        "[data-testid=al-embedding-select] option", "els => els.map(e => [e.value, e.textContent])")
    value = next(v for v, text in options if text.startswith("digits ("))
    frame.select_option("[data-testid=al-embedding-select]", value=value)
    msgs = wait_for(lambda: error_messages(frame), 30, "an error banner", frame)
    assert any(m.startswith("Could not open digits:") and "tensor.bin" in m for m in msgs), msgs
    assert frame.locator("[data-testid=al-error] button", has_text="Retry").count() == 1
    assert frame.get_attribute("[data-testid=al-labeling-view]", "data-ready") == "false"
    assert frame.is_hidden("[data-testid=al-progress]"), "the progress bar must not stay up after a failure"
    # Once the file is back, Retry opens the embedding.
    os.rename(tensor + ".away", tensor)
    tb.get(PLUGIN + "/embeddings?refresh=1")
    frame.locator("[data-testid=al-error] button", has_text="Retry").click()
    wait_ready(frame)
    assert error_messages(frame) == []


def test_a_stopped_server_is_reported_not_waited_for(page, demo_logdir):
    with TensorBoard(demo_logdir, without_tensorflow=True) as server:
        server.wait_for_embeddings()
        page.goto(server.url + "/data/plugin_entry.html?name=active_labeling")
        frame = page.main_frame
        frame.wait_for_selector("[data-testid=al-embedding-select] option >> nth=1", state="attached")
        wait_ready(frame)  # the only embedding opens by itself: let it finish loading
    # The server is gone; asking it to rescan must end in a clear message.
    frame.click("[data-testid=al-refresh]")
    msgs = wait_for(lambda: error_messages(frame), 30, "an error banner", frame)
    assert any("Could not list the embeddings" in m and "Cannot reach the TensorBoard server" in m for m in msgs), msgs
    assert frame.locator("[data-testid=al-error] button", has_text="Retry").count() == 1
