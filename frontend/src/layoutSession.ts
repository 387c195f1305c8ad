// The live layout: the quick PCA preview shown first, the layout form, and the
// server session (start, pause, resume, live parameters) whose frames are
// polled and animated into the map, turned to match what the map showed.
import { type ActionContext, currentRef, messageOf, sleep } from "./actionContext";
import { type Alignment, applyAlignment, bestAlignment, IDENTITY } from "./align";
import { type Api, ApiError, type EmbeddingInfo, type SessionStatus } from "./api";
import { formWithDefaults, liveParams, specOf } from "./layoutParams";
import { preparingProgress } from "./progress";
import { initialState, type LayoutForm } from "./state";

const POLL_MIN_MS = 120;
/** The first frames of a layout unfold the map shown before (the PCA preview) over at least this long. */
const INTRO_MS = 800;
export type LayoutApi = Pick<Api, "layoutSchema" | "layoutStart" | "layoutPause" | "layoutResume" | "layoutParams" | "layoutStatus" | "layoutPositions">;

export class LayoutSession {
  private pollToken = 0;
  /** Time of the last positions frame (to pace the animation to the polling rate). */
  private lastFrameAt = 0;
  /** The quick PCA preview (3 components, normalised), kept to switch 2D/3D without a session. */
  private pca3: Float32Array | null = null;
  /** How the session's frames are turned to match the map they replaced (null: decide at the next frame). */
  private align: Alignment | null = null;
  /** Until then, frames keep the unhurried pace of the transition from the PCA preview. */
  private introUntil = 0;
  /** The session's last frame as shown (aligned, normalised): what the map goes back to after a round's model view. */
  private lastShown: Float32Array | null = null;

  constructor(
    private readonly api: LayoutApi,
    private readonly ctx: ActionContext,
  ) {}

  /**
   * Fetch the layout's parameters from the server: the form takes their
   * defaults (where still at the built-in ones) and the list of settings a
   * running t-SNE takes live. If the fetch fails the built-in defaults stay,
   * and a changed setting applies at the next start.
   */
  async loadSchema(): Promise<void> {
    const { store } = this.ctx;
    try {
      const schema = await this.api.layoutSchema();
      store.set({ layoutSchema: schema, form: formWithDefaults(store.get().form, initialState().form, schema) });
    } catch (err) {
      console.warn(`tensorboard-al: no layout schema, using the built-in defaults: ${messageOf(err)}`);
    }
  }

  /** Stop following the session (another embedding opens, or the view closes); the next frame is aligned afresh. */
  stop(): void {
    this.pollToken++;
    this.align = null;
    this.lastShown = null;
  }

  /** Back from another view of the map (a round's model view): the session's last frame, else the PCA preview. */
  reshow(): void {
    const { store, scene } = this.ctx;
    const s = store.get();
    const preview = this.pca3 ? previewIn(this.pca3, s.viewDims) : null;
    const next = this.lastShown && this.lastShown.length === s.rows * 3 ? this.lastShown : preview;
    if (!next) return;
    scene?.moveTo(next, 700);
    store.set({ positions: next, positionsRevision: s.positionsRevision + 1, positionsSource: next === preview ? "client-pca" : "session" });
  }

  /**
   * Show the quick PCA (`pca3`: normalised, 3 components) in the form's
   * dimensions, or in the running `session`'s, whose settings then fill the
   * form and whose frames are followed from here on.
   */
  showPreview(pca3: Float32Array, rows: number, sprite: EmbeddingInfo["sprite"], session: SessionStatus | null): void {
    const { store } = this.ctx;
    this.pca3 = pca3;
    this.lastShown = null;
    const viewDims = session ? (session.n_components === 3 ? 3 : 2) : store.get().form.n_components;
    const positions = previewIn(pca3, viewDims);
    this.ctx.scene?.reset(rows, positions, sprite);
    store.set({ positions, positionsRevision: store.get().positionsRevision + 1, positionsSource: "client-pca", viewDims });
    if (session) {
      store.set({ session, form: formFromSession(store.get().form, session) });
      this.follow(true);
    }
  }

  setForm(patch: Partial<LayoutForm>): void {
    const { store, host } = this.ctx;
    const form = { ...store.get().form, ...patch };
    store.set({ form });
    const s = store.get();
    if (patch.n_components && s.positionsSource === "client-pca" && this.pca3 && patch.n_components !== s.viewDims) {
      const next = previewIn(this.pca3, patch.n_components);
      this.ctx.scene?.moveTo(next, 500);
      store.set({ positions: next, positionsRevision: s.positionsRevision + 1, viewDims: patch.n_components });
    }
    const method = s.session?.method ?? "";
    const changed = liveParams(s.layoutSchema, form).filter((k) => k in patch && specOf(s.layoutSchema, k)?.methods.includes(method));
    const ref = currentRef(store);
    if (ref && changed.length && s.session && s.session.method !== "pca" && (s.session.state === "running" || s.session.state === "paused" || (s.session.method === "umap" && s.session.state === "done"))) {
      const params: Record<string, unknown> = {};
      for (const k of changed) params[k] = form[k];
      this.api
        .layoutParams(ref, params)
        .then((st) => {
          store.set({ session: st });
          this.followFinished();
        })
        .catch((err) => host.showError(`Could not change the layout parameters: ${messageOf(err)}`));
    }
  }

  /** Start (or restart) a session with the form's settings. */
  async start(): Promise<void> {
    const ref = currentRef(this.ctx.store);
    if (!ref) return;
    const f = this.ctx.store.get().form;
    const body: Record<string, unknown> = { ...f };
    // Only the method's own parameters (the form's "method" is the layout method, the
    // schema's the t-SNE repulsion method); without the schema, PCA has no iterations.
    const schema = this.ctx.store.get().layoutSchema;
    for (const k of Object.keys(body)) {
      const spec = specOf(schema, k);
      if (k !== "method" && spec && !spec.methods.includes(f.method)) delete body[k];
    }
    if (f.method === "pca") delete body.n_iter;
    try {
      const st = await this.api.layoutStart(ref, body);
      // A new run: its first frame is turned to match whatever the map shows now.
      this.align = null;
      this.ctx.store.set({ session: st });
      if (st.state === "preparing") this.showPreparing(st);
      this.follow(true);
    } catch (err) {
      this.ctx.host.showError(`Could not start the layout: ${messageOf(err)}`);
    }
  }

  /**
   * The start/pause button: start when there is no session of the form's kind,
   * else pause, resume, or continue a finished t-SNE from where it stopped
   * (only Restart throws a layout away).
   */
  async toggle(): Promise<void> {
    const { store } = this.ctx;
    const ref = currentRef(store);
    const st = store.get().session;
    if (!ref) return;
    const form = store.get().form;
    try {
      if (!st || st.state === "error" || st.method !== form.method || st.n_components !== form.n_components
          || (st.state === "done" && st.method === "pca")) {
        await this.start();
      } else if (st.state === "running" || st.state === "preparing" || st.state === "waiting") {
        store.set({ session: await this.api.layoutPause(ref) });
      } else if (st.state === "paused" || st.state === "done") {
        store.set({ session: await this.api.layoutResume(ref) });
        this.follow(false);
      }
    } catch (err) {
      this.ctx.host.showError(`Could not change the layout: ${messageOf(err)}`);
    }
  }

  /** New labels or parameters restart a finished t-SNE or UMAP for a while: follow it again. */
  followFinished(): void {
    const st = this.ctx.store.get().session;
    if (st && st.method !== "pca" && st.state === "done") this.follow(false, 3000);
  }

  /**
   * Follow the session: status while it prepares or waits for a slot, positions
   * while it runs. Stops once it is paused or done and a frame was fetched, but
   * not before `keepAliveMs` (a finished t-SNE resumes for a while after new
   * labels or parameters, and the server may take a moment to say so).
   * Resolves when this following ends (stopped, superseded, finished or failed).
   */
  follow(fetchNow: boolean, keepAliveMs = 0): Promise<void> {
    const token = ++this.pollToken;
    return this.poll(token, fetchNow, performance.now() + keepAliveMs);
  }

  private async poll(token: number, first: boolean, keepUntil: number): Promise<void> {
    const { store, host } = this.ctx;
    const ref = currentRef(store);
    let fetched = !first;
    let failures = 0;
    while (ref && token === this.pollToken) {
      const started = performance.now();
      try {
        const st = store.get().session;
        if (st && (st.state === "preparing" || st.state === "waiting")) {
          const next = await this.api.layoutStatus(ref);
          if (token !== this.pollToken) return;
          store.set({ session: next });
          if (!next) {
            host.setProgress(null);
            return;
          }
          if (next.state === "preparing") this.showPreparing(next);
          else if (next.state === "waiting") host.setProgress("Waiting for a free layout slot (other layouts are running)…", -1);
          else host.setProgress(null);
        } else {
          const frame = await this.api.layoutPositions(ref);
          if (token !== this.pollToken) return;
          // Zero rows: the session has no layout yet (preparing or waiting); its status says more.
          if (frame.rows > 0) {
            this.acceptFrame(frame.normalized, frame.rows, frame.dims);
            fetched = true;
          }
          const cur = store.get().session;
          if (cur) {
            const state = (frame.state || cur.state) as SessionStatus["state"];
            store.set({
              session: { ...cur, iteration: frame.iteration, objective: frame.objective, state, n_components: frame.dims === 3 ? 3 : 2 },
            });
          }
        }
        failures = 0;
      } catch (err) {
        if (token !== this.pollToken) return;
        if (err instanceof ApiError && err.status === 404) {
          // The session is gone (server restarted): back to the start button.
          host.setProgress(null);
          store.set({ session: null });
          return;
        }
        if (++failures >= 3) {
          host.setProgress(null);
          host.showError(`Lost the layout session: ${messageOf(err)}`, () => void this.follow(true));
          return;
        }
      }
      const st = store.get().session;
      if (!st) return;
      if (st.state === "error") {
        host.setProgress(null);
        host.showError(`The layout stopped with an error: ${st.error ?? "unknown error"}`);
        return;
      }
      if ((st.state === "paused" || st.state === "done") && fetched && performance.now() >= keepUntil) return;
      const wait = Math.max(0, POLL_MIN_MS - (performance.now() - started));
      await sleep(st.state === "preparing" || st.state === "waiting" ? 400 : st.state === "running" ? wait : 300);
    }
  }

  /** The header's progress bar while a session prepares: the step, how far, the time left. */
  private showPreparing(st: SessionStatus): void {
    const p = preparingProgress(st);
    this.ctx.host.setProgress(p.text, p.fraction);
  }

  /** A frame (normalised stride 3, as decoded by the api; turned here in place: it is this frame's only array). */
  private acceptFrame(next: Float32Array, rows: number, dims: number): void {
    const { store, scene } = this.ctx;
    const s = store.get();
    if (rows !== s.rows) throw new ApiError(`The layout has ${rows} rows, the embedding ${s.rows}.`, 200, "layout/positions");
    const viewDims: 2 | 3 = dims >= 3 ? 3 : 2;
    const now = performance.now();
    // Animate over the time frames actually take to arrive, so motion is continuous.
    const interval = this.lastFrameAt ? Math.min(1000, Math.max(100, now - this.lastFrameAt)) : 400;
    this.lastFrameAt = now;
    // While the map shows a round's model view, frames are kept (turned as the map last showed
    // the layout) for when the layout is shown again.
    const hidden = s.modelView;
    const first = viewDims !== s.viewDims || (!hidden && s.positionsSource !== "session") || !this.align;
    if (first) {
      // The run's axes may be flipped or swapped against the map shown (the PCA preview):
      // turn its frames to match, so the preview unfolds into the t-SNE instead of scattering.
      const shown = hidden ? this.lastShown : scene ? scene.positionsAt(now) : s.positions;
      this.align = shown && shown.length === next.length ? bestAlignment(shown, next, rows, viewDims) : IDENTITY;
      this.introUntil = now + INTRO_MS;
    }
    applyAlignment(next, this.align ?? IDENTITY, next);
    this.lastShown = next;
    if (hidden) return;
    // Frames arriving during the transition keep its pace instead of hurrying it.
    scene?.moveTo(next, Math.max(interval, this.introUntil - now), now);
    store.set({ positions: next, positionsRevision: s.positionsRevision + 1, positionsSource: "session", viewDims });
  }
}

/** The form filled from a running session's settings (what the server actually runs). */
export function formFromSession(form: LayoutForm, st: SessionStatus): LayoutForm {
  const p = st.params ?? {};
  const num = (k: keyof LayoutForm, fallback: number) => (typeof p[k] === "number" ? (p[k] as number) : fallback);
  return {
    ...form,
    method: st.method === "pca" || st.method === "umap" ? st.method : "tsne",
    n_components: st.n_components === 3 ? 3 : 2,
    perplexity: num("perplexity", form.perplexity),
    learning_rate: p.learning_rate === "auto" ? "auto" : typeof p.learning_rate === "number" ? p.learning_rate : form.learning_rate,
    theta: num("theta", form.theta),
    label_importance: num("label_importance", form.label_importance),
    repulsion_emphasis: num("repulsion_emphasis", form.repulsion_emphasis),
    supervision_start: num("supervision_start", form.supervision_start),
    point_learning_rate_epochs: num("point_learning_rate_epochs", form.point_learning_rate_epochs),
    n_iter: num("n_iter", form.n_iter),
    random_state: typeof p.random_state === "number" ? p.random_state : form.random_state,
    n_neighbors: num("n_neighbors", form.n_neighbors),
    min_dist: num("min_dist", form.min_dist),
    label_weight: num("label_weight", form.label_weight),
    // a UMAP session reports the epochs it resolved; the form keeps "auto" (null) unless one was asked for
    n_epochs: form.n_epochs,
  };
}

/** The 3-component PCA preview as drawn in `dims` dimensions. */
function previewIn(pca3: Float32Array, dims: 2 | 3): Float32Array {
  return dims === 3 ? pca3 : flatten(pca3);
}

/** Drop the third coordinate (2D view of a 3-component projection). */
export function flatten(pos: Float32Array): Float32Array {
  const out = pos.slice();
  for (let i = 2; i < out.length; i += 3) out[i] = 0;
  return out;
}
