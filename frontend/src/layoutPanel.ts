// Left panel: live layout controls, selection tools (search, neighbour slider,
// distance space, box/lasso) and display options.
import type { Controller } from "./controller";
import { h } from "./dom";
import { parseField, specOf } from "./layoutParams";
import { kAtSlider, knnSliderMax, sliderOfK } from "./selection";
import type { AppState, ColorBy, LayoutForm, Tool } from "./state";
import type { Store } from "./store";

const METHOD_NAMES: Record<LayoutForm["method"], string> = { tsne: "t-SNE", umap: "UMAP", pca: "PCA" };

export class LayoutPanel {
  readonly el: HTMLElement;
  private toggle: HTMLButtonElement;
  private restart: HTMLButtonElement;
  private iteration: HTMLElement;
  private objective: HTMLElement;
  private stateText: HTMLElement;
  private knn: HTMLInputElement;
  private knnValue: HTMLInputElement;
  /** Says when the selection is an accepted suggestion's group rather than the k nearest. */
  private knnNote: HTMLElement;
  private space: HTMLSelectElement;
  private searchMsg: HTMLElement;
  private fields = new Map<keyof LayoutForm, HTMLInputElement | HTMLSelectElement>();
  /** Each number field's label and row, named and explained by the served schema. */
  private fieldRows = new Map<keyof LayoutForm, { row: HTMLElement; label: HTMLElement; input: HTMLInputElement }>();
  /** "more t-SNE parameters" / "more UMAP parameters" (hidden for PCA). */
  private advanced: HTMLDetailsElement;
  private advancedSummary: HTMLElement;
  private iterationLabel: HTMLElement;
  private objectiveLabel: HTMLElement;
  /** What new labels do to a UMAP layout (a new pass from the current map). */
  private umapNote: HTMLElement;
  private tools = new Map<Tool, HTMLButtonElement>();
  private source: HTMLElement;
  /** Where the labeling view puts the Suggest panel (after the layout controls). */
  readonly slot: HTMLElement;
  private colorBy: HTMLSelectElement;
  private threshold: HTMLInputElement;
  private thresholdNote: HTMLElement;
  private thresholdAuto: HTMLButtonElement;
  private rampLegend: HTMLElement;

  constructor(
    private readonly store: Store<AppState>,
    private readonly ctl: Controller,
  ) {
    const s = store.get();
    this.toggle = h("button", { class: "primary", testid: "al-layout-toggle" }, "Start");
    this.toggle.addEventListener("click", () => void ctl.toggleLayout());
    this.restart = h("button", { testid: "al-layout-restart", title: "Start again from a fresh initialisation with these settings" }, "Restart");
    this.restart.addEventListener("click", () => void ctl.startLayout());
    this.iteration = h("span", { class: "al-stat", testid: "al-iteration" }, "0");
    this.objective = h("span", { class: "al-stat", testid: "al-objective" }, "–");
    this.stateText = h("span", { testid: "al-layout-state" }, "no layout session");
    this.source = h("div", { class: "al-small", testid: "al-layout-source" });

    const method = this.select("method", [["tsne", "semi-supervised t-SNE"], ["umap", "semi-supervised UMAP"], ["pca", "PCA"]], "al-layout-method");
    const dims = this.select("n_components", [["2", "2D"], ["3", "3D"]], "al-layout-dims");
    // A number field of the schema's parameter `key` (its label, help and bounds come from
    // the schema once served); `floor`: the tab asks for at least this much (e.g. 1 iteration).
    const num = (key: keyof LayoutForm, floor: number | null = null) => {
      const input = h("input", { type: "text", inputmode: "decimal", testid: `al-param-${key}` });
      input.addEventListener("change", () => {
        const st = store.get();
        const got = parseField(specOf(st.layoutSchema, key), input.value, st.rows);
        const error = "error" in got ? got.error : floor !== null && typeof got.value === "number" && got.value < floor ? `At least ${floor}` : "";
        if (error || !("value" in got)) {
          input.value = String(st.form[key] ?? "");
          input.setCustomValidity(error);
          input.reportValidity();
          return;
        }
        input.setCustomValidity("");
        ctl.setForm({ [key]: got.value } as Partial<LayoutForm>);
      });
      this.fields.set(key, input);
      const label = h("label", {}, key.replace(/_/g, " "));
      const row = h("div", { class: "al-row" }, label, input);
      this.fieldRows.set(key, { row, label, input });
      return row;
    };

    // The slider moves k one by one up to 30, then in steps of about 3% of k (up to N-1):
    // the number field beside it takes any k exactly.
    this.knn = h("input", { type: "range", min: 0, max: knnSliderMax(s.rows), step: 1, value: sliderOfK(s.spec.k, s.rows), testid: "al-knn-slider", title: "Neighbours of the focus point in the group (fine steps up to 30, then coarser; type any number beside)" });
    this.knnValue = h("input", { type: "text", inputmode: "numeric", value: String(s.spec.k), testid: "al-knn-value", style: "width:52px", title: "Neighbours of the focus point in the group (0 to rows - 1)" });
    this.knnNote = h("div", { class: "al-small", testid: "al-knn-note", hidden: true });
    const fromSlider = () => ctl.setK(kAtSlider(Number(this.knn.value), store.get().rows));
    this.knn.addEventListener("input", fromSlider);
    this.knn.addEventListener("change", fromSlider);
    this.knnValue.addEventListener("change", () => {
      const v = Number(this.knnValue.value.trim());
      if (this.knnValue.value.trim() === "" || !Number.isFinite(v)) this.knnValue.value = String(store.get().spec.k);
      else ctl.setK(v);
      this.knnValue.value = String(store.get().spec.k);
    });
    this.space = h("select", { testid: "al-knn-space" }, h("option", { value: "feature" }, "feature space"), h("option", { value: "layout" }, "current layout"));
    this.space.addEventListener("change", () => ctl.setKnnSpace(this.space.value === "layout" ? "layout" : "feature"));

    const search = h("input", { type: "search", placeholder: "metadata value, file path or #row", testid: "al-search", style: "flex:1;width:auto" });
    this.searchMsg = h("div", { class: "al-small", testid: "al-search-message" });
    const runSearch = () => {
      this.searchMsg.textContent = ctl.search(search.value);
    };
    search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        runSearch();
      }
    });
    search.addEventListener("search", runSearch);
    const go = h("button", { testid: "al-search-go" }, "Find");
    go.addEventListener("click", runSearch);

    const toolRow = h("div", { class: "al-row" });
    for (const [tool, label, title] of [["pan", "Pan", "Drag moves the view"], ["box", "Box", "Drag a rectangle to select (shift: add)"], ["lasso", "Lasso", "Draw around points to select (shift: add)"]] as const) {
      const b = h("button", { testid: `al-tool-${tool}`, title }, label);
      b.addEventListener("click", () => store.set({ tool }));
      this.tools.set(tool, b);
      toolRow.append(b);
    }
    const clearSel = h("button", { testid: "al-clear-selection", title: "Deselect every point (Esc); labels stay" }, "Clear selection");
    clearSel.addEventListener("click", () => ctl.clearSelection());
    // On a row of its own: with the tools beside it, "Clear selection" would wrap.
    const clearRow = h("div", { class: "al-row" }, clearSel);

    const size = h("input", { type: "range", min: 0.3, max: 4, step: 0.05, value: s.display.size, testid: "al-point-size" });
    size.addEventListener("input", () => store.set({ display: { ...store.get().display, size: Number(size.value) } }));
    const threshold = h("input", { type: "range", min: 0, max: 0.6, step: 0.01, value: s.display.threshold, testid: "al-threshold", title: "Do not draw thumbnail pixels darker than this (for dark backgrounds such as MNIST). Chosen from the thumbnails' background unless you move it; your setting is remembered for this embedding." });
    threshold.addEventListener("input", () => ctl.setThreshold(Number(threshold.value)));
    this.threshold = threshold;
    this.thresholdNote = h("span", { testid: "al-threshold-note" });
    this.thresholdAuto = h("button", { testid: "al-threshold-auto", title: "Forget your setting and use the one chosen from the thumbnails" }, "use auto");
    this.thresholdAuto.addEventListener("click", () => ctl.autoThreshold());
    const tint = h("input", { type: "checkbox", testid: "al-tint", checked: s.display.tint });
    tint.addEventListener("change", () => store.set({ display: { ...store.get().display, tint: tint.checked } }));
    const dim = h("input", { type: "checkbox", testid: "al-dim-others", checked: s.display.dimOthers });
    dim.addEventListener("change", () => store.set({ display: { ...store.get().display, dimOthers: dim.checked } }));
    this.colorBy = h(
      "select",
      { testid: "al-color-by", title: "Colour the thumbnails by their label, by the classifier's predicted class, or by its uncertainty" },
      h("option", { value: "label" }, "label"),
      h("option", { value: "prediction" }, "predicted class"),
      h("option", { value: "uncertainty" }, "uncertainty"),
    );
    this.colorBy.addEventListener("change", () => store.set({ display: { ...store.get().display, colorBy: this.colorBy.value as ColorBy } }));
    this.rampLegend = h(
      "div",
      { class: "al-row al-small", testid: "al-uncertainty-legend" },
      h("span", {}, "sure"),
      h("span", { class: "al-ramp" }),
      h("span", {}, "unsure"),
    );
    this.slot = h("div");
    this.advancedSummary = h("summary", {}, "more t-SNE parameters");
    const advanced = h(
      "details",
      { class: "al-advanced", testid: "al-layout-advanced" },
      this.advancedSummary,
      num("min_dist"),
      num("label_weight"),
      num("n_epochs"),
      num("learning_rate"),
      num("theta"),
      num("label_importance"),
      num("repulsion_emphasis"),
      num("supervision_start"),
      num("point_learning_rate_epochs"),
      num("random_state"),
      num("n_iter", 1),
    );
    this.advanced = advanced;
    this.iterationLabel = h("label", { testid: "al-iteration-label" }, "iteration");
    this.objectiveLabel = h("label", {}, "KL");
    this.umapNote = h("div", { class: "al-small", testid: "al-umap-note", hidden: true });

    this.el = h(
      "div",
      { class: "al-side", testid: "al-layout-panel" },
      h("h2", {}, "Layout"),
      h("div", { class: "al-row" }, h("label", {}, "method"), method),
      h("div", { class: "al-row" }, h("label", {}, "dimensions"), dims),
      num("perplexity"),
      num("n_neighbors"),
      advanced,
      h("div", { class: "al-row" }, this.toggle, this.restart),
      h("div", { class: "al-row" }, h("label", {}, "state"), this.stateText),
      h("div", { class: "al-row al-stats" }, this.iterationLabel, this.iteration, this.objectiveLabel, this.objective),
      this.umapNote,
      this.source,
      this.slot,
      h("h2", {}, "Select"),
      h("div", { class: "al-row" }, search, go),
      this.searchMsg,
      h("div", { class: "al-row" }, h("label", {}, "neighbours"), this.knnValue),
      h("div", { class: "al-row" }, this.knn),
      this.knnNote,
      h("div", { class: "al-row" }, h("label", {}, "distance in"), this.space),
      toolRow,
      clearRow,
      h("h2", {}, "Display"),
      h("div", { class: "al-row" }, h("label", {}, "colour by"), this.colorBy),
      this.rampLegend,
      h("div", { class: "al-row" }, h("label", {}, "thumbnail size"), size),
      h("div", { class: "al-row" }, h("label", {}, "hide dark pixels"), threshold),
      h("div", { class: "al-row al-small" }, this.thresholdNote, this.thresholdAuto),
      h("div", { class: "al-row" }, h("label", {}, "tint by label"), tint),
      h("div", { class: "al-row" }, h("label", {}, "dim unselected"), dim),
    );
    store.subscribe((st, changed) => this.update(st, changed));
    this.update(store.get(), new Set(Object.keys(s) as (keyof AppState)[]));
  }

  /** The slider and, beside it, what was chosen: automatically from the sprite, or by the user. */
  private showThreshold(s: AppState): void {
    const v = s.display.threshold;
    if (document.activeElement !== this.threshold) this.threshold.value = String(v);
    const auto = s.thresholdAuto;
    const sprite = !!s.embedding?.sprite;
    this.threshold.disabled = !sprite;
    this.thresholdAuto.hidden = !s.thresholdUser;
    let note = "";
    if (!sprite) note = s.embedding ? "no thumbnails" : "";
    else if (s.thresholdUser) note = `yours (${v.toFixed(2)})${auto ? `; auto would be ${auto.threshold.toFixed(2)}` : ""}`;
    else note = auto ? auto.text : "auto: reading the thumbnails…";
    this.thresholdNote.textContent = note;
    this.thresholdNote.dataset.mode = s.thresholdUser ? "user" : auto ? auto.kind : "pending";
  }

  private select(key: keyof LayoutForm, options: [string, string][], testid: string): HTMLSelectElement {
    const sel = h("select", { testid }, ...options.map(([v, l]) => h("option", { value: v }, l)));
    sel.addEventListener("change", () => {
      const v = sel.value;
      if (key === "n_components") this.ctl.setForm({ n_components: v === "3" ? 3 : 2 });
      else this.ctl.setForm({ [key]: v } as Partial<LayoutForm>);
    });
    this.fields.set(key, sel);
    return sel;
  }

  private update(s: AppState, changed: ReadonlySet<keyof AppState>): void {
    if (changed.has("layoutSchema") || changed.has("form")) {
      // Only the chosen method's parameters (as the schema says; all of them until it is known).
      for (const [k, { row }] of this.fieldRows) {
        const spec = specOf(s.layoutSchema, k);
        row.hidden = !!spec && !spec.methods.includes(s.form.method);
      }
      this.advanced.hidden = s.form.method === "pca";
      this.advancedSummary.textContent = `more ${s.form.method === "umap" ? "UMAP" : "t-SNE"} parameters`;
    }
    if (changed.has("layoutSchema")) {
      for (const [k, { row, label, input }] of this.fieldRows) {
        const spec = specOf(s.layoutSchema, k);
        if (!spec) continue;
        label.textContent = spec.label;
        row.title = input.title = spec.help + (spec.live ? " (changes a running t-SNE at once)" : "");
        input.inputMode = spec.kind === "int" ? "numeric" : "decimal";
      }
    }
    if (changed.has("form")) {
      for (const [k, el] of this.fields) {
        const v = s.form[k];
        if (document.activeElement !== el) el.value = v === null ? "" : String(v);
      }
    }
    if (changed.has("rows")) this.knn.max = String(knnSliderMax(s.rows));
    if (changed.has("spec") || changed.has("members")) {
      const suggested = s.spec.focus >= 0 && !s.spec.withNeighbours;
      this.knnNote.hidden = !suggested;
      this.knnNote.textContent = suggested ? `Selected: the suggested group (${s.members.length}). The slider regroups #${s.spec.focus} with its k nearest.` : "";
    }
    if (changed.has("spec") || changed.has("rows")) {
      // Leave the slider where the user holds it (a position maps to one k, but a typed k may fall between two).
      if (kAtSlider(Number(this.knn.value), s.rows) !== s.spec.k) this.knn.value = String(sliderOfK(s.spec.k, s.rows));
      if (document.activeElement !== this.knnValue || changed.has("rows")) this.knnValue.value = String(s.spec.k);
    }
    if (changed.has("knnSpace")) this.space.value = s.knnSpace;
    if (changed.has("tool")) for (const [t, b] of this.tools) b.classList.toggle("active", t === s.tool);
    if (changed.has("display") || changed.has("thresholdAuto") || changed.has("thresholdUser") || changed.has("embedding")) this.showThreshold(s);
    if (changed.has("display")) {
      this.colorBy.value = s.display.colorBy;
      this.rampLegend.hidden = s.display.colorBy !== "uncertainty";
    }
    if (changed.has("session") || changed.has("form") || changed.has("embedding") || changed.has("positionsSource")) {
      const st = s.session;
      const methodName = METHOD_NAMES[s.form.method];
      const sameKind = st && st.method === s.form.method && st.n_components === s.form.n_components;
      let label = `Start ${methodName}`;
      if (st && sameKind && (st.state === "running" || st.state === "preparing" || st.state === "waiting")) label = "Pause";
      else if (st && sameKind && st.state === "paused") label = "Resume";
      else if (st && sameKind && st.state === "done" && st.method !== "pca") label = `Continue ${methodName}`;
      this.toggle.textContent = label;
      this.toggle.disabled = !s.embedding || !s.positions;
      this.restart.disabled = !st;
      this.stateText.textContent = st ? `${METHOD_NAMES[st.method as LayoutForm["method"]] ?? st.method} ${st.n_components}D · ${st.state}` : "no layout session";
      this.iteration.textContent = String(st ? st.iteration : 0);
      this.objective.textContent = st && st.objective !== null && Number.isFinite(st.objective) ? st.objective.toFixed(4) : "–";
      // UMAP counts epochs and computes no objective.
      const umap = (st ? st.method : s.form.method) === "umap";
      this.iterationLabel.textContent = umap ? "epoch" : "iteration";
      this.objectiveLabel.hidden = this.objective.hidden = umap;
      // Honest about labels: UMAP takes them into its graph and runs a new pass from the current map.
      const extra = st && typeof st.params?.extra_iter === "number" ? st.params.extra_iter : 300;
      this.umapNote.hidden = !umap;
      this.umapNote.textContent = umap ? `New labels or a new label weight rebuild UMAP's graph and run ${extra} more epochs from the current map (its learning rate starts again).` : "";
      // The quick PCA stands in until the layout's own frames draw (then the hint goes);
      // once a layout is started it says so, not "until a layout runs".
      const started = !!st && st.state !== "error";
      const hint = s.positionsSource !== "client-pca" ? "" : started ? "Showing a quick PCA of the features until the layout's first frame." : "Showing a quick PCA of the features until a layout runs.";
      this.source.textContent = hint;
      this.source.hidden = !hint;
    }
  }
}
