// Right panel: the label box (autocomplete over existing classes), apply /
// clear / undo / redo, the class legend with counts, export, and the
// selection listed as thumbnails that toggle in and out of the selection.
import { pct, selectionConsensus } from "./active";
import type { Controller } from "./controller";
import { clear, h } from "./dom";
import { suggestClasses } from "./labels";
import { classColor } from "./palette";
import type { Scene } from "./scene";
import type { AppState } from "./state";
import type { Store } from "./store";

/** The side panel shows at most this many selected thumbnails. */
const MAX_THUMBS = 150;

export class LabelPanel {
  readonly el: HTMLElement;
  private input: HTMLInputElement;
  private datalist: HTMLDataListElement;
  private apply: HTMLButtonElement;
  private clearBtn: HTMLButtonElement;
  private undoBtn: HTMLButtonElement;
  private redoBtn: HTMLButtonElement;
  private exportBtn: HTMLButtonElement;
  private message: HTMLElement;
  private classList: HTMLUListElement;
  private unlabeled: HTMLElement;
  private progress: HTMLElement;
  private count: HTMLElement;
  private grid: HTMLElement;
  private more: HTMLElement;
  /** Rows the selection list shows now, and their cells (toggling only restyles them). */
  private gridRows = new Uint32Array(0);
  private cells = new Map<number, HTMLElement>();
  private asPredicted: HTMLButtonElement;
  private consensus: HTMLElement;
  private sure: HTMLInputElement;

  constructor(
    private readonly store: Store<AppState>,
    private readonly ctl: Controller,
    private readonly scene: Scene,
  ) {
    this.datalist = h("datalist", { id: "al-class-suggestions" });
    this.input = h("input", { type: "text", list: "al-class-suggestions", placeholder: "label for the selection", testid: "al-label-input", autocomplete: "off", maxlength: 256 });
    this.apply = h("button", { class: "primary", testid: "al-apply-label", title: "Enter" }, "Apply");
    this.clearBtn = h("button", { testid: "al-clear-label", title: "Remove the label of the selected points" }, "Clear label");
    this.undoBtn = h("button", { testid: "al-undo", title: "Ctrl+Z" }, "Undo");
    this.redoBtn = h("button", { testid: "al-redo", title: "Ctrl+Shift+Z" }, "Redo");
    this.exportBtn = h("button", { testid: "al-export", title: "Download the labels as CSV" }, "Export CSV");
    this.message = h("div", { class: "al-small", testid: "al-label-message", role: "status" });
    this.classList = h("ul", { class: "al-classes", testid: "al-class-list" });
    this.unlabeled = h("div", { class: "al-small", testid: "al-unlabeled" });
    this.progress = h("div", { class: "al-small", testid: "al-labeled-progress" });
    this.count = h("span", { class: "al-stat", testid: "al-selection-count" }, "0");
    this.grid = h("div", { class: "al-selgrid", testid: "al-selection-list" });
    this.more = h("div", { class: "al-more" });

    const doApply = async () => {
      const label = this.input.value;
      this.message.textContent = "";
      const err = await ctl.applyLabel(label);
      this.message.textContent = err;
      if (!err) this.input.select();
    };
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        void doApply();
      } else if (e.key === "Escape") {
        this.input.blur();
      }
    });
    this.input.addEventListener("input", () => this.fillSuggestions());
    this.apply.addEventListener("click", () => void doApply());
    this.clearBtn.addEventListener("click", async () => {
      this.message.textContent = await ctl.clearLabels();
    });
    this.undoBtn.addEventListener("click", () => void ctl.undo());
    this.redoBtn.addEventListener("click", () => void ctl.redo());
    this.exportBtn.addEventListener("click", () => ctl.exportCsv());
    this.asPredicted = h("button", { testid: "al-label-as-predicted", title: "Label the selection's unlabeled rows with the class the classifier predicts for all of them" }, "Label as predicted");
    this.asPredicted.addEventListener("click", async () => {
      this.message.textContent = "";
      this.message.textContent = await ctl.labelAsPredicted();
    });
    this.consensus = h("div", { class: "al-small", testid: "al-consensus" });
    this.sure = h("input", { type: "text", inputmode: "numeric", testid: "al-sure-threshold", title: "Least confidence (percent) the model needs for every row", style: "width:34px" });
    this.sure.value = String(Math.round(store.get().sureThreshold * 100));
    this.sure.addEventListener("change", () => {
      const v = Number(this.sure.value);
      if (!Number.isFinite(v) || v < 0 || v > 100) {
        this.sure.value = String(Math.round(store.get().sureThreshold * 100));
        return;
      }
      ctl.setSureThreshold(v / 100);
    });
    const clearSel = h("button", { testid: "al-selection-clear" }, "Clear selection");
    clearSel.addEventListener("click", () => ctl.clearSelection());

    this.el = h(
      "div",
      { class: "al-side right", testid: "al-label-panel" },
      h("h2", {}, "Label"),
      h("div", { class: "al-labelbox" }, this.input, this.apply),
      this.datalist,
      h("div", { class: "al-row" }, this.clearBtn, this.undoBtn, this.redoBtn),
      this.message,
      h("div", { class: "al-small" }, "Keys 1–9 apply the classes below to the selection."),
      h("div", { class: "al-row" }, this.asPredicted, h("label", { class: "al-small", style: "text-align:right" }, "if sure ≥"), this.sure, h("span", { class: "al-small" }, "%")),
      this.consensus,
      h("h2", {}, "Classes"),
      this.classList,
      this.unlabeled,
      this.progress,
      h("div", { class: "al-row" }, this.exportBtn),
      h("h2", {}, "Selection"),
      h("div", { class: "al-row" }, h("label", {}, this.count, " selected"), clearSel),
      this.grid,
      this.more,
    );
    store.subscribe((s, changed) => this.update(s, changed));
    this.update(store.get(), new Set(["labelIndex", "labelState", "members", "writing"]));
  }

  focusInput(): void {
    this.input.focus();
    this.input.select();
  }

  private fillSuggestions(): void {
    const li = this.store.get().labelIndex;
    clear(this.datalist);
    const names = li ? li.legend.map((k) => li.classes[k - 1]) : [];
    for (const c of suggestClasses(names, this.input.value, 20)) this.datalist.append(h("option", { value: c }));
  }

  private update(s: AppState, changed: ReadonlySet<keyof AppState>): void {
    if (changed.has("labelIndex") || changed.has("labelState") || changed.has("writing")) {
      const ls = s.labelState;
      this.undoBtn.disabled = !ls?.can_undo || s.writing;
      this.redoBtn.disabled = !ls?.can_redo || s.writing;
      this.apply.disabled = s.writing;
      this.clearBtn.disabled = s.writing;
      this.exportBtn.disabled = !s.embedding?.labels_supported;
    }
    if (changed.has("labelIndex")) {
      this.renderClasses(s);
      this.fillSuggestions();
    }
    if (changed.has("members") || changed.has("labelIndex") || changed.has("predictions") || changed.has("sureThreshold") || changed.has("writing")) this.renderConsensus(s);
    if (changed.has("members") || changed.has("listed") || changed.has("pagesLoaded") || changed.has("labelIndex")) this.renderSelection(s, changed.has("pagesLoaded"));
  }

  private renderConsensus(s: AppState): void {
    const li = s.labelIndex;
    const c = selectionConsensus(s.members, li ? li.perRow : new Uint16Array(0), li ? li.classes : [], s.predictions, s.sureThreshold);
    this.asPredicted.disabled = !c.label || s.writing;
    this.asPredicted.dataset.label = c.label ?? "";
    this.asPredicted.textContent = c.label ? `Label ${c.rows.length} as “${c.label}”` : "Label as predicted";
    this.consensus.textContent = c.label ? `The model predicts “${c.label}” for every unlabeled selected row (least sure: ${pct(c.minConfidence)}).` : s.members.length && s.predictions?.predicted ? c.reason : "";
  }

  private renderClasses(s: AppState): void {
    clear(this.classList);
    const li = s.labelIndex;
    if (!li) return;
    // Only classes with rows: a class an undo emptied leaves the legend and the 1-9 keys.
    li.legend.forEach((ci, pos) => {
      const i = ci - 1;
      const name = li.classes[i];
      const item = h(
        "li",
        { "data-class": name, "data-count": li.counts[i], title: `Click: select all “${name}” (shift: add)` },
        h("span", { class: "key" }, pos < 9 ? String(pos + 1) : ""),
        h("span", { class: "al-swatch", style: `background:${classColor(i + 1)}` }),
        h("span", { class: "name" }, name),
        h("span", { class: "count" }, li.counts[i].toLocaleString("en-US")),
      );
      item.addEventListener("click", (e) => this.ctl.selectClass(i + 1, e.shiftKey));
      this.classList.append(item);
    });
    if (li.legend.length === 0) this.classList.append(h("li", { class: "al-small", style: "cursor:default" }, "No labels yet."));
    this.unlabeled.textContent = `${li.unlabeled.toLocaleString("en-US")} unlabeled`;
    const labeled = s.rows - li.unlabeled;
    this.progress.textContent = s.rows ? `${labeled.toLocaleString("en-US")} of ${s.rows.toLocaleString("en-US")} labeled (${((100 * labeled) / s.rows).toFixed(1)}%)` : "";
  }

  /**
   * The selection as thumbnails: a click (or Space/Enter) takes a row out of
   * the selection or puts it back; a row taken out stays listed, dimmed, until
   * the selection changes otherwise. Double-click shows the row on the map.
   */
  private renderSelection(s: AppState, rebuild = false): void {
    this.count.textContent = String(s.members.length);
    const shown = Math.min(MAX_THUMBS, s.listed.length);
    const rows = s.listed.subarray(0, shown);
    if (rebuild || !sameRows(rows, this.gridRows)) {
      clear(this.grid);
      this.cells.clear();
      for (const row of rows) {
        const cell = this.selectionCell(row);
        this.cells.set(row, cell);
        this.grid.append(cell);
      }
      this.gridRows = rows.slice();
    }
    const li = s.labelIndex;
    for (const [row, cell] of this.cells) {
      const on = s.mask[row] === 1;
      const k = li ? li.perRow[row] : 0;
      cell.className = `thumb${on ? "" : " off"}${row === s.spec.focus ? " focus" : ""}`;
      cell.setAttribute("aria-checked", String(on));
      cell.style.borderColor = k > 0 ? classColor(k) : "";
      cell.title = `#${row}${k > 0 && li ? ` · ${li.classes[k - 1]}` : ""}\n${on ? "Click: take out of the selection" : "Click: put back into the selection"} · double-click: show on the map`;
      const badge = cell.querySelector("button")!;
      badge.textContent = on ? "×" : "+";
      badge.title = on ? "Take out of the selection" : "Put back into the selection";
      badge.dataset.testid = on ? "al-selection-remove" : "al-selection-restore";
    }
    const hidden = s.listed.length - shown;
    this.more.textContent = hidden > 0 ? `and ${hidden.toLocaleString("en-US")} more` : "";
  }

  private selectionCell(row: number): HTMLElement {
    const cell = h("div", { class: "thumb", "data-row": row, role: "checkbox", tabindex: 0 });
    const img = this.scene.readThumbnail(row);
    if (img) {
      const cv = h("canvas", { width: img.width, height: img.height });
      cv.getContext("2d")!.putImageData(img, 0, 0);
      cell.append(cv);
    } else {
      cell.append(h("div", { class: "dot" }, `#${row}`));
    }
    // The badge does what a click on the cell does; it is there to be seen (no hover needed).
    const badge = h("button", { tabindex: -1 }, "×");
    cell.append(badge);
    cell.addEventListener("click", () => this.ctl.toggle(row));
    cell.addEventListener("dblclick", () => this.ctl.reveal(row, true));
    cell.addEventListener("keydown", (e) => {
      if (e.key === " " || e.key === "Enter") {
        e.preventDefault();
        e.stopPropagation();
        this.ctl.toggle(row);
      }
    });
    cell.addEventListener("mouseenter", () => this.store.set({ hover: row }));
    cell.addEventListener("mouseleave", () => {
      if (this.store.get().hover === row) this.store.set({ hover: -1 });
    });
    return cell;
  }
}

function sameRows(a: Uint32Array, b: Uint32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
