import { test } from "node:test";
import assert from "node:assert/strict";
import { applyAlignment, bestAlignment } from "../src/align";
import { borderLuminances, estimateBackground } from "../src/background";
import { etaText, preparingProgress } from "../src/progress";
import type { SessionStatus } from "../src/api";

/** A grid of `cells` w x h RGBA thumbnails: background `bg`, a centred square `fg` (0..255 grey). */
function grid(cells: number, perRow: number, w: number, h: number, bg: number, fg: number): { px: Uint8ClampedArray; width: number } {
  const width = perRow * w;
  const height = Math.ceil(cells / perRow) * h;
  const px = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const cx = x % w, cy = y % h;
      const inner = cx >= w / 4 && cx < (3 * w) / 4 && cy >= h / 4 && cy < (3 * h) / 4;
      const v = inner ? fg : bg;
      px.set([v, v, v, 255], 4 * (y * width + x));
    }
  return { px, width };
}

test("a black background gets a threshold just above it; white keeps every pixel", () => {
  const dark = grid(9, 3, 16, 16, 0, 230);
  const est = estimateBackground(borderLuminances(dark.px, dark.width, 16, 16, 9, 3));
  assert.equal(est.kind, "dark");
  assert.equal(est.threshold, 0.04);
  assert.equal(est.text, "auto: dark background detected (0.04)");
  const light = grid(9, 3, 16, 16, 250, 20);
  const le = estimateBackground(borderLuminances(light.px, light.width, 16, 16, 9, 3));
  assert.equal(le.kind, "light");
  assert.equal(le.threshold, 0);
});

test("a noisy dark background sits below the threshold; content touching the border does not spoil it", () => {
  // 70% of border pixels dark with noise up to 0.1, 30% bright strokes
  const b = new Float32Array(1000).map((_, i) => (i % 10 < 7 ? (i % 7) * (0.1 / 6) : 0.9));
  const est = estimateBackground(b);
  assert.equal(est.kind, "dark");
  assert.ok(est.threshold > 0.1 && est.threshold <= 0.15, String(est.threshold));
  // half dark, half light: no plain background, nothing hidden
  const mixed = estimateBackground(new Float32Array(100).map((_, i) => (i % 2 ? 0.05 : 0.95)));
  assert.equal(mixed.kind, "mixed");
  assert.equal(mixed.threshold, 0);
});

test("a layout's flipped or swapped axes are turned back to match the map shown", () => {
  const rows = 50;
  const shown = new Float32Array(rows * 3);
  for (let i = 0; i < rows; i++) {
    shown[3 * i] = Math.cos(i) * (1 + i / rows);
    shown[3 * i + 1] = Math.sin(2 * i) * 0.5;
  }
  // the same points with x and y swapped and the new x flipped
  const next = new Float32Array(rows * 3);
  for (let i = 0; i < rows; i++) {
    next[3 * i] = -shown[3 * i + 1];
    next[3 * i + 1] = shown[3 * i];
  }
  const a = bestAlignment(shown, next, rows, 2);
  assert.deepEqual(applyAlignment(next, a), shown);
  assert.deepEqual(bestAlignment(shown, shown, rows, 2), { perm: [0, 1, 2], signs: [1, 1, 1] });
});

test("the progress line names the phase, its share and the time left", () => {
  const st = (p: Partial<SessionStatus>): SessionStatus => ({ run: ".", embedding: "e", method: "tsne", state: "preparing", progress: 0.5, iteration: 0, objective: null, n_components: 2, params: {}, error: null, ...p });
  assert.deepEqual(preparingProgress(st({ phase: "neighbors", phase_progress: 0.4, eta_s: 25 })), { text: "Nearest neighbours… 40% · about 25 s left", fraction: 0.5 });
  assert.equal(preparingProgress(st({ phase: "loading", eta_s: null })).text, "Loading the features…");
  assert.equal(preparingProgress(st({ phase: "pca", phase_progress: 0, eta_s: 3 })).text, "PCA initialisation… · about 3 s left");
  assert.equal(preparingProgress(st({ phase: "first_iterations", progress: 1 })).fraction, -1);
  // the server costs the first iterations: the bar and the estimate go on to the first frame
  assert.deepEqual(preparingProgress(st({ phase: "first_iterations", progress: 0.97, eta_s: 4 })),
    { text: "First t-SNE iterations… · about 4 s left", fraction: 0.97 });
  assert.equal(preparingProgress(st({ phase: "first_iterations", progress: 1, eta_s: null })).text,
    "First t-SNE iterations… · the map follows in a moment");
  // an older server without phases
  assert.equal(preparingProgress(st({ progress: 0.3 })).text, "Preparing the layout… 30%");
  assert.equal(etaText(0.4), "almost done");
  assert.equal(etaText(63), "about 65 s left");
  assert.equal(etaText(250), "about 4 min left");
  assert.equal(etaText(null), "");
});
