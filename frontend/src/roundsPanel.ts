// The Rounds panel: every classifier retrain is a round. A strip of rounds
// (number, labels so far, the accuracy estimate, what was labeled in it), step
// and play buttons, and "model view": the map shows the shown round's
// classifier hidden layer instead of the layout, moving from round to round.
// Collapsed until opened: nothing is asked of the server before.
import type { RoundInfo } from "./api";
import type { Controller } from "./controller";
import { clear, h } from "./dom";
import type { AppState } from "./state";
import type { Store } from "./store";

/** "80% ± 5 (3-fold)", "estimating…", or why there is none. */
export function accuracyText(r: RoundInfo): string {
  if (r.accuracy !== null) {
    if (r.accuracy_on === "held-out set") return `${Math.round(r.accuracy * 100)}% on the held-out set`;
    const std = r.accuracy_std !== null ? ` ± ${Math.round(r.accuracy_std * 100)}` : "";
    return `${Math.round(r.accuracy * 100)}%${std} (${r.accuracy_folds}-fold)`;
  }
  return r.accuracy_folds < 0 ? "too few labels per class to estimate" : "estimating…";
}

/** One line about round `r`: labels so far, classes, accuracy, what changed in it. */
export function roundText(r: RoundInfo, of: number): string {
  const labeled = r.changed.filter(([, label]) => label !== null).length;
  const cleared = r.changed.length - labeled;
  const offered = r.suggested?.length ? `, ${r.suggested.length} suggested` : "";
  const what = `${labeled} row${labeled === 1 ? "" : "s"} labeled${cleared ? `, ${cleared} cleared` : ""}${offered} in this round`;
  return `Round ${r.round} of ${of} · ${r.n_labeled} labels, ${r.classes.length} classes · accuracy ${accuracyText(r)} · ${what}`;
}

export class RoundsPanel {
  readonly el: HTMLDetailsElement;
  private readonly summary: HTMLElement;
  private readonly prev: HTMLButtonElement;
  private readonly next: HTMLButtonElement;
  private readonly play: HTMLButtonElement;
  private readonly model: HTMLInputElement;
  private readonly strip: HTMLElement;
  private readonly info: HTMLElement;

  constructor(
    private readonly store: Store<AppState>,
    private readonly ctl: Controller,
    /** Fit the map to what it shows (the model view and the layout have different extents). */
    private readonly fit: () => void = () => undefined,
  ) {
    this.summary = h("summary", { testid: "al-rounds-toggle", title: "Every classifier retrain is a round: step through them" }, "Rounds");
    this.prev = h("button", { testid: "al-rounds-prev", title: "Previous round ([)" }, "◀");
    this.next = h("button", { testid: "al-rounds-next", title: "Next round (])" }, "▶");
    this.play = h("button", { testid: "al-rounds-play", title: "Step through the rounds by themselves" }, "Play");
    this.model = h("input", { type: "checkbox", testid: "al-rounds-model-view" });
    const modelLabel = h(
      "label",
      { title: "Show the classifier's own view of the data for the shown round: its hidden layer (D/4 units) on its first principal axes. Off: the layout." },
      this.model,
      " model view",
    );
    this.prev.addEventListener("click", () => void ctl.rounds.step(-1));
    this.next.addEventListener("click", () => void ctl.rounds.step(1));
    this.play.addEventListener("click", () => void ctl.rounds.play());
    this.model.addEventListener("change", () => void ctl.rounds.setModelView(this.model.checked).then(() => this.fit()));
    this.strip = h("div", { class: "al-rounds-strip", testid: "al-rounds-strip" });
    this.info = h("div", { class: "al-small", testid: "al-rounds-info", role: "status" });
    this.el = h(
      "details",
      { class: "al-rounds", testid: "al-rounds-panel" },
      this.summary,
      h("div", { class: "al-row" }, this.prev, this.next, this.play, modelLabel),
      this.strip,
      this.info,
      h("div", { class: "al-small" }, "Each retrain of the classifier is a round; its accuracy is cross-validated on the labels of that round (in a benchmark recording: measured on the held-out set). Rings mark the rows labeled (or suggested) in the shown round."),
    ) as HTMLDetailsElement;
    this.el.addEventListener("toggle", () => ctl.rounds.setOpen(this.el.open));
    store.subscribe((s, changed) => this.update(s, changed));
    this.update(store.get(), new Set(Object.keys(store.get()) as (keyof AppState)[]));
  }

  private update(s: AppState, changed: ReadonlySet<keyof AppState>): void {
    if (changed.has("embedding")) {
      this.el.hidden = !!s.embedding && !s.embedding.labels_supported;
      if (this.el.open && changed.has("embedding")) this.ctl.rounds.setOpen(true);
    }
    if (!(changed.has("rounds") || changed.has("round") || changed.has("modelView") || changed.has("roundsPlaying") || changed.has("embedding"))) return;
    const rounds = s.rounds?.rounds ?? [];
    const n = rounds.length;
    this.summary.textContent = s.rounds ? `Rounds (${n})` : "Rounds";
    this.prev.disabled = n === 0 || s.round === 1;
    this.next.disabled = n === 0 || s.round === n;
    this.play.disabled = n < 2;
    this.play.textContent = s.roundsPlaying ? "Stop" : "Play";
    this.model.checked = s.modelView;
    this.model.disabled = n === 0 && !s.modelView;
    if (changed.has("rounds") || changed.has("round") || changed.has("embedding")) {
      clear(this.strip);
      for (const r of rounds) {
        const b = h(
          "button",
          {
            class: r.round === s.round ? "active" : "",
            testid: `al-round-${r.round}`,
            title: roundText(r, n),
            "data-accuracy": r.accuracy ?? "",
          },
          String(r.round),
        );
        b.addEventListener("click", () => void this.ctl.rounds.show(r.round));
        this.strip.append(b);
      }
    }
    const shown = s.round > 0 ? rounds[s.round - 1] : undefined;
    this.info.textContent = shown
      ? roundText(shown, n)
      : n
        ? `${n} round${n === 1 ? "" : "s"}: pick one to see what it labeled.`
        : s.rounds
          ? "No rounds yet: the classifier trains once two classes are labeled, and again after each label."
          : "";
  }
}
