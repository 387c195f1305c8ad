// Decode time of one live-layout positions frame in the tab's own code (run by
// benchmarks/tab_memory.py under node, whose V8 is Chromium's): the float32 path
// the tab took before (view, normalizePositions, applyAlignment into a new array)
// against the u16 path (decodeU16Positions into the normalised array, turned in
// place). Prints one JSON line: {rows, dims, repeats, f32_ms, u16_ms, max_abs_diff}.
import { applyAlignment } from "../frontend/src/align";
import { decodeU16Positions, float32FromBytes } from "../frontend/src/api";
import { normalizePositions } from "../frontend/src/camera";
import { encodeU16 } from "../frontend/test/fakes";

const rows = Number(process.argv[2] ?? 1_000_000);
const dims = Number(process.argv[3] ?? 2);
const repeats = Number(process.argv[4] ?? 7);
const turn = { perm: [1, 0, 2], signs: [-1, 1, 1] };

// A deterministic layout-like frame: clusters on a spiral.
const values = new Float32Array(rows * dims);
let seed = 7;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296) - 0.5;
for (let i = 0; i < rows; i++) {
  const c = i % 20;
  for (let k = 0; k < dims; k++) values[i * dims + k] = 30 * Math.cos(c + k) + 4 * rand();
}
// The server's u16 answer for it (tensorboard_al_plugin/wire.py).
const { q, bounds } = encodeU16(values, rows, dims);
const f32Body = values.buffer.slice(0);
const u16Body = q.buffer.slice(0);

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

let before: Float32Array = new Float32Array(0);
let after: Float32Array = new Float32Array(0);
const f32: number[] = [];
const u16: number[] = [];
for (let r = 0; r < repeats; r++) {
  let t = performance.now();
  before = applyAlignment(normalizePositions(float32FromBytes(f32Body), rows, dims), turn);
  f32.push(performance.now() - t);
  t = performance.now();
  after = decodeU16Positions(new Uint16Array(u16Body), rows, dims, bounds);
  applyAlignment(after, turn, after);
  u16.push(performance.now() - t);
}
let maxAbsDiff = 0;
for (let i = 0; i < before.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(before[i] - after[i]));
console.log(JSON.stringify({ rows, dims, repeats, f32_ms: median(f32), u16_ms: median(u16), max_abs_diff: maxAbsDiff,
  f32_bytes: f32Body.byteLength, u16_bytes: u16Body.byteLength }));
