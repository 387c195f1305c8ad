// The shape of the one store every view reads (see store.ts).
import type { Predictions } from "./active";
import type { EmbeddingInfo, LabelState, Metadata, RoundsInfo, SessionStatus, Strategy, SuggestResponse } from "./api";
import type { BackgroundEstimate } from "./background";
import type { LabelIndex } from "./labels";
import type { LayoutSchema } from "./layoutParams";
import { carriedK, clearSelection, EMPTY_SPEC, type KnnSpace, type SelectionSpec } from "./selection";

export type Tool = "pan" | "box" | "lasso";

/** What colours the map: the labels, the classifier's predictions, or its uncertainty. */
export type ColorBy = "label" | "prediction" | "uncertainty";

export interface LayoutForm {
  method: "tsne" | "pca" | "umap";
  n_components: 2 | 3;
  perplexity: number;
  learning_rate: "auto" | number;
  theta: number;
  label_importance: number;
  repulsion_emphasis: number;
  supervision_start: number;
  point_learning_rate_epochs: number;
  random_state: number | null;
  /** Iteration budget of a t-SNE session (new labels after it add more). */
  n_iter: number;
  /** UMAP: neighbours of each point in its graph. */
  n_neighbors: number;
  /** UMAP: how tightly close points are packed, in [0, 1]. */
  min_dist: number;
  /** UMAP: how far the labels shape its graph (umap-learn's target_weight), in [0, 1]. */
  label_weight: number;
  /** UMAP: epoch budget (null: umap-learn's choice for the number of points). */
  n_epochs: number | null;
}

export interface Display {
  /** Thumbnail size multiplier. */
  size: number;
  /** Brightness threshold below which thumbnail pixels are not drawn (0 = off). */
  threshold: number;
  /** Tint thumbnails with their class colour. */
  tint: boolean;
  /** Dim unselected points while something is selected. */
  dimOthers: boolean;
  colorBy: ColorBy;
}

export interface AppState {
  embedding: EmbeddingInfo | null;
  rows: number;
  dims: number;
  metadata: Metadata | null;
  labelState: LabelState | null;
  labelIndex: LabelIndex | null;
  /** Normalised stride-3 positions the map is heading to; bumps on every frame. */
  positions: Float32Array | null;
  positionsRevision: number;
  /** Where the positions come from: the quick PCA preview ("client-pca": drawn before any session), a server session, or a round's model view. */
  positionsSource: "client-pca" | "session" | "model" | "none";
  /** 2 or 3: how the map draws (camera mode). */
  viewDims: 2 | 3;
  session: SessionStatus | null;
  /** The layout's parameters as the server declares them (null until fetched, or if that failed). */
  layoutSchema: LayoutSchema | null;
  form: LayoutForm;
  spec: SelectionSpec;
  knnSpace: KnnSpace;
  members: Uint32Array;
  mask: Uint8Array;
  /** The selection list's rows: members plus rows taken out of the group, in place (shown deselected). */
  listed: Uint32Array;
  hover: number;
  tool: Tool;
  display: Display;
  /** The thumbnails' background as read from the sprite, and the threshold chosen from it (null until read). */
  thresholdAuto: BackgroundEstimate | null;
  /** display.threshold is the user's own setting for this embedding (remembered in the browser), not the automatic one. */
  thresholdUser: boolean;
  /** The classifier's last answer (GET active/predictions), or null before the first. */
  predictions: Predictions | null;
  /** Why predictions could not be fetched (network, old server), or null. */
  predictionsError: string | null;
  strategy: Strategy;
  suggestCount: number;
  /** The last suggestions (POST active/suggest), or null. */
  suggestions: SuggestResponse | null;
  suggestBusy: boolean;
  /** Why there are no suggestions (e.g. the strategy needs a layout), or "". */
  suggestMessage: string;
  /** Row of the suggestion accepted last, or -1. */
  acceptedSuggestion: number;
  /** "Label selection as predicted" needs at least this confidence for every row. */
  sureThreshold: number;
  /** The classifier's rounds (GET rounds), or null until the Rounds panel is opened. */
  rounds: RoundsInfo | null;
  /** The round shown (1-based; its labeled rows are ringed on the map), 0 = none. */
  round: number;
  /** The map shows the shown round's model view (the classifier's hidden layer) instead of the layout. */
  modelView: boolean;
  /** The Rounds panel steps through the rounds by itself. */
  roundsPlaying: boolean;
  /** A label write in flight (buttons disable meanwhile). */
  writing: boolean;
  /** Sprite pages loaded so far. */
  pagesLoaded: number;
  /** Tensor, labels and every sprite page are loaded (the map is complete). */
  ready: boolean;
}

export function initialState(): AppState {
  return {
    embedding: null,
    rows: 0,
    dims: 0,
    metadata: null,
    labelState: null,
    labelIndex: null,
    positions: null,
    positionsRevision: 0,
    positionsSource: "none",
    viewDims: 2,
    session: null,
    layoutSchema: null,
    // The built-in defaults, until the server's schema (tsne/params.py) replaces them (see
    // layoutParams.ts); tests/test_layout_params.py checks they are the schema's.
    form: {
      method: "tsne",
      n_components: 2,
      perplexity: 20,
      learning_rate: "auto",
      theta: 0.5,
      // The engine's defaults (tensorboard_al_plugin/tsne/supervision.py DEFAULT_*, chosen with
      // benchmarks/label_legibility.py): labels pull a class together without clumping its thumbnails.
      label_importance: 0.1,
      repulsion_emphasis: 1,
      supervision_start: 0,
      point_learning_rate_epochs: 50,
      random_state: 0,
      n_iter: 1000,
      n_neighbors: 15,
      min_dist: 0.1,
      label_weight: 0.5,
      n_epochs: null,
    },
    spec: EMPTY_SPEC,
    knnSpace: "feature",
    members: new Uint32Array(0),
    mask: new Uint8Array(0),
    listed: new Uint32Array(0),
    hover: -1,
    tool: "pan",
    display: { size: 1, threshold: 0, tint: false, dimOthers: true, colorBy: "label" },
    thresholdAuto: null,
    thresholdUser: false,
    predictions: null,
    predictionsError: null,
    strategy: "tsne",
    suggestCount: 10,
    suggestions: null,
    suggestBusy: false,
    suggestMessage: "",
    acceptedSuggestion: -1,
    sureThreshold: 0.9,
    rounds: null,
    round: 0,
    modelView: false,
    roundsPlaying: false,
    writing: false,
    pagesLoaded: 0,
    ready: false,
  };
}

/**
 * What the person chose that stays when they open another embedding: the layout
 * settings, how the map draws and is worked (view dimensions, tool, display,
 * neighbours space), the active-learning settings. `positionsRevision` only ever
 * grows, so a view never mistakes a new map for the one it drew; `writing` is
 * cleared by the write still in flight.
 */
export const CARRIED_ACROSS_EMBEDDINGS = [
  "form",
  "layoutSchema",
  "viewDims",
  "positionsRevision",
  "knnSpace",
  "tool",
  "display",
  "strategy",
  "suggestCount",
  "sureThreshold",
  "writing",
] as const satisfies readonly (keyof AppState)[];

/**
 * The state when embedding `e` opens: everything from initialState() except
 * what is carried over from `prev`; the neighbours setting carries too, fitted
 * to `e` (never a 0), with nothing selected.
 */
export function stateForEmbedding(prev: AppState, e: EmbeddingInfo): AppState {
  const carried: Partial<AppState> = {};
  for (const k of CARRIED_ACROSS_EMBEDDINGS) Object.assign(carried, { [k]: prev[k] });
  return {
    ...initialState(),
    ...carried,
    embedding: e,
    rows: e.rows,
    dims: e.dims,
    spec: { ...clearSelection(prev.spec), k: carriedK(prev.spec.k, e.rows) },
    mask: new Uint8Array(e.rows),
  };
}
