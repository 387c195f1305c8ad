// Actions of the labeling view: loading an embedding, selection, labeling and
// the live layout session. Views call these and read the store; only this
// module talks to the server for the labeling view.
import { parsePredictions, selectionConsensus, suggestionSpec } from "./active";
import { type Alignment, applyAlignment, bestAlignment, IDENTITY } from "./align";
import { type Api, ApiError, type EmbeddingInfo, type EmbeddingRef, type LabelState, type SessionStatus, type Strategy, type SuggestionItem } from "./api";
import { normalizePositions } from "./camera";
import { indexLabels, validateLabel } from "./labels";
import { sampleBackground } from "./background";
import { embeddingKey } from "./overview";
import { pcaProject } from "./pca";
import { readPref, writePref } from "./prefs";
import { preparingProgress } from "./progress";
import type { Scene } from "./scene";
import {
  carriedK,
  clearSelection,
  focusRow,
  type KnnSpace,
  knnOrder,
  parseSearch,
  removeRows,
  resolveSelection,
  searchMetadata,
  type SelectionSpec,
  selectRegion,
  toggleRow,
  withK,
} from "./selection";
import type { Store } from "./store";
import type { AppState, LayoutForm } from "./state";

export interface Host {
  setProgress(text: string | null, fraction?: number): void;
  showError(message: string, retry?: () => void): void;
  showNotice(message: string): void;
}

const POLL_MIN_MS = 120;
/** The first frames of a layout unfold the map shown before (the PCA preview) over at least this long. */
const INTRO_MS = 800;
/** How often to ask for predictions while the classifier trains. */
const PREDICTIONS_POLL_MS = 1200;
/** Wait this long after a label write before asking for predictions (writes come in bursts). */
const PREDICTIONS_DEBOUNCE_MS = 300;

export class Controller {
  scene: Scene | null = null;
  private knnCache: { key: string; order: Uint32Array } | null = null;
  private loadToken = 0;
  private pollToken = 0;
  private revealListeners = new Set<(row: number, zoom: boolean) => void>();
  private predToken = 0;
  private predTimer: ReturnType<typeof setTimeout> | null = null;
  /** Time of the last positions frame (to pace the animation to the polling rate). */
  private lastFrameAt = 0;
  /** The quick client-side PCA (3 components, normalised), kept to switch 2D/3D without a session. */
  private pca3: Float32Array | null = null;
  /** How the session's frames are turned to match the map they replaced (null: decide at the next frame). */
  private align: Alignment | null = null;
  /** Until then, frames keep the unhurried pace of the transition from the PCA preview. */
  private introUntil = 0;
  /** Distinguishes browser preferences of embeddings of different log directories (the logdir). */
  private prefScope = "";

  constructor(
    readonly api: Api,
    readonly store: Store<AppState>,
    private readonly host: Host,
  ) {}

  ref(): EmbeddingRef | null {
    const e = this.store.get().embedding;
    return e ? { run: e.run, embedding: e.name } : null;
  }

  onReveal(fn: (row: number, zoom: boolean) => void): void {
    this.revealListeners.add(fn);
  }

  // ---------------------------------------------------------------- loading

  /** Load embedding `e`; `scope` tells apart the browser preferences of different log directories. */
  async open(e: EmbeddingInfo, scope = ""): Promise<void> {
    this.prefScope = scope;
    const token = ++this.loadToken;
    this.pollToken++;
    this.knnCache = null;
    this.align = null;
    const ref = { run: e.run, embedding: e.name };
    const s0 = this.store.get();
    this.store.set({
      embedding: e,
      rows: e.rows,
      dims: e.dims,
      tensor: null,
      metadata: null,
      labelState: null,
      labelIndex: null,
      positions: null,
      positionsSource: "none",
      session: null,
      // The user's neighbours setting carries over, fitted to this embedding (never a 0).
      spec: { ...clearSelection(s0.spec), k: carriedK(s0.spec.k, e.rows) },
      members: new Uint32Array(0),
      mask: new Uint8Array(e.rows),
      listed: new Uint32Array(0),
      hover: -1,
      pagesLoaded: 0,
      ready: false,
      predictions: null,
      predictionsError: null,
      suggestions: null,
      suggestBusy: false,
      suggestMessage: "",
      acceptedSuggestion: -1,
    });
    // "Hide dark pixels": the user's own setting for this embedding, else chosen once the sprite is read.
    const userThreshold = Number(readPref(this.thresholdKey()) ?? NaN);
    const hasUser = Number.isFinite(userThreshold);
    this.store.set({ thresholdAuto: null, thresholdUser: hasUser, display: { ...this.store.get().display, threshold: hasUser ? userThreshold : 0 } });
    this.cancelPredictions();
    const pages = e.sprite ? e.sprite.pages : 0;
    // Progress: tensor bytes are half the bar, sprite pages the other half.
    const tensorShare = pages ? 0.5 : 0.9;
    const stale = () => token !== this.loadToken;
    try {
      this.host.setProgress("Loading tensor…", 0);
      const [tensor, metadata, labels, session] = await Promise.all([
        this.api.tensor(ref, (loaded, total) => {
          if (!stale() && total > 0) this.host.setProgress(`Loading tensor… ${mb(loaded)} of ${mb(total)}`, (loaded / total) * tensorShare);
        }),
        e.metadata_columns.length ? this.api.metadata(ref).catch((err) => this.partFailed("metadata", err)) : Promise.resolve(null),
        e.labels_supported ? this.api.labels(ref).catch((err) => this.partFailed("labels", err)) : Promise.resolve(null),
        this.api.layoutStatus(ref).catch((err) => this.partFailed("layout status", err)),
      ]);
      if (stale()) return;
      if (tensor.rows !== e.rows) throw new ApiError(`The tensor has ${tensor.rows} rows but the embedding list says ${e.rows}.`, 200, "tensor");
      this.store.set({
        tensor: tensor.data,
        rows: tensor.rows,
        dims: tensor.dims,
        metadata: metadata && metadata.data.length ? metadata : null,
        mask: new Uint8Array(tensor.rows),
      });
      if (labels) this.setLabels(labels);
      else this.setLabels({ version: 0, labels: [], classes: [], can_undo: false, can_redo: false });
      // The classifier trains on the server in the background; ask what it knows.
      if (labels && e.labels_supported) this.schedulePredictions(0);
      this.host.setProgress("Projecting (PCA)…", tensorShare);
      await nextFrame();
      if (stale()) return;
      const pca = pcaProject(tensor.data, tensor.rows, tensor.dims, 3);
      const positions = normalizePositions(pca, tensor.rows, 3);
      this.pca3 = positions;
      const viewDims = session ? (session.n_components === 3 ? 3 : 2) : this.store.get().form.n_components;
      if (this.scene) this.scene.reset(tensor.rows, viewDims === 2 ? flatten(positions) : positions, e.sprite);
      this.store.set({
        positions: viewDims === 2 ? flatten(positions) : positions,
        positionsRevision: this.store.get().positionsRevision + 1,
        positionsSource: "client-pca",
        viewDims,
      });
      if (session) {
        this.store.set({ session, form: formFromSession(this.store.get().form, session) });
        this.startPolling(true);
      }
      for (let p = 0; p < pages; p++) {
        this.host.setProgress(`Loading thumbnails… page ${p + 1} of ${pages}`, tensorShare + ((1 - tensorShare) * p) / pages);
        const blob = await this.api.spritePage(ref, p);
        if (stale()) return;
        let bitmap: ImageBitmap;
        try {
          bitmap = await createImageBitmap(blob);
        } catch {
          throw new ApiError(`Sprite page ${p} is not a readable image.`, 200, "sprite");
        }
        if (stale()) return;
        this.scene?.setAtlasPage(p, bitmap);
        if (p === 0 && e.sprite) this.chooseThreshold(bitmap, e.sprite, Math.min(e.rows, e.sprite.per_page));
        bitmap.close();
        this.store.set({ pagesLoaded: p + 1 });
      }
      this.host.setProgress(null);
      this.store.set({ ready: true });
    } catch (err) {
      if (stale()) return;
      this.host.setProgress(null);
      this.host.showError(`Could not open ${e.name}: ${messageOf(err)}`, () => void this.open(e));
    }
  }

  private thresholdKey(): string {
    const e = this.store.get().embedding;
    return `tensorboard-al:threshold:${this.prefScope}:${e ? embeddingKey(e) : ""}`;
  }

  /** Read the sprite's background and, unless the user set their own, use the threshold it suggests. */
  private chooseThreshold(page: ImageBitmap, sprite: NonNullable<EmbeddingInfo["sprite"]>, rows: number): void {
    let est;
    try {
      est = sampleBackground(page, sprite, rows);
    } catch {
      est = { kind: "mixed" as const, level: 0, threshold: 0, text: "auto: could not read the thumbnails, nothing hidden (0)" };
    }
    const s = this.store.get();
    this.store.set({ thresholdAuto: est, display: s.thresholdUser ? s.display : { ...s.display, threshold: est.threshold } });
  }

  /** The user's "hide dark pixels" setting, remembered for this embedding in this browser. */
  setThreshold(value: number): void {
    if (!Number.isFinite(value)) return;
    const v = Math.max(0, Math.min(1, value));
    this.store.set({ thresholdUser: true, display: { ...this.store.get().display, threshold: v } });
    writePref(this.thresholdKey(), String(v));
  }

  /** Back to the threshold chosen from the sprite (forgets the user's setting). */
  autoThreshold(): void {
    writePref(this.thresholdKey(), null);
    const s = this.store.get();
    this.store.set({ thresholdUser: false, display: { ...s.display, threshold: s.thresholdAuto?.threshold ?? 0 } });
  }

  private partFailed(part: string, err: unknown): null {
    this.host.showError(`Could not load the ${part}: ${messageOf(err)}`);
    return null;
  }

  close(): void {
    this.loadToken++;
    this.pollToken++;
    this.cancelPredictions();
  }

  // -------------------------------------------------------------- selection

  private neighbours(spec: SelectionSpec, space: KnnSpace): Uint32Array | null {
    const s = this.store.get();
    if (spec.focus < 0 || spec.k <= 0) return null;
    let data: Float32Array | null;
    let dims: number;
    if (space === "feature") {
      data = s.tensor;
      dims = s.dims;
    } else {
      data = this.scene ? this.scene.targetPositions() : s.positions;
      dims = 3;
    }
    if (!data) return null;
    const key = `${space}:${spec.focus}:${space === "layout" ? s.positionsRevision : 0}`;
    if (this.knnCache?.key !== key) this.knnCache = { key, order: knnOrder(data, s.rows, dims, spec.focus) };
    return this.knnCache.order;
  }

  setSpec(spec: SelectionSpec, space = this.store.get().knnSpace): void {
    const s = this.store.get();
    const { members, mask, listed } = resolveSelection(spec, this.neighbours(spec, space), s.rows);
    this.store.set({ spec, knnSpace: space, members, mask, listed });
  }

  focus(row: number): void {
    this.setSpec(focusRow(this.store.get().spec, row));
  }

  /** The neighbours setting (slider or number field): 0..rows-1. */
  setK(k: number): void {
    if (!Number.isFinite(k)) return;
    const rows = this.store.get().rows;
    this.setSpec(withK(this.store.get().spec, Math.max(0, Math.min(rows - 1, Math.round(k)))));
  }

  setKnnSpace(space: KnnSpace): void {
    this.knnCache = null;
    this.setSpec(this.store.get().spec, space);
  }

  toggle(row: number): void {
    const s = this.store.get();
    this.setSpec(toggleRow(s.spec, row, s.mask[row] === 1));
  }

  remove(rows: Iterable<number>): void {
    this.setSpec(removeRows(this.store.get().spec, rows));
  }

  region(rows: Uint32Array, additive: boolean): void {
    this.setSpec(selectRegion(this.store.get().spec, rows, additive));
  }

  clearSelection(): void {
    this.setSpec(clearSelection(this.store.get().spec));
  }

  selectClass(classIndex: number, additive: boolean): void {
    const li = this.store.get().labelIndex;
    if (!li) return;
    const rows: number[] = [];
    for (let i = 0; i < li.perRow.length; i++) if (li.perRow[i] === classIndex) rows.push(i);
    this.region(Uint32Array.from(rows), additive);
  }

  /** `#123` focuses row 123 (and its neighbour group); other text selects matching metadata rows. */
  search(text: string): string {
    const s = this.store.get();
    const q = parseSearch(text);
    if (q.kind === "empty") return "";
    if (q.kind === "row") {
      if (q.row >= s.rows) return `There is no row ${q.row} (rows 0..${s.rows - 1}).`;
      this.focus(q.row);
      this.reveal(q.row, true);
      return "";
    }
    if (!s.metadata) return "This embedding has no metadata to search; use #row.";
    const rows = searchMetadata(s.metadata.data, q.text, s.rows);
    if (rows.length === 0) return `No row has metadata matching “${q.text}”.`;
    this.region(rows, false);
    return "";
  }

  /** Bring a row into view: centre and zoom in (`zoom`), or only pan to it when it is off-screen. */
  reveal(row: number, zoom = true): void {
    for (const fn of this.revealListeners) fn(row, zoom);
  }

  // --------------------------------------------------------------- labeling

  private setLabels(state: LabelState): void {
    const s = this.store.get();
    const known = s.labelIndex ? s.labelIndex.classes : [];
    const moved = !!s.labelState && s.labelState.version !== state.version;
    this.store.set({ labelState: state, labelIndex: indexLabels(state, s.rows, known) });
    // New labels: the server retrains the classifier; follow it.
    if (moved && s.embedding?.labels_supported) this.schedulePredictions(PREDICTIONS_DEBOUNCE_MS);
    if (moved) this.followFinishedLayout();
  }

  private async write(what: string, fn: (ref: EmbeddingRef, version: number) => Promise<LabelState>): Promise<boolean> {
    const ref = this.ref();
    const s = this.store.get();
    if (!ref || !s.labelState) return false;
    if (s.embedding && !s.embedding.labels_supported) {
      this.host.showError("Labels cannot be saved for this embedding (the server does not support labels here).");
      return false;
    }
    this.store.set({ writing: true });
    try {
      this.setLabels(await fn(ref, s.labelState.version));
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) this.host.showNotice(err.message);
      else this.host.showError(`Could not ${what}: ${messageOf(err)}`);
      return false;
    } finally {
      this.store.set({ writing: false });
    }
  }

  /** Fetch the label state again (another person may have labeled meanwhile). */
  async refreshLabels(): Promise<void> {
    const ref = this.ref();
    const s = this.store.get();
    if (!ref || !s.labelState || s.writing || !s.embedding?.labels_supported) return;
    try {
      const next = await this.api.labels(ref);
      if (this.ref()?.run === ref.run && this.ref()?.embedding === ref.embedding && next.version !== this.store.get().labelState?.version) this.setLabels(next);
    } catch {
      // A background refresh: the next write reports any real problem.
    }
  }

  /** Apply `label` to every selected row; returns an error message or "". */
  async applyLabel(label: string): Promise<string> {
    const bad = validateLabel(label);
    if (bad) return bad;
    const rows = Array.from(this.store.get().members);
    if (rows.length === 0) return "Select some points first (click a point, search, or draw a box).";
    const ok = await this.write("save the label", (ref, v) => this.api.assign(ref, rows, label.trim(), v));
    return ok ? "" : "The label was not saved.";
  }

  /** Number keys: the k-th class (1-based) of the legend (classes with members). */
  async applyClassNumber(k: number): Promise<string> {
    const li = this.store.get().labelIndex;
    if (!li || k < 1 || k > li.legend.length) return "";
    return this.applyLabel(li.classes[li.legend[k - 1] - 1]);
  }

  async clearLabels(): Promise<string> {
    const rows = Array.from(this.store.get().members);
    if (rows.length === 0) return "Select the points whose label to clear.";
    await this.write("clear the labels", (ref, v) => this.api.clear(ref, rows, v));
    return "";
  }

  async undo(): Promise<void> {
    if (!this.store.get().labelState?.can_undo) return;
    await this.write("undo", (ref, v) => this.api.undo(ref, v));
  }

  async redo(): Promise<void> {
    if (!this.store.get().labelState?.can_redo) return;
    await this.write("redo", (ref, v) => this.api.redo(ref, v));
  }

  // ------------------------------------------------------- active learning

  private cancelPredictions(): void {
    this.predToken++;
    if (this.predTimer !== null) clearTimeout(this.predTimer);
    this.predTimer = null;
  }

  /** Ask for predictions after `delayMs`, then keep asking while the classifier trains. */
  schedulePredictions(delayMs: number): void {
    this.cancelPredictions();
    const token = this.predToken;
    this.predTimer = setTimeout(() => {
      this.predTimer = null;
      void this.followPredictions(token);
    }, delayMs);
  }

  private async followPredictions(token: number): Promise<void> {
    const ref = this.ref();
    if (!ref) return;
    for (;;) {
      let res;
      try {
        res = await this.api.predictions(ref);
      } catch (err) {
        if (token !== this.predToken) return;
        const msg =
          err instanceof ApiError && err.status === 404 && /no route/.test(err.message)
            ? "this server has no classifier (update tensorboard-al)."
            : messageOf(err);
        this.store.set({ predictionsError: msg });
        return;
      }
      if (token !== this.predToken) return;
      this.store.set({ predictions: parsePredictions(res, this.store.get().rows), predictionsError: null });
      if (res.status !== "training") return;
      await sleep(PREDICTIONS_POLL_MS);
      if (token !== this.predToken) return;
    }
  }

  setStrategy(strategy: Strategy): void {
    this.store.set({ strategy });
  }

  /** Ask the server for the next rows to label with the chosen strategy. */
  async suggest(): Promise<void> {
    const ref = this.ref();
    const s = this.store.get();
    if (!ref || s.suggestBusy) return;
    const token = this.loadToken;
    this.store.set({ suggestBusy: true, suggestMessage: "" });
    try {
      const res = await this.api.suggest(ref, s.strategy, s.suggestCount);
      if (token !== this.loadToken) return;
      this.store.set({
        suggestions: res,
        acceptedSuggestion: -1,
        suggestMessage: res.items.length ? "" : "Nothing to suggest: every row is labeled.",
      });
      // Suggesting may have queued a retrain: follow the classifier.
      const p = this.store.get().predictions;
      if (!p || p.status !== "ready") this.schedulePredictions(PREDICTIONS_DEBOUNCE_MS);
    } catch (err) {
      if (token !== this.loadToken) return;
      // 400/409 say what the strategy needs (labels of two classes, a layout): a hint, not a failure.
      const hint = err instanceof ApiError && (err.status === 400 || err.status === 409);
      this.store.set({ suggestions: null, suggestMessage: hint ? messageOf(err) : `Could not get suggestions: ${messageOf(err)}` });
      if (!hint) this.host.showError(`Could not get suggestions: ${messageOf(err)}`, () => void this.suggest());
    } finally {
      if (token === this.loadToken) this.store.set({ suggestBusy: false });
    }
  }

  /** Accept a suggestion: focus its row with its group pre-selected; the neighbours setting stays. */
  acceptSuggestion(item: SuggestionItem): void {
    const s = this.store.get();
    if (item.row < 0 || item.row >= s.rows) return;
    this.knnCache = null;
    this.setSpec(suggestionSpec(item, s.rows, s.spec.k));
    this.store.set({ acceptedSuggestion: item.row });
    this.reveal(item.row, false);
  }

  setSureThreshold(t: number): void {
    if (Number.isFinite(t)) this.store.set({ sureThreshold: Math.min(1, Math.max(0, t)) });
  }

  /** Label the selection's unlabeled rows with the class the model is sure of; returns an error message or "". */
  async labelAsPredicted(): Promise<string> {
    const s = this.store.get();
    const li = s.labelIndex;
    if (!li) return "";
    const c = selectionConsensus(s.members, li.perRow, li.classes, s.predictions, s.sureThreshold);
    if (!c.label) return c.reason;
    const label = c.label;
    const ok = await this.write("label as predicted", (ref, v) => this.api.assign(ref, c.rows, label, v));
    return ok ? "" : "The labels were not saved.";
  }

  exportCsv(): void {
    const ref = this.ref();
    if (!ref) return;
    const a = document.createElement("a");
    a.href = this.api.exportUrl(ref);
    a.download = `${ref.run === "." ? "" : ref.run + "_"}${ref.embedding}_labels.csv`.replace(/[^\w.-]+/g, "_");
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  // ----------------------------------------------------------------- layout

  setForm(patch: Partial<LayoutForm>): void {
    const form = { ...this.store.get().form, ...patch };
    this.store.set({ form });
    const s = this.store.get();
    if (patch.n_components && s.positionsSource === "client-pca" && this.pca3 && patch.n_components !== s.viewDims) {
      const next = patch.n_components === 3 ? this.pca3 : flatten(this.pca3);
      this.scene?.moveTo(next, 500);
      this.store.set({ positions: next, positionsRevision: s.positionsRevision + 1, viewDims: patch.n_components });
    }
    // Supervision settings apply to a running t-SNE without restarting it.
    const live: (keyof LayoutForm)[] = ["label_importance", "repulsion_emphasis", "supervision_start", "point_learning_rate_epochs", "learning_rate"];
    const changed = live.filter((k) => k in patch);
    if (changed.length && s.session && s.session.method === "tsne" && (s.session.state === "running" || s.session.state === "paused")) {
      const ref = this.ref()!;
      const params: Record<string, unknown> = {};
      for (const k of changed) params[k] = form[k];
      this.api
        .layoutParams(ref, params)
        .then((st) => {
          this.store.set({ session: st });
          this.followFinishedLayout();
        })
        .catch((err) => this.host.showError(`Could not change the layout parameters: ${messageOf(err)}`));
    }
  }

  /** Start (or restart) a session with the form's settings. */
  async startLayout(): Promise<void> {
    const ref = this.ref();
    if (!ref) return;
    const f = this.store.get().form;
    const body: Record<string, unknown> = { ...f };
    // PCA has no iterations.
    if (f.method === "pca") delete body.n_iter;
    try {
      const st = await this.api.layoutStart(ref, body);
      // A new run: its first frame is turned to match whatever the map shows now.
      this.align = null;
      this.store.set({ session: st });
      if (st.state === "preparing") this.showPreparing(st);
      this.startPolling(true);
    } catch (err) {
      this.host.showError(`Could not start the layout: ${messageOf(err)}`);
    }
  }

  /**
   * The start/pause button: start when there is no session of the form's kind,
   * else pause, resume, or continue a finished t-SNE from where it stopped
   * (only Restart throws a layout away).
   */
  async toggleLayout(): Promise<void> {
    const ref = this.ref();
    const st = this.store.get().session;
    if (!ref) return;
    const form = this.store.get().form;
    try {
      if (!st || st.state === "error" || st.method !== form.method || st.n_components !== form.n_components
          || (st.state === "done" && st.method !== "tsne")) {
        await this.startLayout();
      } else if (st.state === "running" || st.state === "preparing" || st.state === "waiting") {
        this.store.set({ session: await this.api.layoutPause(ref) });
      } else if (st.state === "paused" || st.state === "done") {
        this.store.set({ session: await this.api.layoutResume(ref) });
        this.startPolling(false);
      }
    } catch (err) {
      this.host.showError(`Could not change the layout: ${messageOf(err)}`);
    }
  }

  /**
   * Follow the session: status while it prepares or waits for a slot, positions
   * while it runs. Stops once it is paused or done and a frame was fetched, but
   * not before `keepAliveMs` (a finished t-SNE resumes for a while after new
   * labels or parameters, and the server may take a moment to say so).
   */
  private startPolling(fetchNow: boolean, keepAliveMs = 0): void {
    const token = ++this.pollToken;
    void this.poll(token, fetchNow, performance.now() + keepAliveMs);
  }

  private async poll(token: number, first: boolean, keepUntil: number): Promise<void> {
    const ref = this.ref();
    let fetched = !first;
    let failures = 0;
    while (ref && token === this.pollToken) {
      const started = performance.now();
      try {
        const st = this.store.get().session;
        if (st && (st.state === "preparing" || st.state === "waiting")) {
          const next = await this.api.layoutStatus(ref);
          if (token !== this.pollToken) return;
          this.store.set({ session: next });
          if (!next) {
            this.host.setProgress(null);
            return;
          }
          if (next.state === "preparing") this.showPreparing(next);
          else if (next.state === "waiting") this.host.setProgress("Waiting for a free layout slot (other layouts are running)…", -1);
          else this.host.setProgress(null);
        } else {
          const frame = await this.api.layoutPositions(ref);
          if (token !== this.pollToken) return;
          // Zero rows: the session has no layout yet (preparing or waiting); its status says more.
          if (frame.rows > 0) {
            this.acceptFrame(frame.positions, frame.rows, frame.dims);
            fetched = true;
          }
          const cur = this.store.get().session;
          if (cur) {
            const state = (frame.state || cur.state) as SessionStatus["state"];
            this.store.set({
              session: { ...cur, iteration: frame.iteration, objective: frame.objective, state, n_components: frame.dims === 3 ? 3 : 2 },
            });
          }
        }
        failures = 0;
      } catch (err) {
        if (token !== this.pollToken) return;
        if (err instanceof ApiError && err.status === 404) {
          // The session is gone (server restarted): back to the start button.
          this.host.setProgress(null);
          this.store.set({ session: null });
          return;
        }
        if (++failures >= 3) {
          this.host.setProgress(null);
          this.host.showError(`Lost the layout session: ${messageOf(err)}`, () => this.startPolling(true));
          return;
        }
      }
      const st = this.store.get().session;
      if (!st) return;
      if (st.state === "error") {
        this.host.setProgress(null);
        this.host.showError(`The layout stopped with an error: ${st.error ?? "unknown error"}`);
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
    this.host.setProgress(p.text, p.fraction);
  }

  /** New labels or parameters restart a finished t-SNE for a while: follow it again. */
  private followFinishedLayout(): void {
    const st = this.store.get().session;
    if (st && st.method === "tsne" && st.state === "done") this.startPolling(false, 3000);
  }

  private acceptFrame(raw: Float32Array, rows: number, dims: number): void {
    const s = this.store.get();
    if (rows !== s.rows) throw new ApiError(`The layout has ${rows} rows, the embedding ${s.rows}.`, 200, "layout/positions");
    let next = normalizePositions(raw, rows, dims);
    const viewDims: 2 | 3 = dims >= 3 ? 3 : 2;
    const now = performance.now();
    // Animate over the time frames actually take to arrive, so motion is continuous.
    const interval = this.lastFrameAt ? Math.min(1000, Math.max(100, now - this.lastFrameAt)) : 400;
    this.lastFrameAt = now;
    const first = viewDims !== s.viewDims || s.positionsSource !== "session" || !this.align;
    if (first) {
      // The run's axes may be flipped or swapped against the map shown (the PCA preview):
      // turn its frames to match, so the preview unfolds into the t-SNE instead of scattering.
      const shown = this.scene ? this.scene.positionsAt(now) : s.positions;
      this.align = shown && shown.length === next.length ? bestAlignment(shown, next, rows, viewDims) : IDENTITY;
      this.introUntil = now + INTRO_MS;
    }
    next = applyAlignment(next, this.align ?? IDENTITY);
    // Frames arriving during the transition keep its pace instead of hurrying it.
    this.scene?.moveTo(next, Math.max(interval, this.introUntil - now), now);
    this.store.set({ positions: next, positionsRevision: s.positionsRevision + 1, positionsSource: "session", viewDims });
  }
}

function formFromSession(form: LayoutForm, st: SessionStatus): LayoutForm {
  const p = st.params ?? {};
  const num = (k: keyof LayoutForm, fallback: number) => (typeof p[k] === "number" ? (p[k] as number) : fallback);
  return {
    ...form,
    method: st.method === "pca" ? "pca" : "tsne",
    n_components: st.n_components === 3 ? 3 : 2,
    perplexity: num("perplexity", form.perplexity),
    learning_rate: p.learning_rate === "auto" ? "auto" : typeof p.learning_rate === "number" ? p.learning_rate : form.learning_rate,
    label_importance: num("label_importance", form.label_importance),
    repulsion_emphasis: num("repulsion_emphasis", form.repulsion_emphasis),
    supervision_start: num("supervision_start", form.supervision_start),
    point_learning_rate_epochs: num("point_learning_rate_epochs", form.point_learning_rate_epochs),
    n_iter: num("n_iter", form.n_iter),
    random_state: typeof p.random_state === "number" ? p.random_state : form.random_state,
  };
}

/** Drop the third coordinate (2D view of a 3-component projection). */
function flatten(pos: Float32Array): Float32Array {
  const out = pos.slice();
  for (let i = 2; i < out.length; i += 3) out[i] = 0;
  return out;
}

export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function nextFrame(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}
