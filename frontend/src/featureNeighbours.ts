// Feature-space neighbour groups, answered by the server (GET neighbours): the
// tab never holds the features (200 MB of float32 at 1M x 50). A focus row's
// nearest rows are fetched once for a few more than the neighbours setting
// asks (so widening the group does not ask again at every step) and kept
// until the focus or the embedding changes; the selection is resolved again
// when they arrive.
import { type ActionContext, currentRef, messageOf, sameRef } from "./actionContext";
import type { Api, EmbeddingRef } from "./api";

export type NeighboursApi = Pick<Api, "featureNeighbours">;

/** At least this many neighbours are fetched per focus (4 KB; a slider drag rarely goes further). */
export const MIN_FETCH = 1024;
/** A fetch that takes longer than this says so in the progress bar. */
const PROGRESS_AFTER_MS = 300;

interface Known {
  ref: EmbeddingRef;
  focus: number;
  /** Nearest first; all rows but the focus once `complete`. */
  order: Uint32Array;
  complete: boolean;
}

export class FeatureNeighbours {
  private known: Known | null = null;
  private asking: { ref: EmbeddingRef; focus: number; k: number } | null = null;
  private arrived = new Set<() => void>();

  constructor(
    private readonly api: NeighboursApi,
    private readonly ctx: ActionContext,
  ) {}

  /** Called when neighbours arrive (the selection is resolved again). */
  onArrive(fn: () => void): void {
    this.arrived.add(fn);
  }

  /** Another embedding: nothing known, answers still in flight are dropped. */
  forget(): void {
    this.known = null;
    this.asking = null;
  }

  /**
   * The nearest rows of `focus` known now (null: none yet), nearest first; at
   * least `k` of them unless a fetch for more is under way, which then calls
   * the onArrive listeners.
   */
  order(focus: number, k: number): Uint32Array | null {
    const ref = currentRef(this.ctx.store);
    const rows = this.ctx.store.get().rows;
    if (!ref || focus < 0 || focus >= rows) return null;
    const known = this.known && sameRef(this.known.ref, ref) && this.known.focus === focus ? this.known : null;
    const want = Math.min(rows - 1, k);
    if (!known || (!known.complete && known.order.length < want)) this.ask(ref, focus, want, rows);
    return known ? known.order : null;
  }

  private ask(ref: EmbeddingRef, focus: number, want: number, rows: number): void {
    const a = this.asking;
    if (a && sameRef(a.ref, ref) && a.focus === focus && a.k >= want) return;
    // Room to widen: the next power of two above what is asked, at least MIN_FETCH.
    const k = Math.min(rows - 1, Math.max(MIN_FETCH, 2 ** Math.ceil(Math.log2(Math.max(1, want)))));
    const asking = { ref, focus, k };
    this.asking = asking;
    const { host } = this.ctx;
    let shown = false;
    const timer = setTimeout(() => {
      if (this.asking !== asking) return;
      shown = true;
      host.setProgress(`Finding the ${k.toLocaleString("en-US")} nearest rows of row ${focus}…`, -1);
    }, PROGRESS_AFTER_MS);
    this.api
      .featureNeighbours(ref, focus, k)
      .then((order) => {
        if (this.asking !== asking) return;
        this.known = { ref, focus, order, complete: order.length >= rows - 1 || order.length < k };
        this.asking = null;
        for (const fn of this.arrived) fn();
      })
      .catch((err) => {
        if (this.asking !== asking) return;
        this.asking = null;
        host.showError(`Could not find the neighbours of row ${focus}: ${messageOf(err)}`);
      })
      .finally(() => {
        clearTimeout(timer);
        if (shown) host.setProgress(null);
      });
  }
}
