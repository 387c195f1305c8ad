// Selection maths, free of DOM and WebGL: k-nearest-neighbour groups around a
// focus point (in feature space or in the current layout), box and lasso
// hit tests on projected points, search queries, and the rules that combine
// them into one set of selected rows.

/** Where the distances of a k-nearest-neighbour group are measured. */
export type KnnSpace = "feature" | "layout";

/**
 * All rows except `focus`, ordered by squared Euclidean distance to row
 * `focus` in a row-major `rows x dims` matrix. Ties keep row order, so the
 * answer is deterministic. O(N log N); the caller caches it per focus.
 */
export function knnOrder(data: ArrayLike<number>, rows: number, dims: number, focus: number): Uint32Array {
  const dist = squaredDistances(data, rows, dims, focus);
  const order = new Uint32Array(rows - 1);
  let j = 0;
  for (let i = 0; i < rows; i++) if (i !== focus) order[j++] = i;
  order.sort((a, b) => dist[a] - dist[b] || a - b);
  return order;
}

/**
 * Squared Euclidean distance of every row of a row-major `rows x dims` matrix
 * to row `focus`; a row with a NaN value gets Infinity (it sorts last instead
 * of poisoning an order).
 */
export function squaredDistances(data: ArrayLike<number>, rows: number, dims: number, focus: number): Float64Array {
  if (focus < 0 || focus >= rows) throw new RangeError(`focus ${focus} is not a row of ${rows}`);
  const dist = new Float64Array(rows);
  const f = focus * dims;
  for (let i = 0; i < rows; i++) {
    let s = 0;
    const o = i * dims;
    for (let d = 0; d < dims; d++) {
      const t = data[o + d] - data[f + d];
      s += t * t;
    }
    dist[i] = s === s ? s : Infinity;
  }
  return dist;
}

/** The parts a selection is built from; `members` is derived from them. */
export interface SelectionSpec {
  /** Focus row, or -1. */
  focus: number;
  /** The neighbours setting (the slider, 0..N-1): how many nearest neighbours a focus brings. */
  k: number;
  /**
   * Whether the focus brings its `k` nearest neighbours. False for an accepted
   * suggestion, whose own group is `base`: the user's `k` stays as it was and
   * applies again to the next focus.
   */
  withNeighbours: boolean;
  /** Rows chosen by a box, lasso, search or class click. */
  base: Uint32Array;
  /** Rows added one by one (shift-click). */
  added: ReadonlySet<number>;
  /** Rows taken out one by one (shift-click, remove button); win over everything. */
  excluded: ReadonlySet<number>;
}

export const EMPTY_SPEC: SelectionSpec = { focus: -1, k: 20, withNeighbours: true, base: new Uint32Array(0), added: new Set(), excluded: new Set() };

/**
 * The neighbours setting to carry to an embedding of `rows` rows: the user's
 * `k` clamped to 1..rows-1; a 0 (one point alone) or anything not a count
 * falls back to the default, so a one-point choice never sticks across
 * embeddings.
 */
export function carriedK(k: number, rows: number): number {
  const want = Number.isInteger(k) && k >= 1 ? k : EMPTY_SPEC.k;
  return Math.max(0, Math.min(want, rows - 1));
}

/**
 * The neighbours slider: position 0..knnSliderMax(rows) -> k. Positions up to
 * LINEAR_K are k itself (every small k one step apart, where people work);
 * beyond, k grows geometrically (k = LINEAR_K * e^((p - LINEAR_K) / LINEAR_K),
 * whose steps start at 1 and stay about 3% of k), up to exactly rows - 1.
 * At 1M rows that is 343 positions, so a few pixels of drag never jump far.
 */
export const LINEAR_K = 30;

export function knnSliderMax(rows: number): number {
  const n = rows - 1;
  if (n <= LINEAR_K) return Math.max(0, n);
  return LINEAR_K + Math.ceil(LINEAR_K * Math.log(n / LINEAR_K) - 1e-9);
}

/** k at a slider position (rounded and clamped to the slider); monotone, the last position is rows - 1. */
export function kAtSlider(position: number, rows: number): number {
  const n = Math.max(0, rows - 1);
  const max = knnSliderMax(rows);
  const p = Math.max(0, Math.min(max, Math.round(Number.isFinite(position) ? position : 0)));
  if (p === max) return n;
  if (p <= LINEAR_K) return Math.min(p, n);
  return Math.min(n, Math.round(LINEAR_K * Math.exp((p - LINEAR_K) / LINEAR_K)));
}

/** The slider position whose k is nearest to `k` (so the slider follows a typed k). */
export function sliderOfK(k: number, rows: number): number {
  const max = knnSliderMax(rows);
  let lo = 0, hi = max;
  // Smallest position whose k reaches `k` (kAtSlider is monotone).
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (kAtSlider(mid, rows) >= k) hi = mid;
    else lo = mid + 1;
  }
  if (lo > 0 && Math.abs(kAtSlider(lo - 1, rows) - k) <= Math.abs(kAtSlider(lo, rows) - k)) return lo - 1;
  return lo;
}

/**
 * Selected rows in display order (focus, its neighbours nearest first, then
 * base rows, then added rows), without duplicates or excluded rows, plus a
 * membership mask of length `rows`, and `listed`: the same rows with the
 * excluded ones kept in their places (the side panel shows those as
 * deselected, one click from coming back).
 */
export function resolveSelection(spec: SelectionSpec, neighbours: Uint32Array | null, rows: number): { members: Uint32Array; mask: Uint8Array; listed: Uint32Array } {
  const mask = new Uint8Array(rows);
  const seen = new Uint8Array(rows);
  const out: number[] = [];
  const listed: number[] = [];
  const take = (i: number) => {
    if (i < 0 || i >= rows || seen[i]) return;
    seen[i] = 1;
    listed.push(i);
    if (spec.excluded.has(i)) return;
    mask[i] = 1;
    out.push(i);
  };
  if (spec.focus >= 0) {
    take(spec.focus);
    if (neighbours && spec.withNeighbours) {
      const k = Math.min(spec.k, neighbours.length);
      for (let j = 0; j < k; j++) take(neighbours[j]);
    }
  }
  for (let j = 0; j < spec.base.length; j++) take(spec.base[j]);
  for (const i of spec.added) take(i);
  return { members: Uint32Array.from(out), mask, listed: Uint32Array.from(listed) };
}

/** Shift-click: a selected row leaves the selection, any other row joins it. */
export function toggleRow(spec: SelectionSpec, row: number, selected: boolean): SelectionSpec {
  const added = new Set(spec.added);
  const excluded = new Set(spec.excluded);
  if (selected) {
    added.delete(row);
    excluded.add(row);
  } else {
    excluded.delete(row);
    added.add(row);
  }
  return { ...spec, added, excluded };
}

/** Take rows out of the selection (side panel remove buttons). */
export function removeRows(spec: SelectionSpec, rows: Iterable<number>): SelectionSpec {
  const added = new Set(spec.added);
  const excluded = new Set(spec.excluded);
  for (const r of rows) {
    added.delete(r);
    excluded.add(r);
  }
  return { ...spec, added, excluded };
}

/** A new focus starts a new group: earlier picks and removals are dropped. */
export function focusRow(spec: SelectionSpec, row: number): SelectionSpec {
  return { focus: row, k: spec.k, withNeighbours: true, base: new Uint32Array(0), added: new Set(), excluded: new Set() };
}

/**
 * The neighbours setting changes: the focus' group follows it. After an
 * accepted suggestion the slider regroups around its focus (the suggested
 * group gives way to the k nearest neighbours).
 */
export function withK(spec: SelectionSpec, k: number): SelectionSpec {
  if (spec.focus >= 0 && !spec.withNeighbours) return { ...focusRow(spec, spec.focus), k };
  return { ...spec, k };
}

/** A region (box, lasso, search, class) replaces the selection, or adds to it when `additive`. */
export function selectRegion(spec: SelectionSpec, rows: Uint32Array, additive: boolean): SelectionSpec {
  if (!additive) return { focus: -1, k: spec.k, withNeighbours: true, base: rows, added: new Set(), excluded: new Set() };
  const added = new Set(spec.added);
  const excluded = new Set(spec.excluded);
  for (const r of rows) {
    added.add(r);
    excluded.delete(r);
  }
  return { ...spec, added, excluded };
}

export function clearSelection(spec: SelectionSpec): SelectionSpec {
  return { ...EMPTY_SPEC, k: spec.k };
}

/**
 * Rows whose projected point lies inside an axis-aligned screen rectangle.
 * `screen` holds x, y, w per row (w <= 0: behind the camera, never selected).
 */
export function rowsInBox(screen: Float32Array, x0: number, y0: number, x1: number, y1: number): Uint32Array {
  const minX = Math.min(x0, x1), maxX = Math.max(x0, x1);
  const minY = Math.min(y0, y1), maxY = Math.max(y0, y1);
  const out: number[] = [];
  const n = screen.length / 3;
  for (let i = 0; i < n; i++) {
    const x = screen[3 * i], y = screen[3 * i + 1];
    if (screen[3 * i + 2] > 0 && x >= minX && x <= maxX && y >= minY && y <= maxY) out.push(i);
  }
  return Uint32Array.from(out);
}

/** Even-odd rule point-in-polygon; `poly` is x0,y0,x1,y1,... (closed implicitly). */
export function pointInPolygon(x: number, y: number, poly: ArrayLike<number>): boolean {
  let inside = false;
  const n = poly.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = poly[2 * i], yi = poly[2 * i + 1];
    const xj = poly[2 * j], yj = poly[2 * j + 1];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Rows whose projected point lies inside a lasso polygon (screen pixels). */
export function rowsInLasso(screen: Float32Array, poly: ArrayLike<number>): Uint32Array {
  if (poly.length < 6) return new Uint32Array(0);
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  for (let i = 0; i < poly.length; i += 2) {
    minX = Math.min(minX, poly[i]);
    maxX = Math.max(maxX, poly[i]);
    minY = Math.min(minY, poly[i + 1]);
    maxY = Math.max(maxY, poly[i + 1]);
  }
  const out: number[] = [];
  const n = screen.length / 3;
  for (let i = 0; i < n; i++) {
    const x = screen[3 * i], y = screen[3 * i + 1];
    if (screen[3 * i + 2] <= 0 || x < minX || x > maxX || y < minY || y > maxY) continue;
    if (pointInPolygon(x, y, poly)) out.push(i);
  }
  return Uint32Array.from(out);
}

export type SearchQuery = { kind: "row"; row: number } | { kind: "text"; text: string } | { kind: "empty" };

/** `#123` (or `#123 `) names a row; anything else is a metadata value. */
export function parseSearch(input: string): SearchQuery {
  const t = input.trim();
  if (!t) return { kind: "empty" };
  const m = /^#\s*(\d+)$/.exec(t);
  if (m) return { kind: "row", row: Number(m[1]) };
  return { kind: "text", text: t };
}

/**
 * Rows whose value in any metadata column equals `text` (case-insensitive);
 * when none does, rows where some value contains it; when none does either,
 * `text` as a file path written from elsewhere (absolute, `./`, backslashes):
 * rows whose value is that path's tail after a `/` (a relative path such as
 * `tensorboard-al embed` writes, or a folder). Columnar metadata:
 * `columns[c][row]`.
 */
export function searchMetadata(columns: readonly (readonly string[])[], text: string, rows: number): Uint32Array {
  const needle = text.toLowerCase();
  const path = "/" + needle.replace(/\\/g, "/").replace(/^(\.\/)+/, "");
  const tests: ((v: string) => boolean)[] = [
    (v) => v === needle,
    (v) => v.includes(needle),
    (v) => v !== "" && path.endsWith("/" + v.replace(/\\/g, "/")),
  ];
  for (const matches of tests) {
    const found: number[] = [];
    for (let i = 0; i < rows; i++) {
      for (const col of columns) {
        const v = col[i];
        if (v !== undefined && matches(v.toLowerCase())) {
          found.push(i);
          break;
        }
      }
    }
    if (found.length) return Uint32Array.from(found);
  }
  return new Uint32Array(0);
}
