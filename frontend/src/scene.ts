// The WebGL2 map: every row drawn as a point sprite showing its thumbnail
// from the sprite atlas (or as a dot when there are no sprites). Per-row data
// lives in typed-array vertex buffers (positions before/after the current
// animation, class index, selection flags); one draw call per atlas page,
// whose rows are contiguous (page k holds rows k*per_page ..): drawArrays
// over that page's range of vertices.
import type { SpriteInfo } from "./api";
import { type Camera, viewMatrices } from "./camera";
import { PALETTE, paletteUniform } from "./palette";

export const FLAG_SELECTED = 1;
export const FLAG_FOCUS = 2;
/** A row the Suggest panel proposes (cyan outline, drawn on top). */
export const FLAG_SUGGESTED = 4;

/** Colour modes of the map (uniform u_colorMode). */
export const COLOR_BY = { label: 0, prediction: 1, uncertainty: 2 } as const;

// Points, not instanced quads: one vertex per row. Software GL (SwiftShader,
// what headless Chromium uses) runs instanced draws of 70,000 quads at ~0.4
// frames/s but points at interactive rates; GPUs are fast either way.
// Everything that is the same for all pixels of a point (its colours, whether
// it is outlined, dimmed or tinted, its mipmap level) is decided once per
// point in the vertex shader; the fragment shader only picks outline or
// thumbnail pixel. In software GL that is the difference between ~250 ms and
// ~60 ms a frame for the 1,797 digits at default size.
const VERT = `#version 300 es
layout(location=0) in vec3 a_from;
layout(location=1) in vec3 a_to;
layout(location=2) in uint a_class;
layout(location=3) in uint a_flags;
layout(location=4) in uint a_pred;
layout(location=5) in float a_unc;
uniform mat4 u_viewProj;
uniform vec2 u_quadScale;
uniform float u_halfSize;
uniform float u_minHalfPx;
uniform float u_maxPointPx;
uniform float u_cellTexels;
uniform float u_grow;
uniform float u_t;
uniform vec2 u_viewport;
uniform float u_dpr;
uniform int u_pageStart;
uniform int u_perRow;
uniform vec3 u_palette[${PALETTE.length + 1}];
uniform int u_colorMode;
uniform float u_tint;
uniform float u_dim;
uniform int u_anySelected;
flat out vec2 v_cell;
flat out float v_lod;
flat out vec3 v_edge;     // outline colour
flat out float v_edgeOn;  // 1: draw the outline
flat out vec3 v_inner;    // inner ring (class colour of a selected/suggested labeled point)
flat out float v_innerOn;
flat out vec3 v_fill;     // tint colour of the thumbnail
flat out float v_tint;
flat out float v_dim;
flat out vec3 v_dot;      // colour of a dot (no sprite)
flat out float v_ringOn;  // dots: selected or suggested rows get a ring
vec3 paletteColor(uint k) {
  return k > 0u ? u_palette[int((k - 1u) % ${PALETTE.length}u) + 1] : u_palette[0];
}
// Uncertainty 0..1: blue (sure) -> yellow -> red (unsure); as uncertaintyRgb() in active.ts.
vec3 ramp(float u) {
  float t = clamp(u, 0.0, 1.0);
  if (t < 0.5) { float s = t / 0.5; return vec3(0.16 + 0.84 * s, 0.47 + 0.38 * s, 1.0 - 0.8 * s); }
  float s = (t - 0.5) / 0.5;
  return vec3(1.0, 0.85 - 0.65 * s, 0.2);
}
void main() {
  vec3 p = mix(a_from, a_to, u_t);
  vec4 clip = u_viewProj * vec4(p, 1.0);
  bool selected = (a_flags & 1u) != 0u;
  bool focus = (a_flags & 2u) != 0u;
  bool suggested = (a_flags & 4u) != 0u;
  bool labeled = a_class > 0u;
  float halfPx = u_halfSize * u_quadScale.y / max(clip.w, 1e-6) * u_viewport.y * 0.5;
  halfPx = max(halfPx, u_minHalfPx) * u_grow;
  if (focus) halfPx *= 1.25;
  else if (suggested) halfPx *= 1.3;
  gl_PointSize = min(2.0 * halfPx * u_dpr, u_maxPointPx);
  gl_Position = clip;
  int local = gl_VertexID - u_pageStart;
  v_cell = vec2(float(local % u_perRow), float(local / u_perRow));
  // Mipmap level per point (thumbnail texels per screen pixel), not per pixel from derivatives.
  v_lod = max(0.0, log2(u_cellTexels / max(gl_PointSize, 1.0)));

  vec3 cls = paletteColor(a_class);
  vec3 fill = labeled ? cls : vec3(0.6);
  bool coloured = labeled;
  if (u_colorMode == 1 && !labeled && a_pred > 0u) { fill = paletteColor(a_pred); coloured = true; }
  if (u_colorMode == 2) { fill = ramp(a_unc); coloured = true; }
  float tint = u_colorMode == 0 ? u_tint : max(u_tint, 0.7);
  v_fill = fill;
  v_tint = (coloured || u_colorMode == 0) ? tint : 0.0;
  v_dim = (u_anySelected == 1 && !selected) ? u_dim : 1.0;
  vec3 mark = focus ? vec3(1.0, 0.6, 0.0) : vec3(1.0);
  vec3 suggestMark = vec3(0.0, 0.9, 1.0);
  // Label outlines stay at full brightness even when unselected points are dimmed.
  v_edgeOn = (selected || suggested || labeled) ? 1.0 : 0.0;
  v_edge = selected ? mark : (suggested ? suggestMark : cls);
  v_innerOn = ((selected || suggested) && labeled) ? 1.0 : 0.0;
  v_inner = cls;
  vec3 dot = u_colorMode == 0 ? (labeled ? cls : cls * 0.75) : (coloured ? fill : u_palette[0] * 0.75);
  v_dot = dot * v_dim;
  v_ringOn = (selected || suggested) ? 1.0 : 0.0;
}`;

const FRAG = `#version 300 es
precision highp float;
uniform sampler2D u_atlas;
uniform float u_hasSprite;
uniform float u_threshold;
uniform vec2 u_aspect;
uniform vec2 u_cell;
flat in vec2 v_cell;
flat in float v_lod;
flat in vec3 v_edge;
flat in float v_edgeOn;
flat in vec3 v_inner;
flat in float v_innerOn;
flat in vec3 v_fill;
flat in float v_tint;
flat in float v_dim;
flat in vec3 v_dot;
flat in float v_ringOn;
out vec4 outColor;
void main() {
  // gl_PointCoord: (0,0) top-left of the point sprite.
  vec2 corner = vec2(gl_PointCoord.x * 2.0 - 1.0, 1.0 - gl_PointCoord.y * 2.0) / u_aspect;
  float edge = max(abs(corner.x), abs(corner.y));
  if (edge > 1.0) discard;
  if (u_hasSprite < 0.5) {
    float r = length(corner);
    if (r > 1.0) discard;
    outColor = vec4(r > 0.62 && v_ringOn > 0.5 ? v_edge : v_dot, 1.0);
    return;
  }
  if (edge > 0.84 && v_edgeOn > 0.5) { outColor = vec4(v_edge, 1.0); return; }
  if (edge > 0.70 && v_innerOn > 0.5) { outColor = vec4(v_inner, 1.0); return; }
  vec2 inCell = vec2(corner.x * 0.5 + 0.5, 0.5 - corner.y * 0.5);
  vec4 tex = textureLod(u_atlas, (v_cell + inCell) * u_cell, v_lod);
  float lum = dot(tex.rgb, vec3(0.299, 0.587, 0.114));
  if (lum < u_threshold) discard;
  vec3 rgb = mix(tex.rgb, max(lum, 0.25) * v_fill, v_tint);
  outColor = vec4(rgb * v_dim, 1.0);
}`;

export interface DrawOptions {
  camera: Camera;
  /** Thumbnail half-size in world units. */
  halfSize: number;
  /** Brightness below which thumbnail pixels are not drawn (0 = off). */
  threshold: number;
  /** 0..1: how strongly thumbnails are tinted with their class colour. */
  tint: number;
  /** Brightness of unselected points while a selection exists. */
  dim: number;
  /** COLOR_BY value. */
  colorMode: number;
  anySelected: boolean;
  hover: number;
  focus: number;
}

export interface FrameStats {
  /** Durations between the last rendered animation frames (ms), newest last. */
  frameTimes: number[];
  drawCalls: number;
}

export class Scene {
  readonly gl: WebGL2RenderingContext;
  private program: WebGLProgram;
  private uniforms = new Map<string, WebGLUniformLocation | null>();
  private vao: WebGLVertexArrayObject;
  private fromBuf: WebGLBuffer;
  private toBuf: WebGLBuffer;
  private classBuf: WebGLBuffer;
  private flagsBuf: WebGLBuffer;
  /** Selected rows (ascending), drawn again on top so a group is never hidden under its neighbours. */
  private selIndexBuf: WebGLBuffer;
  private selRows = new Uint32Array(0);
  /** Suggested rows, drawn on top as well. */
  private sugIndexBuf: WebGLBuffer;
  private sugRows = new Uint32Array(0);
  private predBuf: WebGLBuffer;
  private uncBuf: WebGLBuffer;
  private textures: (WebGLTexture | null)[] = [];
  private fbo: WebGLFramebuffer | null = null;
  private n = 0;
  private sprite: SpriteInfo | null = null;
  /** Uploaded page sizes (may be smaller than the original if the GPU limit forced a downscale). */
  private texSizes: [number, number][] = [];
  private from = new Float32Array(0);
  private to = new Float32Array(0);
  private current = new Float32Array(0);
  private currentT = -1;
  private animStart = 0;
  private animMs = 0;
  readonly maxTextureSize: number;
  /** Largest point sprite the GL draws (px); thumbnails zoomed beyond it stay at this size. */
  readonly maxPointSize: number;
  readonly stats: FrameStats = { frameTimes: [], drawCalls: 0 };
  private lastFrameAt = 0;
  /** Signals when the GPU has finished the last frame drawn. */
  private fence: WebGLSync | null = null;
  private fenceAt = 0;
  /** How long the GPU took for the last frame it finished (ms, measured at frame granularity). */
  gpuMs = 0;

  constructor(readonly canvas: HTMLCanvasElement) {
    const gl = canvas.getContext("webgl2", { antialias: false, alpha: false, preserveDrawingBuffer: false });
    if (!gl) throw new Error("This browser cannot draw the map: WebGL2 is not available.");
    this.gl = gl;
    this.maxTextureSize = gl.getParameter(gl.MAX_TEXTURE_SIZE) as number;
    this.program = link(gl, VERT, FRAG);
    this.vao = gl.createVertexArray()!;
    this.fromBuf = gl.createBuffer()!;
    this.toBuf = gl.createBuffer()!;
    this.classBuf = gl.createBuffer()!;
    this.flagsBuf = gl.createBuffer()!;
    this.selIndexBuf = gl.createBuffer()!;
    this.sugIndexBuf = gl.createBuffer()!;
    this.predBuf = gl.createBuffer()!;
    this.uncBuf = gl.createBuffer()!;
    this.maxPointSize = (gl.getParameter(gl.ALIASED_POINT_SIZE_RANGE) as Float32Array)[1];
    gl.bindVertexArray(this.vao);
    for (const loc of [0, 1, 2, 3, 4, 5]) gl.enableVertexAttribArray(loc);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.fromBuf);
    gl.vertexAttribPointer(0, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.toBuf);
    gl.vertexAttribPointer(1, 3, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.classBuf);
    gl.vertexAttribIPointer(2, 1, gl.UNSIGNED_SHORT, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.flagsBuf);
    gl.vertexAttribIPointer(3, 1, gl.UNSIGNED_BYTE, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.predBuf);
    gl.vertexAttribIPointer(4, 1, gl.UNSIGNED_SHORT, 0, 0);
    gl.bindBuffer(gl.ARRAY_BUFFER, this.uncBuf);
    gl.vertexAttribPointer(5, 1, gl.FLOAT, false, 0, 0);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.selIndexBuf);
    gl.bindVertexArray(null);
    gl.useProgram(this.program);
    gl.uniform3fv(this.u("u_palette"), paletteUniform());
    gl.uniform1i(this.u("u_atlas"), 0);
  }

  private u(name: string): WebGLUniformLocation | null {
    if (!this.uniforms.has(name)) this.uniforms.set(name, this.gl.getUniformLocation(this.program, name));
    return this.uniforms.get(name)!;
  }

  /** Allocate per-row buffers for `n` rows; all rows start at `positions` (stride 3). */
  reset(n: number, positions: Float32Array, sprite: SpriteInfo | null): void {
    const gl = this.gl;
    for (const t of this.textures) if (t) gl.deleteTexture(t);
    this.textures = [];
    this.texSizes = [];
    this.n = n;
    this.sprite = sprite;
    this.from = positions.slice();
    this.to = positions.slice();
    this.current = positions.slice();
    this.currentT = 1;
    this.animMs = 0;
    upload(gl, this.fromBuf, this.from, gl.DYNAMIC_DRAW);
    upload(gl, this.toBuf, this.to, gl.DYNAMIC_DRAW);
    upload(gl, this.classBuf, new Uint16Array(n), gl.DYNAMIC_DRAW);
    upload(gl, this.flagsBuf, new Uint8Array(n), gl.DYNAMIC_DRAW);
    upload(gl, this.predBuf, new Uint16Array(n), gl.DYNAMIC_DRAW);
    upload(gl, this.uncBuf, new Float32Array(n), gl.DYNAMIC_DRAW);
    this.setSelected(new Uint32Array(0));
    this.setSuggested(new Uint32Array(0));
  }

  /** Upload one atlas page (an ImageBitmap, image or canvas of the page). */
  setAtlasPage(page: number, source: TexImageSource & { width: number; height: number }): void {
    const gl = this.gl;
    let src: TexImageSource = source;
    let w = source.width;
    let h = source.height;
    if (Math.max(w, h) > this.maxTextureSize) {
      // The GPU cannot hold the page at full size: downscale it (UVs are relative, so the map is unaffected).
      const f = this.maxTextureSize / Math.max(w, h);
      const c = document.createElement("canvas");
      c.width = Math.floor(w * f);
      c.height = Math.floor(h * f);
      c.getContext("2d")!.drawImage(source as CanvasImageSource, 0, 0, c.width, c.height);
      src = c;
      w = c.width;
      h = c.height;
    }
    const tex = gl.createTexture()!;
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
    gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, w, h, 0, gl.RGBA, gl.UNSIGNED_BYTE, src);
    // Mipmaps keep thousands of zoomed-out thumbnails from shimmering.
    gl.generateMipmap(gl.TEXTURE_2D);
    // One mip level per point (its level is chosen per point in the vertex shader): bilinear within
    // it; trilinear costs ~40% more per frame in software GL for no visible gain.
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR_MIPMAP_NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    this.textures[page] = tex;
    this.texSizes[page] = [w, h];
  }

  hasPage(page: number): boolean {
    return !!this.textures[page];
  }

  /** Animate from wherever the points are now to `next` (stride 3) over `ms`. */
  moveTo(next: Float32Array, ms: number, now = performance.now()): void {
    const cur = this.positionsAt(now);
    this.from = cur.slice();
    this.to = next.slice();
    this.animStart = now;
    this.animMs = ms;
    this.currentT = -1;
    upload(this.gl, this.fromBuf, this.from, this.gl.DYNAMIC_DRAW);
    upload(this.gl, this.toBuf, this.to, this.gl.DYNAMIC_DRAW);
  }

  isAnimating(now = performance.now()): boolean {
    return this.animMs > 0 && now - this.animStart < this.animMs;
  }

  private tAt(now: number): number {
    if (this.animMs <= 0) return 1;
    const x = Math.min(1, Math.max(0, (now - this.animStart) / this.animMs));
    return x * x * (3 - 2 * x); // smoothstep: no jolt at either end
  }

  /** Positions (stride 3) as drawn at time `now`; cached per animation step. */
  positionsAt(now = performance.now()): Float32Array {
    const t = this.tAt(now);
    if (t === this.currentT && this.current.length === this.to.length) return this.current;
    if (this.current.length !== this.to.length) this.current = new Float32Array(this.to.length);
    const a = this.from, b = this.to, c = this.current;
    if (t >= 1) c.set(b);
    else for (let i = 0; i < c.length; i++) c[i] = a[i] + (b[i] - a[i]) * t;
    this.currentT = t;
    return c;
  }

  /** Positions the animation is heading to. */
  targetPositions(): Float32Array {
    return this.to;
  }

  setClasses(perRow: Uint16Array): void {
    upload(this.gl, this.classBuf, perRow, this.gl.DYNAMIC_DRAW);
  }

  /** Per row: the legend index of the predicted class (0 = none) and the uncertainty 0..1. */
  setPredictions(predLegend: Uint16Array, uncertainty: Float32Array): void {
    if (predLegend.length !== this.n || uncertainty.length !== this.n) return;
    upload(this.gl, this.predBuf, predLegend, this.gl.DYNAMIC_DRAW);
    upload(this.gl, this.uncBuf, uncertainty, this.gl.DYNAMIC_DRAW);
  }

  setFlags(flags: Uint8Array): void {
    upload(this.gl, this.flagsBuf, flags, this.gl.DYNAMIC_DRAW);
  }

  /** Rows to draw on top (the selection); sorted here so each page's rows are one range. */
  setSelected(rows: Uint32Array): void {
    this.selRows = rows.slice().sort();
    const gl = this.gl;
    gl.bindVertexArray(this.vao);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.selIndexBuf);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, this.selRows.length ? this.selRows : new Uint32Array(1), gl.DYNAMIC_DRAW);
    gl.bindVertexArray(null);
  }

  /** Suggested rows, drawn on top of everything but the focus and hover. */
  setSuggested(rows: Uint32Array): void {
    this.sugRows = rows.slice().sort();
    const gl = this.gl;
    gl.bindVertexArray(this.vao);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.sugIndexBuf);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, this.sugRows.length ? this.sugRows : new Uint32Array(1), gl.DYNAMIC_DRAW);
    gl.bindVertexArray(null);
  }

  resize(): { width: number; height: number } {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.canvas.clientHeight * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    return { width: this.canvas.clientWidth, height: this.canvas.clientHeight };
  }

  draw(o: DrawOptions, now = performance.now()): void {
    const gl = this.gl;
    const { width, height } = this.resize();
    if (this.lastFrameAt > 0) {
      this.stats.frameTimes.push(now - this.lastFrameAt);
      if (this.stats.frameTimes.length > 600) this.stats.frameTimes.shift();
    }
    this.lastFrameAt = now;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(0.07, 0.07, 0.07, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    if (this.n === 0) return;
    const { viewProj, quadScale } = viewMatrices(o.camera, width, height);
    if (o.camera.dims === 3) {
      gl.enable(gl.DEPTH_TEST);
      gl.depthFunc(gl.LEQUAL);
    } else {
      gl.disable(gl.DEPTH_TEST);
    }
    gl.useProgram(this.program);
    gl.bindVertexArray(this.vao);
    gl.uniformMatrix4fv(this.u("u_viewProj"), false, viewProj);
    gl.uniform2f(this.u("u_quadScale"), quadScale[0], quadScale[1]);
    gl.uniform1f(this.u("u_halfSize"), o.halfSize);
    gl.uniform1f(this.u("u_minHalfPx"), 1.5);
    gl.uniform1f(this.u("u_t"), this.tAt(now));
    gl.uniform2f(this.u("u_viewport"), width, height);
    gl.uniform1f(this.u("u_threshold"), o.threshold);
    gl.uniform1f(this.u("u_tint"), o.tint);
    gl.uniform1f(this.u("u_dim"), o.dim);
    gl.uniform1i(this.u("u_colorMode"), o.colorMode);
    gl.uniform1i(this.u("u_anySelected"), o.anySelected ? 1 : 0);
    gl.activeTexture(gl.TEXTURE0);
    let calls = 0;
    const s = this.sprite;
    const aspect: [number, number] = s ? (s.thumb_width >= s.thumb_height ? [1, s.thumb_height / s.thumb_width] : [s.thumb_width / s.thumb_height, 1]) : [1, 1];
    gl.uniform2f(this.u("u_aspect"), aspect[0], aspect[1]);
    gl.uniform1f(this.u("u_dpr"), window.devicePixelRatio || 1);
    gl.uniform1f(this.u("u_maxPointPx"), this.maxPointSize);
    const pages = s ? s.pages : 1;
    const perPage = s ? s.per_page : this.n;
    gl.uniform1f(this.u("u_grow"), 1);
    for (let p = 0; p < pages; p++) {
      const start = p * perPage;
      const count = Math.min(perPage, this.n - start);
      if (count <= 0) break;
      if (!this.bindPage(p)) continue;
      gl.drawArrays(gl.POINTS, start, count);
      calls++;
    }
    // The selection, then the suggestions, once more on top (one indexed draw per page holding such rows).
    for (const [rows, buf] of [[this.selRows, this.selIndexBuf], [this.sugRows, this.sugIndexBuf]] as const) {
      if (!rows.length || rows.length >= this.n) continue;
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, buf);
      let lo = 0;
      while (lo < rows.length) {
        const page = Math.floor(rows[lo] / perPage);
        let hi = lo;
        while (hi < rows.length && Math.floor(rows[hi] / perPage) === page) hi++;
        if (this.bindPage(page)) {
          gl.drawElements(gl.POINTS, hi - lo, gl.UNSIGNED_INT, lo * 4);
          calls++;
        }
        lo = hi;
      }
    }
    // The focus and the hovered row once more on top, larger, so they are never hidden.
    if (o.camera.dims === 3) gl.disable(gl.DEPTH_TEST);
    for (const [row, grow] of [[o.focus, 1.0], [o.hover, 2.2]] as const) {
      if (row < 0 || row >= this.n) continue;
      if (!this.bindPage(Math.floor(row / perPage))) continue;
      gl.uniform1f(this.u("u_grow"), grow);
      gl.drawArrays(gl.POINTS, row, 1);
      calls++;
    }
    gl.bindVertexArray(null);
    this.stats.drawCalls = calls;
    if (this.fence) gl.deleteSync(this.fence);
    this.fence = gl.fenceSync(gl.SYNC_GPU_COMMANDS_COMPLETE, 0);
    this.fenceAt = performance.now();
    gl.flush();
  }

  /**
   * True while the GPU still works on the last frame. Drawing more then only
   * queues work, and with software GL the page's main thread ends up blocked
   * waiting for it; callers skip the frame instead (never blocks: WebGL
   * updates the status between tasks).
   */
  gpuBusy(): boolean {
    const gl = this.gl;
    if (!this.fence) return false;
    if (gl.getSyncParameter(this.fence, gl.SYNC_STATUS) !== gl.SIGNALED) return true;
    gl.deleteSync(this.fence);
    this.fence = null;
    this.gpuMs = performance.now() - this.fenceAt;
    return false;
  }

  /** Bind page `page`'s atlas and cell geometry; false when the page is not loaded yet. */
  private bindPage(page: number): boolean {
    const gl = this.gl;
    const s = this.sprite;
    if (s) {
      const tex = this.textures[page];
      if (!tex) return false;
      gl.bindTexture(gl.TEXTURE_2D, tex);
      const [pw, ph] = s.page_sizes[page] ?? [s.per_row * s.thumb_width, Math.ceil(s.per_page / s.per_row) * s.thumb_height];
      gl.uniform1f(this.u("u_hasSprite"), 1);
      gl.uniform1i(this.u("u_perRow"), s.per_row);
      gl.uniform1i(this.u("u_pageStart"), page * s.per_page);
      gl.uniform2f(this.u("u_cell"), s.thumb_width / pw, s.thumb_height / ph);
      const [tw] = this.texSizes[page] ?? [pw];
      gl.uniform1f(this.u("u_cellTexels"), (Math.max(s.thumb_width, s.thumb_height) * tw) / pw);
    } else {
      gl.uniform1f(this.u("u_hasSprite"), 0);
      gl.uniform1i(this.u("u_perRow"), 1);
      gl.uniform1i(this.u("u_pageStart"), 0);
      gl.uniform2f(this.u("u_cell"), 0, 0);
      gl.uniform1f(this.u("u_cellTexels"), 1);
    }
    return true;
  }

  /** The thumbnail of `row` as RGBA pixels read back from its atlas page, or null. */
  readThumbnail(row: number): ImageData | null {
    const s = this.sprite;
    if (!s || row < 0 || row >= this.n) return null;
    const page = Math.floor(row / s.per_page);
    const tex = this.textures[page];
    if (!tex) return null;
    const gl = this.gl;
    const local = row - page * s.per_page;
    const [ow, oh] = s.page_sizes[page] ?? this.texSizes[page];
    const [tw, th] = this.texSizes[page];
    const fx = tw / ow, fy = th / oh;
    const w = Math.max(1, Math.floor(s.thumb_width * fx));
    const h = Math.max(1, Math.floor(s.thumb_height * fy));
    const x = Math.floor((local % s.per_row) * s.thumb_width * fx);
    const y = Math.floor(Math.floor(local / s.per_row) * s.thumb_height * fy);
    if (!this.fbo) this.fbo = gl.createFramebuffer();
    gl.bindFramebuffer(gl.FRAMEBUFFER, this.fbo);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, tex, 0);
    const px = new Uint8ClampedArray(w * h * 4);
    gl.readPixels(x, y, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    return new ImageData(px, w, h);
  }
}

function upload(gl: WebGL2RenderingContext, buf: WebGLBuffer, data: ArrayBufferView, usage: number): void {
  gl.bindBuffer(gl.ARRAY_BUFFER, buf);
  gl.bufferData(gl.ARRAY_BUFFER, data, usage);
}

function compile(gl: WebGL2RenderingContext, type: number, src: string): WebGLShader {
  const s = gl.createShader(type)!;
  gl.shaderSource(s, src);
  gl.compileShader(s);
  if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(`Map shader failed to compile: ${gl.getShaderInfoLog(s)}`);
  return s;
}

function link(gl: WebGL2RenderingContext, vs: string, fs: string): WebGLProgram {
  const p = gl.createProgram()!;
  gl.attachShader(p, compile(gl, gl.VERTEX_SHADER, vs));
  gl.attachShader(p, compile(gl, gl.FRAGMENT_SHADER, fs));
  gl.linkProgram(p);
  if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(`Map shader failed to link: ${gl.getProgramInfoLog(p)}`);
  return p;
}
