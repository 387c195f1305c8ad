// The map view: canvas + WebGL scene, camera interaction (zoom, pan, orbit),
// hover preview, click/shift-click, box and lasso selection.
import { pct, predictedLegendIndex, predictionOf, uncertaintyColor } from "./active";
import { type Camera, defaultCamera, fitCamera, orbit, pan, pick, projectAll, viewMatrices, zoomAt } from "./camera";
import type { Controller } from "./controller";
import { breakAfterSlashes, clear, h } from "./dom";
import { classColor } from "./palette";
import { roundRows } from "./roundsController";
import { rowsInBox, rowsInLasso } from "./selection";
import { COLOR_BY, FLAG_FOCUS, FLAG_SUGGESTED, Scene } from "./scene";
import { LOD_THUMB_PX, pageCounts } from "./spritePages";
import type { AppState } from "./state";
import type { Store } from "./store";

const CLICK_SLOP_PX = 4;
/** The view is still this long (ms) before the sprite pages it shows are asked for. */
const PAGES_SETTLE_MS = 120;

export class MapView {
  readonly el: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  readonly scene: Scene;
  private camera: Camera = defaultCamera(2);
  private overlay: SVGSVGElement;
  /** Numbered rings around the suggested rows, moved with the camera every frame. */
  private marks: SVGSVGElement;
  private markRows: Uint32Array = new Uint32Array(0);
  private markStamp = "";
  private tooltip: HTMLElement;
  private empty: HTMLElement;
  private frameRequested = false;
  private screen = new Float32Array(0);
  private screenStamp = "";
  private drag: { x: number; y: number; button: number; shift: boolean; moved: boolean; mode: "camera" | "box" | "lasso"; path: number[] } | null = null;
  private lastTooltipRow = -2;
  /** Where the pointer is over the map (CSS px), or null when it is elsewhere. */
  private pointer: [number, number] | null = null;
  /** ms from opening an embedding to the first frame drawn with everything loaded (-1 until then). */
  firstFullFrameMs = -1;
  private awaitingFirst = false;
  private lastDrawAt = 0;
  private openedAt = 0;
  private pagesTimer: ReturnType<typeof setTimeout> | null = null;
  private pagesStamp = "";

  constructor(
    private readonly store: Store<AppState>,
    private readonly ctl: Controller,
  ) {
    this.canvas = h("canvas", { testid: "al-canvas", tabindex: 0, "aria-label": "Map of the embedding; click a thumbnail to focus it" });
    this.overlay = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.marks = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    this.marks.setAttribute("data-testid", "al-suggest-marks");
    this.tooltip = h("div", { class: "al-tooltip", testid: "al-tooltip", hidden: true });
    this.empty = h("div", { class: "al-map-empty" }, "Loading…");
    const hint = h("div", { class: "al-map-hint" }, "wheel: zoom · drag: pan (3D: orbit, right-drag pan) · F: fit all · click: focus + neighbours · shift-click: add/remove · Esc: clear");
    const fit = h("button", { class: "al-map-fit", testid: "al-fit", title: "Show the whole map (F)" }, "Fit all");
    fit.addEventListener("click", () => this.fitToData());
    this.el = h("div", { class: "al-map tool-pan" }, this.canvas, this.marks, this.overlay, this.tooltip, this.empty, hint, fit);
    this.scene = new Scene(this.canvas);
    ctl.scene = this.scene;
    ctl.onReveal((row, zoom) => this.reveal(row, zoom));
    this.bindEvents();
    store.subscribe((s, changed) => this.onState(s, changed));
    new ResizeObserver(() => this.requestRender()).observe(this.el);
  }

  private onState(s: AppState, changed: ReadonlySet<keyof AppState>): void {
    if (changed.has("embedding")) {
      this.openedAt = performance.now();
      this.firstFullFrameMs = -1;
      this.awaitingFirst = false;
      this.pagesStamp = "";
    }
    if (changed.has("viewDims") || changed.has("embedding")) this.resetCamera();
    if (changed.has("labelIndex") && s.labelIndex) this.scene.setClasses(s.labelIndex.perRow);
    if (changed.has("predictions") || changed.has("labelIndex") || changed.has("embedding")) this.uploadPredictions(s);
    const rounds = changed.has("round") || changed.has("rounds");
    if (changed.has("suggestions") || changed.has("labelIndex") || changed.has("embedding") || rounds) {
      // A round shown in the Rounds panel rings the rows it labeled, in place of the suggestions.
      this.markRows = s.round > 0 ? roundRows(s) : this.suggestedRows(s);
    }
    if (changed.has("mask") || changed.has("spec") || changed.has("suggestions") || changed.has("labelIndex") || rounds) this.uploadFlags(s);
    if ((changed.has("predictions") || changed.has("labelIndex")) && s.hover >= 0 && s.hover === this.lastTooltipRow) this.fillTooltip(s.hover);
    if (changed.has("tool")) this.el.className = `al-map tool-${s.tool}`;
    // A layout frame moves the points: the tooltip follows what is under the pointer now.
    if (changed.has("positionsRevision") && this.lastTooltipRow >= 0) this.refreshHover();
    if (changed.has("positions") || changed.has("embedding")) {
      this.empty.hidden = !!s.positions;
      if (!s.positions) this.empty.textContent = s.embedding ? "Loading…" : "";
    }
    this.requestRender();
  }

  private uploadFlags(s: AppState): void {
    const flags = s.mask.length === s.rows ? s.mask.slice() : new Uint8Array(s.rows);
    if (s.spec.focus >= 0 && s.spec.focus < flags.length && flags[s.spec.focus]) flags[s.spec.focus] |= FLAG_FOCUS;
    for (const r of this.markRows) if (r < flags.length) flags[r] |= FLAG_SUGGESTED;
    this.scene.setFlags(flags);
    this.scene.setSelected(s.members);
    this.scene.setSuggested(this.markRows);
  }

  /** Suggested rows not labeled since they were suggested, in the panel's order. */
  private suggestedRows(s: AppState): Uint32Array {
    const items = s.suggestions?.items ?? [];
    const li = s.labelIndex;
    return Uint32Array.from(items.map((it) => it.row).filter((r) => r >= 0 && r < s.rows && !(li && li.perRow[r] > 0)));
  }

  private uploadPredictions(s: AppState): void {
    const p = s.predictions;
    if (!p || !p.predicted || !p.uncertainty || p.predicted.length !== s.rows) {
      this.scene.setPredictions(new Uint16Array(s.rows), new Float32Array(s.rows));
      return;
    }
    this.scene.setPredictions(predictedLegendIndex(p, s.labelIndex ? s.labelIndex.classes : [], s.rows), p.uncertainty);
  }

  /** Rows marked as suggestions right now (tests). */
  suggestedMarks(): number[] {
    return Array.from(this.markRows);
  }

  resetCamera(): void {
    this.setCamera(defaultCamera(this.store.get().viewDims));
  }

  /** Show every point (2D and 3D; 3D keeps its orbit angles). */
  fitToData(): void {
    const pos = this.scene.targetPositions();
    if (!pos.length) return;
    this.setCamera(fitCamera(this.camera, pos, this.canvas.clientWidth, this.canvas.clientHeight, this.halfSize()));
  }

  /** A camera change not made by the pointer (fit, reveal, reset): the hover preview follows it. */
  private setCamera(cam: Camera): void {
    this.camera = cam;
    this.requestRender();
    this.refreshHover();
  }

  /** Hover what is under the pointer now (after the view or the points moved), or hide the preview. */
  private refreshHover(): void {
    if (this.pointer && !this.drag) this.updateHover(this.pointer[0], this.pointer[1]);
    else if (this.lastTooltipRow >= 0) this.setHover(-1);
  }

  /** Centre the view on a row and zoom in a little; with `zoom` false only when it is off-screen, without zooming. */
  reveal(row: number, zoom = true): void {
    const pos = this.scene.targetPositions();
    if (row < 0 || 3 * row + 2 >= pos.length) return;
    const t: [number, number, number] = [pos[3 * row], pos[3 * row + 1], pos[3 * row + 2]];
    if (!zoom) {
      const at = this.screenOf(row);
      const w = this.canvas.clientWidth, hgt = this.canvas.clientHeight;
      if (at && at[0] > 0.1 * w && at[0] < 0.9 * w && at[1] > 0.1 * hgt && at[1] < 0.9 * hgt) return;
      this.setCamera({ ...this.camera, target: t });
      return;
    }
    this.setCamera(this.camera.dims === 2 ? { ...this.camera, target: t, zoom: Math.max(this.camera.zoom, 3) } : { ...this.camera, target: t, distance: Math.min(this.camera.distance, 1.5) });
  }

  halfSize(): number {
    const s = this.store.get();
    return (1.6 * s.display.size) / Math.sqrt(Math.max(1, s.rows));
  }

  requestRender(): void {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame((now) => {
      this.frameRequested = false;
      this.render(now);
    });
  }

  /** Draw the map now, unless the GPU is still busy with the last frame (then try again next frame); true when drawn. */
  private render(now: number, paced = true): boolean {
    // With software GL a frame can cost hundreds of ms of CPU: draw the next one
    // only when the GPU is done with the last, and (animations) leave at least
    // as much time again to the rest of the page.
    if (this.scene.gpuBusy() || (paced && this.scene.isAnimating(now) && now - this.lastDrawAt < 2 * this.scene.gpuMs)) {
      this.requestRender();
      return false;
    }
    this.lastDrawAt = now;
    const s = this.store.get();
    this.scene.draw(
      {
        camera: this.camera,
        halfSize: this.halfSize(),
        threshold: s.display.threshold,
        tint: s.display.tint ? 0.65 : 0,
        dim: s.display.dimOthers ? 0.45 : 1,
        anySelected: s.members.length > 0,
        hover: s.hover,
        focus: s.spec.focus,
        colorMode: COLOR_BY[s.display.colorBy],
      },
      now,
    );
    this.drawMarks(now);
    this.schedulePages();
    if (s.ready && this.firstFullFrameMs < 0 && !this.awaitingFirst) this.awaitFirstFullFrame();
    if (this.scene.isAnimating(now)) this.requestRender();
    return true;
  }

  /** Time to the first full frame: until the GPU has finished drawing it, not just until it was submitted. */
  private awaitFirstFullFrame(): void {
    this.awaitingFirst = true;
    const opened = this.openedAt;
    const check = () => {
      if (opened !== this.openedAt) return;
      if (this.scene.gpuBusy()) {
        requestAnimationFrame(check);
        return;
      }
      this.firstFullFrameMs = performance.now() - this.openedAt;
      this.awaitingFirst = false;
    };
    requestAnimationFrame(check);
  }

  /** Once the view is still, ask for the sprite pages whose rows it shows (spritePages.ts). */
  private schedulePages(): void {
    if (this.pagesTimer !== null) clearTimeout(this.pagesTimer);
    this.pagesTimer = setTimeout(() => {
      this.pagesTimer = null;
      this.updatePages();
    }, PAGES_SETTLE_MS);
  }

  /** Tell the pages what the view shows now: rows of each page in view, and how large thumbnails are drawn. */
  updatePages(): void {
    const s = this.store.get();
    const sprite = s.embedding?.sprite;
    if (!sprite || !s.positions) return;
    const w = this.canvas.clientWidth, hgt = this.canvas.clientHeight;
    const half = this.halfSize();
    const stamp = `${s.positionsRevision}:${JSON.stringify(this.camera)}:${w}x${hgt}:${half}`;
    if (stamp === this.pagesStamp) return;
    this.pagesStamp = stamp;
    let drawnPx: number;
    let rows: ArrayLike<number>;
    const rect = Scene.viewRect(this.camera, half, w, hgt);
    if (rect) {
      drawnPx = Scene.pointPx(this.camera, half, w, hgt);
      // Dots need no page: no rows to gather (at 1M rows in view that took ~0.1 s after every layout frame).
      rows = drawnPx >= LOD_THUMB_PX ? this.scene.layoutIndex().rowsInRect(rect[0], rect[1], rect[2], rect[3]) : [];
    } else {
      // 3D: rows in front of the camera and on screen; thumbnails are drawn at every size, the nearest largest.
      const p = this.projected();
      const inView: number[] = [];
      for (let i = 0; i < p.length / 3; i++) {
        if (p[3 * i + 2] > 0 && p[3 * i] >= 0 && p[3 * i] <= w && p[3 * i + 1] >= 0 && p[3 * i + 1] <= hgt) inView.push(i);
      }
      rows = inView;
      drawnPx = Infinity;
    }
    this.scene.sprites.view(pageCounts(rows, sprite.per_page, sprite.pages), drawnPx);
  }

  /** 2D and still: the layout index answers in world units; the screen-to-world map of the view. */
  private worldOf(): ((px: number, py: number) => [number, number]) | null {
    if (this.camera.dims !== 2 || this.scene.isAnimating()) return null;
    const w = this.canvas.clientWidth, hgt = this.canvas.clientHeight;
    const { viewProj } = viewMatrices(this.camera, w, hgt);
    const halfW = 1 / viewProj[0], halfH = 1 / viewProj[5];
    const [tx, ty] = this.camera.target;
    return (px, py) => [tx + ((px / w) * 2 - 1) * halfW, ty + (1 - (py / hgt) * 2) * halfH];
  }

  /** Rows inside a screen rectangle (corners in CSS px). */
  rowsInBox(x0: number, y0: number, x1: number, y1: number): Uint32Array {
    const world = this.worldOf();
    if (!world) return rowsInBox(this.projected(), x0, y0, x1, y1);
    const [ax, ay] = world(x0, y0), [bx, by] = world(x1, y1);
    return this.scene.layoutIndex().rowsInRect(ax, ay, bx, by);
  }

  /** Rows inside a lasso (x, y, x, y, ... in CSS px). */
  rowsInLasso(path: ArrayLike<number>): Uint32Array {
    const world = this.worldOf();
    if (!world) return rowsInLasso(this.projected(), path);
    const poly = new Float64Array(path.length);
    for (let i = 0; i + 1 < path.length; i += 2) [poly[i], poly[i + 1]] = world(path[i], path[i + 1]);
    return this.scene.layoutIndex().rowsInPolygon(poly);
  }

  /**
   * Benchmark helper: draw `frames` frames, panning by `panPx` pixels per
   * frame along a circle (0: still), and resolve with the intervals between
   * frames actually drawn (ms; a frame is drawn once the GPU finished the
   * previous one).
   */
  measureFrames(frames: number, panPx: number): Promise<number[]> {
    return new Promise((resolve) => {
      const times: number[] = [];
      let last = -1;
      let i = 0;
      const step = (now: number) => {
        if (this.scene.gpuBusy()) {
          requestAnimationFrame(step);
          return;
        }
        if (last >= 0) times.push(now - last);
        last = now;
        if (panPx) {
          const a = i / 15;
          this.camera = pan(this.camera, panPx * Math.cos(a), panPx * Math.sin(a), this.canvas.clientWidth, this.canvas.clientHeight);
        }
        this.render(now, false);
        if (++i <= frames) requestAnimationFrame(step);
        else resolve(times);
      };
      requestAnimationFrame(step);
    });
  }

  /** Zoom (2D) so that thumbnails are drawn `px` CSS pixels wide, about the canvas centre (tests, benchmark). */
  zoomToThumbnailPx(px: number): void {
    if (this.camera.dims !== 2) return;
    const hgt = this.canvas.clientHeight;
    const now = this.halfSize() * viewMatrices(this.camera, this.canvas.clientWidth, hgt).quadScale[1] * hgt;
    if (now > 0) this.zoomBy(px / now);
  }

  /** Ask for the pages the view shows now and resolve once they are loaded (tests, benchmark). */
  pagesSettled(): Promise<void> {
    this.pagesStamp = "";
    this.updatePages();
    return this.scene.sprites.idle();
  }

  /** Zoom the view by `factor` about the canvas centre (tests, benchmark). */
  zoomBy(factor: number): void {
    const w = this.canvas.clientWidth, hgt = this.canvas.clientHeight;
    this.setCamera(zoomAt(this.camera, factor, w / 2, hgt / 2, w, hgt));
  }

  /** Screen positions of all rows as drawn now (x, y, w per row). */
  private projected(): Float32Array {
    const s = this.store.get();
    const now = performance.now();
    const w = this.canvas.clientWidth, hgt = this.canvas.clientHeight;
    const pos = this.scene.positionsAt(now);
    const stamp = `${s.positionsRevision}:${this.scene.isAnimating(now) ? now : "still"}:${JSON.stringify(this.camera)}:${w}x${hgt}`;
    if (stamp === this.screenStamp && this.screen.length === pos.length) return this.screen;
    if (this.screen.length !== pos.length) this.screen = new Float32Array(pos.length);
    const { viewProj } = viewMatrices(this.camera, w, hgt);
    projectAll(pos, pos.length / 3, viewProj, w, hgt, this.screen);
    this.screenStamp = stamp;
    return this.screen;
  }

  pickAt(px: number, py: number): number {
    const s = this.store.get();
    if (!s.positions) return -1;
    const w = this.canvas.clientWidth, hgt = this.canvas.clientHeight;
    const { quadScale } = viewMatrices(this.camera, w, hgt);
    const world = this.worldOf();
    if (world) {
      // As pick() below: the thumbnail's half-size, at least 3 px, around each centre; the nearest centre wins.
      const perPx = 2 / (quadScale[1] * hgt);
      const r = Math.max(this.halfSize(), 3 * perPx);
      const [x, y] = world(px, py);
      return this.scene.layoutIndex().pickAt(x, y, r, r);
    }
    return pick(this.projected(), quadScale, this.halfSize(), w, hgt, px, py, 3);
  }

  /** Screen position of a row as drawn now (for tests and the tooltip). */
  screenOf(row: number): [number, number] | null {
    const p = this.projected();
    if (row < 0 || 3 * row + 2 >= p.length || p[3 * row + 2] <= 0) return null;
    return [p[3 * row], p[3 * row + 1]];
  }

  private local(e: MouseEvent): [number, number] {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  private bindEvents(): void {
    const c = this.canvas;
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [x, y] = this.local(e);
      this.pointer = [x, y];
      const factor = Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015));
      this.camera = zoomAt(this.camera, factor, x, y, c.clientWidth, c.clientHeight);
      this.requestRender();
      this.updateHover(x, y);
    }, { passive: false });
    c.addEventListener("pointerdown", (e) => {
      c.focus();
      const [x, y] = this.local(e);
      const tool = this.store.get().tool;
      const mode = e.button === 0 && tool !== "pan" ? tool : "camera";
      this.drag = { x, y, button: e.button, shift: e.shiftKey, moved: false, mode, path: [x, y] };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      const [x, y] = this.local(e);
      this.pointer = [x, y];
      const d = this.drag;
      if (!d) {
        this.updateHover(x, y);
        return;
      }
      const dx = x - d.x, dy = y - d.y;
      if (!d.moved && Math.hypot(x - d.path[0], y - d.path[1]) < CLICK_SLOP_PX) return;
      d.moved = true;
      this.setHover(-1);
      if (d.mode === "camera") {
        const w = c.clientWidth, hgt = c.clientHeight;
        if (this.camera.dims === 3 && d.button === 0 && !d.shift) this.camera = orbit(this.camera, dx, dy);
        else this.camera = pan(this.camera, dx, dy, w, hgt);
        d.x = x;
        d.y = y;
        this.requestRender();
      } else {
        d.path.push(x, y);
        this.drawRegion(d.mode, d.path);
      }
    });
    const end = (e: PointerEvent) => {
      const d = this.drag;
      this.drag = null;
      if (!d) return;
      const [x, y] = this.local(e);
      clear(this.overlay);
      if (!d.moved) {
        const row = this.pickAt(x, y);
        if (row >= 0) {
          if (e.shiftKey || d.shift) this.ctl.toggle(row);
          else this.ctl.focus(row);
        } else if (!e.shiftKey) {
          this.ctl.clearSelection();
        }
        return;
      }
      if (d.mode === "box") {
        this.ctl.region(this.rowsInBox(d.path[0], d.path[1], x, y), d.shift || e.shiftKey);
      } else if (d.mode === "lasso") {
        this.ctl.region(this.rowsInLasso(d.path), d.shift || e.shiftKey);
      }
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", () => {
      this.drag = null;
      clear(this.overlay);
    });
    c.addEventListener("pointerleave", () => {
      this.pointer = null;
      if (!this.drag) this.setHover(-1);
    });
  }

  /** Numbered rings around the suggested rows (1 = ask first). */
  private drawMarks(now: number): void {
    const rows = this.markRows;
    const w = this.canvas.clientWidth, hgt = this.canvas.clientHeight;
    const stamp = rows.length ? `${rows.join(",")}:${this.scene.isAnimating(now) ? now : this.store.get().positionsRevision}:${JSON.stringify(this.camera)}:${w}x${hgt}:${this.halfSize()}` : "";
    if (stamp === this.markStamp) return;
    this.markStamp = stamp;
    clear(this.marks);
    if (!rows.length) return;
    const all = this.scene.positionsAt(now);
    const pts = new Float32Array(rows.length * 3);
    rows.forEach((r, i) => pts.set(all.subarray(3 * r, 3 * r + 3), 3 * i));
    const { viewProj, quadScale } = viewMatrices(this.camera, w, hgt);
    const screen = projectAll(pts, rows.length, viewProj, w, hgt, new Float32Array(pts.length));
    const ns = "http://www.w3.org/2000/svg";
    const order = new Map<number, number>();
    const ofRound = this.store.get().round > 0; // a shown round's labeled rows: rings without numbers
    (ofRound ? [] : this.store.get().suggestions?.items ?? []).forEach((it, i) => order.set(it.row, i + 1));
    rows.forEach((r, i) => {
      const x = screen[3 * i], y = screen[3 * i + 1], cw = screen[3 * i + 2];
      if (cw <= 0 || x < -50 || y < -50 || x > w + 50 || y > hgt + 50) return;
      const halfPx = (this.halfSize() * quadScale[1] * hgt * 0.5) / cw;
      const radius = Math.min(60, Math.max(9, halfPx * 1.3 * Math.SQRT2 + 3));
      const ring = document.createElementNS(ns, "circle");
      ring.setAttribute("cx", String(x));
      ring.setAttribute("cy", String(y));
      ring.setAttribute("r", String(radius));
      ring.setAttribute("class", ofRound ? "al-mark al-mark-round" : "al-mark");
      const text = document.createElementNS(ns, "text");
      text.setAttribute("x", String(x + radius * 0.72 + 2));
      text.setAttribute("y", String(y - radius * 0.72 - 2));
      text.setAttribute("class", "al-mark-text");
      text.textContent = String(order.get(r) ?? "");
      this.marks.append(ring, text);
    });
  }

  private drawRegion(mode: "box" | "lasso", path: number[]): void {
    clear(this.overlay);
    const ns = "http://www.w3.org/2000/svg";
    let shape: SVGElement;
    if (mode === "box") {
      const [x0, y0] = path;
      const x1 = path[path.length - 2], y1 = path[path.length - 1];
      shape = document.createElementNS(ns, "rect");
      shape.setAttribute("x", String(Math.min(x0, x1)));
      shape.setAttribute("y", String(Math.min(y0, y1)));
      shape.setAttribute("width", String(Math.abs(x1 - x0)));
      shape.setAttribute("height", String(Math.abs(y1 - y0)));
    } else {
      shape = document.createElementNS(ns, "polygon");
      const pts: string[] = [];
      for (let i = 0; i < path.length; i += 2) pts.push(`${path[i]},${path[i + 1]}`);
      shape.setAttribute("points", pts.join(" "));
    }
    shape.setAttribute("fill", "rgba(255,152,0,0.12)");
    shape.setAttribute("stroke", "#ff9800");
    shape.setAttribute("stroke-width", "1.5");
    shape.setAttribute("stroke-dasharray", "4 3");
    this.overlay.append(shape);
  }

  private updateHover(x: number, y: number): void {
    const row = this.pickAt(x, y);
    this.setHover(row);
    if (row >= 0) this.placeTooltip(x, y);
  }

  private setHover(row: number): void {
    if (this.store.get().hover !== row) this.store.set({ hover: row });
    if (row < 0) {
      this.tooltip.hidden = true;
      this.lastTooltipRow = -1;
    } else if (row !== this.lastTooltipRow) {
      this.fillTooltip(row);
      this.lastTooltipRow = row;
    }
  }

  private placeTooltip(x: number, y: number): void {
    const t = this.tooltip;
    t.hidden = false;
    const w = this.el.clientWidth, hgt = this.el.clientHeight;
    const tw = t.offsetWidth || 140, th = t.offsetHeight || 160;
    t.style.left = `${x + 16 + tw > w ? Math.max(0, x - 16 - tw) : x + 16}px`;
    t.style.top = `${y + 16 + th > hgt ? Math.max(0, y - 16 - th) : y + 16}px`;
  }

  private fillTooltip(row: number): void {
    const s = this.store.get();
    clear(this.tooltip);
    const img = this.scene.readThumbnail(row);
    if (img) {
      const cv = h("canvas", { width: img.width, height: img.height });
      cv.getContext("2d")!.putImageData(img, 0, 0);
      this.tooltip.append(cv);
    }
    const table = h("table");
    const li = s.labelIndex;
    const k = li ? li.perRow[row] : 0;
    const labelCell = h("td", {});
    if (k > 0 && li) labelCell.append(h("span", { class: "al-swatch", style: `display:inline-block;vertical-align:middle;margin-right:4px;background:${classColor(k)}` }), li.classes[k - 1]);
    else labelCell.append(h("em", {}, "unlabeled"));
    table.append(h("tr", {}, h("td", {}, "row"), h("td", {}, `#${row}`)));
    table.append(h("tr", {}, h("td", {}, "label"), labelCell));
    const pred = predictionOf(s.predictions, row);
    if (pred) {
      const pk = li ? li.classes.indexOf(pred.label) + 1 : 0;
      table.append(
        h(
          "tr",
          { testid: "al-tooltip-predicted" },
          h("td", {}, "predicted"),
          h("td", {}, h("span", { class: "al-swatch", style: `display:inline-block;vertical-align:middle;margin-right:4px;background:${classColor(pk)}` }), `${pred.label} · ${pct(pred.confidence)}`),
        ),
      );
      table.append(
        h(
          "tr",
          {},
          h("td", {}, "uncertainty"),
          h("td", {}, h("span", { class: "al-swatch", style: `display:inline-block;vertical-align:middle;margin-right:4px;background:${uncertaintyColor(pred.uncertainty)}` }), pct(pred.uncertainty)),
        ),
      );
    }
    const md = s.metadata;
    if (md) {
      md.columns.slice(0, 10).forEach((col, ci) => table.append(h("tr", { "data-column": col }, h("td", {}, col), h("td", {}, ...breakAfterSlashes(md.data[ci]?.[row] ?? "")))));
    }
    this.tooltip.append(table);
  }
}
