import { test } from "node:test";
import assert from "node:assert/strict";
import { discOffsets, drawDots, rowColors } from "../src/dotImage";
import { hexToRgb, PALETTE, UNLABELED_COLOR } from "../src/palette";

const BG = 0xff000000;

function rgba(c: number): [number, number, number] {
  return [c & 255, (c >>> 8) & 255, (c >>> 16) & 255];
}

test("dots land on the pixel of their position, later rows over earlier ones, off-image rows nowhere", () => {
  // World (x, y) -> pixel (x * 10 + 5, y * 10 + 5) in a 10 x 10 image.
  const pos = new Float32Array([0, 0, 0, 0.25, -0.25, 0, 0, 0, 0, 7, 7, 0]);
  const colors = Uint32Array.from([1, 2, 3, 4]);
  const px = new Uint32Array(100);
  drawDots(pos, 4, colors, 10, 5, 10, 5, 1, 10, 10, BG, px);
  assert.equal(px[5 * 10 + 5], 3, "row 2 is drawn over row 0 at the same spot");
  assert.equal(px[2 * 10 + 7], 2);
  assert.equal(px.filter((c) => c !== BG).length, 2, "row 3 lies outside the image");
});

test("a dot a few pixels wide covers the pixels the dot shader's disc covers, clipped at the edges", () => {
  assert.equal(discOffsets(1).length / 2, 1);
  assert.equal(discOffsets(3).length / 2, 9);
  assert.equal(discOffsets(5).length / 2, 21, "a 5 px disc leaves out its four corners");
  const px = new Uint32Array(16);
  drawDots(new Float32Array([0, 0, 0]), 1, Uint32Array.from([7]), 1, 0, 1, 0, 3, 4, 4, BG, px);
  assert.equal(px.filter((c) => c === 7).length, 4, "a 3 px dot at the corner keeps its 2 x 2 inside the image");
});

test("dot colours are the shader's: class colour, unlabeled grey darkened, predictions and uncertainty, unselected dimmed", () => {
  const classes = Uint16Array.from([0, 1, 2, 0]);
  const flags = Uint8Array.from([0, 1, 0, 0]);
  const pred = Uint16Array.from([0, 0, 0, 3]);
  const unc = Float32Array.from([0, 0, 1, 0.5]);
  const byte = (x: number) => Math.round(x * 255);
  const label = rowColors(4, { classes, flags: null, pred, unc, colorMode: 0, anySelected: false, dim: 1 });
  assert.deepEqual(rgba(label[1]), hexToRgb(PALETTE[0]).map(byte));
  assert.deepEqual(rgba(label[0]), hexToRgb(UNLABELED_COLOR).map((v) => byte(v * 0.75)));
  const predicted = rowColors(4, { classes, flags: null, pred, unc, colorMode: 1, anySelected: false, dim: 1 });
  assert.deepEqual(rgba(predicted[3]), hexToRgb(PALETTE[2]).map(byte), "an unlabeled row takes its predicted class' colour");
  const uncertain = rowColors(4, { classes, flags: null, pred, unc, colorMode: 2, anySelected: false, dim: 1 });
  assert.deepEqual(rgba(uncertain[2]), [255, 51, 51], "fully unsure is red");
  const dimmed = rowColors(4, { classes, flags, pred, unc, colorMode: 0, anySelected: true, dim: 0.5 });
  assert.deepEqual(rgba(dimmed[1]), rgba(label[1]), "the selected row keeps its colour");
  assert.deepEqual(rgba(dimmed[2]), hexToRgb(PALETTE[1]).map((v) => byte(v * 0.5)));
});
