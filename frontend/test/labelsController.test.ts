// The label part of the labeling view's actions, against a fake api object.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, type EmbeddingRef, type LabelState } from "../src/api";
import { LabelsController, type LabelsApi, withChanges } from "../src/labelsController";
import { deferred, labelState, loaded } from "./fakes";

/** A label server in memory: applies writes on top of the version it holds, refuses stale bases (409). */
function fakeLabelServer(start: LabelState) {
  let state = start;
  const calls: string[] = [];
  const guard = (base: number) => {
    if (base !== state.version) throw new ApiError("Someone else labeled meanwhile; reloaded.", 409, "labels");
  };
  const write = (labels: (string | null)[], more: Partial<LabelState> = {}) => {
    state = labelState(labels, state.version + 1, { can_undo: true, ...more });
    return state;
  };
  const api: LabelsApi = {
    labels: async () => state,
    assign: async (_ref: EmbeddingRef, rows: number[], label: string, base: number) => {
      calls.push(`assign ${label} ${rows.join(",")} @${base}`);
      guard(base);
      const next = state.labels.slice();
      for (const r of rows) next[r] = label;
      return write(next);
    },
    clear: async (_ref: EmbeddingRef, rows: number[], base: number) => {
      calls.push(`clear ${rows.join(",")} @${base}`);
      guard(base);
      const next = state.labels.slice();
      for (const r of rows) next[r] = null;
      return write(next);
    },
    undo: async (_ref: EmbeddingRef, base: number) => {
      calls.push(`undo @${base}`);
      return write(state.labels.map(() => null), { can_undo: false, can_redo: true });
    },
    redo: async (_ref: EmbeddingRef, base: number) => {
      calls.push(`redo @${base}`);
      return write(state.labels);
    },
    exportUrl: () => "export",
  };
  return { api, calls, set: (s: LabelState) => (state = s), get: () => state };
}

test("a label goes to every selected row on the version shown; the legend and the followers hear of it", async () => {
  const ctx = loaded(4);
  const server = fakeLabelServer(labelState([null, null, null, null], 1));
  let moved = 0;
  const labels = new LabelsController(server.api, ctx, () => moved++);
  labels.setLabels(server.get());
  assert.equal(moved, 0, "the first labels of an embedding are not a change");
  ctx.store.set({ members: Uint32Array.from([1, 3]) });
  assert.equal(await labels.apply("  cat "), "");
  assert.deepEqual(server.calls, ["assign cat 1,3 @1"]);
  const s = ctx.store.get();
  assert.equal(s.labelState!.version, 2);
  assert.deepEqual(Array.from(s.labelIndex!.perRow, (k) => (k ? s.labelIndex!.classes[k - 1] : null)), [null, "cat", null, "cat"]);
  assert.equal(s.writing, false);
  assert.equal(moved, 1);
});

test("nothing selected, or a bad label, is said and never sent", async () => {
  const ctx = loaded(3);
  const server = fakeLabelServer(labelState([null, null, null], 1));
  const labels = new LabelsController(server.api, ctx, () => {});
  labels.setLabels(server.get());
  assert.equal(await labels.apply("cat"), "Select some points first (click a point, search, or draw a box).");
  assert.equal(await labels.clear(), "Select the points whose label to clear.");
  ctx.store.set({ members: Uint32Array.from([0]) });
  assert.notEqual(await labels.apply("   "), "");
  assert.deepEqual(server.calls, []);
});

test("a write on a stale version is a notice, not an error, and the buttons come back", async () => {
  const ctx = loaded(3);
  const server = fakeLabelServer(labelState([null, null, null], 1));
  const labels = new LabelsController(server.api, ctx, () => {});
  labels.setLabels(labelState([null, null, null], 0));
  ctx.store.set({ members: Uint32Array.from([0]) });
  assert.equal(await labels.apply("cat"), "The label was not saved.");
  assert.deepEqual(ctx.host.notices, ["Someone else labeled meanwhile; reloaded."]);
  assert.deepEqual(ctx.host.errors, []);
  assert.equal(ctx.store.get().writing, false);
});

test("while a write is in flight the view says so", async () => {
  const ctx = loaded(2);
  const answer = deferred<LabelState>();
  const server = fakeLabelServer(labelState([null, null], 1));
  const labels = new LabelsController({ ...server.api, assign: () => answer.promise }, ctx, () => {});
  labels.setLabels(server.get());
  ctx.store.set({ members: Uint32Array.from([0]) });
  const pending = labels.apply("cat");
  assert.equal(ctx.store.get().writing, true);
  answer.resolve(labelState(["cat", null], 2));
  assert.equal(await pending, "");
  assert.equal(ctx.store.get().writing, false);
});

test("a write that lands after another embedding opened is saved but not shown on the other one", async () => {
  const ctx = loaded(2);
  const answer = deferred<LabelState>();
  const server = fakeLabelServer(labelState([null, null], 1));
  let moved = 0;
  const labels = new LabelsController({ ...server.api, assign: () => answer.promise }, ctx, () => moved++);
  labels.setLabels(server.get());
  ctx.store.set({ members: Uint32Array.from([0]) });
  const pending = labels.apply("cat");
  const other = labelState([null, null, null], 7);
  ctx.store.set({ embedding: { ...ctx.store.get().embedding!, name: "other" }, rows: 3, labelState: other });
  answer.resolve(labelState(["cat", null], 2));
  assert.equal(await pending, "");
  assert.equal(ctx.store.get().labelState, other);
  assert.equal(moved, 0);
  assert.equal(ctx.store.get().writing, false);
});

test("an embedding without label support refuses writes with an error", async () => {
  const ctx = loaded(2, labelState([null, null], 0), { labels_supported: false });
  const server = fakeLabelServer(labelState([null, null], 0));
  const labels = new LabelsController(server.api, ctx, () => {});
  ctx.store.set({ members: Uint32Array.from([0]) });
  assert.equal(await labels.apply("cat"), "The label was not saved.");
  assert.equal(ctx.host.errors.length, 1);
  assert.match(ctx.host.errors[0], /cannot be saved/);
  assert.deepEqual(server.calls, []);
});

test("undo and redo go to the server only when the label state allows them", async () => {
  const ctx = loaded(2);
  const server = fakeLabelServer(labelState([null, null], 1));
  const labels = new LabelsController(server.api, ctx, () => {});
  labels.setLabels(server.get());
  await labels.undo();
  await labels.redo();
  assert.deepEqual(server.calls, []);
  ctx.store.set({ members: Uint32Array.from([1]) });
  await labels.apply("dog");
  await labels.undo();
  assert.equal(ctx.store.get().labelState!.can_redo, true);
  await labels.redo();
  assert.deepEqual(server.calls, ["assign dog 1 @1", "undo @2", "redo @3"]);
});

test("number keys label with the legend's k-th class", async () => {
  const ctx = loaded(3);
  const server = fakeLabelServer(labelState(["b", "a", null], 1));
  const labels = new LabelsController(server.api, ctx, () => {});
  labels.setLabels(server.get());
  const li = ctx.store.get().labelIndex!;
  const second = li.classes[li.legend[1] - 1];
  ctx.store.set({ members: Uint32Array.from([2]) });
  assert.equal(await labels.applyClassNumber(9), "", "no 9th class: nothing happens");
  assert.equal(await labels.applyClassNumber(2), "");
  assert.deepEqual(server.calls, [`assign ${second} 2 @1`]);
});

test("refreshing picks up other people's labels, but not into another embedding opened meanwhile", async () => {
  const ctx = loaded(2);
  const server = fakeLabelServer(labelState([null, null], 1));
  let moved = 0;
  const labels = new LabelsController(server.api, ctx, () => moved++);
  labels.setLabels(server.get());
  server.set(labelState(["cat", null], 5));
  await labels.refresh();
  assert.equal(ctx.store.get().labelState!.version, 5);
  assert.equal(moved, 1);
  const late = deferred<LabelState>();
  const slow = new LabelsController({ ...server.api, labels: () => late.promise }, ctx, () => moved++);
  const pending = slow.refresh();
  ctx.store.set({ embedding: { ...ctx.store.get().embedding!, name: "other" } });
  late.resolve(labelState(["dog", "dog"], 9));
  await pending;
  assert.equal(ctx.store.get().labelState!.version, 5);
});

test("label as predicted writes the class the classifier is sure of, to the unlabeled rows only", async () => {
  const ctx = loaded(3);
  const server = fakeLabelServer(labelState(["cat", null, null], 1));
  const labels = new LabelsController(server.api, ctx, () => {});
  labels.setLabels(server.get());
  ctx.store.set({
    members: Uint32Array.from([0, 1, 2]),
    predictions: {
      status: "ready",
      version: 1,
      classes: ["cat"],
      error: null,
      trainSeconds: 0,
      predicted: Int32Array.from([0, 0, 0]),
      confidence: Float32Array.from([0.99, 0.95, 0.97]),
      uncertainty: Float32Array.from([0, 0, 0]),
    },
  });
  assert.equal(await labels.labelAsPredicted(), "");
  assert.deepEqual(server.calls, ["assign cat 1,2 @1"]);
  ctx.store.set({ sureThreshold: 0.999, members: Uint32Array.from([1]) });
  assert.notEqual(await labels.labelAsPredicted(), "", "not sure enough: said, not written");
  assert.equal(server.calls.length, 1);
});

test("answers as changes: a write's rows are applied to the labels shown, the rest kept; a gap fetches the labels again", async () => {
  const ctx = loaded(5);
  let state = labelState(["a", null, null, "b", null], 3);
  let fetched = 0;
  let otherWriterFirst = false;
  const api: LabelsApi = {
    labels: async () => (fetched++, state),
    assign: async (_ref: EmbeddingRef, rows: number[], label: string, base: number) => {
      const from = state.version;
      if (otherWriterFirst) state = labelState(state.labels.map((l, i) => (i === 4 ? "c" : l)), state.version + 1);
      const next = state.labels.slice();
      for (const r of rows) next[r] = label;
      state = labelState(next, state.version + 1);
      // the server answers changes only when this write is the only one since the base
      if (state.version !== base + 1) return state;
      const { labels: _l, ...rest } = state;
      return { ...rest, changes_from: from, changes: [{ label, rows }] };
    },
    clear: async () => state,
    undo: async () => state,
    redo: async () => state,
    exportUrl: () => "export",
  };
  const labels = new LabelsController(api, ctx, () => {});
  labels.setLabels(state);
  ctx.store.set({ members: Uint32Array.from([1, 2]) });
  assert.equal(await labels.apply("a"), "");
  assert.deepEqual(ctx.store.get().labelState!.labels, ["a", "a", "a", "b", null]);
  assert.equal(ctx.store.get().labelState!.version, 4);
  assert.equal(fetched, 0, "no fetch when the changes follow the version shown");
  // another writer came first: the server sends every label, the tab takes them
  otherWriterFirst = true;
  ctx.store.set({ members: Uint32Array.from([0]) });
  assert.equal(await labels.apply("b"), "");
  assert.deepEqual(ctx.store.get().labelState!.labels, ["b", "a", "a", "b", "c"]);
  assert.equal(ctx.store.get().labelState!.version, 6);
});

test("withChanges: whole states pass through; changes apply only onto the version they start from", () => {
  const prev = labelState(["x", null, null], 7);
  const whole = labelState([null, null, "y"], 9);
  assert.equal(withChanges(prev, whole), whole);
  const answer = { version: 8, classes: [], can_undo: true, can_redo: false, changes_from: 7, changes: [{ label: null, rows: [0] }, { label: "z", rows: [2, 1] }] };
  const next = withChanges(prev, answer)!;
  assert.deepEqual(next.labels, [null, "z", "z"]);
  assert.equal(next.version, 8);
  assert.equal("changes" in next, false);
  assert.deepEqual(prev.labels, ["x", null, null], "the labels shown are not changed in place");
  assert.equal(withChanges(labelState(["x", null, null], 6), answer), null, "from another version: fetch again");
  assert.equal(withChanges(null, answer), null);
});
