// A uniform grid over the layout's x, y: built once per positions update
// (counting sort, O(N)), it answers the map's questions without scanning every
// row: which rows lie in a rectangle or a lasso, which row is under the
// pointer, the k nearest rows of a focus (exact, in x, y, z), and which sprite
// pages a view needs. At 1,000,000 rows a build takes tens of milliseconds and
// a query touches only the cells it overlaps (KDBush plays this role in
// regl-scatterplot; a grid is enough for layouts spread over [-1, 1]).
//
// Rows with a non-finite x or y are kept aside: never inside a region, last in
// a neighbour order (as knnOrder in selection.ts treats them).
import { squaredDistances } from "./selection";

/** Rows per grid cell on average: small enough that a query reads few extra rows, large enough that empty cells stay few. */
const ROWS_PER_CELL = 8;

export class GridIndex {
  /** Grid side (cells per axis). */
  readonly side: number;
  readonly minX: number;
  readonly minY: number;
  /** Cell width and height (world units). */
  readonly cellW: number;
  readonly cellH: number;
  /** Rows sorted by cell; cell c holds sorted[start[c] .. start[c + 1]). */
  private readonly sorted: Uint32Array;
  private readonly start: Uint32Array;
  /** Rows whose x or y is not finite. */
  readonly outside: Uint32Array;
  /** How long the build took (ms). */
  readonly buildMs: number;

  /** Index `n` rows of stride-3 `positions` (x, y, z). */
  constructor(
    readonly positions: Float32Array,
    readonly n: number = Math.floor(positions.length / 3),
  ) {
    const t0 = typeof performance !== "undefined" ? performance.now() : Date.now();
    const pos = positions;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    let finite = 0;
    for (let i = 0; i < n; i++) {
      const x = pos[3 * i], y = pos[3 * i + 1];
      if (!(Number.isFinite(x) && Number.isFinite(y))) continue;
      finite++;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
    if (!finite) minX = minY = maxX = maxY = 0;
    const side = Math.max(1, Math.min(4096, Math.ceil(Math.sqrt(finite / ROWS_PER_CELL))));
    this.side = side;
    this.minX = minX;
    this.minY = minY;
    this.cellW = Math.max((maxX - minX) / side, 1e-12);
    this.cellH = Math.max((maxY - minY) / side, 1e-12);
    const cellOf = new Int32Array(n);
    const counts = new Uint32Array(side * side + 1);
    const outside: number[] = [];
    for (let i = 0; i < n; i++) {
      const x = pos[3 * i], y = pos[3 * i + 1];
      if (!(Number.isFinite(x) && Number.isFinite(y))) {
        cellOf[i] = -1;
        outside.push(i);
        continue;
      }
      const c = this.cellY(y) * side + this.cellX(x);
      cellOf[i] = c;
      counts[c + 1]++;
    }
    for (let c = 0; c < side * side; c++) counts[c + 1] += counts[c];
    this.start = counts;
    const fill = counts.slice(0, side * side);
    const sorted = new Uint32Array(finite);
    // Rows ascending within each cell: answers come out in a stable order.
    for (let i = 0; i < n; i++) {
      const c = cellOf[i];
      if (c >= 0) sorted[fill[c]++] = i;
    }
    this.sorted = sorted;
    this.outside = Uint32Array.from(outside);
    this.buildMs = (typeof performance !== "undefined" ? performance.now() : Date.now()) - t0;
  }

  private cellX(x: number): number {
    return Math.max(0, Math.min(this.side - 1, Math.floor((x - this.minX) / this.cellW)));
  }

  private cellY(y: number): number {
    return Math.max(0, Math.min(this.side - 1, Math.floor((y - this.minY) / this.cellH)));
  }

  /** Call `visit(row)` for every row in the cells overlapping [x0, x1] x [y0, y1] (a superset of the rows inside). */
  private eachCandidate(x0: number, y0: number, x1: number, y1: number, visit: (row: number) => void): void {
    if (!(x0 <= x1 && y0 <= y1) || !this.sorted.length) return;
    const cx0 = this.cellX(x0), cx1 = this.cellX(x1), cy0 = this.cellY(y0), cy1 = this.cellY(y1);
    const { sorted, start, side } = this;
    for (let cy = cy0; cy <= cy1; cy++) {
      for (let c = cy * side + cx0, end = cy * side + cx1; c <= end; c++) {
        for (let j = start[c], e = start[c + 1]; j < e; j++) visit(sorted[j]);
      }
    }
  }

  /** Rows with x0 <= x <= x1 and y0 <= y <= y1 (corners in any order), ascending. */
  rowsInRect(ax: number, ay: number, bx: number, by: number): Uint32Array {
    const x0 = Math.min(ax, bx), x1 = Math.max(ax, bx), y0 = Math.min(ay, by), y1 = Math.max(ay, by);
    const pos = this.positions;
    const out: number[] = [];
    this.eachCandidate(x0, y0, x1, y1, (i) => {
      const x = pos[3 * i], y = pos[3 * i + 1];
      if (x >= x0 && x <= x1 && y >= y0 && y <= y1) out.push(i);
    });
    return Uint32Array.from(out).sort();
  }

  /** How many rows lie in the rectangle (no list built: for sizing a view). */
  countInRect(ax: number, ay: number, bx: number, by: number): number {
    const x0 = Math.min(ax, bx), x1 = Math.max(ax, bx), y0 = Math.min(ay, by), y1 = Math.max(ay, by);
    const pos = this.positions;
    let count = 0;
    this.eachCandidate(x0, y0, x1, y1, (i) => {
      const x = pos[3 * i], y = pos[3 * i + 1];
      if (x >= x0 && x <= x1 && y >= y0 && y <= y1) count++;
    });
    return count;
  }

  /** Rows inside the polygon x0, y0, x1, y1, ... (world units, even-odd rule), ascending. */
  rowsInPolygon(poly: ArrayLike<number>): Uint32Array {
    if (poly.length < 6) return new Uint32Array(0);
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let i = 0; i + 1 < poly.length; i += 2) {
      x0 = Math.min(x0, poly[i]);
      x1 = Math.max(x1, poly[i]);
      y0 = Math.min(y0, poly[i + 1]);
      y1 = Math.max(y1, poly[i + 1]);
    }
    const pos = this.positions;
    const out: number[] = [];
    if (!(x0 <= x1 && y0 <= y1) || !this.sorted.length) return new Uint32Array(0);
    const { sorted, start, side } = this;
    const corners = poly.length >> 1;
    const cx0 = this.cellX(x0), cx1 = this.cellX(x1);
    const band: number[] = [];
    for (let cy = this.cellY(y0), cyEnd = this.cellY(y1); cy <= cyEnd; cy++) {
      // Only edges spanning a row's y can flip the even-odd count (as in pointInPolygon): those overlapping
      // this band of cells (widened: a border cell also holds rows beyond the grid), a few of the lasso's.
      const lo = cy === 0 ? -Infinity : this.minY + (cy - 0.01) * this.cellH;
      const hi = cy === side - 1 ? Infinity : this.minY + (cy + 1.01) * this.cellH;
      band.length = 0;
      for (let i = 0, j = corners - 1; i < corners; j = i++) {
        const yi = poly[2 * i + 1], yj = poly[2 * j + 1];
        if (Math.max(yi, yj) >= lo && Math.min(yi, yj) <= hi) band.push(i, j);
      }
      if (!band.length) continue;
      for (let c = cy * side + cx0, end = cy * side + cx1; c <= end; c++) {
        for (let k = start[c], e = start[c + 1]; k < e; k++) {
          const r = sorted[k];
          const x = pos[3 * r], y = pos[3 * r + 1];
          if (x < x0 || x > x1 || y < y0 || y > y1) continue;
          let inside = false;
          for (let b = 0; b < band.length; b += 2) {
            const i = band[b], j = band[b + 1];
            const xi = poly[2 * i], yi = poly[2 * i + 1], xj = poly[2 * j], yj = poly[2 * j + 1];
            if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
          }
          if (inside) out.push(r);
        }
      }
    }
    return Uint32Array.from(out).sort();
  }

  /**
   * The row whose square of half-size (rx, ry) around its centre covers (x, y),
   * the one whose centre is nearest when several do (ties: the lower row); -1
   * when none. What camera.pick answers in 2D, without projecting every row.
   */
  pickAt(x: number, y: number, rx: number, ry: number): number {
    const pos = this.positions;
    let best = -1;
    let bestD = Infinity;
    // Distances in units of the half-size, as pick compares pixels (square pixels: rx/ry is the world aspect).
    const sx = ry / rx;
    this.eachCandidate(x - rx, y - ry, x + rx, y + ry, (i) => {
      const dx = Math.abs(pos[3 * i] - x), dy = Math.abs(pos[3 * i + 1] - y);
      if (dx > rx || dy > ry) return;
      const d = dx * dx * sx * sx + dy * dy;
      if (d < bestD || (d === bestD && i < best)) {
        bestD = d;
        best = i;
      }
    });
    return best;
  }

  /**
   * The `k` rows nearest to row `focus` by Euclidean distance in x, y, z, the
   * focus left out, nearest first; ties in row order. Exactly the first `k`
   * of knnOrder(positions, n, 3, focus): the grid is searched ring by ring
   * and stops once no unvisited cell can hold a nearer row.
   */
  nearest(focus: number, k: number): Uint32Array {
    const n = this.n;
    if (focus < 0 || focus >= n) throw new RangeError(`focus ${focus} is not a row of ${n}`);
    const want = Math.max(0, Math.min(k, n - 1));
    const pos = this.positions;
    const fx = pos[3 * focus], fy = pos[3 * focus + 1], fz = pos[3 * focus + 2];
    if (want === 0) return new Uint32Array(0);
    if (!(Number.isFinite(fx) && Number.isFinite(fy)) || want > n / 4) return this.nearestByScan(focus, want);
    const cx = this.cellX(fx), cy = this.cellY(fy);
    const { sorted, start, side } = this;
    let rows: number[] = [];
    let dists: number[] = [];
    const minCell = Math.min(this.cellW, this.cellH);
    const take = (c: number) => {
      for (let j = start[c], e = start[c + 1]; j < e; j++) {
        const i = sorted[j];
        if (i === focus) continue;
        const dx = pos[3 * i] - fx, dy = pos[3 * i + 1] - fy, dz = pos[3 * i + 2] - fz;
        const d = dx * dx + dy * dy + dz * dz;
        rows.push(i);
        dists.push(d === d ? d : Infinity);
      }
    };
    let kth = Infinity;
    for (let r = 0; r < side; r++) {
      const y0 = cy - r, y1 = cy + r, x0 = cx - r, x1 = cx + r;
      for (let y = Math.max(0, y0); y <= Math.min(side - 1, y1); y++) {
        if (y === y0 || y === y1) {
          for (let x = Math.max(0, x0); x <= Math.min(side - 1, x1); x++) take(y * side + x);
        } else {
          if (x0 >= 0) take(y * side + x0);
          if (x1 < side && x1 !== x0) take(y * side + x1);
        }
      }
      if (rows.length >= want) {
        kth = kthSmallest(dists, want);
        // Every unvisited cell is at least r cells away in x or y: no row there is nearer than r * minCell.
        const bound = r * minCell;
        if (kth < bound * bound) break;
        // Keep the candidate list short: rows farther than the k-th can never enter the answer.
        if (rows.length > 4 * want + 64) {
          const keepR: number[] = [], keepD: number[] = [];
          for (let j = 0; j < rows.length; j++) if (dists[j] <= kth) { keepR.push(rows[j]); keepD.push(dists[j]); }
          rows = keepR;
          dists = keepD;
        }
      }
    }
    const order = Array.from(rows.keys()).sort((a, b) => dists[a] - dists[b] || rows[a] - rows[b]);
    const out = new Uint32Array(want);
    let m = 0;
    for (; m < want && m < order.length; m++) out[m] = rows[order[m]];
    // Fewer finite rows than k: the others follow in row order (their distance is not a number).
    for (let j = 0; m < want && j < this.outside.length; j++) if (this.outside[j] !== focus) out[m++] = this.outside[j];
    return out;
  }

  private nearestByScan(focus: number, want: number): Uint32Array {
    return nearestRows(this.positions, this.n, 3, focus, want);
  }
}

/** The k-th smallest of `values` (1-based), by selection on a copy. */
function kthSmallest(values: number[], k: number): number {
  const a = Float64Array.from(values);
  return selectKth(a, k - 1);
}

/** Rearranges `a` so that a[k] is the value a full sort would put there; returns it (Hoare's quickselect). */
function selectKth(a: Float64Array, k: number): number {
  let lo = 0, hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return a[k];
}

/**
 * The first `k` rows of knnOrder(data, rows, dims, focus) (nearest first, ties
 * in row order, NaN distances last) without sorting all rows: the k-th
 * distance is found by selection and only the rows up to it are sorted. For
 * feature space, where no index helps, and for large k.
 */
export function nearestRows(data: ArrayLike<number>, rows: number, dims: number, focus: number, k: number): Uint32Array {
  const want = Math.max(0, Math.min(k, rows - 1));
  const dist = squaredDistances(data, rows, dims, focus);
  dist[focus] = -1; // never selected below (a distance is >= 0); left out
  if (want === 0) return new Uint32Array(0);
  const copy = dist.slice();
  // want-th smallest among the others: index `want` counts the focus' -1 at 0.
  const kth = selectKth(copy, want);
  const picked: number[] = [];
  for (let i = 0; i < rows; i++) if (i !== focus && dist[i] <= kth) picked.push(i);
  picked.sort((a, b) => dist[a] - dist[b] || a - b);
  return Uint32Array.from(picked.slice(0, want));
}

/** One index per positions array: rebuilt when the layout hands the map a new one (each frame of a live layout). */
export class LayoutIndexCache {
  private index: GridIndex | null = null;

  /** The index of `positions` (stride 3, `n` rows), built now if the array changed since the last call. */
  of(positions: Float32Array, n = Math.floor(positions.length / 3)): GridIndex {
    if (!this.index || this.index.positions !== positions || this.index.n !== n) this.index = new GridIndex(positions, n);
    return this.index;
  }

  /** The last index built, if any (its build time is what the benchmark reports). */
  last(): GridIndex | null {
    return this.index;
  }

  clear(): void {
    this.index = null;
  }
}
