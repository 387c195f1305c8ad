import { test } from "node:test";
import assert from "node:assert/strict";
import {
  classifierStatusText,
  parsePredictions,
  predictedLegendIndex,
  predictionOf,
  selectionConsensus,
  suggestionSize,
  suggestionSpec,
  uncertaintyColor,
} from "../src/active";
import type { PredictionsResponse } from "../src/api";
import { resolveSelection } from "../src/selection";

const ready: PredictionsResponse = {
  status: "ready",
  version: 3,
  classes: ["one", "zero"],
  error: null,
  train_seconds: 0.42,
  predicted: [1, 1, 0, 1, 0],
  confidence: [0.99, 0.95, 0.6, 0.85, 0.97],
  uncertainty: [0.01, 0.1, Math.log(2), 0.3, 0.05],
};

test("predictions become typed arrays; uncertainty is scaled to 0..1 by the largest entropy", () => {
  const p = parsePredictions(ready, 5);
  assert.deepEqual(Array.from(p.predicted!), [1, 1, 0, 1, 0]);
  assert.ok(Math.abs(p.uncertainty![2] - 1) < 1e-6);
  assert.ok(p.uncertainty!.every((u) => u >= 0 && u <= 1));
  assert.deepEqual(predictionOf(p, 2), { label: "one", confidence: Float32Array.of(0.6)[0], uncertainty: p.uncertainty![2] });
  assert.equal(predictionOf(p, 9), null);
});

test("arrays of the wrong length, or before the first model, are dropped", () => {
  assert.equal(parsePredictions(ready, 6).predicted, null);
  const training = parsePredictions({ status: "training", version: null, classes: [], error: null, train_seconds: 0 }, 5);
  assert.equal(training.predicted, null);
  assert.equal(predictionOf(training, 0), null);
  // An out-of-range class index never indexes past `classes`.
  const bad = parsePredictions({ ...ready, predicted: [0, 1, 7, -3, 1] }, 5);
  assert.deepEqual(Array.from(bad.predicted!), [0, 1, -1, -1, 1]);
});

test("the status line says what the classifier is doing, with the server's message", () => {
  assert.match(classifierStatusText(parsePredictions(ready, 5)), /^ready · trained on 2 classes in 0\.4 s$/);
  assert.equal(classifierStatusText(parsePredictions({ status: "training", version: null, classes: [], error: null, train_seconds: 0 }, 5)), "training…");
  assert.match(classifierStatusText(parsePredictions({ ...ready, status: "training" }, 5)), /previous model/);
  const needs: PredictionsResponse = { status: "needs_labels", version: null, classes: [], error: "the classifier needs labels of at least 2 classes.", train_seconds: 0 };
  assert.equal(classifierStatusText(parsePredictions(needs, 5)), "needs labels: the classifier needs labels of at least 2 classes.");
  assert.equal(classifierStatusText(parsePredictions({ ...needs, status: "error", error: "training failed: boom" }, 5)), "error: training failed: boom");
  assert.equal(classifierStatusText(null, "Cannot reach the TensorBoard server."), "error: Cannot reach the TensorBoard server.");
});

test("predicted classes map onto the legend's indices (colours match the legend)", () => {
  const p = parsePredictions(ready, 5);
  // Legend order differs from the classifier's; a class missing from the legend gets 0.
  assert.deepEqual(Array.from(predictedLegendIndex(p, ["zero", "one"], 5)), [1, 1, 2, 1, 2]);
  assert.deepEqual(Array.from(predictedLegendIndex(p, ["zero"], 5)), [1, 1, 0, 1, 0]);
});

test("accepting a suggestion focuses its row with exactly its group selected", () => {
  const item = { row: 4, score: 1, group: [4, 7, 2, 9, 4], predicted: null, confidence: null };
  const spec = suggestionSpec(item, 10, 20);
  // Neighbours of the focus are not added: the suggestion's group is the selection.
  const { members } = resolveSelection(spec, Uint32Array.from([0, 1, 3, 5, 6, 8, 2, 7, 9]), 10);
  assert.deepEqual(Array.from(members), [4, 7, 2, 9]);
  assert.equal(suggestionSize(item), members.length);
  // Rows outside the embedding are ignored.
  assert.deepEqual(Array.from(resolveSelection(suggestionSpec({ ...item, group: [4, 99, -1, 3] }, 10, 20), null, 10).members), [4, 3]);
  assert.equal(suggestionSize({ ...item, group: [4] }), 1);
});

test("label as predicted: only when the model agrees on one class, sure enough, and labels agree", () => {
  const p = parsePredictions(ready, 5);
  const legend = ["zero", "one"];
  const none = new Uint16Array(5);
  // Rows 0, 1, 3 are predicted "zero" with >= 85%.
  let c = selectionConsensus([0, 1, 3], none, legend, p, 0.8);
  assert.equal(c.label, "zero");
  assert.deepEqual(c.rows, [0, 1, 3]);
  assert.ok(Math.abs(c.minConfidence - 0.85) < 1e-6);
  // Not sure enough.
  c = selectionConsensus([0, 1, 3], none, legend, p, 0.9);
  assert.equal(c.label, null);
  assert.match(c.reason, /85%.*90%/);
  // Disagreement.
  c = selectionConsensus([0, 2], none, legend, p, 0.5);
  assert.equal(c.label, null);
  assert.match(c.reason, /does not agree/);
  // A labeled row of the same class is fine (and not relabeled); of another class it blocks.
  const labeled = Uint16Array.of(1, 0, 0, 0, 2);
  c = selectionConsensus([0, 1, 3], labeled, legend, p, 0.8);
  assert.deepEqual([c.label, c.rows], ["zero", [1, 3]]);
  c = selectionConsensus([1, 3, 4], labeled, legend, p, 0.8);
  assert.equal(c.label, null);
  // Nothing to do.
  assert.match(selectionConsensus([0], labeled, legend, p, 0.5).reason, /labeled already/);
  assert.match(selectionConsensus([], none, legend, p, 0.5).reason, /Select/);
  assert.match(selectionConsensus([1], none, legend, null, 0.5).reason, /No model/);
});

test("uncertainty colours run from blue (sure) to red (unsure)", () => {
  assert.equal(uncertaintyColor(0), "#2978ff");
  assert.equal(uncertaintyColor(1), "#ff3333");
  assert.equal(uncertaintyColor(2), uncertaintyColor(1));
});
