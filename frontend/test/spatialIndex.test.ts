import { test } from "node:test";
import assert from "node:assert/strict";
import { GridIndex, LayoutIndexCache, nearestRows } from "../src/spatialIndex";
import { knnOrder, pointInPolygon } from "../src/selection";

/** A seeded generator (mulberry32): the same points on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Stride-3 positions like a t-SNE layout: dense clusters, a uniform
 * background, exact duplicates (ties) and points on a coarse lattice (ties of
 * distance); z is 0 (2D) or spread (3D).
 */
function layout(n: number, seed: number, dims: 2 | 3): Float32Array {
  const r = rng(seed);
  const pos = new Float32Array(3 * n);
  const centres = Array.from({ length: 7 }, () => [r() * 2 - 1, r() * 2 - 1]);
  for (let i = 0; i < n; i++) {
    const kind = r();
    let x: number, y: number;
    if (kind < 0.6) {
      const c = centres[Math.floor(r() * centres.length)];
      x = c[0] + (r() - 0.5) * 0.1;
      y = c[1] + (r() - 0.5) * 0.1;
    } else if (kind < 0.8) {
      x = r() * 2 - 1;
      y = r() * 2 - 1;
    } else if (kind < 0.9 && i > 0) {
      const j = Math.floor(r() * i);
      x = pos[3 * j];
      y = pos[3 * j + 1];
    } else {
      x = Math.round((r() * 2 - 1) * 8) / 8;
      y = Math.round((r() * 2 - 1) * 8) / 8;
    }
    pos[3 * i] = x;
    pos[3 * i + 1] = y;
    pos[3 * i + 2] = dims === 3 ? r() * 2 - 1 : 0;
  }
  return pos;
}

function bruteRect(pos: Float32Array, x0: number, y0: number, x1: number, y1: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < pos.length / 3; i++) {
    const x = pos[3 * i], y = pos[3 * i + 1];
    if (x >= Math.min(x0, x1) && x <= Math.max(x0, x1) && y >= Math.min(y0, y1) && y <= Math.max(y0, y1)) out.push(i);
  }
  return out;
}

test("k nearest rows from the grid equal the first k of the brute-force order (2D and 3D, ties included)", () => {
  for (const dims of [2, 3] as const) {
    const n = 5000;
    const pos = layout(n, 11 + dims, dims);
    const index = new GridIndex(pos);
    const r = rng(99);
    for (let q = 0; q < 40; q++) {
      const focus = Math.floor(r() * n);
      const full = knnOrder(pos, n, 3, focus);
      for (const k of [1, 7, 50, 400, 1500]) {
        assert.deepEqual(Array.from(index.nearest(focus, k)), Array.from(full.subarray(0, k)), `dims ${dims} focus ${focus} k ${k}`);
      }
    }
  }
});

test("k nearest rows by selection (no index: feature space) equal the brute-force order", () => {
  const r = rng(5);
  const rows = 3000, dims = 7;
  const data = new Float32Array(rows * dims);
  // Few distinct values: many ties.
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 4);
  for (const focus of [0, 17, 2999]) {
    const full = knnOrder(data, rows, dims, focus);
    for (const k of [0, 1, 10, 100, 2999, 5000]) {
      assert.deepEqual(Array.from(nearestRows(data, rows, dims, focus, k)), Array.from(full.subarray(0, Math.min(k, rows - 1))));
    }
  }
});

test("a k of more than a quarter of the rows, or every row, still equals the brute-force order", () => {
  const n = 800;
  const pos = layout(n, 3, 2);
  const index = new GridIndex(pos);
  const full = knnOrder(pos, n, 3, 5);
  assert.deepEqual(Array.from(index.nearest(5, 300)), Array.from(full.subarray(0, 300)));
  assert.deepEqual(Array.from(index.nearest(5, 10_000)), Array.from(full));
});

test("rows in a box from the grid equal a scan of every row", () => {
  const n = 20000;
  const pos = layout(n, 21, 2);
  const index = new GridIndex(pos);
  const r = rng(4);
  for (let q = 0; q < 60; q++) {
    const x0 = r() * 2.4 - 1.2, y0 = r() * 2.4 - 1.2;
    const x1 = x0 + (r() - 0.5) * r() * 2, y1 = y0 + (r() - 0.5) * r() * 2;
    assert.deepEqual(Array.from(index.rowsInRect(x0, y0, x1, y1)), bruteRect(pos, x0, y0, x1, y1));
    assert.equal(index.countInRect(x0, y0, x1, y1), bruteRect(pos, x0, y0, x1, y1).length);
  }
  // Lattice points on the box edge are inside (inclusive bounds).
  assert.deepEqual(Array.from(index.rowsInRect(-0.25, -0.25, 0.25, 0.25)), bruteRect(pos, -0.25, -0.25, 0.25, 0.25));
});

test("rows in a lasso from the grid equal a scan of every row", () => {
  const n = 20000;
  const pos = layout(n, 8, 2);
  const index = new GridIndex(pos);
  const r = rng(12);
  for (let q = 0; q < 30; q++) {
    // A star-shaped (non-convex) polygon around a random centre.
    const cx = r() * 2 - 1, cy = r() * 2 - 1, spikes = 3 + Math.floor(r() * 8);
    const poly: number[] = [];
    for (let j = 0; j < 2 * spikes; j++) {
      const a = (j / (2 * spikes)) * 2 * Math.PI;
      const rad = (j % 2 ? 0.1 : 0.5) * (0.3 + r());
      poly.push(cx + rad * Math.cos(a), cy + rad * Math.sin(a));
    }
    const brute: number[] = [];
    for (let i = 0; i < n; i++) if (pointInPolygon(pos[3 * i], pos[3 * i + 1], poly)) brute.push(i);
    assert.deepEqual(Array.from(index.rowsInPolygon(poly)), brute);
  }
  assert.equal(index.rowsInPolygon([0, 0, 1, 1]).length, 0, "fewer than three corners select nothing");
});

test("the row under the pointer is the nearest centre whose square covers it, the lower row on ties", () => {
  const n = 4000;
  const pos = layout(n, 30, 2);
  const index = new GridIndex(pos);
  const r = rng(1);
  for (let q = 0; q < 200; q++) {
    const x = r() * 2 - 1, y = r() * 2 - 1, rad = 0.002 + r() * 0.05;
    let best = -1, bestD = Infinity;
    for (let i = 0; i < n; i++) {
      const dx = Math.abs(pos[3 * i] - x), dy = Math.abs(pos[3 * i + 1] - y);
      if (dx > rad || dy > rad) continue;
      const d = dx * dx + dy * dy;
      if (d < bestD) {
        bestD = d;
        best = i;
      }
    }
    assert.equal(index.pickAt(x, y, rad, rad), best);
  }
});

test("rows whose position is not a number are never in a region and come last in a neighbour order", () => {
  const pos = new Float32Array([0, 0, 0, NaN, 0, 0, 0.1, 0, 0, 0.2, 0.2, 0, 5, 5, 0]);
  const index = new GridIndex(pos);
  assert.deepEqual(Array.from(index.outside), [1]);
  assert.deepEqual(Array.from(index.rowsInRect(-10, -10, 10, 10)), [0, 2, 3, 4]);
  assert.deepEqual(Array.from(index.nearest(0, 4)), Array.from(knnOrder(pos, 5, 3, 0)));
  assert.deepEqual(Array.from(index.nearest(1, 4)), Array.from(knnOrder(pos, 5, 3, 1)));
});

test("the index follows the layout: a new positions array is indexed again, the same one is not", () => {
  const cache = new LayoutIndexCache();
  const a = layout(100, 1, 2);
  const first = cache.of(a);
  assert.equal(cache.of(a), first);
  const b = a.slice();
  b[0] = 0.9;
  b[1] = 0.9;
  const second = cache.of(b);
  assert.notEqual(second, first);
  assert.deepEqual(Array.from(second.rowsInRect(0.89, 0.89, 0.91, 0.91)), bruteRect(b, 0.89, 0.89, 0.91, 0.91));
});

test("one point, no points and all points in one spot are indexed", () => {
  assert.deepEqual(Array.from(new GridIndex(new Float32Array(0)).rowsInRect(-1, -1, 1, 1)), []);
  const one = new GridIndex(new Float32Array([0.5, 0.5, 0]));
  assert.deepEqual(Array.from(one.nearest(0, 3)), []);
  assert.equal(one.pickAt(0.5, 0.5, 0.01, 0.01), 0);
  const same = new GridIndex(new Float32Array(30).fill(0.25));
  assert.deepEqual(Array.from(same.nearest(4, 3)), [0, 1, 2]);
  assert.equal(same.rowsInRect(0, 0, 1, 1).length, 10);
});
