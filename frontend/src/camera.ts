// Camera maths for the map, free of WebGL: an orthographic 2D view and an
// orbiting perspective 3D view over layout positions normalised to about
// [-1, 1]. Matrices are column-major Float32Array(16), as WebGL expects.
// Screen coordinates are CSS pixels from the canvas' top-left corner.

export interface Camera {
  dims: 2 | 3;
  /** Point the view is centred on (world units). */
  target: [number, number, number];
  /** 2D: magnification; 1 shows y in [-1.1, 1.1]. */
  zoom: number;
  /** 3D: eye distance from the target. */
  distance: number;
  /** 3D: rotation about the vertical axis and elevation (radians). */
  yaw: number;
  pitch: number;
  /** 3D: vertical field of view (radians). */
  fovY: number;
}

export function defaultCamera(dims: 2 | 3): Camera {
  return { dims, target: [0, 0, 0], zoom: 1, distance: 3.2, yaw: 0.6, pitch: 0.35, fovY: Math.PI / 4 };
}

export interface ViewMatrices {
  viewProj: Float32Array;
  /** Clip-space size of one world unit of thumbnail (x, y), before the perspective divide. */
  quadScale: [number, number];
}

const HALF_HEIGHT_2D = 1.1;

export function identity(): Float32Array {
  const m = new Float32Array(16);
  m[0] = m[5] = m[10] = m[15] = 1;
  return m;
}

export function multiply(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(16);
  for (let c = 0; c < 4; c++) {
    for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      out[c * 4 + r] = s;
    }
  }
  return out;
}

export function perspective(fovY: number, aspect: number, near: number, far: number): Float32Array {
  const f = 1 / Math.tan(fovY / 2);
  const m = new Float32Array(16);
  m[0] = f / aspect;
  m[5] = f;
  m[10] = (far + near) / (near - far);
  m[11] = -1;
  m[14] = (2 * far * near) / (near - far);
  return m;
}

export function lookAt(eye: readonly number[], target: readonly number[], up: readonly number[]): Float32Array {
  let zx = eye[0] - target[0], zy = eye[1] - target[1], zz = eye[2] - target[2];
  let l = Math.hypot(zx, zy, zz) || 1;
  zx /= l; zy /= l; zz /= l;
  let xx = up[1] * zz - up[2] * zy, xy = up[2] * zx - up[0] * zz, xz = up[0] * zy - up[1] * zx;
  l = Math.hypot(xx, xy, xz) || 1;
  xx /= l; xy /= l; xz /= l;
  const yx = zy * xz - zz * xy, yy = zz * xx - zx * xz, yz = zx * xy - zy * xx;
  const m = new Float32Array(16);
  m[0] = xx; m[4] = xy; m[8] = xz;
  m[1] = yx; m[5] = yy; m[9] = yz;
  m[2] = zx; m[6] = zy; m[10] = zz;
  m[12] = -(xx * eye[0] + xy * eye[1] + xz * eye[2]);
  m[13] = -(yx * eye[0] + yy * eye[1] + yz * eye[2]);
  m[14] = -(zx * eye[0] + zy * eye[1] + zz * eye[2]);
  m[15] = 1;
  return m;
}

export function eyePosition(cam: Camera): [number, number, number] {
  const c = Math.cos(cam.pitch);
  return [
    cam.target[0] + cam.distance * c * Math.sin(cam.yaw),
    cam.target[1] + cam.distance * Math.sin(cam.pitch),
    cam.target[2] + cam.distance * c * Math.cos(cam.yaw),
  ];
}

export function viewMatrices(cam: Camera, width: number, height: number): ViewMatrices {
  const aspect = width / Math.max(1, height);
  if (cam.dims === 2) {
    const halfH = HALF_HEIGHT_2D / cam.zoom;
    const halfW = halfH * aspect;
    const m = identity();
    m[0] = 1 / halfW;
    m[5] = 1 / halfH;
    m[10] = -1e-3; // thin depth range; 2D ignores depth
    m[12] = -cam.target[0] / halfW;
    m[13] = -cam.target[1] / halfH;
    return { viewProj: m, quadScale: [1 / halfW, 1 / halfH] };
  }
  const proj = perspective(cam.fovY, aspect, 0.01, 100);
  const view = lookAt(eyePosition(cam), cam.target, [0, 1, 0]);
  return { viewProj: multiply(proj, view), quadScale: [proj[0], proj[5]] };
}

/**
 * Project `n` positions (stride 3) to screen pixels: out[3i] = x, out[3i+1] = y,
 * out[3i+2] = clip w (> 0 in front of the camera; 1 in 2D).
 */
export function projectAll(positions: Float32Array, n: number, viewProj: Float32Array, width: number, height: number, out: Float32Array): Float32Array {
  const m = viewProj;
  for (let i = 0; i < n; i++) {
    const x = positions[3 * i], y = positions[3 * i + 1], z = positions[3 * i + 2];
    const cx = m[0] * x + m[4] * y + m[8] * z + m[12];
    const cy = m[1] * x + m[5] * y + m[9] * z + m[13];
    const cw = m[3] * x + m[7] * y + m[11] * z + m[15];
    const inv = cw > 1e-6 ? 1 / cw : 0;
    out[3 * i] = (cx * inv * 0.5 + 0.5) * width;
    out[3 * i + 1] = (0.5 - cy * inv * 0.5) * height;
    out[3 * i + 2] = cw;
  }
  return out;
}

/**
 * The row whose thumbnail covers screen point (px, py): of all hits the one
 * nearest the camera (3D) or whose centre is nearest (2D); -1 when none.
 * `halfSize` is the thumbnail half-size in world units; `minHalfPx` the
 * smallest drawn half-size in pixels (tiny points stay clickable).
 */
export function pick(screen: Float32Array, quadScale: [number, number], halfSize: number, width: number, height: number, px: number, py: number, minHalfPx: number): number {
  const n = screen.length / 3;
  let best = -1;
  let bestKey = Infinity;
  const sx = halfSize * quadScale[0] * width * 0.5;
  const sy = halfSize * quadScale[1] * height * 0.5;
  for (let i = 0; i < n; i++) {
    const w = screen[3 * i + 2];
    if (w <= 0) continue;
    const rx = Math.max(sx / w, minHalfPx);
    const ry = Math.max(sy / w, minHalfPx);
    const dx = Math.abs(screen[3 * i] - px);
    const dy = Math.abs(screen[3 * i + 1] - py);
    if (dx > rx || dy > ry) continue;
    // In 3D the nearest thumbnail hides the others; in 2D prefer the centre.
    const key = w !== 1 ? w : dx * dx + dy * dy;
    if (key < bestKey) {
      bestKey = key;
      best = i;
    }
  }
  return best;
}

/**
 * The camera that shows every finite position (stride 3) with a small margin:
 * 2D centres the bounding box and zooms so it fits the canvas' aspect; 3D
 * keeps the orbit angles, aims at the box centre and backs off until the
 * bounding sphere fits both fields of view. `pad` (world units) is added
 * around the points (the thumbnails' half-size). No finite point: the default.
 */
export function fitCamera(cam: Camera, positions: Float32Array, width: number, height: number, pad = 0): Camera {
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  const n = Math.floor(positions.length / 3);
  for (let i = 0; i < n; i++) {
    const x = positions[3 * i], y = positions[3 * i + 1], z = positions[3 * i + 2];
    if (!Number.isFinite(x) || !Number.isFinite(y) || !Number.isFinite(z)) continue;
    if (x < lo[0]) lo[0] = x;
    if (x > hi[0]) hi[0] = x;
    if (y < lo[1]) lo[1] = y;
    if (y > hi[1]) hi[1] = y;
    if (z < lo[2]) lo[2] = z;
    if (z > hi[2]) hi[2] = z;
  }
  if (!(lo[0] <= hi[0])) return { ...defaultCamera(cam.dims), yaw: cam.yaw, pitch: cam.pitch };
  const aspect = width / Math.max(1, height);
  const margin = 1.05;
  if (cam.dims === 2) {
    const target: [number, number, number] = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, cam.target[2]];
    const halfH = Math.max((hi[1] - lo[1]) / 2, (hi[0] - lo[0]) / 2 / aspect, 1e-3) * margin + pad;
    return { ...cam, target, zoom: Math.max(0.05, Math.min(5000, HALF_HEIGHT_2D / halfH)) };
  }
  const target: [number, number, number] = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2];
  let r2 = 0;
  for (let i = 0; i < n; i++) {
    const dx = positions[3 * i] - target[0], dy = positions[3 * i + 1] - target[1], dz = positions[3 * i + 2] - target[2];
    const d2 = dx * dx + dy * dy + dz * dz;
    if (d2 > r2) r2 = d2;
  }
  const radius = Math.max(Math.sqrt(r2), 1e-3) * margin + pad;
  const halfFov = Math.min(cam.fovY / 2, Math.atan(Math.tan(cam.fovY / 2) * aspect));
  return { ...cam, target, distance: Math.max(0.05, Math.min(50, radius / Math.sin(halfFov))) };
}

/** Drag the view by (dx, dy) screen pixels: the world follows the pointer. */
export function pan(cam: Camera, dx: number, dy: number, width: number, height: number): Camera {
  if (cam.dims === 2) {
    const halfH = HALF_HEIGHT_2D / cam.zoom;
    const perPx = (2 * halfH) / Math.max(1, height);
    return { ...cam, target: [cam.target[0] - dx * perPx, cam.target[1] + dy * perPx, cam.target[2]] };
  }
  const perPx = (2 * cam.distance * Math.tan(cam.fovY / 2)) / Math.max(1, height);
  const view = lookAt(eyePosition(cam), cam.target, [0, 1, 0]);
  // Rows 0 and 1 of the view matrix are the camera's right and up axes.
  const right = [view[0], view[4], view[8]];
  const up = [view[1], view[5], view[9]];
  const t = cam.target.slice() as [number, number, number];
  for (let k = 0; k < 3; k++) t[k] += -dx * perPx * right[k] + dy * perPx * up[k];
  return { ...cam, target: t };
}

export function orbit(cam: Camera, dx: number, dy: number): Camera {
  const limit = Math.PI / 2 - 0.01;
  return { ...cam, yaw: cam.yaw - dx * 0.008, pitch: Math.max(-limit, Math.min(limit, cam.pitch + dy * 0.008)) };
}

/** Zoom by `factor` (> 1 zooms in) keeping the world point under (px, py) in place (2D). */
export function zoomAt(cam: Camera, factor: number, px: number, py: number, width: number, height: number): Camera {
  if (cam.dims === 3) return { ...cam, distance: Math.max(0.05, Math.min(50, cam.distance / factor)) };
  const zoom = Math.max(0.05, Math.min(5000, cam.zoom * factor));
  const f = zoom / cam.zoom;
  const halfH = HALF_HEIGHT_2D / cam.zoom;
  const halfW = (halfH * width) / Math.max(1, height);
  const nx = (px / width) * 2 - 1;
  const ny = 1 - (py / height) * 2;
  const wx = cam.target[0] + nx * halfW;
  const wy = cam.target[1] + ny * halfH;
  return { ...cam, zoom, target: [wx - (wx - cam.target[0]) / f, wy - (wy - cam.target[1]) / f, cam.target[2]] };
}

/**
 * Normalise a layout frame (rows x dims, dims 1..3) into stride-3 positions
 * centred on the bounding box and scaled so its larger half-extent is 1;
 * missing coordinates are 0. Non-finite values go to the centre.
 */
export function normalizePositions(src: Float32Array, rows: number, dims: number, out?: Float32Array): Float32Array {
  const pos = out && out.length === rows * 3 ? out : new Float32Array(rows * 3);
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  const d = Math.min(3, dims);
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < d; k++) {
      const v = src[i * dims + k];
      if (Number.isFinite(v)) {
        if (v < lo[k]) lo[k] = v;
        if (v > hi[k]) hi[k] = v;
      }
    }
  }
  let half = 0;
  const mid = [0, 0, 0];
  for (let k = 0; k < d; k++) {
    if (lo[k] > hi[k]) continue;
    mid[k] = (lo[k] + hi[k]) / 2;
    half = Math.max(half, (hi[k] - lo[k]) / 2);
  }
  const s = half > 0 ? 1 / half : 1;
  for (let i = 0; i < rows; i++) {
    for (let k = 0; k < 3; k++) {
      const v = k < d ? src[i * dims + k] : 0;
      pos[3 * i + k] = k < d && Number.isFinite(v) ? (v - mid[k]) * s : 0;
    }
  }
  return pos;
}
