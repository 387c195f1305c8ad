// Dots drawn on the CPU into one image, for views of tens of thousands of rows
// and more. Software GL (SwiftShader, what headless Chromium and GPU-less
// machines use) spends ~0.7 us per point primitive whatever its size: 1M
// dots took ~700 ms a frame, 1 px or 3 px alike, 70k ~60 ms. Writing each
// row's few pixels into a typed array and drawing the image as one texture
// takes ~15 ms at 70k and ~40 ms at 1M. Colours follow the dot shader in
// scene.ts (rowColors), and later rows are drawn over earlier ones, as the GL
// draws them.
import { uncertaintyRgb } from "./active";
import { paletteUniform } from "./palette";

/** Rows from which the map draws its dots as an image rather than as GL points (about where the two cost the same). */
export const DOT_IMAGE_MIN_ROWS = 50_000;

function pack(r: number, g: number, b: number): number {
  // Little-endian RGBA bytes in one Uint32 (the byte order of the texture upload).
  const c = (x: number) => Math.max(0, Math.min(255, Math.round(x * 255)));
  return ((255 << 24) | (c(b) << 16) | (c(g) << 8) | c(r)) >>> 0;
}

export interface RowColorInputs {
  /** Legend index per row (0 = unlabeled). */
  classes: Uint16Array | null;
  /** Per row: selection flags (1 selected, 2 focus, 4 suggested). */
  flags: Uint8Array | null;
  /** Predicted class legend index per row (0 = none) and uncertainty 0..1. */
  pred: Uint16Array | null;
  unc: Float32Array | null;
  /** COLOR_BY value (0 label, 1 prediction, 2 uncertainty). */
  colorMode: number;
  anySelected: boolean;
  /** Brightness of unselected rows while a selection exists. */
  dim: number;
}

/** Each row's dot colour as packed RGBA, exactly as the dot shader picks it. */
export function rowColors(n: number, o: RowColorInputs, out?: Uint32Array): Uint32Array {
  const colors = out && out.length === n ? out : new Uint32Array(n);
  const pal = paletteUniform();
  const entries = pal.length / 3 - 1;
  const palette = (k: number): [number, number, number] => {
    const j = k > 0 ? ((k - 1) % entries) + 1 : 0;
    return [pal[3 * j], pal[3 * j + 1], pal[3 * j + 2]];
  };
  // Few distinct colours: cache them by (class, prediction, dimmed) outside the uncertainty mode.
  const cache = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const k = o.classes ? o.classes[i] : 0;
    const flags = o.flags ? o.flags[i] : 0;
    const pred = o.pred ? o.pred[i] : 0;
    const dimmed = o.anySelected && (flags & 1) === 0;
    if (o.colorMode !== 2) {
      const key = (k * 65536 + (o.colorMode === 1 && k === 0 ? pred : 0)) * 2 + (dimmed ? 1 : 0);
      const hit = cache.get(key);
      if (hit !== undefined) {
        colors[i] = hit;
        continue;
      }
      let c = palette(k);
      if (k === 0) c = [c[0] * 0.75, c[1] * 0.75, c[2] * 0.75];
      if (o.colorMode === 1 && k === 0 && pred > 0) c = palette(pred);
      const d = dimmed ? o.dim : 1;
      const v = pack(c[0] * d, c[1] * d, c[2] * d);
      cache.set(key, v);
      colors[i] = v;
    } else {
      const c = uncertaintyRgb(o.unc ? o.unc[i] : 0);
      const d = dimmed ? o.dim : 1;
      colors[i] = pack(c[0] * d, c[1] * d, c[2] * d);
    }
  }
  return colors;
}

/** Pixel offsets (dx, dy) of a round dot `size` px wide, as the dot shader's disc covers pixel centres. */
export function discOffsets(size: number): Int32Array {
  const out: number[] = [];
  const lo = -Math.floor((size - 1) / 2);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const cx = ((x + 0.5) / size) * 2 - 1, cy = ((y + 0.5) / size) * 2 - 1;
      if (cx * cx + cy * cy <= 1) out.push(lo + x, lo + y);
    }
  }
  return Int32Array.from(out);
}

/**
 * Draw `n` rows of stride-3 `positions` as dots into `pixels` (`width` x
 * `height`, row 0 at the bottom as GL textures are), over `background`. The
 * 2D view maps world (x, y) to pixel (x * sx + ox, y * sy + oy). Rows in
 * ascending order, each over the ones before.
 */
export function drawDots(
  positions: Float32Array,
  n: number,
  colors: Uint32Array,
  sx: number,
  ox: number,
  sy: number,
  oy: number,
  size: number,
  width: number,
  height: number,
  background: number,
  pixels: Uint32Array,
): void {
  pixels.fill(background);
  const disc = discOffsets(size);
  const m = disc.length / 2;
  if (m === 1) {
    for (let i = 0; i < n; i++) {
      const x = Math.floor(positions[3 * i] * sx + ox), y = Math.floor(positions[3 * i + 1] * sy + oy);
      if (x >= 0 && x < width && y >= 0 && y < height) pixels[y * width + x] = colors[i];
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const x = Math.floor(positions[3 * i] * sx + ox), y = Math.floor(positions[3 * i + 1] * sy + oy);
    if (x < -size || x >= width + size || y < -size || y >= height + size) continue;
    const c = colors[i];
    for (let j = 0; j < m; j++) {
      const px = x + disc[2 * j], py = y + disc[2 * j + 1];
      if (px >= 0 && px < width && py >= 0 && py < height) pixels[py * width + px] = c;
    }
  }
}
