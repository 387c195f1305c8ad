// The shape of the one store every view reads (see store.ts).
import type { EmbeddingInfo, LabelState, Metadata, SessionStatus } from "./api";
import type { LabelIndex } from "./labels";
import { EMPTY_SPEC, type KnnSpace, type SelectionSpec } from "./selection";

export type Tool = "pan" | "box" | "lasso";

export interface LayoutForm {
  method: "tsne" | "pca";
  n_components: 2 | 3;
  perplexity: number;
  learning_rate: "auto" | number;
  label_importance: number;
  repulsion_emphasis: number;
  supervision_start: number;
  point_learning_rate_epochs: number;
  random_state: number | null;
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
}

export interface AppState {
  embedding: EmbeddingInfo | null;
  rows: number;
  dims: number;
  /** rows x dims float32 features (feature-space kNN, client PCA). */
  tensor: Float32Array | null;
  metadata: Metadata | null;
  labelState: LabelState | null;
  labelIndex: LabelIndex | null;
  /** Normalised stride-3 positions the map is heading to; bumps on every frame. */
  positions: Float32Array | null;
  positionsRevision: number;
  /** Where the positions come from: the quick client-side PCA, or a server session. */
  positionsSource: "client-pca" | "session" | "none";
  /** 2 or 3: how the map draws (camera mode). */
  viewDims: 2 | 3;
  session: SessionStatus | null;
  form: LayoutForm;
  spec: SelectionSpec;
  knnSpace: KnnSpace;
  members: Uint32Array;
  mask: Uint8Array;
  hover: number;
  tool: Tool;
  display: Display;
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
    tensor: null,
    metadata: null,
    labelState: null,
    labelIndex: null,
    positions: null,
    positionsRevision: 0,
    positionsSource: "none",
    viewDims: 2,
    session: null,
    form: {
      method: "tsne",
      n_components: 2,
      perplexity: 20,
      learning_rate: "auto",
      label_importance: 1,
      repulsion_emphasis: 1,
      supervision_start: 0,
      point_learning_rate_epochs: 50,
      random_state: 0,
    },
    spec: EMPTY_SPEC,
    knnSpace: "feature",
    members: new Uint32Array(0),
    mask: new Uint8Array(0),
    hover: -1,
    tool: "pan",
    display: { size: 1, threshold: 0, tint: false, dimOthers: true },
    writing: false,
    pagesLoaded: 0,
    ready: false,
  };
}
