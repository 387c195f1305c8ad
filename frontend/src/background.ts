// The default of "hide dark pixels", chosen from the sprite: thumbnails on a
// plain dark background (MNIST-like: a white digit on black) would otherwise
// draw as overlapping black squares. The background is read from the border
// pixels of a sample of thumbnails on the first sprite page.
import type { SpriteInfo } from "./api";

export interface BackgroundEstimate {
  kind: "dark" | "light" | "mixed";
  /** Brightness (0..1, the map shader's luminance) that most border pixels stay below (dark) or above (light). */
  level: number;
  /** The threshold to use by default (0 = draw every pixel). */
  threshold: number;
  /** What was chosen and why, shown next to the control. */
  text: string;
}

/** Border pixels at most this bright count as dark background, at least LIGHT_MIN as light. */
const DARK_MAX = 0.25;
const LIGHT_MIN = 0.75;
/**
 * A plain background: at least this share of the border pixels is dark (or light). Not all:
 * the content may touch the border (the 8 x 8 digits of the demo often do).
 */
const PLAIN_SHARE = 0.6;
/** The default threshold sits this far above the dark background's brightness. */
const MARGIN = 0.04;
/** Thumbnails sampled from the first page. */
const SAMPLES = 256;

/** Luminance as the map's fragment shader computes it (0..1). */
function lum(r: number, g: number, b: number): number {
  return (0.299 * r + 0.587 * g + 0.114 * b) / 255;
}

/**
 * Luminances of the border ring of each cell of a grid of thumbnails
 * (`cells` cells of `w` x `h` px laid out `perRow` to a row in RGBA `px` of
 * width `width`). The ring is 1 px wide, 2 px from 32 px thumbnails up.
 */
export function borderLuminances(px: Uint8ClampedArray, width: number, w: number, h: number, cells: number, perRow: number): Float32Array {
  const ring = Math.max(1, Math.floor(Math.min(w, h) / 16));
  const out: number[] = [];
  for (let c = 0; c < cells; c++) {
    const x0 = (c % perRow) * w;
    const y0 = Math.floor(c / perRow) * h;
    for (let y = 0; y < h; y++) {
      const edgeRow = y < ring || y >= h - ring;
      for (let x = 0; x < w; x++) {
        if (!edgeRow && x >= ring && x < w - ring) continue;
        const o = 4 * ((y0 + y) * width + x0 + x);
        out.push(lum(px[o], px[o + 1], px[o + 2]));
      }
    }
  }
  return Float32Array.from(out);
}

function quantile(sorted: Float32Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

/** The default threshold for thumbnails whose border pixels have these luminances. */
export function estimateBackground(borders: Float32Array): BackgroundEstimate {
  const s = borders.slice().sort();
  if (s.length === 0) return { kind: "mixed", level: 0, threshold: 0, text: "auto: no thumbnails to look at (0)" };
  let dark = 0;
  while (dark < s.length && s[dark] <= DARK_MAX) dark++;
  if (dark >= PLAIN_SHARE * s.length) {
    // The background's brightness: what 90% of its (dark) border pixels stay below.
    const level = quantile(s.subarray(0, dark), 0.9);
    const threshold = Math.min(0.6, Math.max(0.02, Math.ceil((level + MARGIN) * 100 - 1e-6) / 100));
    return { kind: "dark", level, threshold, text: `auto: dark background detected (${threshold.toFixed(2)})` };
  }
  let light = s.length;
  while (light > 0 && s[light - 1] >= LIGHT_MIN) light--;
  if (s.length - light >= PLAIN_SHARE * s.length) {
    return { kind: "light", level: quantile(s.subarray(light), 0.1), threshold: 0, text: "auto: light background, nothing hidden (0)" };
  }
  return { kind: "mixed", level: quantile(s, 0.5), threshold: 0, text: "auto: no plain background, nothing hidden (0)" };
}

/**
 * Read the borders of up to SAMPLES thumbnails spread over the first sprite
 * page (`rows` thumbnails on it) and estimate the background.
 */
export function sampleBackground(page: ImageBitmap, sprite: SpriteInfo, rows: number): BackgroundEstimate {
  const w = sprite.thumb_width;
  const h = sprite.thumb_height;
  const n = Math.min(rows, sprite.per_page, SAMPLES);
  const perRow = Math.max(1, Math.ceil(Math.sqrt(n)));
  const canvas = document.createElement("canvas");
  canvas.width = perRow * w;
  canvas.height = Math.ceil(n / perRow) * h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  if (!ctx || n === 0) return estimateBackground(new Float32Array(0));
  const step = Math.min(rows, sprite.per_page) / n;
  for (let c = 0; c < n; c++) {
    const row = Math.floor(c * step);
    const sx = (row % sprite.per_row) * w;
    const sy = Math.floor(row / sprite.per_row) * h;
    ctx.drawImage(page, sx, sy, w, h, (c % perRow) * w, Math.floor(c / perRow) * h, w, h);
  }
  const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return estimateBackground(borderLuminances(img.data, canvas.width, w, h, n, perRow));
}
