// HTTP client for the plugin's routes (docs/HTTP_API.md). Every call either
// resolves with data or rejects with an ApiError whose message is one clear
// sentence fit to show the user; nothing waits forever (each request has a
// timeout).
import { normalizePositions } from "./camera";
import type { LayoutSchema } from "./layoutParams";

export interface SpriteInfo {
  thumb_width: number;
  thumb_height: number;
  per_row: number;
  per_page: number;
  pages: number;
  page_sizes: [number, number][];
}

export interface EmbeddingInfo {
  run: string;
  name: string;
  format: string;
  /** null when a broken source could not be read far enough to tell. */
  rows: number;
  dims: number;
  metadata_columns: string[];
  sprite: SpriteInfo | null;
  labels_supported: boolean;
  problems: string[];
  ok: boolean;
}

export interface EmbeddingList {
  logdir: string;
  scanning: boolean;
  embeddings: EmbeddingInfo[];
}

export interface LabelClass {
  name: string;
  count: number;
}

export interface LabelState {
  version: number;
  labels: (string | null)[];
  classes: LabelClass[];
  can_undo: boolean;
  can_redo: boolean;
}

/** What an assign or clear answers when asked for `answer: "changes"`: the
 * state without its per-row labels when this write is the only change since
 * `changes_from` (else a whole LabelState, with `labels`). */
export interface LabelAnswer extends Omit<LabelState, "labels"> {
  labels?: (string | null)[];
  changes_from?: number;
  changes?: { label: string | null; rows: number[] }[];
}

export interface Metadata {
  columns: string[];
  data: string[][];
}

/** One classifier retrain (GET rounds; tensorboard_al_plugin/rounds.py). */
export interface RoundInfo {
  round: number;
  id: string;
  /** The label store's version the classifier was trained on. */
  version: number;
  time: string;
  rows: number;
  n_labeled: number;
  classes: (string | number)[];
  /** [row, new label or null (cleared)] for every row changed since the round before. */
  changed: [number, string | null][];
  /** Cross-validated on the round's labeled rows; null until estimated (or when it cannot be). */
  accuracy: number | null;
  accuracy_std: number | null;
  /** Folds of the estimate; 0 = not estimated yet (or measured on a held-out set), -1 = too few labels to estimate. */
  accuracy_folds: number;
  /** What the accuracy was measured on: cross-validated on the round's labeled rows, or a held-out set (benchmark recordings). */
  accuracy_on: "labeled rows" | "held-out set";
  /** Rows the Suggest panel offered since the round before. */
  suggested: number[];
  n_components: number;
  train_seconds: number;
}

export interface RoundsInfo {
  rounds: RoundInfo[];
  /** The server is computing accuracy estimates: ask again for them. */
  estimating: boolean;
  problems: string[];
}

/** "waiting": queued for a free slot (the server runs a few layouts at a time). */
export type SessionState = "preparing" | "waiting" | "running" | "paused" | "done" | "error";

export interface SessionStatus {
  run: string;
  embedding: string;
  method: string;
  state: SessionState;
  progress: number;
  iteration: number;
  objective: number | null;
  n_components: number;
  params: Record<string, unknown>;
  error: string | null;
  /** Memory released while nobody watched; resume rebuilds it. */
  freed?: boolean;
  /** While preparing: the step under way (absent from servers before phases were reported). */
  phase?: LayoutPhase | null;
  /** Fraction of that step done. */
  phase_progress?: number;
  /** Seconds left of the preparation at the speed so far; null when not known yet. */
  eta_s?: number | null;
}

/** The preparation steps of a layout session, in order (sessions.PHASES). */
export type LayoutPhase = "loading" | "neighbors" | "affinities" | "pca" | "first_iterations";

/** Positions as the map draws them: stride 3, centred on their bounding box, larger half-extent 1 (normalizePositions). */
export interface PositionsFrame {
  normalized: Float32Array;
  rows: number;
  /** Columns the server sent (1..3 are drawn; 3 means a 3D layout). */
  dims: number;
}

export interface LayoutFrame extends PositionsFrame {
  iteration: number;
  objective: number | null;
  state: string;
}

export type ClassifierStatus = "idle" | "training" | "ready" | "needs_labels" | "error";

/** GET active/predictions: the last trained classifier's view of every row. */
export interface PredictionsResponse {
  status: ClassifierStatus;
  /** Label version the model was trained on (null before the first model). */
  version: number | null;
  classes: string[];
  error: string | null;
  train_seconds: number;
  /** Present once a model exists: class index (into `classes`) per row. */
  predicted?: number[];
  confidence?: number[];
  /** Entropy of the predicted distribution (nats) per row. */
  uncertainty?: number[];
}

export const STRATEGIES = ["tsne", "tsne-supervised", "tsne-assisted", "random", "least-confidence", "margin", "entropy", "ensemble", "adversarial"] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface SuggestionItem {
  row: number;
  score: number;
  /** Rows to pre-select when the suggestion is accepted (the focus row first). */
  group: number[];
  predicted: string | null;
  confidence: number | null;
}

export interface SuggestResponse {
  strategy: Strategy;
  version: number;
  items: SuggestionItem[];
}

export interface EmbeddingRef {
  run: string;
  embedding: string;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly route: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** Progress callback: bytes received so far and total bytes (0 when unknown). */
export type ProgressFn = (loaded: number, total: number) => void;

const DEFAULT_TIMEOUT_MS = 60_000;

export class Api {
  /** `base` is relative to the iframe's <base href="plugin/active_labeling/">. */
  constructor(
    private readonly base = "./",
    private readonly user: string | null = null,
  ) {}

  url(route: string, params: Record<string, string | number | undefined> = {}): string {
    const q = Object.entries(params)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join("&");
    return this.base + route + (q ? `?${q}` : "");
  }

  private async request(
    route: string,
    init: RequestInit & { params?: Record<string, string | number | undefined>; timeoutMs?: number } = {},
  ): Promise<Response> {
    const controller = new AbortController();
    const timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let res: Response;
    try {
      res = await fetch(this.url(route, init.params), { ...init, signal: controller.signal });
    } catch (e) {
      clearTimeout(timer);
      if (controller.signal.aborted) {
        throw new ApiError(`The server did not answer ${route} within ${Math.round(timeoutMs / 1000)} s.`, 0, route);
      }
      throw new ApiError(`Cannot reach the TensorBoard server (${route}): ${(e as Error).message}.`, 0, route);
    }
    clearTimeout(timer);
    if (!res.ok) throw await errorFrom(res, route);
    return res;
  }

  private async getJson<T>(route: string, params?: Record<string, string | number | undefined>): Promise<T> {
    const res = await this.request(route, { params });
    return (await res.json()) as T;
  }

  private async postJson<T>(route: string, body: unknown, timeoutMs?: number): Promise<T> {
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      // The server refuses writes without this header (a foreign page cannot set it).
      "X-Requested-With": "tensorboard-al",
    };
    if (this.user) headers["X-AL-User"] = this.user;
    const res = await this.request(route, { method: "POST", headers, body: JSON.stringify(body), timeoutMs });
    return (await res.json()) as T;
  }

  embeddings(refresh = false): Promise<EmbeddingList> {
    return this.getJson("embeddings", refresh ? { refresh: 1 } : {});
  }

  /**
   * The quick first look: the features on their first 3 principal axes,
   * computed by the server (the tab never downloads the features themselves).
   * `onProgress` follows the download; the server's PCA comes before its first byte.
   */
  async preview(ref: EmbeddingRef, onProgress?: ProgressFn): Promise<PositionsFrame> {
    const res = await this.request("preview", { params: { run: ref.run, embedding: ref.embedding, format: "u16" }, timeoutMs: 600_000 });
    return positionsFrom(res, await readBody(res, onProgress), "preview");
  }

  /** The `k` nearest rows of `row` in feature space, nearest first (fewer when the embedding has fewer rows). */
  async featureNeighbours(ref: EmbeddingRef, row: number, k: number): Promise<Uint32Array> {
    const res = await this.request("neighbours", { params: { run: ref.run, embedding: ref.embedding, row, k } });
    const buf = await res.arrayBuffer();
    if (buf.byteLength % 4 !== 0) throw new ApiError(`The neighbours of row ${row} came as ${buf.byteLength} bytes, not uint32 data.`, 200, "neighbours");
    return new Uint32Array(buf);
  }

  metadata(ref: EmbeddingRef): Promise<Metadata> {
    return this.getJson("metadata", { run: ref.run, embedding: ref.embedding });
  }

  spriteUrl(ref: EmbeddingRef, page: number): string {
    return this.url("sprite", { run: ref.run, embedding: ref.embedding, page });
  }

  async spritePage(ref: EmbeddingRef, page: number): Promise<Blob> {
    const res = await this.request("sprite", { params: { run: ref.run, embedding: ref.embedding, page }, timeoutMs: 600_000 });
    return await res.blob();
  }

  labels(ref: EmbeddingRef): Promise<LabelState> {
    return this.getJson("labels", { run: ref.run, embedding: ref.embedding });
  }

  assign(ref: EmbeddingRef, rows: number[], label: string, baseVersion: number): Promise<LabelAnswer> {
    return this.postJson("labels/assign", { ...ref, rows, label, base_version: baseVersion, answer: "changes" });
  }

  clear(ref: EmbeddingRef, rows: number[], baseVersion: number): Promise<LabelAnswer> {
    return this.postJson("labels/clear", { ...ref, rows, base_version: baseVersion, answer: "changes" });
  }

  undo(ref: EmbeddingRef, baseVersion: number): Promise<LabelState> {
    return this.postJson("labels/undo", { ...ref, base_version: baseVersion });
  }

  redo(ref: EmbeddingRef, baseVersion: number): Promise<LabelState> {
    return this.postJson("labels/redo", { ...ref, base_version: baseVersion });
  }

  exportUrl(ref: EmbeddingRef): string {
    return this.url("labels/export", { run: ref.run, embedding: ref.embedding });
  }

  /** The layout's parameters: kinds, bounds, defaults, which are live (tsne/params.py). */
  layoutSchema(): Promise<LayoutSchema> {
    return this.getJson("layout/schema");
  }

  layoutStart(ref: EmbeddingRef, params: Record<string, unknown>): Promise<SessionStatus> {
    return this.postJson("layout/start", { ...ref, ...params });
  }

  layoutPause(ref: EmbeddingRef): Promise<SessionStatus> {
    return this.postJson("layout/pause", ref);
  }

  layoutResume(ref: EmbeddingRef): Promise<SessionStatus> {
    return this.postJson("layout/resume", ref);
  }

  layoutParams(ref: EmbeddingRef, params: Record<string, unknown>): Promise<SessionStatus> {
    return this.postJson("layout/params", { ...ref, ...params });
  }

  /** The running session of an embedding, or null when there is none (404). */
  async layoutStatus(ref: EmbeddingRef): Promise<SessionStatus | null> {
    try {
      return await this.getJson<SessionStatus>("layout/status", { run: ref.run, embedding: ref.embedding });
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }

  predictions(ref: EmbeddingRef): Promise<PredictionsResponse> {
    return this.getJson("active/predictions", { run: ref.run, embedding: ref.embedding });
  }

  suggest(ref: EmbeddingRef, strategy: Strategy, n: number): Promise<SuggestResponse> {
    // Suggestions may train a classifier on the spot: allow more than the default minute.
    return this.postJson("active/suggest", { ...ref, strategy, n }, 300_000);
  }

  /** The classifier's rounds (every retrain is one); asking starts their accuracy estimates on the server. */
  rounds(ref: EmbeddingRef): Promise<RoundsInfo> {
    return this.getJson<RoundsInfo>("rounds", { run: ref.run, embedding: ref.embedding });
  }

  /** Round `round`'s model view: the classifier's hidden layer per row on its first principal axes. */
  async roundPositions(ref: EmbeddingRef, round: number): Promise<PositionsFrame> {
    const res = await this.request("rounds/positions", { params: { run: ref.run, embedding: ref.embedding, round, format: "u16" } });
    return positionsFrom(res, await res.arrayBuffer(), "rounds/positions");
  }

  /** The live layout's latest frame, 2 bytes a coordinate (uint16 against its bounding box) from servers that can. */
  async layoutPositions(ref: EmbeddingRef): Promise<LayoutFrame> {
    const res = await this.request("layout/positions", { params: { run: ref.run, embedding: ref.embedding, format: "u16" } });
    const frame = positionsFrom(res, await res.arrayBuffer(), "layout/positions");
    const objective = res.headers.get("X-Objective");
    return {
      ...frame,
      iteration: Number(res.headers.get("X-Iteration") ?? 0),
      objective: objective === null || objective === "" || objective === "None" ? null : Number(objective),
      state: res.headers.get("X-State") ?? "",
    };
  }
}

async function errorFrom(res: Response, route: string): Promise<ApiError> {
  let message = "";
  try {
    const text = await res.text();
    try {
      const body = JSON.parse(text);
      if (body && typeof body.error === "string") message = body.error;
    } catch {
      // Not JSON (e.g. TensorBoard's own 404 page): fall back to the status line.
    }
  } catch {
    // Body unreadable: the status line is all we have.
  }
  if (!message) {
    message =
      res.status === 404
        ? `The server has no route ${route} (is the plugin's backend up to date?).`
        : `The server answered ${res.status} ${res.statusText} for ${route}.`;
  }
  return new ApiError(message, res.status, route);
}

async function readBody(res: Response, onProgress?: ProgressFn): Promise<ArrayBuffer> {
  const total = Number(res.headers.get("Content-Length") ?? 0);
  if (!res.body || !onProgress) return await res.arrayBuffer();
  const reader = res.body.getReader();
  // Preallocate when the length is known so a large answer is not copied twice.
  if (total > 0) {
    const out = new Uint8Array(total);
    let loaded = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (loaded + value.length > total) throw new ApiError(`${res.url} is longer than announced.`, 200, "binary");
      out.set(value, loaded);
      loaded += value.length;
      onProgress(loaded, total);
    }
    return loaded === total ? out.buffer : out.buffer.slice(0, loaded);
  }
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress(loaded, 0);
  }
  const out = new Uint8Array(loaded);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out.buffer;
}

/**
 * A positions answer (X-Rows x X-Dims, X-Format "u16" with X-Bounds, or float32
 * from servers before formats) decoded straight into the map's normalised
 * stride-3 coordinates: one pass, one array.
 */
export function positionsFrom(res: Response, buf: ArrayBuffer, route: string): PositionsFrame {
  const rows = Number(res.headers.get("X-Rows"));
  const dims = Number(res.headers.get("X-Dims"));
  if (!Number.isInteger(rows) || !Number.isInteger(dims) || rows < 0 || dims < 0) {
    throw new ApiError(`The server sent positions without a valid size (${res.headers.get("X-Rows")} x ${res.headers.get("X-Dims")}).`, 200, route);
  }
  if (res.headers.get("X-Format") === "u16") {
    if (buf.byteLength !== rows * dims * 2) throw new ApiError(`${route} sent ${buf.byteLength} bytes, not ${rows} x ${dims} uint16.`, 200, route);
    const bounds = (res.headers.get("X-Bounds") ?? "").split(",").map(Number);
    if (bounds.length !== 2 * dims || !bounds.every(Number.isFinite)) throw new ApiError(`${route} sent bounds "${res.headers.get("X-Bounds")}" for ${dims} columns.`, 200, route);
    return { normalized: decodeU16Positions(new Uint16Array(buf), rows, dims, bounds), rows, dims };
  }
  const raw = float32FromBytes(buf);
  if (raw.length !== rows * dims) throw new ApiError(`${route} sent ${raw.length} values, not ${rows} x ${dims}.`, 200, route);
  return { normalized: normalizePositions(raw, rows, dims), rows, dims };
}

/** Quantised coordinates past this mark a value that was not finite (tensorboard_al_plugin/wire.py). */
const U16_MAX = 65534;

/**
 * `q` (rows x dims uint16, q = (v - lo) / (hi - lo) * 65534 per column, 65535
 * for a non-finite v) as normalizePositions would give the values v: stride 3,
 * centred on the bounding box of the first 3 columns, larger half-extent 1,
 * non-finite at the centre. `bounds` = lo0, hi0, lo1, hi1, ...
 */
export function decodeU16Positions(q: Uint16Array, rows: number, dims: number, bounds: number[], out?: Float32Array): Float32Array {
  const pos = out && out.length === rows * 3 ? out : new Float32Array(rows * 3);
  const d = Math.min(3, dims);
  let half = 0;
  for (let k = 0; k < d; k++) half = Math.max(half, (bounds[2 * k + 1] - bounds[2 * k]) / 2);
  const s = half > 0 ? 1 / half : 1;
  // v = lo + q * step, normalised: (v - mid) * s = q * (step * s) + (lo - mid) * s
  const mul = [0, 0, 0];
  const add = [0, 0, 0];
  for (let k = 0; k < d; k++) {
    const lo = bounds[2 * k];
    const hi = bounds[2 * k + 1];
    mul[k] = ((hi - lo) / U16_MAX) * s;
    add[k] = (lo - (lo + hi) / 2) * s;
  }
  const [m0, m1, m2] = mul;
  const [a0, a1, a2] = add;
  // One pass over the points, one loop per shape: this runs for every frame of a live layout.
  if (d >= 3) {
    for (let i = 0, j = 0, o = 0; i < rows; i++, j += dims, o += 3) {
      const x = q[j];
      const y = q[j + 1];
      const z = q[j + 2];
      pos[o] = x > U16_MAX ? 0 : x * m0 + a0;
      pos[o + 1] = y > U16_MAX ? 0 : y * m1 + a1;
      pos[o + 2] = z > U16_MAX ? 0 : z * m2 + a2;
    }
  } else if (d === 2) {
    for (let i = 0, j = 0, o = 0; i < rows; i++, j += dims, o += 3) {
      const x = q[j];
      const y = q[j + 1];
      pos[o] = x > U16_MAX ? 0 : x * m0 + a0;
      pos[o + 1] = y > U16_MAX ? 0 : y * m1 + a1;
      pos[o + 2] = 0;
    }
  } else {
    for (let i = 0, j = 0, o = 0; i < rows; i++, j += dims, o += 3) {
      const x = d ? q[j] : 0;
      pos[o] = !d || x > U16_MAX ? 0 : x * m0 + a0;
      pos[o + 1] = 0;
      pos[o + 2] = 0;
    }
  }
  return pos;
}

/** Little-endian float32 view of a byte buffer (every browser we target is little-endian). */
export function float32FromBytes(buf: ArrayBuffer): Float32Array {
  if (buf.byteLength % 4 !== 0) throw new ApiError(`Binary answer of ${buf.byteLength} bytes is not float32 data.`, 200, "binary");
  return new Float32Array(buf);
}
