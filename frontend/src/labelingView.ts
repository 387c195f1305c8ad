// The labeling view of one embedding: layout panel | map | label panel, plus
// the keyboard shortcuts (1-9, Ctrl+Z, Ctrl+Shift+Z, Esc, F or 0: fit the map, [ and ]: rounds).
import type { Api, EmbeddingInfo } from "./api";
import { Controller, type Host } from "./controller";
import { h } from "./dom";
import { LabelPanel } from "./labelPanel";
import { LayoutPanel } from "./layoutPanel";
import { MapView } from "./mapView";
import { RoundsPanel } from "./roundsPanel";
import { SuggestPanel } from "./suggestPanel";
import { initialState, type AppState } from "./state";
import { Store } from "./store";

export class LabelingView {
  readonly el: HTMLElement;
  readonly store = new Store<AppState>(initialState());
  readonly ctl: Controller;
  readonly map: MapView;
  private labelPanel: LabelPanel;

  constructor(api: Api, host: Host) {
    this.ctl = new Controller(api, this.store, host);
    this.map = new MapView(this.store, this.ctl);
    const layout = new LayoutPanel(this.store, this.ctl);
    const suggest = new SuggestPanel(this.store, this.ctl, this.map.scene);
    const rounds = new RoundsPanel(this.store, this.ctl, () => this.map.fitToData());
    layout.slot.append(suggest.el, rounds.el);
    this.labelPanel = new LabelPanel(this.store, this.ctl, this.map.scene);
    this.el = h("div", { class: "al-body", testid: "al-labeling-view" }, layout.el, this.map.el, this.labelPanel.el);
    document.addEventListener("keydown", (e) => this.onKey(e));
    // Labels are shared on the server: pick up other people's work when the tab comes back.
    window.addEventListener("focus", () => void this.ctl.refreshLabels());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") void this.ctl.refreshLabels();
    });
    // A hook for tests and the benchmark: data-ready="true" once the map is complete.
    this.store.subscribe((st, changed) => {
      if (changed.has("ready")) this.el.dataset.ready = String(st.ready);
    });
    this.el.dataset.ready = "false";
  }

  /** Read-only inspection for end-to-end tests and the benchmark. */
  readonly debug = {
    selection: (): number[] => Array.from(this.store.get().members),
    focus: (): number => this.store.get().spec.focus,
    k: (): number => this.store.get().spec.k,
    screenOf: (row: number): [number, number] | null => this.map.screenOf(row),
    pickAt: (x: number, y: number): number => this.map.pickAt(x, y),
    rows: (): number => this.store.get().rows,
    labelOf: (row: number): string | null => {
      const li = this.store.get().labelIndex;
      const k = li ? li.perRow[row] : 0;
      return k > 0 && li ? li.classes[k - 1] : null;
    },
    animating: (): boolean => this.map.scene.isAnimating(),
    frameTimes: (): number[] => this.map.scene.stats.frameTimes.slice(),
    resetFrameTimes: (): void => {
      this.map.scene.stats.frameTimes.length = 0;
    },
    drawCalls: (): number => this.map.scene.stats.drawCalls,
    firstFullFrameMs: (): number => this.map.firstFullFrameMs,
    measureFrames: (frames: number, panPx: number): Promise<number[]> => this.map.measureFrames(frames, panPx),
    zoomBy: (factor: number): void => this.map.zoomBy(factor),
    resetView: (): void => this.map.resetCamera(),
    session: () => this.store.get().session,
    suggested: (): number[] => this.map.suggestedMarks(),
    predictionStatus: (): string | null => this.store.get().predictions?.status ?? null,
    labelVersion: (): number | null => this.store.get().labelState?.version ?? null,
    /** Where `rows` are drawn now (mid-animation included) and where they are heading, as [x, y, z]. */
    drawnAt: (rows: number[]): number[][] => pick(this.map.scene.positionsAt(), rows),
    headingTo: (rows: number[]): number[][] => pick(this.map.scene.targetPositions(), rows),
    positionsSource: (): string => this.store.get().positionsSource,
    threshold: (): number => this.store.get().display.threshold,
    round: (): number => this.store.get().round,
    roundCount: (): number => this.store.get().rounds?.rounds.length ?? 0,
    modelView: (): boolean => this.store.get().modelView,
  };

  /** `scope`: what tells this log directory's browser preferences apart (its path). */
  open(e: EmbeddingInfo, scope = ""): Promise<void> {
    return this.ctl.open(e, scope);
  }

  close(): void {
    this.ctl.close();
  }

  private onKey(e: KeyboardEvent): void {
    if (!this.el.isConnected || !this.store.get().embedding) return;
    const target = e.target as HTMLElement | null;
    const typing = !!target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT") && (target as HTMLInputElement).type !== "range" && (target as HTMLInputElement).type !== "checkbox";
    const mod = e.ctrlKey || e.metaKey;
    if (mod && !typing && (e.key === "z" || e.key === "Z")) {
      e.preventDefault();
      if (e.shiftKey) void this.ctl.redo();
      else void this.ctl.undo();
      return;
    }
    if (mod && !typing && (e.key === "y" || e.key === "Y")) {
      e.preventDefault();
      void this.ctl.redo();
      return;
    }
    if (typing || mod || e.altKey) return;
    if (/^[1-9]$/.test(e.key)) {
      e.preventDefault();
      void this.ctl.applyClassNumber(Number(e.key));
    } else if ((e.key === "[" || e.key === "]") && this.store.get().rounds) {
      e.preventDefault();
      void this.ctl.rounds.step(e.key === "]" ? 1 : -1);
    } else if (e.key === "Escape") {
      this.ctl.clearSelection();
    } else if (e.key === "f" || e.key === "F" || e.key === "0") {
      e.preventDefault();
      this.map.fitToData();
    } else if (e.key === "l" || e.key === "Enter") {
      e.preventDefault();
      this.labelPanel.focusInput();
    }
  }
}

function pick(pos: Float32Array, rows: number[]): number[][] {
  return rows.map((r) => [pos[3 * r], pos[3 * r + 1], pos[3 * r + 2]]);
}
