import { test } from "node:test";
import assert from "node:assert/strict";
import { Store } from "../src/store";
import { indexLabels, suggestClasses, validateLabel } from "../src/labels";
import { pcaProject } from "../src/pca";

test("store notifies listeners with the keys that changed, once per batch", () => {
  const store = new Store({ a: 1, b: "x", c: [1] });
  const seen: string[][] = [];
  store.subscribe((_s, changed) => seen.push([...changed].map(String).sort()));
  store.set({ a: 1 }); // unchanged: no notification
  store.set({ a: 2 });
  store.batch(() => {
    store.set({ b: "y" });
    store.set({ c: [2] });
  });
  assert.deepEqual(seen, [["a"], ["b", "c"]]);
  assert.deepEqual(store.get(), { a: 2, b: "y", c: [2] });
});

test("unsubscribed listeners hear nothing", () => {
  const store = new Store({ a: 1 });
  let calls = 0;
  const off = store.subscribe(() => calls++);
  off();
  store.set({ a: 3 });
  assert.equal(calls, 0);
});

test("label state becomes one class index per row, in the store's class order", () => {
  const li = indexLabels(
    { version: 3, labels: ["b", null, "a", "b"], classes: [{ name: "b", count: 2 }, { name: "a", count: 1 }], can_undo: true, can_redo: false },
    5,
  );
  assert.deepEqual(li.classes, ["b", "a"]);
  assert.deepEqual(Array.from(li.perRow), [1, 0, 2, 1, 0]);
  assert.deepEqual(li.counts, [2, 1]);
  assert.equal(li.unlabeled, 2);
});

test("a label missing from the class list is still indexed and counted", () => {
  const li = indexLabels({ version: 1, labels: ["z"], classes: [], can_undo: false, can_redo: false }, 1);
  assert.deepEqual(li.classes, ["z"]);
  assert.deepEqual(li.counts, [1]);
});

test("autocomplete lists prefix matches before substring matches", () => {
  assert.deepEqual(suggestClasses(["shirt", "T-shirt", "sneaker", "bag"], "sh"), ["shirt", "T-shirt"]);
  assert.equal(suggestClasses(["a", "b"], "").length, 2);
});

test("labels the store would refuse are caught before sending", () => {
  assert.equal(validateLabel("zero"), null);
  assert.ok(validateLabel("   "));
  assert.ok(validateLabel("a\tb"));
  assert.ok(validateLabel("x".repeat(257)));
});

test("PCA separates the direction of largest variance", () => {
  // Points spread along (1, 1, 0) with small noise along z.
  const rows = 200;
  const data = new Float32Array(rows * 3);
  for (let i = 0; i < rows; i++) {
    const t = i - rows / 2;
    data[3 * i] = t;
    data[3 * i + 1] = t;
    data[3 * i + 2] = (i % 2) * 0.1;
  }
  const p = pcaProject(data, rows, 3, 2);
  // The first component is monotonic in t; the second is tiny.
  const first = Array.from({ length: rows }, (_, i) => p[2 * i]);
  const sign = Math.sign(first[rows - 1] - first[0]);
  for (let i = 1; i < rows; i++) assert.ok(sign * (first[i] - first[i - 1]) > 0);
  for (let i = 0; i < rows; i++) assert.ok(Math.abs(p[2 * i + 1]) < 0.2);
});
