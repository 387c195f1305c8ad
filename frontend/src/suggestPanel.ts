// The Suggest panel: pick a query strategy, ask the server for the next focus
// points, see them as thumbnails (and as numbered rings on the map), accept
// one to select its group; plus the classifier's status.
import { classifierStatusText, pct, suggestionSize } from "./active";
import { STRATEGIES, type Strategy, type SuggestionItem } from "./api";
import type { Controller } from "./controller";
import { clear, h } from "./dom";
import type { Scene } from "./scene";
import type { AppState } from "./state";
import type { Store } from "./store";

export const STRATEGY_TEXT: Record<Strategy, [string, string]> = {
  tsne: ["t-SNE focus", "The point whose layout neighbourhood holds the most unlabeled points likely to share its label; accepting selects that group (needs a layout)."],
  "tsne-supervised": ["t-SNE focus (supervised layout)", "As t-SNE focus, on the label-aware (semi-supervised) layout that is running."],
  "tsne-assisted": ["assisted groups", "Groups the classifier is unsure of, where the layout holds many points it predicts alike; accepting selects the group, to label as predicted (correct the label or remove the odd ones first if needed). As t-SNE focus until the classifier exists (needs a layout)."],
  random: ["random", "Unlabeled rows in random order (the baseline)."],
  "least-confidence": ["least confidence", "Rows whose predicted class has the lowest probability (needs labels of two classes)."],
  margin: ["margin", "Rows with the smallest gap between the two likeliest classes (needs labels of two classes)."],
  entropy: ["entropy", "Rows whose predicted distribution has the highest entropy (needs labels of two classes)."],
  ensemble: ["ensemble", "Rows on which several independently trained models disagree most (needs labels of two classes)."],
  adversarial: ["adversarial (DeepFool)", "Rows the smallest change of features would flip to another class (needs labels of two classes)."],
};

export class SuggestPanel {
  readonly el: HTMLElement;
  private strategy: HTMLSelectElement;
  private count: HTMLInputElement;
  private run: HTMLButtonElement;
  private about: HTMLElement;
  private status: HTMLElement;
  private message: HTMLElement;
  private list: HTMLElement;

  constructor(
    private readonly store: Store<AppState>,
    private readonly ctl: Controller,
    private readonly scene: Scene,
  ) {
    this.strategy = h(
      "select",
      { testid: "al-suggest-strategy", title: "How to choose what to label next", style: "flex:1;min-width:0" },
      ...STRATEGIES.map((k) => h("option", { value: k }, STRATEGY_TEXT[k][0])),
    );
    this.strategy.addEventListener("change", () => ctl.setStrategy(this.strategy.value as Strategy));
    this.count = h("input", { type: "text", inputmode: "numeric", value: "10", testid: "al-suggest-n", title: "How many suggestions (1-100)", style: "width:34px" });
    this.count.addEventListener("change", () => {
      const v = Math.round(Number(this.count.value));
      if (!Number.isFinite(v) || v < 1 || v > 100) {
        this.count.value = String(store.get().suggestCount);
        return;
      }
      store.set({ suggestCount: v });
    });
    this.run = h("button", { class: "primary", testid: "al-suggest-run", title: "Ask for the next points to label" }, "Suggest");
    this.run.addEventListener("click", () => void ctl.suggest());
    this.about = h("div", { class: "al-small" });
    this.status = h("div", { class: "al-classifier", testid: "al-classifier-status", role: "status" });
    this.message = h("div", { class: "al-small al-suggest-message", testid: "al-suggest-message", role: "status" });
    this.list = h("div", { class: "al-selgrid al-suggest-list", testid: "al-suggest-list" });
    this.el = h(
      "div",
      { testid: "al-suggest-panel" },
      h("h2", {}, "Suggest"),
      h("div", { class: "al-row" }, h("label", {}, "strategy"), this.strategy),
      h("div", { class: "al-row" }, h("label", {}, "how many"), this.count, this.run),
      this.about,
      this.status,
      this.message,
      this.list,
    );
    store.subscribe((s, changed) => this.update(s, changed));
    this.update(store.get(), new Set(Object.keys(store.get()) as (keyof AppState)[]));
  }

  private update(s: AppState, changed: ReadonlySet<keyof AppState>): void {
    if (changed.has("strategy")) {
      this.strategy.value = s.strategy;
      this.about.textContent = STRATEGY_TEXT[s.strategy][1];
    }
    if (changed.has("suggestCount") && document.activeElement !== this.count) this.count.value = String(s.suggestCount);
    if (changed.has("suggestBusy") || changed.has("embedding") || changed.has("ready")) {
      this.run.disabled = s.suggestBusy || !s.embedding?.labels_supported || !s.positions;
      this.run.textContent = s.suggestBusy ? "Suggesting…" : "Suggest";
    }
    if (changed.has("predictions") || changed.has("predictionsError") || changed.has("embedding")) {
      const p = s.predictions;
      const status = s.predictionsError ? "error" : p ? p.status : "idle";
      this.status.dataset.status = status;
      this.status.dataset.version = p && p.version !== null ? String(p.version) : "";
      this.status.className = `al-classifier ${status}`;
      this.status.textContent =
        s.embedding && !s.embedding.labels_supported
          ? "Classifier: not available (this embedding cannot hold labels)."
          : `Classifier: ${classifierStatusText(p, s.predictionsError)}`;
    }
    if (changed.has("suggestMessage")) this.message.textContent = s.suggestMessage;
    if (changed.has("suggestions") || changed.has("labelIndex") || changed.has("pagesLoaded") || changed.has("acceptedSuggestion")) this.renderList(s);
  }

  private renderList(s: AppState): void {
    clear(this.list);
    const items = s.suggestions?.items ?? [];
    const li = s.labelIndex;
    items.forEach((item, i) => this.list.append(this.cell(item, i + 1, !!li && li.perRow[item.row] > 0, s.acceptedSuggestion === item.row)));
  }

  private cell(item: SuggestionItem, rank: number, done: boolean, accepted: boolean): HTMLElement {
    const size = suggestionSize(item);
    const pred = item.predicted !== null && item.confidence !== null ? ` · predicted ${item.predicted} (${pct(item.confidence)})` : "";
    const cell = h("div", {
      class: `thumb sugg${done ? " done" : ""}${accepted ? " focus" : ""}`,
      title: `#${item.row} · score ${item.score.toPrecision(3)} · ${size === 1 ? "single point" : `group of ${size}`}${pred}${done ? " · labeled since" : ""}\nClick: focus it with its group selected`,
      "data-row": item.row,
      "data-rank": rank,
      "data-group-size": size,
      "data-predicted": item.predicted,
    });
    const img = this.scene.readThumbnail(item.row);
    if (img) {
      const cv = h("canvas", { width: img.width, height: img.height });
      cv.getContext("2d")!.putImageData(img, 0, 0);
      cell.append(cv);
    } else {
      cell.append(h("div", { class: "dot" }, `#${item.row}`));
    }
    cell.append(h("span", { class: "rank" }, String(rank)));
    if (size > 1) cell.append(h("span", { class: "size" }, String(size)));
    cell.addEventListener("click", () => this.ctl.acceptSuggestion(item));
    return cell;
  }
}
