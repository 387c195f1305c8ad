// Selection actions: focus a row with its neighbour group, widen or narrow the
// group, take rows out, box/lasso regions, search, select a class. The group is
// resolved from the neighbour order of the focused row: in feature space asked
// of the server (featureNeighbours.ts, resolved again when it answers), in the
// layout computed here and cached until the focus or the layout changes.
import type { ActionContext } from "./actionContext";
import type { FeatureNeighbours } from "./featureNeighbours";
import {
  clearSelection,
  focusRow,
  type KnnSpace,
  parseSearch,
  removeRows,
  resolveSelection,
  searchMetadata,
  type SelectionSpec,
  selectRegion,
  toggleRow,
  withK,
} from "./selection";
import { nearestRows } from "./spatialIndex";

/** Layout neighbours computed at least at once for a focus: small slider moves need no new search. */
const MIN_LAYOUT_NEIGHBOURS = 256;

export class SelectionController {
  private knnCache: { key: string; order: Uint32Array } | null = null;
  private revealListeners = new Set<(row: number, zoom: boolean) => void>();

  constructor(
    private readonly ctx: ActionContext,
    private readonly features: FeatureNeighbours | null = null,
  ) {
    features?.onArrive(() => {
      const s = this.ctx.store.get();
      if (s.knnSpace === "feature" && s.spec.focus >= 0) this.setSpec(s.spec, "feature");
    });
  }

  /** Forget the cached neighbour order (another embedding, another space). */
  forgetNeighbours(): void {
    this.knnCache = null;
    this.features?.forget();
  }

  private neighbours(spec: SelectionSpec, space: KnnSpace): Uint32Array | null {
    const s = this.ctx.store.get();
    if (spec.focus < 0 || spec.k <= 0) return null;
    if (space === "feature") return this.features ? this.features.order(spec.focus, spec.k) : null;
    const data = this.ctx.scene ? this.ctx.scene.targetPositions() : s.positions;
    if (!data) return null;
    const key = `${space}:${spec.focus}:${s.positionsRevision}`;
    const need = Math.min(spec.k, s.rows - 1);
    if (this.knnCache?.key !== key || this.knnCache.order.length < need) {
      // Only the nearest rows the slider asks for (doubling as it widens), from the map's spatial
      // index: a full sort of every row took ~0.5 s at 1M rows.
      const had = this.knnCache?.key === key ? this.knnCache.order.length : 0;
      const want = Math.min(s.rows - 1, Math.max(need, 2 * had, MIN_LAYOUT_NEIGHBOURS));
      const scene = this.ctx.scene;
      const order = scene ? scene.layoutIndex().nearest(spec.focus, want) : nearestRows(data, s.rows, 3, spec.focus, want);
      this.knnCache = { key, order };
    }
    return this.knnCache.order;
  }

  setSpec(spec: SelectionSpec, space = this.ctx.store.get().knnSpace): void {
    const s = this.ctx.store.get();
    const { members, mask, listed } = resolveSelection(spec, this.neighbours(spec, space), s.rows);
    this.ctx.store.set({ spec, knnSpace: space, members, mask, listed });
  }

  focus(row: number): void {
    this.setSpec(focusRow(this.ctx.store.get().spec, row));
  }

  /** The neighbours setting (slider or number field): 0..rows-1. */
  setK(k: number): void {
    if (!Number.isFinite(k)) return;
    const rows = this.ctx.store.get().rows;
    this.setSpec(withK(this.ctx.store.get().spec, Math.max(0, Math.min(rows - 1, Math.round(k)))));
  }

  setKnnSpace(space: KnnSpace): void {
    this.knnCache = null;
    this.setSpec(this.ctx.store.get().spec, space);
  }

  toggle(row: number): void {
    const s = this.ctx.store.get();
    this.setSpec(toggleRow(s.spec, row, s.mask[row] === 1));
  }

  remove(rows: Iterable<number>): void {
    this.setSpec(removeRows(this.ctx.store.get().spec, rows));
  }

  region(rows: Uint32Array, additive: boolean): void {
    this.setSpec(selectRegion(this.ctx.store.get().spec, rows, additive));
  }

  clearSelection(): void {
    this.setSpec(clearSelection(this.ctx.store.get().spec));
  }

  selectClass(classIndex: number, additive: boolean): void {
    const li = this.ctx.store.get().labelIndex;
    if (!li) return;
    const rows: number[] = [];
    for (let i = 0; i < li.perRow.length; i++) if (li.perRow[i] === classIndex) rows.push(i);
    this.region(Uint32Array.from(rows), additive);
  }

  /** `#123` focuses row 123 (and its neighbour group); other text selects matching metadata rows. Returns a message or "". */
  search(text: string): string {
    const s = this.ctx.store.get();
    const q = parseSearch(text);
    if (q.kind === "empty") return "";
    if (q.kind === "row") {
      if (q.row >= s.rows) return `There is no row ${q.row} (rows 0..${s.rows - 1}).`;
      this.focus(q.row);
      this.reveal(q.row, true);
      return "";
    }
    if (!s.metadata) return "This embedding has no metadata to search; use #row.";
    const rows = searchMetadata(s.metadata.data, q.text, s.rows);
    if (rows.length === 0) return `No row has metadata matching “${q.text}”.`;
    this.region(rows, false);
    return "";
  }

  onReveal(fn: (row: number, zoom: boolean) => void): void {
    this.revealListeners.add(fn);
  }

  /** Bring a row into view: centre and zoom in (`zoom`), or only pan to it when it is off-screen. */
  reveal(row: number, zoom = true): void {
    for (const fn of this.revealListeners) fn(row, zoom);
  }
}
