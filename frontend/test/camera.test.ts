import { test } from "node:test";
import assert from "node:assert/strict";
import { defaultCamera, multiply, identity, normalizePositions, orbit, pan, pick, projectAll, viewMatrices, zoomAt } from "../src/camera";

const W = 800, H = 600;

function screenOf(cam: ReturnType<typeof defaultCamera>, p: number[]): [number, number, number] {
  const out = new Float32Array(3);
  projectAll(new Float32Array(p), 1, viewMatrices(cam, W, H).viewProj, W, H, out);
  return [out[0], out[1], out[2]];
}

test("2D: the target is at the centre of the canvas and +y is up", () => {
  const cam = defaultCamera(2);
  const [x, y] = screenOf(cam, [0, 0, 0]);
  assert.ok(Math.abs(x - 400) < 1e-3 && Math.abs(y - 300) < 1e-3);
  const [, yUp] = screenOf(cam, [0, 0.5, 0]);
  assert.ok(yUp < 300);
});

test("2D: zooming keeps the world point under the cursor in place", () => {
  const cam = defaultCamera(2);
  const world = [0.3, -0.2, 0];
  const before = screenOf(cam, world);
  const after = screenOf(zoomAt(cam, 2.5, before[0], before[1], W, H), world);
  assert.ok(Math.abs(after[0] - before[0]) < 1e-3 && Math.abs(after[1] - before[1]) < 1e-3);
});

test("2D: panning moves points with the pointer", () => {
  const cam = defaultCamera(2);
  const before = screenOf(cam, [0.1, 0.1, 0]);
  const after = screenOf(pan(cam, 30, -20, W, H), [0.1, 0.1, 0]);
  assert.ok(Math.abs(after[0] - before[0] - 30) < 1e-3 && Math.abs(after[1] - before[1] + 20) < 1e-3);
});

test("3D: the target projects to the centre, in front of the camera, from any orbit", () => {
  let cam = defaultCamera(3);
  for (let i = 0; i < 5; i++) {
    const [x, y, w] = screenOf(cam, cam.target);
    assert.ok(Math.abs(x - 400) < 1e-3 && Math.abs(y - 300) < 1e-3 && w > 0);
    cam = orbit(cam, 57, 23);
  }
  assert.ok(Math.abs(cam.pitch) < Math.PI / 2);
});

test("3D: panning moves the target point with the pointer", () => {
  const cam = defaultCamera(3);
  const after = screenOf(pan(cam, 40, 10, W, H), cam.target);
  assert.ok(Math.abs(after[0] - 440) < 0.5 && Math.abs(after[1] - 310) < 0.5);
});

test("3D: points behind the camera get w <= 0", () => {
  const cam = { ...defaultCamera(3), yaw: 0, pitch: 0, distance: 2 };
  assert.ok(screenOf(cam, [0, 0, 5])[2] <= 0);
});

test("pick returns the nearest thumbnail under the pointer, or -1", () => {
  const cam = defaultCamera(2);
  const pos = new Float32Array([0, 0, 0, 0.5, 0, 0]);
  const screen = projectAll(pos, 2, viewMatrices(cam, W, H).viewProj, W, H, new Float32Array(6));
  const { quadScale } = viewMatrices(cam, W, H);
  assert.equal(pick(screen, quadScale, 0.05, W, H, screen[3] + 2, screen[4] - 3, 2), 1);
  assert.equal(pick(screen, quadScale, 0.05, W, H, 10, 10, 2), -1);
});

test("matrix product with the identity is the matrix itself", () => {
  const m = viewMatrices(defaultCamera(3), W, H).viewProj;
  assert.deepEqual(Array.from(multiply(identity(), m)), Array.from(m));
});

test("normalizePositions centres the layout and scales its larger half-extent to 1", () => {
  const raw = new Float32Array([10, 0, 30, 10, 20, 5]); // 3 rows x 2 dims
  const pos = normalizePositions(raw, 3, 2);
  assert.deepEqual(Array.from(pos), [-1, -0.5, 0, 1, 0.5, 0, 0, 0, 0]);
  const bad = normalizePositions(new Float32Array([NaN, 1, 0, 3]), 2, 2);
  assert.deepEqual(Array.from(bad), [0, -1, 0, 0, 1, 0]);
});
