import { test } from "node:test";
import assert from "node:assert/strict";
import type { SpriteInfo } from "../src/api";
import { GridIndex } from "../src/spatialIndex";
import { LOD_THUMB_PX, pageBytes, pageCounts, pageScale, planPages, SpritePages } from "../src/spritePages";

/** 1,000,000 rows of 28x28 thumbnails, as the writer pages them: 292 per row, 85,264 per 8176 px page, 12 pages. */
const ROWS = 1_000_000;
const PER_PAGE = 292 * 292;
const MILLION: SpriteInfo = {
  thumb_width: 28,
  thumb_height: 28,
  per_row: 292,
  per_page: PER_PAGE,
  pages: Math.ceil(ROWS / PER_PAGE),
  page_sizes: Array.from({ length: Math.ceil(ROWS / PER_PAGE) }, (_, p) => {
    const count = Math.min(PER_PAGE, ROWS - p * PER_PAGE);
    return [292 * 28, Math.ceil(count / 292) * 28] as [number, number];
  }),
};

test("thumbnails drawn a few pixels wide are dots: no page is wanted; readable ones get the coarsest scale that keeps a texel per pixel", () => {
  assert.equal(pageScale(LOD_THUMB_PX - 0.5, MILLION), 0);
  assert.equal(pageScale(3, MILLION), 0);
  assert.equal(pageScale(LOD_THUMB_PX, MILLION), 0.5);
  assert.equal(pageScale(14, MILLION), 0.5);
  assert.equal(pageScale(16, { thumb_width: 64, thumb_height: 64 }), 0.25);
  assert.equal(pageScale(17, { thumb_width: 64, thumb_height: 64 }), 0.5);
  assert.equal(pageScale(15, MILLION), 1);
  assert.equal(pageScale(200, MILLION), 1);
  // Cells that would not be whole texels at half size are never halved.
  assert.equal(pageScale(9, { thumb_width: 27, thumb_height: 27 }), 1);
});

test("the pages a view needs are those holding rows in view, at the zoom's scale; at a far zoom none", () => {
  // A layout whose rows are in page order along x: page p holds x in [p/12, (p+1)/12).
  const n = 12_000;
  const sprite: SpriteInfo = { ...MILLION, per_page: 1000, pages: 12, page_sizes: Array.from({ length: 12 }, () => [292 * 28, 4 * 28] as [number, number]) };
  const pos = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    pos[3 * i] = (i + 0.5) / n;
    pos[3 * i + 1] = ((i * 7919) % 1000) / 1000;
  }
  const index = new GridIndex(pos);
  // A close view over x in [0.30, 0.45]: pages 3, 4 and 5 (the one with most rows first).
  const counts = pageCounts(index.rowsInRect(0.3, 0, 0.45, 1), sprite.per_page, sprite.pages);
  assert.deepEqual(Array.from(counts).map((c, p) => (c ? p : -1)).filter((p) => p >= 0), [3, 4, 5]);
  const close = planPages(sprite, counts, pageScale(30, sprite), new Map(), 1e12);
  assert.deepEqual(close.load, [{ page: 4, scale: 1 }, { page: 3, scale: 1 }, { page: 5, scale: 1 }]);
  // Zoomed out to dots: the same rows in view want no page.
  const far = planPages(sprite, pageCounts(index.rowsInRect(0, 0, 1, 1), sprite.per_page, sprite.pages), pageScale(3, sprite), new Map(), 1e12);
  assert.deepEqual(far, { load: [], drop: [] });
});

test("at 1M rows the pages in view fit the memory budget: least recently needed pages are dropped, a page loaded finer serves a coarser view", () => {
  const full = pageBytes(MILLION, 0, 1);
  assert.ok(full > 300e6 && full < 360e6, `a full 8176 px page with mipmaps is ~356 MB (${full})`);
  const counts = new Uint32Array(MILLION.pages).fill(100);
  counts[7] = 500;
  const budget = 3 * full + 1;
  // Every page holds rows in view (a t-SNE mixes rows of all pages): at full size only the three with most
  // rows would fit, so all twelve are loaded at half size (when that fits).
  const first = planPages(MILLION, counts, 1, new Map(), budget);
  assert.deepEqual(first.load.map((l) => l.page), [7, 0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11]);
  assert.ok(first.load.every((l) => l.scale === 0.5));
  // A page loaded at full size before is loaded again at half size then, so that all fit.
  const again = planPages(MILLION, counts, 1, new Map([[0, { scale: 1, used: 1 }]]), budget);
  assert.equal(again.load.length, 12);
  assert.deepEqual(again.load.find((l) => l.page === 0), { page: 0, scale: 0.5 });
  // Where not even half size fits, the pages with most rows in view come first, at full size.
  const tight = planPages(MILLION, counts, 1, new Map(), 2 * full + 1);
  assert.deepEqual(tight.load, [{ page: 7, scale: 1 }, { page: 0, scale: 1 }]);
  // At half scale a page takes a quarter: all 12 fit in 3 full pages' room.
  const half = planPages(MILLION, counts, 0.5, new Map(), budget);
  assert.equal(half.load.length, 12);
  // Pages loaded before and not in view now are dropped, the least recently needed first.
  const resident = new Map([
    [0, { scale: 1, used: 5 }],
    [1, { scale: 1, used: 9 }],
    [2, { scale: 1, used: 7 }],
  ]);
  const onlyPage3 = new Uint32Array(MILLION.pages);
  onlyPage3[3] = 40;
  const plan = planPages(MILLION, onlyPage3, 1, resident, budget);
  assert.deepEqual(plan.load, [{ page: 3, scale: 1 }]);
  assert.deepEqual(plan.drop, [0]);
  // A page loaded at full size serves a half-size view as it is.
  const coarser = planPages(MILLION, onlyPage3, 0.5, new Map([[3, { scale: 1, used: 1 }]]), budget);
  assert.deepEqual(coarser, { load: [], drop: [] });
  // And a page loaded at half size is loaded again at full size for a close view.
  const finer = planPages(MILLION, onlyPage3, 1, new Map([[3, { scale: 0.5, used: 1 }]]), budget);
  assert.deepEqual(finer.load, [{ page: 3, scale: 1 }]);
});

test("pages are loaded one at a time, most rows first, within the budget; a side panel's thumbnail loads its page", async () => {
  const uploaded: number[] = [];
  const dropped: number[] = [];
  const fetched: string[] = [];
  const sink = { setAtlasPage: (p: number) => uploaded.push(p), dropPage: (p: number) => dropped.push(p) };
  // Room for one page at full size and two at half size.
  const pages = new SpritePages(sink, pageBytes(MILLION, 0, 1) + 2 * pageBytes(MILLION, 0, 0.5) + 1);
  const bitmap = { close() {} } as unknown as ImageBitmap;
  let inFlight = 0;
  let maxInFlight = 0;
  const loaded: number[] = [];
  pages.open(
    MILLION,
    async (p, scale) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      fetched.push(`${p}@${scale}`);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      return bitmap;
    },
    { stale: () => false, loaded: (p, _b, _s, count) => loaded.push(count), failed: (p, err) => assert.fail(`page ${p}: ${err}`) },
  );
  const first = pages.firstView();
  const counts = new Uint32Array(MILLION.pages);
  counts[5] = 10;
  counts[2] = 30;
  counts[9] = 20;
  pages.view(counts, 40);
  await first;
  assert.deepEqual(fetched, ["2@0.5", "9@0.5", "5@0.5"], "most rows first; at half size, since three full pages do not fit");
  assert.equal(maxInFlight, 1);
  assert.deepEqual(loaded, [1, 2, 3]);
  assert.deepEqual(pages.loadedPages().map(([p]) => p).sort(), [2, 5, 9]);
  // Zoomed out to dots: nothing new is loaded, the loaded pages stay (within budget).
  pages.view(counts, 3);
  await pages.idle();
  assert.equal(fetched.length, 3);
  // A side panel asks for the thumbnail of a row on page 10: its page loads (full size), the least recently needed goes.
  pages.wantRow(10 * PER_PAGE + 3);
  await pages.idle();
  assert.deepEqual(fetched, ["2@0.5", "9@0.5", "5@0.5", "10@1"]);
  assert.deepEqual(dropped, [2]);
  assert.ok(pages.residentBytes() <= pages.budget);
});

test("a page that cannot be loaded is reported once and its rows stay dots; opening again starts afresh", async () => {
  const failures: number[] = [];
  const pages = new SpritePages({ setAtlasPage: () => {}, dropPage: () => {} });
  const fetcher = async (p: number) => {
    if (p === 1) throw new Error("not a PNG");
    return { close() {} } as unknown as ImageBitmap;
  };
  pages.open(MILLION, fetcher, { stale: () => false, loaded: () => {}, failed: (p) => failures.push(p) });
  const counts = new Uint32Array(MILLION.pages);
  counts[1] = 5;
  counts[0] = 1;
  pages.view(counts, 30);
  await pages.firstView();
  pages.view(counts, 31);
  await pages.idle();
  assert.deepEqual(failures, [1]);
  assert.deepEqual(pages.loadedPages().map(([p]) => p), [0]);
  pages.open(null, null, null);
  assert.deepEqual(pages.loadedPages(), []);
});
