// Shared helpers of the controller-part tests: a store, a host that records
// what the page would show, embeddings and label states, and deferred answers
// for fake api objects (plain objects implementing the calls a part makes).
import type { ActionContext, Host } from "../src/actionContext";
import type { EmbeddingInfo, EmbeddingRef, LabelState } from "../src/api";
import type { NeighboursApi } from "../src/featureNeighbours";
import { knnOrder } from "../src/selection";
import { initialState, type AppState } from "../src/state";
import { Store } from "../src/store";

export class RecordingHost implements Host {
  progress: (string | null)[] = [];
  errors: string[] = [];
  retries: (() => void)[] = [];
  notices: string[] = [];

  setProgress(text: string | null): void {
    this.progress.push(text);
  }

  showError(message: string, retry?: () => void): void {
    this.errors.push(message);
    if (retry) this.retries.push(retry);
  }

  showNotice(message: string): void {
    this.notices.push(message);
  }
}

export interface TestContext extends ActionContext {
  readonly host: RecordingHost;
}

export function context(patch: Partial<AppState> = {}): TestContext {
  const store = new Store<AppState>({ ...initialState(), ...patch });
  return { store, host: new RecordingHost(), scene: null };
}

export function embedding(patch: Partial<EmbeddingInfo> = {}): EmbeddingInfo {
  return {
    run: "run1",
    name: "digits",
    format: "npy",
    rows: 8,
    dims: 2,
    metadata_columns: [],
    sprite: null,
    labels_supported: true,
    problems: [],
    ok: true,
    ...patch,
  };
}

/** Row i at (i, i % 2 / 10): the nearest rows of a row are the rows next to it. */
export function lineTensor(rows: number): Float32Array {
  const t = new Float32Array(rows * 2);
  for (let i = 0; i < rows; i++) {
    t[2 * i] = i;
    t[2 * i + 1] = (i % 2) / 10;
  }
  return t;
}

export function labelState(labels: (string | null)[], version = 1, more: Partial<LabelState> = {}): LabelState {
  const counts = new Map<string, number>();
  for (const l of labels) if (l !== null) counts.set(l, (counts.get(l) ?? 0) + 1);
  return { version, labels, classes: [...counts].map(([name, count]) => ({ name, count })), can_undo: false, can_redo: false, ...more };
}

/** A context with embedding `e` loaded (its features on a line, see lineNeighbours), and labels when given. */
export function loaded(rows = 8, labels: LabelState | null = labelState(new Array(rows).fill(null), 1), patch: Partial<EmbeddingInfo> = {}): TestContext {
  const e = embedding({ rows, ...patch });
  return context({ embedding: e, rows, dims: 2, mask: new Uint8Array(rows), labelState: labels });
}

/** The server's GET neighbours for features lineTensor(rows): the nearest rows of a row are the rows next to it. */
export function lineNeighbours(rows: number, asked: string[] = []): NeighboursApi {
  const t = lineTensor(rows);
  return {
    featureNeighbours: async (_ref: EmbeddingRef, row: number, k: number) => {
      asked.push(`neighbours ${row} ${k}`);
      return knnOrder(t, rows, 2, row).slice(0, k);
    },
  };
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Let pending promise callbacks run (also under mocked timers). */
export async function flushPromises(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** Let zero-delay timers set so far, and the promise callbacks they start, run. */
export async function settle(): Promise<void> {
  // Timers of equal delay fire in the order they were set: this one after those.
  await new Promise((r) => setTimeout(r, 0));
  await flushPromises();
}

/** What the server sends for `values` (rows x dims) in format u16: the same formula as wire.encode_positions. */
export function encodeU16(values: Float32Array, rows: number, dims: number): { q: Uint16Array; bounds: number[] } {
  const bounds: number[] = [];
  const q = new Uint16Array(rows * dims);
  for (let k = 0; k < dims; k++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < rows; i++) {
      const v = values[i * dims + k];
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
    if (lo > hi) lo = hi = 0;
    bounds.push(lo, hi);
    for (let i = 0; i < rows; i++) {
      const v = values[i * dims + k];
      q[i * dims + k] = !Number.isFinite(v) ? 65535 : hi > lo ? Math.round(((v - lo) / (hi - lo)) * 65534) : 0;
    }
  }
  return { q, bounds };
}
