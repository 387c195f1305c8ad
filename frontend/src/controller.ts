// Actions of the labeling view. Views call these and read the store; only the
// parts behind this facade talk to the server for the labeling view, each in
// its own module:
//   embeddingLoader.ts      opening an embedding (state reset from initialState())
//   selectionController.ts  focus, neighbour groups, regions, search
//   labelsController.ts     label writes, undo/redo, export, refresh
//   predictionsFollower.ts  following the classifier's predictions
//   suggestions.ts          active-learning suggestions
//   layoutSession.ts        the PCA preview and the live layout session
//   darkPixels.ts           the "hide dark pixels" threshold
//   roundsController.ts     the classifier's rounds and their model view
import type { ActionContext, Host } from "./actionContext";
import type { Api, EmbeddingInfo, EmbeddingRef, Strategy, SuggestionItem } from "./api";
import { currentRef } from "./actionContext";
import { DarkPixelThreshold } from "./darkPixels";
import { EmbeddingLoader } from "./embeddingLoader";
import { FeatureNeighbours } from "./featureNeighbours";
import { LabelsController } from "./labelsController";
import { LayoutSession } from "./layoutSession";
import { PREDICTIONS_DEBOUNCE_MS, PredictionsFollower } from "./predictionsFollower";
import { RoundsController } from "./roundsController";
import type { Scene } from "./scene";
import { SelectionController } from "./selectionController";
import type { KnnSpace, SelectionSpec } from "./selection";
import type { AppState, LayoutForm } from "./state";
import type { Store } from "./store";
import { SuggestionsController } from "./suggestions";

export { messageOf, type Host } from "./actionContext";

export class Controller {
  private readonly ctx: ActionContext;
  readonly selection: SelectionController;
  readonly labels: LabelsController;
  readonly predictions: PredictionsFollower;
  readonly suggestions: SuggestionsController;
  readonly layout: LayoutSession;
  readonly threshold: DarkPixelThreshold;
  readonly loader: EmbeddingLoader;
  readonly rounds: RoundsController;

  constructor(
    readonly api: Api,
    readonly store: Store<AppState>,
    host: Host,
  ) {
    this.ctx = { store, host, scene: null };
    this.selection = new SelectionController(this.ctx, new FeatureNeighbours(api, this.ctx));
    this.predictions = new PredictionsFollower(api, this.ctx);
    this.layout = new LayoutSession(api, this.ctx);
    void this.layout.loadSchema();
    this.labels = new LabelsController(api, this.ctx, () => {
      // New labels: the server retrains the classifier and resumes a finished t-SNE; follow both.
      if (store.get().embedding?.labels_supported) this.predictions.schedule(PREDICTIONS_DEBOUNCE_MS);
      this.layout.followFinished();
    });
    this.threshold = new DarkPixelThreshold(this.ctx);
    this.loader = new EmbeddingLoader(api, this.ctx, {
      selection: this.selection,
      labels: this.labels,
      predictions: this.predictions,
      layout: this.layout,
      threshold: this.threshold,
    });
    this.suggestions = new SuggestionsController(api, this.ctx, this.selection, this.predictions, () => this.loader.generation());
    this.rounds = new RoundsController(api, this.ctx, () => this.layout.reshow());
    // Every retrain is a round: a new model version means a new round to list (when the panel is open).
    store.subscribe((s, changed) => {
      if (changed.has("predictions") && s.predictions?.version !== this.roundsSeenVersion) {
        this.roundsSeenVersion = s.predictions?.version ?? null;
        void this.rounds.refresh();
      }
    });
  }

  private roundsSeenVersion: number | null = null;

  /** The map's scene; the map view sets it once built. */
  get scene(): Scene | null {
    return this.ctx.scene;
  }

  set scene(scene: Scene | null) {
    this.ctx.scene = scene;
  }

  ref(): EmbeddingRef | null {
    return currentRef(this.store);
  }

  // ---------------------------------------------------------------- loading

  /** Load embedding `e`; `scope` tells apart the browser preferences of different log directories. */
  open(e: EmbeddingInfo, scope = ""): Promise<void> {
    this.rounds.reset();
    return this.loader.open(e, scope);
  }

  close(): void {
    this.loader.close();
  }

  setThreshold(value: number): void {
    this.threshold.set(value);
  }

  autoThreshold(): void {
    this.threshold.auto();
  }

  // -------------------------------------------------------------- selection

  onReveal(fn: (row: number, zoom: boolean) => void): void {
    this.selection.onReveal(fn);
  }

  reveal(row: number, zoom = true): void {
    this.selection.reveal(row, zoom);
  }

  setSpec(spec: SelectionSpec, space?: KnnSpace): void {
    this.selection.setSpec(spec, space);
  }

  focus(row: number): void {
    this.selection.focus(row);
  }

  setK(k: number): void {
    this.selection.setK(k);
  }

  setKnnSpace(space: KnnSpace): void {
    this.selection.setKnnSpace(space);
  }

  toggle(row: number): void {
    this.selection.toggle(row);
  }

  remove(rows: Iterable<number>): void {
    this.selection.remove(rows);
  }

  region(rows: Uint32Array, additive: boolean): void {
    this.selection.region(rows, additive);
  }

  clearSelection(): void {
    this.selection.clearSelection();
  }

  selectClass(classIndex: number, additive: boolean): void {
    this.selection.selectClass(classIndex, additive);
  }

  search(text: string): string {
    return this.selection.search(text);
  }

  // --------------------------------------------------------------- labeling

  refreshLabels(): Promise<void> {
    return this.labels.refresh();
  }

  applyLabel(label: string): Promise<string> {
    return this.labels.apply(label);
  }

  applyClassNumber(k: number): Promise<string> {
    return this.labels.applyClassNumber(k);
  }

  clearLabels(): Promise<string> {
    return this.labels.clear();
  }

  undo(): Promise<void> {
    return this.labels.undo();
  }

  redo(): Promise<void> {
    return this.labels.redo();
  }

  labelAsPredicted(): Promise<string> {
    return this.labels.labelAsPredicted();
  }

  exportCsv(): void {
    this.labels.exportCsv();
  }

  // ------------------------------------------------------- active learning

  schedulePredictions(delayMs: number): void {
    this.predictions.schedule(delayMs);
  }

  setStrategy(strategy: Strategy): void {
    this.suggestions.setStrategy(strategy);
  }

  suggest(): Promise<void> {
    return this.suggestions.suggest();
  }

  acceptSuggestion(item: SuggestionItem): void {
    this.suggestions.accept(item);
  }

  setSureThreshold(t: number): void {
    this.suggestions.setSureThreshold(t);
  }

  // ----------------------------------------------------------------- layout

  setForm(patch: Partial<LayoutForm>): void {
    this.layout.setForm(patch);
  }

  startLayout(): Promise<void> {
    return this.layout.start();
  }

  toggleLayout(): Promise<void> {
    return this.layout.toggle();
  }
}
