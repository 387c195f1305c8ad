// The PCA preview and the live layout session, against a fake api object.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, type EmbeddingRef, type LayoutFrame, type SessionStatus } from "../src/api";
import { flatten, formFromSession, type LayoutApi, LayoutSession } from "../src/layoutSession";
import { initialState } from "../src/state";
import { loaded } from "./fakes";

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
  return { positions, rows, dims, iteration, objective: 1.5, state };
}

/** A fake layout server: records calls, answers from the given functions. */
function fakeLayoutApi(patch: Partial<LayoutApi> = {}) {
  const calls: string[] = [];
  const api: LayoutApi = {
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
  ctx.store.set({ session: session({ state: "running" }) });
  layout.setForm({ perplexity: 9 });
  assert.deepEqual(calls, []);
  layout.setForm({ label_importance: 0.5, perplexity: 11 });
  assert.deepEqual(calls, ['params {"label_importance":0.5}']);
  ctx.store.set({ session: session({ state: "done" }) });
  layout.setForm({ repulsion_emphasis: 2 });
  assert.equal(calls.length, 1, "a finished session is not changed in place");
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
