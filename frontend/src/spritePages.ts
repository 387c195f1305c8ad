// Sprite atlas pages, loaded by what the map shows. Page k holds rows
// k*per_page .. (k+1)*per_page - 1; at 1M rows of 28x28 thumbnails that is 12
// pages of 8176 x 8176 px, ~3 GB as decoded RGBA: far more than a tab should
// hold. So a page is fetched only when rows of it are on screen and drawn
// large enough to be read (below that the map draws dots, see scene.ts), at
// the resolution the view needs (half or a quarter of it when thumbnails are
// drawn small), one at a time, most visible rows first; pages beyond a memory
// budget are dropped, the least recently needed first (an LRU). Rows whose
// page is not loaded are drawn as dots meanwhile.
import type { SpriteInfo } from "./api";

/** Thumbnails drawn smaller than this (px) are dots: a thumbnail of a few pixels shows nothing. */
export const LOD_THUMB_PX = 8;

/** GPU memory the loaded pages may take together (bytes, mipmaps included). */
export const PAGE_BUDGET_BYTES = 1024 * 1024 * 1024;

/** Loads page `page` as an image `scale` times its size (1, 1/2 or 1/4). */
export type PageFetcher = (page: number, scale: number) => Promise<ImageBitmap>;

/** What the pages are uploaded to (the scene). */
export interface PageSink {
  setAtlasPage(page: number, source: ImageBitmap): void;
  dropPage(page: number): void;
}

/** How many rows of each page a view shows; `rows` are row numbers (any order). */
export function pageCounts(rows: ArrayLike<number>, perPage: number, pages: number): Uint32Array {
  const counts = new Uint32Array(pages);
  for (let i = 0; i < rows.length; i++) {
    const p = Math.floor(rows[i] / perPage);
    if (p >= 0 && p < pages) counts[p]++;
  }
  return counts;
}

/**
 * The resolution to load pages at for thumbnails drawn `drawnPx` wide: the
 * smallest of 1, 1/2, 1/4 whose cells still have at least one texel per drawn
 * pixel (and whole texels per cell); 0 when thumbnails are drawn as dots.
 */
export function pageScale(drawnPx: number, sprite: Pick<SpriteInfo, "thumb_width" | "thumb_height">): number {
  if (!(drawnPx >= LOD_THUMB_PX)) return 0;
  const side = Math.max(sprite.thumb_width, sprite.thumb_height);
  let scale = 1;
  while (scale > 0.25) {
    const next = scale / 2;
    const whole = Number.isInteger(sprite.thumb_width * next) && Number.isInteger(sprite.thumb_height * next);
    if (!whole || side * next < drawnPx) break;
    scale = next;
  }
  return scale;
}

/** Size in pixels of page `page` at `scale` (as the loader resizes it). */
export function scaledPageSize(sprite: SpriteInfo, page: number, scale: number): [number, number] {
  const [w, h] = sprite.page_sizes[page] ?? [sprite.per_row * sprite.thumb_width, Math.ceil(sprite.per_page / sprite.per_row) * sprite.thumb_height];
  return [Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale))];
}

/** GPU bytes of a page at `scale`: RGBA and its mipmaps (a third more). */
export function pageBytes(sprite: SpriteInfo, page: number, scale: number): number {
  const [w, h] = scaledPageSize(sprite, page, scale);
  return Math.ceil((w * h * 4 * 4) / 3);
}

export interface PagePlan {
  /** Pages to load (page, scale), most wanted first. */
  load: { page: number; scale: number }[];
  /** Loaded pages to drop to stay within the budget. */
  drop: number[];
}

/**
 * What to load and drop for a view. `counts[p]`: rows of page p on screen;
 * `scale`: what the view needs (0: dots, nothing to load); `resident`: loaded
 * pages with their scale and when they were last needed (larger is later).
 * Pages the view needs are loaded most rows first, at the view's scale (a page
 * loaded at a finer scale serves a coarser view as it is), or at half of it
 * when only that lets them all fit; other pages are dropped least recently
 * needed first, and needed pages with the fewest rows are left out, until the
 * total fits `budget`.
 */
export function planPages(
  sprite: SpriteInfo,
  counts: ArrayLike<number>,
  scale: number,
  resident: ReadonlyMap<number, { scale: number; used: number }>,
  budget: number,
  extra: readonly number[] = [],
): PagePlan {
  const wanted: number[] = [];
  if (scale > 0) {
    for (let p = 0; p < counts.length; p++) if (counts[p] > 0) wanted.push(p);
    wanted.sort((a, b) => counts[b] - counts[a] || a - b);
  }
  // Pages asked for by name (thumbnails in the side panels) come after the view's.
  for (const p of extra) if (p >= 0 && p < sprite.pages && !wanted.includes(p)) wanted.push(p);
  let viewScale = scale > 0 ? scale : 1;
  // Rows of every page in view (a t-SNE mixes the pages) but too many pages for the budget: half the
  // resolution (a texel for two pixels) rather than most rows as dots, when that makes them all fit.
  // Pages loaded finer than that are loaded again at it (their old texture serves until then).
  const half = viewScale / 2;
  let halved = false;
  if (scale > 0 && Number.isInteger(sprite.thumb_width * half) && Number.isInteger(sprite.thumb_height * half)) {
    const bytesAt = (f: number) => wanted.reduce((sum, p) => sum + pageBytes(sprite, p, f), 0);
    if (bytesAt(viewScale) > budget && bytesAt(half) <= budget) {
      viewScale = half;
      halved = true;
    }
  }
  const load: { page: number; scale: number }[] = [];
  let used = 0;
  const kept = new Set<number>();
  for (const p of wanted) {
    const have = resident.get(p);
    const s = have && have.scale >= viewScale && !halved ? have.scale : viewScale;
    const bytes = pageBytes(sprite, p, s);
    if (used + bytes > budget && (kept.size || load.length)) continue;
    used += bytes;
    kept.add(p);
    if (!have || have.scale !== s) load.push({ page: p, scale: s });
  }
  // Pages not needed now stay while they fit, the most recently needed first.
  const others = [...resident.entries()].filter(([p]) => !kept.has(p)).sort((a, b) => b[1].used - a[1].used);
  const drop: number[] = [];
  for (const [p, r] of others) {
    const bytes = pageBytes(sprite, p, r.scale);
    if (used + bytes <= budget) used += bytes;
    else drop.push(p);
  }
  // A page reloaded at a finer scale is dropped first (its old texture goes when the new one arrives).
  return { load, drop };
}

/** Sprite info for a page loaded at `scale`: cells `scale` times as large (what the threshold sampler reads). */
export function scaledSprite(sprite: SpriteInfo, scale: number): SpriteInfo {
  return { ...sprite, thumb_width: sprite.thumb_width * scale, thumb_height: sprite.thumb_height * scale };
}

/** Decode a fetched page, resized to `scale` (the full page is never kept when a smaller one will do). */
export async function decodePage(blob: Blob, sprite: SpriteInfo, page: number, scale: number): Promise<ImageBitmap> {
  try {
    if (scale >= 1) return await createImageBitmap(blob);
    const [w, h] = scaledPageSize(sprite, page, scale);
    return await createImageBitmap(blob, { resizeWidth: w, resizeHeight: h, resizeQuality: "medium" });
  } catch {
    throw new Error(`sprite page ${page} is not a readable image`);
  }
}

export interface PageHooks {
  /** True once another embedding was opened: stop. */
  stale(): boolean;
  /** A page was uploaded (`loaded`: pages uploaded since the embedding opened). */
  loaded(page: number, bitmap: ImageBitmap, scale: number, loaded: number): void;
  /** Loading `page` failed (shown to the person; the rows stay dots). */
  failed(page: number, err: unknown): void;
}

/** The pages of the open embedding: which are loaded, which are wanted, one load at a time. */
export class SpritePages {
  private sprite: SpriteInfo | null = null;
  private fetcher: PageFetcher | null = null;
  private hooks: PageHooks | null = null;
  private resident = new Map<number, { scale: number; used: number }>();
  private queue: { page: number; scale: number }[] = [];
  private loading: { page: number; scale: number } | null = null;
  private clock = 0;
  private uploaded = 0;
  private lastCounts: Uint32Array = new Uint32Array(0);
  private lastScale = 0;
  /** Pages the side panels asked for (their thumbnails), kept wanted until the next view needs others. */
  private asked: number[] = [];
  private idleWaiters: (() => void)[] = [];
  /** Set by the first view() after open(): the first view asked for its pages. */
  private viewed = false;
  private viewWaiters: (() => void)[] = [];
  /** Pages that failed to load: not asked for again until the embedding is opened again. */
  private broken = new Set<number>();

  constructor(
    private readonly sink: PageSink,
    readonly budget = PAGE_BUDGET_BYTES,
  ) {}

  /** Start serving `sprite` (null: no thumbnails); pages load once a view asks for them. */
  open(sprite: SpriteInfo | null, fetcher: PageFetcher | null, hooks: PageHooks | null): void {
    for (const p of this.resident.keys()) this.sink.dropPage(p);
    this.sprite = sprite;
    this.fetcher = fetcher;
    this.hooks = hooks;
    this.resident.clear();
    this.queue = [];
    this.loading = null;
    this.uploaded = 0;
    this.asked = [];
    this.broken.clear();
    this.lastCounts = new Uint32Array(sprite ? sprite.pages : 0);
    this.lastScale = 0;
    this.viewed = false;
    this.settle();
  }

  /** Resolves once the map has shown its first view of this embedding and the pages that view needs are loaded (or failed). */
  async firstView(): Promise<void> {
    if (!this.viewed) await new Promise<void>((r) => this.viewWaiters.push(r));
    await this.idle();
  }

  /** The scale `page` is loaded at, or 0. */
  scaleOf(page: number): number {
    return this.resident.get(page)?.scale ?? 0;
  }

  /** Loaded pages and their scales (the benchmark, tests). */
  loadedPages(): [number, number][] {
    return [...this.resident.entries()].map(([p, r]) => [p, r.scale]);
  }

  /** GPU bytes the loaded pages take. */
  residentBytes(): number {
    const s = this.sprite;
    if (!s) return 0;
    let total = 0;
    for (const [p, r] of this.resident) total += pageBytes(s, p, r.scale);
    return total;
  }

  /** The map shows `counts[p]` rows of each page, drawn `drawnPx` wide: load and drop pages to match. */
  view(counts: ArrayLike<number>, drawnPx: number): void {
    const s = this.sprite;
    if (!s || !this.fetcher) return;
    this.lastCounts = Uint32Array.from(counts);
    this.lastScale = pageScale(drawnPx, s);
    const now = ++this.clock;
    for (let p = 0; p < counts.length; p++) {
      const r = this.resident.get(p);
      if (r && counts[p] > 0 && this.lastScale > 0) r.used = now;
    }
    this.replan();
    if (!this.viewed) {
      this.viewed = true;
      const waiters = this.viewWaiters;
      this.viewWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** A side panel wants the thumbnail of `row`: load its page if it is not loaded. */
  wantRow(row: number): void {
    const s = this.sprite;
    if (!s || !this.fetcher) return;
    const p = Math.floor(row / s.per_page);
    if (p < 0 || p >= s.pages || this.resident.has(p) || this.asked.includes(p) || this.broken.has(p)) return;
    this.asked.push(p);
    this.replan();
  }

  private replan(): void {
    const s = this.sprite!;
    const plan = planPages(s, this.lastCounts, this.lastScale, this.resident, this.budget, this.asked);
    for (const p of plan.drop) {
      this.resident.delete(p);
      this.sink.dropPage(p);
    }
    this.queue = plan.load.filter((l) => !this.broken.has(l.page));
    void this.pump();
  }

  /** Resolves once nothing is loading or queued (the first view's pages are in). */
  idle(): Promise<void> {
    if (!this.loading && !this.queue.length) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private settle(): void {
    if (this.loading || this.queue.length) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async pump(): Promise<void> {
    if (this.loading) return;
    const next = this.queue.shift();
    if (!next || !this.fetcher || !this.hooks || !this.sprite) {
      this.settle();
      return;
    }
    const { fetcher, hooks, sprite } = this;
    this.loading = next;
    try {
      const bitmap = await fetcher(next.page, next.scale);
      if (hooks.stale() || this.sprite !== sprite) {
        bitmap.close();
        return;
      }
      this.sink.setAtlasPage(next.page, bitmap);
      this.resident.set(next.page, { scale: next.scale, used: ++this.clock });
      this.asked = this.asked.filter((p) => p !== next.page);
      this.uploaded++;
      hooks.loaded(next.page, bitmap, next.scale, this.uploaded);
      bitmap.close();
    } catch (err) {
      if (hooks.stale() || this.sprite !== sprite) return;
      this.broken.add(next.page);
      this.asked = this.asked.filter((p) => p !== next.page);
      hooks.failed(next.page, err);
    } finally {
      if (this.sprite === sprite) {
        this.loading = null;
        void this.pump();
      }
    }
  }
}
