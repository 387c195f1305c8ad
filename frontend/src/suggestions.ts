// Active-learning suggestions: ask the server for the next rows to label with
// the chosen strategy, accept one (its row focused with its group selected),
// and the confidence "label as predicted" needs.
import { type ActionContext, currentRef, messageOf } from "./actionContext";
import { suggestionSpec } from "./active";
import { type Api, ApiError, type Strategy, type SuggestionItem } from "./api";
import { PREDICTIONS_DEBOUNCE_MS, type PredictionsFollower } from "./predictionsFollower";
import type { SelectionController } from "./selectionController";

export type SuggestionsApi = Pick<Api, "suggest">;

export class SuggestionsController {
  /** `loadGeneration`: changes when another embedding opens (an answer for the old one is dropped). */
  constructor(
    private readonly api: SuggestionsApi,
    private readonly ctx: ActionContext,
    private readonly selection: SelectionController,
    private readonly predictions: PredictionsFollower,
    private readonly loadGeneration: () => number,
  ) {}

  setStrategy(strategy: Strategy): void {
    this.ctx.store.set({ strategy });
  }

  /** Ask the server for the next rows to label with the chosen strategy. */
  async suggest(): Promise<void> {
    const { store, host } = this.ctx;
    const ref = currentRef(store);
    const s = store.get();
    if (!ref || s.suggestBusy) return;
    const token = this.loadGeneration();
    store.set({ suggestBusy: true, suggestMessage: "" });
    try {
      const res = await this.api.suggest(ref, s.strategy, s.suggestCount);
      if (token !== this.loadGeneration()) return;
      store.set({
        suggestions: res,
        acceptedSuggestion: -1,
        suggestMessage: res.items.length ? "" : "Nothing to suggest: every row is labeled.",
      });
      // Suggesting may have queued a retrain: follow the classifier.
      const p = store.get().predictions;
      if (!p || p.status !== "ready") this.predictions.schedule(PREDICTIONS_DEBOUNCE_MS);
    } catch (err) {
      if (token !== this.loadGeneration()) return;
      // 400/409 say what the strategy needs (labels of two classes, a layout): a hint, not a failure.
      const hint = err instanceof ApiError && (err.status === 400 || err.status === 409);
      store.set({ suggestions: null, suggestMessage: hint ? messageOf(err) : `Could not get suggestions: ${messageOf(err)}` });
      if (!hint) host.showError(`Could not get suggestions: ${messageOf(err)}`, () => void this.suggest());
    } finally {
      if (token === this.loadGeneration()) store.set({ suggestBusy: false });
    }
  }

  /** Accept a suggestion: focus its row with its group pre-selected; the neighbours setting stays. */
  accept(item: SuggestionItem): void {
    const s = this.ctx.store.get();
    if (item.row < 0 || item.row >= s.rows) return;
    this.selection.forgetNeighbours();
    this.selection.setSpec(suggestionSpec(item, s.rows, s.spec.k));
    this.ctx.store.set({ acceptedSuggestion: item.row });
    this.selection.reveal(item.row, false);
  }

  setSureThreshold(t: number): void {
    if (Number.isFinite(t)) this.ctx.store.set({ sureThreshold: Math.min(1, Math.max(0, t)) });
  }
}
