// The selection part of the labeling view's actions, on a real store.
import { test } from "node:test";
import assert from "node:assert/strict";
import { indexLabels } from "../src/labels";
import { FeatureNeighbours, MIN_FETCH } from "../src/featureNeighbours";
import { SelectionController } from "../src/selectionController";
import { labelState, lineNeighbours, loaded, settle } from "./fakes";

test("clicking a row selects it with its k nearest rows in feature space, asked of the server once per focus; a wider k widens the group", async () => {
  const ctx = loaded(10);
  ctx.store.set({ spec: { ...ctx.store.get().spec, k: 2 } });
  const asked: string[] = [];
  const sel = new SelectionController(ctx, new FeatureNeighbours(lineNeighbours(10, asked), ctx));
  sel.focus(5);
  assert.deepEqual([...ctx.store.get().members], [5], "the focus at once, its neighbours when the server answers");
  await settle();
  assert.deepEqual([...ctx.store.get().members].sort((a, b) => a - b), [4, 5, 6]);
  assert.equal(ctx.store.get().spec.focus, 5);
  sel.setK(4);
  assert.deepEqual([...ctx.store.get().members].sort((a, b) => a - b), [3, 4, 5, 6, 7], "widened from what is known");
  sel.setK(1e9);
  assert.equal(ctx.store.get().spec.k, 9, "k stops at rows - 1");
  sel.setK(NaN);
  assert.equal(ctx.store.get().spec.k, 9, "a non-number is ignored");
  assert.deepEqual(asked, ["neighbours 5 9"], "one question: every row of a small embedding");
});

test("feature-space neighbours: a wider group than was fetched asks again; another focus while one is asked wins", async () => {
  const rows = 5000;
  const ctx = loaded(rows);
  ctx.store.set({ spec: { ...ctx.store.get().spec, k: 3 } });
  const asked: string[] = [];
  const sel = new SelectionController(ctx, new FeatureNeighbours(lineNeighbours(rows, asked), ctx));
  sel.focus(100);
  sel.focus(200);
  await settle();
  assert.deepEqual([...ctx.store.get().members].sort((a, b) => a - b), [198, 199, 200, 201], "ties by row");
  sel.setK(MIN_FETCH + 1);
  assert.equal(ctx.store.get().members.length, MIN_FETCH + 1, "what is known shows at once");
  await settle();
  assert.equal(ctx.store.get().members.length, MIN_FETCH + 2);
  assert.deepEqual(asked, [`neighbours 100 ${MIN_FETCH}`, `neighbours 200 ${MIN_FETCH}`, `neighbours 200 ${2 * MIN_FETCH}`]);
  sel.forgetNeighbours();
  sel.setK(3);
  await settle();
  assert.equal(asked.length, 4, "another embedding forgets what was known");
});

test("a row toggled out of the group stays listed, deselected; clearing keeps the neighbours setting", async () => {
  const ctx = loaded(10);
  ctx.store.set({ spec: { ...ctx.store.get().spec, k: 2 } });
  const sel = new SelectionController(ctx, new FeatureNeighbours(lineNeighbours(10), ctx));
  sel.focus(5);
  await settle();
  sel.toggle(6);
  const s = ctx.store.get();
  assert.equal(s.mask[6], 0);
  assert.ok([...s.listed].includes(6), "still listed in its place");
  assert.ok(![...s.members].includes(6));
  sel.clearSelection();
  assert.equal(ctx.store.get().members.length, 0);
  assert.equal(ctx.store.get().spec.k, 2);
});

test("layout-space neighbours come from the map's positions, and follow a new layout frame", () => {
  const ctx = loaded(4);
  // On the map row 0 sits next to row 3, far from rows 1 and 2 (the reverse of feature space).
  const positions = Float32Array.from([0, 0, 0, 5, 0, 0, 4, 0, 0, 0.5, 0, 0]);
  ctx.store.set({ positions, positionsRevision: 1, spec: { ...ctx.store.get().spec, k: 1 } });
  const sel = new SelectionController(ctx);
  sel.setKnnSpace("layout");
  sel.focus(0);
  assert.deepEqual([...ctx.store.get().members].sort(), [0, 3]);
  assert.equal(ctx.store.get().knnSpace, "layout");
  // The next frame moves row 1 next to row 0: the cached order is not reused.
  ctx.store.set({ positions: Float32Array.from([0, 0, 0, 0.1, 0, 0, 4, 0, 0, 5, 0, 0]), positionsRevision: 2 });
  sel.setK(1);
  assert.deepEqual([...ctx.store.get().members].sort(), [0, 1]);
});

test("search: #row focuses and zooms to the row; text selects matching metadata rows; misses say why", () => {
  const ctx = loaded(4);
  const sel = new SelectionController(ctx);
  const revealed: [number, boolean][] = [];
  sel.onReveal((row, zoom) => revealed.push([row, zoom]));
  assert.equal(sel.search("#2"), "");
  assert.equal(ctx.store.get().spec.focus, 2);
  assert.deepEqual(revealed, [[2, true]]);
  assert.equal(sel.search("#4"), "There is no row 4 (rows 0..3).");
  assert.equal(sel.search("cat"), "This embedding has no metadata to search; use #row.");
  // Metadata is stored a column at a time.
  ctx.store.set({ metadata: { columns: ["name"], data: [["cat", "dog", "bobcat", "cow"]] } });
  assert.equal(sel.search("cat"), "");
  assert.deepEqual([...ctx.store.get().members], [0], "an exact match wins over a partial one");
  assert.equal(sel.search("at"), "");
  assert.deepEqual([...ctx.store.get().members].sort(), [0, 2]);
  assert.equal(sel.search("horse"), "No row has metadata matching “horse”.");
  assert.equal(sel.search("   "), "");
});

test("a legend click selects every row of that class; shift adds to the selection", () => {
  const ctx = loaded(5);
  const st = labelState(["a", "b", "a", null, "b"]);
  ctx.store.set({ labelState: st, labelIndex: indexLabels(st, 5, []) });
  const sel = new SelectionController(ctx);
  const a = ctx.store.get().labelIndex!.classes.indexOf("a") + 1;
  const b = ctx.store.get().labelIndex!.classes.indexOf("b") + 1;
  sel.selectClass(a, false);
  assert.deepEqual([...ctx.store.get().members].sort(), [0, 2]);
  sel.selectClass(b, true);
  assert.deepEqual([...ctx.store.get().members].sort(), [0, 1, 2, 4]);
  sel.remove([1]);
  assert.deepEqual([...ctx.store.get().members].sort(), [0, 2, 4]);
});
