import { test } from "node:test";
import assert from "node:assert/strict";
import { Store } from "../src/store";
import { indexLabels, suggestClasses, validateLabel } from "../src/labels";

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
