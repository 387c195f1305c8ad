// The PCA preview and the live layout session, against a fake api object.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, type EmbeddingRef, type LayoutFrame, type SessionStatus } from "../src/api";
import { formWithDefaults, type LayoutSchema, liveParams, parseField, specOf } from "../src/layoutParams";
import { flatten, formFromSession, type LayoutApi, LayoutSession } from "../src/layoutSession";
import { normalizePositions } from "../src/camera";
import { initialState } from "../src/state";
import { loaded } from "./fakes";
// What GET layout/schema serves (tests/test_layout_params.py checks it is tsne/params.py's schema()).
import served from "./layoutSchema.json";

const SCHEMA = served as LayoutSchema;

function session(patch: Partial<SessionStatus> = {}): SessionStatus {
  return {
    run: "run1",
    embedding: "digits",
    method: "tsne",
    state: "running",
    progress: 0,
    iteration: 0,
    objective: null,
    n_components: 2,
    params: {},
    error: null,
    ...patch,
  };
}

function frame(rows: number, dims: number, state: string, iteration = 10): LayoutFrame {
  const positions = new Float32Array(rows * dims);
  for (let i = 0; i < positions.length; i++) positions[i] = ((i * 7) % 11) - 5;
  return { normalized: normalizePositions(positions, rows, dims), rows, dims, iteration, objective: 1.5, state };
}

/** A fake layout server: records calls, answers from the given functions. */
function fakeLayoutApi(patch: Partial<LayoutApi> = {}) {
  const calls: string[] = [];
  const api: LayoutApi = {
    layoutSchema: async () => {
      calls.push("schema");
      return SCHEMA;
    },
    layoutStart: async (_r: EmbeddingRef, params: Record<string, unknown>) => {
      calls.push(`start ${JSON.stringify(params)}`);
      return session({ method: String(params.method), n_components: Number(params.n_components) });
    },
    layoutPause: async () => {
      calls.push("pause");
      return session({ state: "paused" });
    },
    layoutResume: async () => {
      calls.push("resume");
      return session({ state: "running" });
    },
    layoutParams: async (_r: EmbeddingRef, params: Record<string, unknown>) => {
      calls.push(`params ${JSON.stringify(params)}`);
      return session();
    },
    layoutStatus: async () => {
      calls.push("status");
      return session({ state: "running" });
    },
    layoutPositions: async () => {
      calls.push("positions");
      return frame(4, 2, "done");
    },
    ...patch,
  };
  return { api, calls };
}

const PCA3 = Float32Array.from([0, 0, 1, 1, 0, -1, 0, 1, 0.5, 1, 1, 0]);

test("the PCA preview is drawn flat in 2D, whole in 3D, and switching dimensions needs no session", () => {
  const ctx = loaded(4);
  const { api, calls } = fakeLayoutApi();
  const layout = new LayoutSession(api, ctx);
  const rev = ctx.store.get().positionsRevision;
  layout.showPreview(PCA3, 4, null, null);
  let s = ctx.store.get();
  assert.equal(s.positionsSource, "client-pca");
  assert.equal(s.viewDims, 2);
  assert.deepEqual(Array.from(s.positions!), Array.from(flatten(PCA3)));
  assert.equal(s.positionsRevision, rev + 1);
  layout.setForm({ n_components: 3 });
  s = ctx.store.get();
  assert.equal(s.viewDims, 3);
  assert.equal(s.form.n_components, 3);
  assert.deepEqual(Array.from(s.positions!), Array.from(PCA3));
  assert.deepEqual(calls, []);
});

test("a session already running when the embedding opens fills the form with its settings and is followed", async () => {
  const ctx = loaded(4);
  const { api, calls } = fakeLayoutApi();
  const layout = new LayoutSession(api, ctx);
  const running = session({ n_components: 2, state: "running", params: { perplexity: 7, learning_rate: 50, label_importance: 0.3, random_state: 4 } });
  layout.showPreview(PCA3, 4, null, running);
  await layout.follow(true);
  const s = ctx.store.get();
  assert.equal(s.form.perplexity, 7);
  assert.equal(s.form.learning_rate, 50);
  assert.equal(s.form.label_importance, 0.3);
  assert.equal(s.form.random_state, 4);
  assert.equal(s.session!.state, "done");
  assert.equal(s.session!.iteration, 10);
  assert.equal(s.positionsSource, "session");
  assert.ok(calls.every((c) => c === "positions"));
});

test("formFromSession keeps the form's value where the session does not say", () => {
  const form = initialState().form;
  const f = formFromSession(form, session({ method: "pca", n_components: 3, params: { learning_rate: "auto", perplexity: "x" } }));
  assert.equal(f.method, "pca");
  assert.equal(f.n_components, 3);
  assert.equal(f.learning_rate, "auto");
  assert.equal(f.perplexity, form.perplexity);
  assert.equal(f.n_iter, form.n_iter);
});

test("the start button starts, pauses, resumes; a PCA start sends no iteration budget", async () => {
  const ctx = loaded(4);
  const { api, calls } = fakeLayoutApi();
  const layout = new LayoutSession(api, ctx);
  layout.setForm({ method: "pca" });
  await layout.toggle();
  assert.ok(calls[0].startsWith("start "));
  assert.ok(!("n_iter" in JSON.parse(calls[0].slice(6))));
  ctx.store.set({ session: session({ method: "pca", state: "running" }) });
  await layout.toggle();
  assert.ok(calls.includes("pause"));
  ctx.store.set({ session: session({ method: "pca", state: "paused" }) });
  await layout.toggle();
  assert.ok(calls.includes("resume"));
});

test("a finished t-SNE continues on Start; a finished one of another kind starts anew", async () => {
  const ctx = loaded(4);
  const { api, calls } = fakeLayoutApi();
  const layout = new LayoutSession(api, ctx);
  ctx.store.set({ session: session({ state: "done" }) });
  await layout.toggle();
  assert.equal(calls[0], "resume");
  calls.length = 0;
  ctx.store.set({ session: session({ state: "done", n_components: 3 }) });
  await layout.toggle();
  assert.ok(calls[0].startsWith("start "), "the form asks for 2D: a new run");
});

test("supervision settings reach a running t-SNE at once; others wait for the next start", async () => {
  const ctx = loaded(4);
  const { api, calls } = fakeLayoutApi();
  const layout = new LayoutSession(api, ctx);
  await layout.loadSchema();
  calls.length = 0;
  ctx.store.set({ session: session({ state: "running" }) });
  layout.setForm({ perplexity: 9 });
  assert.deepEqual(calls, []);
  layout.setForm({ label_importance: 0.5, perplexity: 11 });
  assert.deepEqual(calls, ['params {"label_importance":0.5}']);
  ctx.store.set({ session: session({ state: "done" }) });
  layout.setForm({ repulsion_emphasis: 2 });
  assert.equal(calls.length, 1, "a finished session is not changed in place");
});

test("a UMAP start sends only UMAP's parameters; its label weight reaches it running or done, t-SNE's never", async () => {
  const ctx = loaded(4);
  const { api, calls } = fakeLayoutApi();
  const layout = new LayoutSession(api, ctx);
  await layout.loadSchema();
  calls.length = 0;
  layout.setForm({ method: "umap", n_neighbors: 8, label_weight: 0.7 });
  await layout.toggle();
  const body = JSON.parse(calls[0].slice(6));
  assert.deepEqual(Object.keys(body).sort(), ["label_weight", "method", "min_dist", "n_components", "n_epochs", "n_neighbors", "random_state"]);
  assert.equal(body.method, "umap");
  assert.equal(body.n_epochs, null, "empty epochs: umap-learn's choice");
  calls.length = 0;
  ctx.store.set({ session: session({ method: "umap", state: "running" }) });
  layout.setForm({ label_importance: 0.5, theta: 0.3 });
  assert.deepEqual(calls, [], "t-SNE's live parameters are not a UMAP's");
  layout.setForm({ label_weight: 0.2 });
  ctx.store.set({ session: session({ method: "umap", state: "done" }) });
  layout.setForm({ label_weight: 0.9 });
  assert.deepEqual(calls, ['params {"label_weight":0.2}', 'params {"label_weight":0.9}']);
  // a t-SNE session is not sent UMAP's label weight
  calls.length = 0;
  ctx.store.set({ session: session({ method: "tsne", state: "running" }) });
  layout.setForm({ label_weight: 0.1 });
  assert.deepEqual(calls, []);
});

test("a finished UMAP continues on Start", async () => {
  const ctx = loaded(4);
  const { api, calls } = fakeLayoutApi();
  const layout = new LayoutSession(api, ctx);
  layout.setForm({ method: "umap" });
  ctx.store.set({ session: session({ method: "umap", state: "done" }) });
  await layout.toggle();
  assert.equal(calls[0], "resume");
});

test("a session the server no longer has returns to the start button; a failed one says why", async () => {
  const ctx = loaded(4);
  const gone = new LayoutSession(
    fakeLayoutApi({
      layoutPositions: async () => {
        throw new ApiError("no session", 404, "layout/positions");
      },
    }).api,
    ctx,
  );
  ctx.store.set({ session: session() });
  await gone.follow(true);
  assert.equal(ctx.store.get().session, null);
  assert.deepEqual(ctx.host.errors, []);

  const failed = new LayoutSession(fakeLayoutApi({ layoutPositions: async () => frame(4, 2, "error") }).api, ctx);
  ctx.store.set({ session: session({ error: "out of memory" }) });
  await failed.follow(true);
  assert.deepEqual(ctx.host.errors, ["The layout stopped with an error: out of memory"]);
});

test("while the session prepares its status is followed, then its frames", async () => {
  const ctx = loaded(4);
  const statuses = [session({ state: "preparing", phase: "neighbors", phase_progress: 0.5 }), session({ state: "running" })];
  const { api, calls } = fakeLayoutApi({
    layoutStatus: async () => {
      calls.push("status");
      return statuses.shift()!;
    },
  });
  const layout = new LayoutSession(api, ctx);
  ctx.store.set({ session: session({ state: "preparing" }) });
  await layout.follow(true);
  assert.deepEqual(calls, ["status", "status", "positions"]);
  assert.ok(ctx.host.progress.some((p) => p !== null), "the preparation is shown");
  assert.equal(ctx.host.progress.at(-1), null, "and cleared once it runs");
  assert.equal(ctx.store.get().session!.state, "done");
});

test("stop ends the following: an answer on its way is dropped", async () => {
  const ctx = loaded(4);
  let release!: () => void;
  const { api } = fakeLayoutApi({
    layoutPositions: () => new Promise<LayoutFrame>((r) => (release = () => r(frame(4, 2, "running")))),
  });
  const layout = new LayoutSession(api, ctx);
  ctx.store.set({ session: session() });
  const following = layout.follow(true);
  layout.stop();
  release();
  await following;
  assert.equal(ctx.store.get().positionsSource, "none");
});

test("the form's defaults and the live list come from the served schema", async () => {
  const ctx = loaded(4);
  const changed: LayoutSchema = {
    params: SCHEMA.params.map((p) =>
      p.name === "label_importance" ? { ...p, default: 0.25 } : p.name === "perplexity" ? { ...p, live: true } : p.name === "supervision_start" ? { ...p, live: false } : p,
    ),
  };
  const { api, calls } = fakeLayoutApi({ layoutSchema: async () => changed });
  const layout = new LayoutSession(api, ctx);
  // A field the person set before the schema came keeps its value.
  layout.setForm({ repulsion_emphasis: 3 });
  await layout.loadSchema();
  const s = ctx.store.get();
  assert.equal(s.layoutSchema, changed);
  assert.equal(s.form.label_importance, 0.25);
  assert.equal(s.form.repulsion_emphasis, 3);
  assert.equal(s.form.random_state, 0, "the tab's own seed, not the engine's random default");
  ctx.store.set({ session: session({ state: "running" }) });
  layout.setForm({ perplexity: 9, supervision_start: 5, theta: 0.8 });
  assert.deepEqual(calls, ['params {"perplexity":9,"theta":0.8}']);
});

test("the served schema's live list has theta and its defaults are the built-in form's", () => {
  const builtIn = initialState().form;
  assert.deepEqual(liveParams(SCHEMA, builtIn), ["label_importance", "repulsion_emphasis", "supervision_start", "point_learning_rate_epochs", "learning_rate", "theta", "label_weight"]);
  assert.deepEqual(formWithDefaults(builtIn, builtIn, SCHEMA), builtIn);
  assert.deepEqual(liveParams(null, builtIn), [], "no schema: changes wait for the next start");
});

test("without the schema the built-in defaults stay and nothing is sent live", async () => {
  const ctx = loaded(4);
  const { api, calls } = fakeLayoutApi({
    layoutSchema: async () => {
      throw new ApiError("Not found", 404, "layout/schema");
    },
  });
  const layout = new LayoutSession(api, ctx);
  await layout.loadSchema();
  assert.equal(ctx.store.get().layoutSchema, null);
  assert.deepEqual(ctx.store.get().form, initialState().form);
  ctx.store.set({ session: session({ state: "running" }) });
  layout.setForm({ label_importance: 0.5 });
  assert.deepEqual(calls, []);
});

test("typed values are checked against the schema's kind and bounds", () => {
  const spec = (name: string) => specOf(SCHEMA, name);
  assert.deepEqual(parseField(spec("learning_rate"), " auto "), { value: "auto" });
  assert.deepEqual(parseField(spec("learning_rate"), ""), { value: "auto" });
  assert.deepEqual(parseField(spec("learning_rate"), "0"), { error: "A number > 0" });
  assert.deepEqual(parseField(spec("learning_rate"), "x"), { error: "auto or a number" });
  assert.deepEqual(parseField(spec("theta"), "0"), { value: 0 });
  assert.deepEqual(parseField(spec("label_importance"), "-0.1"), { error: "A number >= 0" });
  assert.deepEqual(parseField(spec("supervision_start"), "2.5"), { error: "A whole number" });
  assert.deepEqual(parseField(spec("random_state"), ""), { value: null });
  assert.deepEqual(parseField(spec("n_iter"), ""), { error: "Not a valid number" });
  assert.deepEqual(parseField(spec("perplexity"), "0"), { error: "A number > 0" });
  assert.deepEqual(parseField(spec("perplexity"), "100", 100), { error: "A number < 100" });
  assert.deepEqual(parseField(spec("perplexity"), "99.5", 100), { value: 99.5 });
  assert.deepEqual(parseField(spec("perplexity"), "1e6"), { value: 1e6 }, "no rows known: no upper bound");
});
