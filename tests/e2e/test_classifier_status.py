"""Issue 11, defect 1, in a real browser: after one class the classifier status says it
needs labels of a second class; once a second class is labeled the tab must follow the
retrain to "ready" and colour by prediction, without a reload. Before, the server
answered the one-class model's stale "needs_labels" while the retrain was pending, the
tab stopped polling, and the status (and colour by prediction) stayed stuck.

Keras (about 3 s per retrain on 2 cores) keeps the retrain pending long enough for the
tab's first poll to land inside it every time; the numpy network can finish first."""
import importlib.util

import pytest

from tests.e2e.conftest import debug, open_tab, pick_embedding, wait_for
from tests.e2e.test_suggest_panel import classifier, label_group
from tests.tbserver import PLUGIN, TensorBoard

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                                reason="the Keras classifier needs TensorFlow")


def test_status_follows_the_retrain_once_a_second_class_is_labeled(page, demo_logdir):
    with TensorBoard(demo_logdir, extra_args=["--al_classifier", "keras"]) as tb:
        tb.wait_for_embeddings()
        frame = open_tab(page, tb.url)
        pick_embedding(frame, "digits")

        label_group(frame, 0, 5, "zero")
        frame.wait_for_selector("[data-testid=al-classifier-status][data-status=needs_labels]", timeout=60000)
        # The trainer has tried (and refused) the one-class model once the server says so
        # for the current labels: wait for that, as a user who looks away for a moment would.
        wait_for(lambda: tb.get_json(PLUGIN + "/active/predictions?run=digits&embedding=digits")["status"]
                 == "needs_labels", 60, "the one-class model to be refused", frame)

        label_group(frame, 1, 5, "one")
        two_classes = str(debug(frame, "d.labelVersion()"))
        # No reload: the tab keeps polling through "training" to the model of both classes.
        frame.wait_for_selector("[data-testid=al-classifier-status][data-status=ready][data-version='%s']"
                                % two_classes, timeout=120000)
        assert "ready" in classifier(frame)[2] and "2 classes" in classifier(frame)[2], classifier(frame)
        assert debug(frame, "d.predictionStatus()") == "ready"
