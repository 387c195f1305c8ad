// Positions as they come over the wire (docs/HTTP_API.md, tensorboard_al_plugin/wire.py):
// uint16 against the bounding box, or float32 from servers before formats, decoded
// straight into the map's normalised coordinates.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, decodeU16Positions, positionsFrom } from "../src/api";
import { normalizePositions } from "../src/camera";
import { encodeU16 } from "./fakes";

function response(body: ArrayBuffer, headers: Record<string, string>): Response {
  return new Response(body, { headers });
}

test("uint16 positions decode to what normalizePositions gives the float32 values, within half a quantisation step", () => {
  for (const dims of [2, 3]) {
    const rows = 1000;
    const values = new Float32Array(rows * dims).map((_, i) => Math.sin(i * 1.7) * 40 + (i % dims) * 13 - 7);
    const { q, bounds } = encodeU16(values, rows, dims);
    const got = decodeU16Positions(q, rows, dims, bounds);
    const want = normalizePositions(values, rows, dims);
    let half = 0;
    for (let k = 0; k < dims; k++) half = Math.max(half, (bounds[2 * k + 1] - bounds[2 * k]) / 2);
    // a step is (hi - lo) / 65534 in data units, at most 2 * half / 65534 after normalising by half
    const tolerance = (0.5 * (2 * half)) / 65534 / half + 1e-6;
    let worst = 0;
    for (let i = 0; i < rows * 3; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    assert.ok(worst <= tolerance, `${dims}D: worst error ${worst} > ${tolerance}`);
    if (dims === 2) for (let i = 0; i < rows; i++) assert.equal(got[3 * i + 2], 0);
  }
});

test("a non-finite coordinate (65535) decodes to the centre; a column of one value to 0", () => {
  const values = Float32Array.from([0, 5, NaN, 5, 10, 5, 4, Infinity]);
  const { q, bounds } = encodeU16(values, 4, 2);
  assert.equal(q[2], 65535);
  assert.deepEqual(bounds, [0, 10, 5, 5]);
  const got = decodeU16Positions(q, 4, 2, bounds);
  const want = [-1, 0, 0, 0, 0, 0, 1, 0, 0, -0.2, 0, 0];
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `coordinate ${i}: ${got[i]} is not ${want[i]}`);
});

test("positionsFrom reads the u16 format with its bounds, and plain float32 from servers before formats", () => {
  const values = Float32Array.from([1, 2, 3, 4, 5, 9]);
  const { q, bounds } = encodeU16(values, 3, 2);
  const compact = positionsFrom(
    response(q.buffer as ArrayBuffer, { "X-Rows": "3", "X-Dims": "2", "X-Format": "u16", "X-Bounds": bounds.join(",") }),
    q.buffer as ArrayBuffer,
    "layout/positions",
  );
  const plain = positionsFrom(response(values.buffer, { "X-Rows": "3", "X-Dims": "2" }), values.buffer, "layout/positions");
  assert.equal(compact.rows, 3);
  assert.equal(compact.dims, 2);
  assert.deepEqual(Array.from(plain.normalized), Array.from(normalizePositions(values, 3, 2)));
  for (let i = 0; i < 9; i++) assert.ok(Math.abs(compact.normalized[i] - plain.normalized[i]) < 1e-4);
});

test("positionsFrom refuses a body of the wrong size or bounds that do not fit the columns", () => {
  const q = new Uint16Array(5);
  assert.throws(
    () => positionsFrom(response(q.buffer, { "X-Rows": "3", "X-Dims": "2", "X-Format": "u16", "X-Bounds": "0,1,0,1" }), q.buffer, "preview"),
    (e: unknown) => e instanceof ApiError && e.message === "preview sent 10 bytes, not 3 x 2 uint16.",
  );
  const q6 = new Uint16Array(6);
  assert.throws(
    () => positionsFrom(response(q6.buffer, { "X-Rows": "3", "X-Dims": "2", "X-Format": "u16", "X-Bounds": "0,1" }), q6.buffer, "preview"),
    /sent bounds "0,1" for 2 columns/,
  );
});
