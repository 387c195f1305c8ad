import { test } from "node:test";
import assert from "node:assert/strict";
import {
  EMPTY_SPEC,
  focusRow,
  knnOrder,
  parseSearch,
  pointInPolygon,
  removeRows,
  resolveSelection,
  rowsInBox,
  rowsInLasso,
  searchMetadata,
  selectRegion,
  toggleRow,
} from "../src/selection";

// Five points on a line: x = 0, 1, 3, 6, 10 (1-D features).
const line = new Float32Array([0, 1, 3, 6, 10]);

test("knnOrder sorts all other rows by distance to the focus", () => {
  assert.deepEqual(Array.from(knnOrder(line, 5, 1, 2)), [1, 0, 3, 4]);
  assert.deepEqual(Array.from(knnOrder(line, 5, 1, 0)), [1, 2, 3, 4]);
});

test("knnOrder uses every feature dimension and breaks ties by row", () => {
  const data = new Float32Array([0, 0, 1, 0, 0, 1, -1, 0, 3, 3]);
  assert.deepEqual(Array.from(knnOrder(data, 5, 2, 0)), [1, 2, 3, 4]);
});

test("knnOrder puts rows with NaN features last", () => {
  const data = new Float32Array([0, NaN, 5, 1]);
  assert.deepEqual(Array.from(knnOrder(data, 4, 1, 0)), [3, 2, 1]);
});

test("a focus with k neighbours selects k + 1 rows, focus first", () => {
  const spec = focusRow(EMPTY_SPEC, 2);
  const { members, mask } = resolveSelection({ ...spec, k: 2 }, knnOrder(line, 5, 1, 2), 5);
  assert.deepEqual(Array.from(members), [2, 1, 0]);
  assert.deepEqual(Array.from(mask), [1, 1, 1, 0, 0]);
});

test("the neighbour slider is clamped to the rows that exist", () => {
  const { members } = resolveSelection({ ...focusRow(EMPTY_SPEC, 0), k: 99 }, knnOrder(line, 5, 1, 0), 5);
  assert.equal(members.length, 5);
});

test("rows removed from a group stay removed when the slider moves", () => {
  let spec = { ...focusRow(EMPTY_SPEC, 0), k: 2 };
  const order = knnOrder(line, 5, 1, 0);
  spec = removeRows(spec, [1]);
  assert.deepEqual(Array.from(resolveSelection(spec, order, 5).members), [0, 2]);
  spec = { ...spec, k: 3 };
  assert.deepEqual(Array.from(resolveSelection(spec, order, 5).members), [0, 2, 3]);
});

test("shift-click toggles a row out of and back into the selection", () => {
  const order = knnOrder(line, 5, 1, 0);
  let spec = { ...focusRow(EMPTY_SPEC, 0), k: 1 };
  spec = toggleRow(spec, 4, false);
  assert.deepEqual(Array.from(resolveSelection(spec, order, 5).members), [0, 1, 4]);
  spec = toggleRow(spec, 1, true);
  assert.deepEqual(Array.from(resolveSelection(spec, order, 5).members), [0, 4]);
  spec = toggleRow(spec, 1, false);
  assert.deepEqual(Array.from(resolveSelection(spec, order, 5).members).sort(), [0, 1, 4]);
});

test("a new focus forgets earlier additions and removals", () => {
  let spec = toggleRow({ ...focusRow(EMPTY_SPEC, 0), k: 1 }, 4, false);
  spec = focusRow(spec, 3);
  assert.equal(spec.added.size, 0);
  assert.equal(spec.k, 1);
});

test("a region replaces the selection, or adds to it with shift", () => {
  const order = knnOrder(line, 5, 1, 0);
  let spec = selectRegion({ ...focusRow(EMPTY_SPEC, 0), k: 1 }, Uint32Array.from([3, 4]), false);
  assert.deepEqual(Array.from(resolveSelection(spec, order, 5).members), [3, 4]);
  spec = selectRegion({ ...focusRow(EMPTY_SPEC, 0), k: 1 }, Uint32Array.from([3]), true);
  assert.deepEqual(Array.from(resolveSelection(spec, order, 5).members), [0, 1, 3]);
});

test("box selection takes rows inside the rectangle in any drag direction, never behind the camera", () => {
  // x, y, w per row
  const screen = new Float32Array([10, 10, 1, 50, 50, 1, 90, 90, 1, 20, 20, -1]);
  assert.deepEqual(Array.from(rowsInBox(screen, 0, 0, 60, 60)), [0, 1]);
  assert.deepEqual(Array.from(rowsInBox(screen, 60, 60, 0, 0)), [0, 1]);
});

test("lasso selection uses the polygon, not its bounding box", () => {
  // A right triangle covering the lower-left half of a 100 px square.
  const tri = [0, 0, 0, 100, 100, 100];
  assert.ok(pointInPolygon(10, 90, tri));
  assert.ok(!pointInPolygon(90, 10, tri));
  const screen = new Float32Array([10, 90, 1, 90, 10, 1, 40, 60, 1]);
  assert.deepEqual(Array.from(rowsInLasso(screen, tri)), [0, 2]);
  assert.equal(rowsInLasso(screen, [0, 0, 5, 5]).length, 0);
});

test("search: #N names a row, other text is a metadata value", () => {
  assert.deepEqual(parseSearch("#123"), { kind: "row", row: 123 });
  assert.deepEqual(parseSearch("  # 7 "), { kind: "row", row: 7 });
  assert.deepEqual(parseSearch("shirt"), { kind: "text", text: "shirt" });
  assert.deepEqual(parseSearch("#12a"), { kind: "text", text: "#12a" });
  assert.deepEqual(parseSearch("   "), { kind: "empty" });
});

test("metadata search prefers exact (case-insensitive) matches over substrings", () => {
  const cols = [["T-shirt", "Shirt", "shirt", "Sneaker"], ["a", "b", "c", "shirt"]];
  assert.deepEqual(Array.from(searchMetadata(cols, "SHIRT", 4)), [1, 2, 3]);
  assert.deepEqual(Array.from(searchMetadata(cols, "sne", 4)), [3]);
  assert.equal(searchMetadata(cols, "boot", 4).length, 0);
});

test("metadata search finds a file by a path written from elsewhere: absolute, ./, or with backslashes", () => {
  const cols = [["zebra/p1.png", "tiger/p1.png", "zebra/p2.png"], ["zebra", "tiger", "zebra"]];
  for (const typed of ["/home/me/photos/zebra/p1.png", "C:\\photos\\zebra\\p1.png", "./zebra/p1.png", "ZEBRA\\P1.PNG"]) {
    assert.deepEqual(Array.from(searchMetadata(cols, typed, 3)), [0], typed);
  }
  assert.deepEqual(Array.from(searchMetadata(cols, "/home/me/photos/zebra", 3)), [0, 2]); // a folder
  assert.deepEqual(Array.from(searchMetadata(cols, "p1.png", 3)), [0, 1]); // a file name: every folder's
  assert.equal(searchMetadata(cols, "/home/me/photos/lion/p1.png", 3).length, 0);
});
