// Issue 11 (first-day defects): the neighbours slider's mapping, the
// neighbours setting around suggestions and embeddings, the selection list's
// deselected rows, the legend after an undo, and fit-to-data.
import { test } from "node:test";
import assert from "node:assert/strict";
import { suggestionSpec } from "../src/active";
import { defaultCamera, fitCamera, orbit, pan, projectAll, viewMatrices, zoomAt } from "../src/camera";
import { indexLabels } from "../src/labels";
import {
  carriedK,
  EMPTY_SPEC,
  focusRow,
  kAtSlider,
  knnOrder,
  knnSliderMax,
  LINEAR_K,
  resolveSelection,
  sliderOfK,
  toggleRow,
  withK,
} from "../src/selection";

const SIZES = [10, 1797, 5000, 70000, 1_000_000];

for (const rows of SIZES) {
  test(`neighbours slider at ${rows.toLocaleString("en-US")} rows: integer, monotone, fine at small k, ends at N-1`, () => {
    const max = knnSliderMax(rows);
    const ks = Array.from({ length: max + 1 }, (_, p) => kAtSlider(p, rows));
    assert.equal(ks[0], 0);
    assert.equal(ks[max], rows - 1, "the last position is N-1");
    for (let p = 0; p <= max; p++) {
      assert.ok(Number.isInteger(ks[p]));
      if (p > 0) assert.ok(ks[p] > ks[p - 1], `k(${p}) = ${ks[p]} > k(${p - 1}) = ${ks[p - 1]}`);
    }
    // Every k from 1 to 30 (or N-1) is its own position, one step apart.
    for (let k = 1; k <= Math.min(LINEAR_K, rows - 1); k++) assert.equal(ks[k], k);
    // Beyond, a step never grows k by more than about 3.5% (plus rounding).
    for (let p = LINEAR_K + 1; p <= max; p++) assert.ok(ks[p] - ks[p - 1] <= Math.ceil(0.035 * ks[p - 1]) + 1, `step at ${p}: ${ks[p - 1]} -> ${ks[p]}`);
    // A slider of a few hundred positions, even at 1M rows.
    assert.ok(max <= 350, `${max} positions`);
    // Positions and k round-trip; a typed k puts the slider at the nearest k.
    for (let p = 0; p <= max; p++) assert.equal(sliderOfK(ks[p], rows), p);
    for (const k of [0, 1, 7, 20, 31, 45, 99, 100, 1000, 4321, rows - 2, rows - 1]) {
      if (k < 0 || k > rows - 1) continue;
      const near = kAtSlider(sliderOfK(k, rows), rows);
      const best = Math.min(...ks.map((v) => Math.abs(v - k)));
      assert.equal(Math.abs(near - k), best, `k=${k}: slider shows ${near}`);
    }
  });
}

test("the slider clamps positions and rounds between them", () => {
  assert.equal(kAtSlider(-5, 5000), 0);
  assert.equal(kAtSlider(1e9, 5000), 4999);
  assert.equal(kAtSlider(19.6, 5000), 20);
  assert.equal(kAtSlider(NaN, 5000), 0);
  assert.equal(knnSliderMax(1), 0);
  assert.equal(kAtSlider(3, 1), 0);
  assert.equal(knnSliderMax(2), 1);
});

// Five points on a line: x = 0, 1, 3, 6, 10 (1-D features).
const line = new Float32Array([0, 1, 3, 6, 10]);
const item = { row: 4, score: 1, group: [4, 3], predicted: null, confidence: null };

test("accepting a suggestion keeps the user's k for the next focus", () => {
  const spec = suggestionSpec(item, 5, 2);
  assert.equal(spec.k, 2);
  assert.deepEqual(Array.from(resolveSelection(spec, knnOrder(line, 5, 1, 4), 5).members), [4, 3]);
  const next = focusRow(spec, 0);
  assert.equal(next.k, 2);
  assert.deepEqual(Array.from(resolveSelection(next, knnOrder(line, 5, 1, 0), 5).members), [0, 1, 2]);
});

test("moving the slider after a suggestion regroups around its focus", () => {
  const spec = withK(suggestionSpec(item, 5, 2), 1);
  assert.equal(spec.focus, 4);
  assert.deepEqual(Array.from(resolveSelection(spec, knnOrder(line, 5, 1, 4), 5).members), [4, 3]);
  const more = withK(spec, 3);
  assert.deepEqual(Array.from(resolveSelection(more, knnOrder(line, 5, 1, 4), 5).members), [4, 3, 2, 1]);
});

test("the neighbours setting carried to another embedding is never 0 and fits its rows", () => {
  assert.equal(carriedK(0, 5000), EMPTY_SPEC.k);
  assert.equal(carriedK(35, 5000), 35);
  assert.equal(carriedK(35, 10), 9);
  assert.equal(carriedK(NaN, 100), EMPTY_SPEC.k);
  assert.equal(carriedK(7, 1), 0);
});

test("a row taken out of the group stays listed in its place, deselected", () => {
  let spec = { ...focusRow(EMPTY_SPEC, 0), k: 3 };
  const order = knnOrder(line, 5, 1, 0);
  spec = toggleRow(spec, 2, true);
  const r = resolveSelection(spec, order, 5);
  assert.deepEqual(Array.from(r.members), [0, 1, 3]);
  assert.deepEqual(Array.from(r.listed), [0, 1, 2, 3]);
  assert.equal(r.mask[2], 0);
  // Toggling it again puts it back where it was.
  const back = resolveSelection(toggleRow(spec, 2, false), order, 5);
  assert.deepEqual(Array.from(back.members), [0, 1, 2, 3]);
  assert.deepEqual(Array.from(back.listed), [0, 1, 2, 3]);
});

test("after an undo a class with no rows leaves the legend (and the 1-9 keys), its colour index stays", () => {
  const before = indexLabels(
    { version: 2, labels: ["zero", "one", null], classes: [{ name: "zero", count: 1 }, { name: "one", count: 1 }], can_undo: true, can_redo: false },
    3,
  );
  assert.deepEqual(before.legend, [1, 2]);
  // Undo: "one" is gone from the store; then "two" is labeled.
  const undone = indexLabels({ version: 3, labels: ["zero", null, null], classes: [{ name: "zero", count: 1 }], can_undo: true, can_redo: true }, 3, before.classes);
  assert.deepEqual(undone.legend, [1]);
  const two = indexLabels(
    { version: 4, labels: ["zero", null, "two"], classes: [{ name: "zero", count: 1 }, { name: "two", count: 1 }], can_undo: true, can_redo: false },
    3,
    undone.classes,
  );
  assert.deepEqual(two.legend, [1, 3]);
  assert.equal(two.classes[two.legend[1] - 1], "two");
  assert.equal(two.perRow[2], 3, "colours do not move: 'two' gets a fresh index");
});

function onScreen(cam: ReturnType<typeof defaultCamera>, pos: Float32Array, w: number, h: number): number {
  const n = pos.length / 3;
  const out = projectAll(pos, n, viewMatrices(cam, w, h).viewProj, w, h, new Float32Array(pos.length));
  let inside = 0;
  for (let i = 0; i < n; i++) if (out[3 * i + 2] > 0 && out[3 * i] >= 0 && out[3 * i] <= w && out[3 * i + 1] >= 0 && out[3 * i + 1] <= h) inside++;
  return inside;
}

test("fit-to-data brings every point back after a zoom and pan, in 2D and 3D", () => {
  const n = 500;
  const pos = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    pos[3 * i] = Math.cos(i) * 0.9 + 0.05;
    pos[3 * i + 1] = Math.sin(1.7 * i) * 0.4 - 0.3;
    pos[3 * i + 2] = Math.sin(0.3 * i);
  }
  for (const [w, h] of [[800, 600], [300, 900]]) {
    let cam2 = zoomAt(defaultCamera(2), 20, 100, 100, w, h);
    cam2 = pan(cam2, 300, -200, w, h);
    assert.ok(onScreen(cam2, pos, w, h) < n);
    const fit2 = fitCamera(cam2, pos, w, h, 0.02);
    assert.equal(onScreen(fit2, pos, w, h), n);
    // It fills the view: zoomed in by 10% more, some point leaves it.
    assert.ok(onScreen(zoomAt(fit2, 1.1, w / 2, h / 2, w, h), pos, w, h) < n);

    let cam3 = orbit(zoomAt(defaultCamera(3), 8, 0, 0, w, h), 120, 40);
    cam3 = pan(cam3, 200, 100, w, h);
    const fit3 = fitCamera(cam3, pos, w, h, 0.02);
    assert.equal(onScreen(fit3, pos, w, h), n);
    assert.equal(fit3.yaw, cam3.yaw, "3D keeps the orbit angles");
  }
  // No finite point: the default view.
  assert.equal(fitCamera(defaultCamera(2), new Float32Array([NaN, 0, 0]), 800, 600).zoom, 1);
});
