// Opening an embedding: the state starts again from initialState() except what
// the person chose, and everything of the embedding loads; against a fake api.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { EmbeddingInfo, EmbeddingRef, LabelState, LayoutFrame, Metadata, PositionsFrame, PredictionsResponse, SessionStatus } from "../src/api";
import { normalizePositions } from "../src/camera";
import { Controller } from "../src/controller";
import { indexLabels } from "../src/labels";
import { EMPTY_SPEC } from "../src/selection";
import { CARRIED_ACROSS_EMBEDDINGS, initialState, stateForEmbedding, type AppState } from "../src/state";
import { context, deferred, embedding, labelState, lineTensor, settle } from "./fakes";

/** A state in which every key differs from initialState() (as after an hour of work on one embedding). */
function worked(): AppState {
  const s = initialState();
  return {
    ...s,
    embedding: embedding({ name: "old", rows: 50 }),
    rows: 50,
    dims: 2,
    metadata: { columns: ["name"], data: [["x"]] },
    labelState: labelState(["a"], 4),
    labelIndex: indexLabels(labelState(["a"], 4), 50, []),
    positions: new Float32Array(150),
    positionsRevision: 17,
    positionsSource: "session",
    viewDims: 3,
    session: { state: "running" } as SessionStatus,
    form: { ...s.form, perplexity: 33, n_components: 3 },
    spec: { ...EMPTY_SPEC, focus: 3, k: 12, added: new Set([7]) },
    knnSpace: "layout",
    members: Uint32Array.from([3, 4]),
    mask: new Uint8Array(50),
    listed: Uint32Array.from([3, 4]),
    hover: 9,
    tool: "lasso",
    display: { size: 2, threshold: 0.3, tint: true, dimOthers: false, colorBy: "uncertainty" },
    thresholdAuto: { kind: "dark", level: 0, threshold: 0.04, text: "auto" },
    thresholdUser: true,
    predictions: { status: "ready" } as AppState["predictions"],
    predictionsError: "old error",
    strategy: "entropy",
    suggestCount: 25,
    suggestions: { strategy: "entropy", version: 1, items: [] },
    suggestBusy: true,
    suggestMessage: "old message",
    acceptedSuggestion: 3,
    sureThreshold: 0.5,
    writing: true,
    pagesLoaded: 2,
    ready: true,
  };
}

test("opening another embedding starts from initialState() except what the person chose", () => {
  const prev = worked();
  const fresh = initialState();
  const e = embedding({ name: "new", rows: 8, dims: 5 });
  const next = stateForEmbedding(prev, e);
  const perEmbedding = new Set(["embedding", "rows", "dims", "spec", "mask"]);
  const carried = new Set<string>(CARRIED_ACROSS_EMBEDDINGS);
  for (const key of Object.keys(fresh) as (keyof AppState)[]) {
    if (perEmbedding.has(key)) continue;
    if (carried.has(key)) assert.equal(next[key], prev[key], `${key} is carried over`);
    else assert.deepEqual(next[key], fresh[key], `${key} starts again`);
  }
  for (const key of ["form", "viewDims", "knnSpace", "tool", "display", "strategy", "suggestCount", "sureThreshold"]) {
    assert.ok(carried.has(key), `${key} is the person's choice and stays`);
  }
  assert.equal(next.embedding, e);
  assert.equal(next.rows, 8);
  assert.equal(next.dims, 5);
  assert.equal(next.mask.length, 8);
  assert.deepEqual(next.spec, { ...EMPTY_SPEC, k: 7 }, "nothing selected; the neighbours setting fitted to 8 rows");
  assert.equal(stateForEmbedding({ ...prev, spec: { ...EMPTY_SPEC, k: 0 } }, e).spec.k, Math.min(EMPTY_SPEC.k, 7), "never a 0");
});

interface FakeServer {
  preview: (ref: EmbeddingRef) => Promise<PositionsFrame>;
  metadata: (ref: EmbeddingRef) => Promise<Metadata>;
  labels: (ref: EmbeddingRef) => Promise<LabelState>;
  layoutStatus: (ref: EmbeddingRef) => Promise<SessionStatus | null>;
  predictions: (ref: EmbeddingRef) => Promise<PredictionsResponse>;
  layoutPositions: (ref: EmbeddingRef) => Promise<LayoutFrame>;
}

/** A Controller on a fake api: only the calls opening makes (and predictions) answer. */
function controllerWith(patch: Partial<FakeServer> = {}) {
  const ctx = context();
  const asked: string[] = [];
  const server: FakeServer = {
    preview: async (ref) => {
      asked.push(`preview ${ref.embedding}`);
      return previewOf(6);
    },
    metadata: async () => ({ columns: ["name"], data: [["a", "b", "c", "d", "e", "f"]] }),
    labels: async () => labelState(["x", null, null, null, null, "y"], 3),
    layoutStatus: async () => null,
    predictions: async () => {
      asked.push("predictions");
      return { status: "idle", version: null, classes: [], error: null, train_seconds: 0 };
    },
    layoutPositions: async () => {
      throw new Error("no session in this test");
    },
    ...patch,
  };
  const notCalled = () => {
    throw new Error("not expected in this test");
  };
  const api = new Proxy(server, { get: (t, k) => (k in t ? t[k as keyof FakeServer] : notCalled) });
  const ctl = new Controller(api as unknown as ConstructorParameters<typeof Controller>[0], ctx.store, ctx.host);
  return { ctl, ctx, asked };
}

const SIX: EmbeddingInfo = embedding({ name: "six", rows: 6, metadata_columns: ["name"] });

/** The server's PCA preview of `rows` rows on a line (normalised stride 3, as the api decodes it). */
function previewOf(rows: number): PositionsFrame {
  const raw = new Float32Array(rows * 3).map((_, i) => (i % 3 === 0 ? i / 3 : 0));
  return { normalized: normalizePositions(raw, rows, 3), rows, dims: 3 };
}

test("opening loads the server's PCA preview (never the features), metadata and labels, draws the preview and asks the classifier", async () => {
  const { ctl, ctx, asked } = controllerWith();
  ctx.store.set({ ...worked(), writing: false });
  const before = ctx.store.get();
  await ctl.open(SIX, "/logs");
  const s = ctx.store.get();
  assert.equal(s.ready, true);
  assert.equal(s.rows, 6);
  assert.ok(!("tensor" in s), "the tab holds no features");
  assert.equal(s.metadata!.data[0][5], "f");
  assert.equal(s.labelState!.version, 3);
  assert.equal(s.labelIndex!.perRow[0] > 0, true);
  assert.equal(s.positionsSource, "client-pca");
  assert.equal(s.positions!.length, 18);
  assert.ok(s.positionsRevision > before.positionsRevision, "the revision only grows");
  assert.equal(s.viewDims, 3, "the form asked for 3D (carried)");
  assert.equal(s.suggestions, null);
  assert.equal(s.predictionsError, null);
  assert.equal(s.members.length, 0);
  assert.equal(s.spec.k, 5, "k 12 fitted to 6 rows");
  assert.equal(s.display.tint, true, "display preferences stay");
  assert.equal(s.display.threshold, 0, "no remembered threshold for this embedding, no sprite: nothing hidden");
  assert.equal(s.thresholdUser, false);
  assert.equal(ctx.host.progress.at(-1), null, "the progress bar is gone");
  assert.deepEqual(ctx.host.errors, []);
  await settle();
  assert.deepEqual(asked, ["preview six", "predictions"]);
});

test("a part that fails is said and the rest opens; a preview of the wrong size fails the opening with a retry", async () => {
  const partly = controllerWith({
    metadata: async () => {
      throw new Error("bad tsv");
    },
  });
  await partly.ctl.open(SIX);
  assert.deepEqual(partly.ctx.host.errors, ["Could not load the metadata: bad tsv"]);
  assert.equal(partly.ctx.store.get().ready, true);
  assert.equal(partly.ctx.store.get().metadata, null);

  const wrong = controllerWith({ preview: async () => previewOf(5) });
  await wrong.ctl.open(SIX);
  assert.deepEqual(wrong.ctx.host.errors, ["Could not open six: The preview has 5 rows but the embedding list says 6."]);
  assert.equal(wrong.ctx.host.retries.length, 1);
  assert.equal(wrong.ctx.store.get().ready, false);
});

test("opening another embedding while one loads drops whatever arrives for the first", async () => {
  const slow = deferred<PositionsFrame>();
  const { ctl, ctx } = controllerWith({
    preview: (ref) => (ref.embedding === "six" ? slow.promise : Promise.resolve(previewOf(4))),
  });
  const first = ctl.open(SIX);
  await ctl.open(embedding({ name: "four", rows: 4 }));
  slow.resolve(previewOf(6));
  await first;
  const s = ctx.store.get();
  assert.equal(s.embedding!.name, "four");
  assert.equal(s.rows, 4);
  assert.equal(s.positions!.length, 12);
  assert.equal(s.ready, true);
});

test("a layout session already running is shown in its own dimensions and settings", async () => {
  const running: SessionStatus = {
    run: "run1", embedding: "six", method: "tsne", state: "paused", progress: 1, iteration: 300, objective: 1,
    n_components: 3, params: { perplexity: 12 }, error: null,
  };
  const frames: string[] = [];
  const { ctl, ctx } = controllerWith({
    layoutStatus: async () => running,
    layoutPositions: async () => {
      frames.push("positions");
      const positions = new Float32Array(18).map((_, i) => (i * 5) % 7);
      return { normalized: normalizePositions(positions, 6, 3), rows: 6, dims: 3, iteration: 300, objective: 1, state: "paused" };
    },
  });
  await ctl.open(SIX);
  await settle();
  const s = ctx.store.get();
  assert.equal(s.viewDims, 3);
  assert.equal(s.form.n_components, 3);
  assert.equal(s.form.perplexity, 12);
  assert.equal(s.session!.state, "paused");
  assert.deepEqual(frames, ["positions"]);
  assert.equal(s.positionsSource, "session");
});
