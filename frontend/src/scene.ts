// The WebGL2 map: every row drawn as a point sprite showing its thumbnail
// from the sprite atlas, or as a dot where a thumbnail would be a few pixels
// (levels of detail), where its atlas page is not loaded (spritePages.ts) or
// when there are no sprites. Per-row data lives in typed-array vertex buffers
// (positions before/after the current animation, class index, selection
// flags). Pages hold contiguous rows (page k: rows k*per_page ..): one draw
// call per page, over that page's range of vertices, or, when the view shows
// a small part of the map (2D), over the rows in view only, found with the
// layout's spatial index (spatialIndex.ts).
import type { SpriteInfo } from "./api";
import { type Camera, viewMatrices } from "./camera";
import { DOT_IMAGE_MIN_ROWS, drawDots, rowColors } from "./dotImage";
import { PALETTE, paletteUniform } from "./palette";
import { type GridIndex, LayoutIndexCache } from "./spatialIndex";
import { LOD_THUMB_PX, SpritePages } from "./spritePages";

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
// What both programs (thumbnails, dots) read per row, and the size of a point in pixels.
const ROW_INPUTS = `
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
uniform float u_grow;
uniform float u_t;
uniform vec2 u_viewport;
uniform float u_dpr;
uniform vec3 u_palette[${PALETTE.length + 1}];
uniform int u_colorMode;
uniform float u_tint;
uniform float u_dim;
uniform int u_anySelected;
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
// Place the row's point; returns its half-size in CSS pixels.
uniform float u_depthRows;
float placePoint(out vec4 clip) {
  vec3 p = mix(a_from, a_to, u_t);
  clip = u_viewProj * vec4(p, 1.0);
  // 2D thumbnails: later rows nearer, so that rows drawn last to first hide what lies under them
  // before it is shaded (see Scene.draw); 0: depth from the camera (3D) or none.
  if (u_depthRows > 0.0) clip.z = (0.999 - 1.998 * float(gl_VertexID) / u_depthRows) * clip.w;
  float halfPx = u_halfSize * u_quadScale.y / max(clip.w, 1e-6) * u_viewport.y * 0.5;
  halfPx = max(halfPx, u_minHalfPx) * u_grow;
  if ((a_flags & 2u) != 0u) halfPx *= 1.25;
  else if ((a_flags & 4u) != 0u) halfPx *= 1.3;
  return halfPx;
}
`;

const VERT = `#version 300 es
${ROW_INPUTS}
uniform int u_pageStart;
uniform int u_perRow;
uniform float u_cellTexels;
flat out vec2 v_cell;
flat out float v_lod;
flat out vec3 v_edge;     // outline colour
flat out float v_edgeAt;  // the outline is drawn beyond this distance from the centre (0..1; 2: none)
flat out vec3 v_inner;    // inner ring (class colour of a selected/suggested labeled point)
flat out float v_innerAt; // outline or inner ring beyond this distance
flat out vec3 v_fill;     // tint colour of the thumbnail
flat out float v_tint;
flat out float v_dim;
void main() {
  vec4 clip;
  float halfPx = placePoint(clip);
  bool selected = (a_flags & 1u) != 0u;
  bool focus = (a_flags & 2u) != 0u;
  bool suggested = (a_flags & 4u) != 0u;
  bool labeled = a_class > 0u;
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
  bool edgeOn = selected || suggested || labeled;
  v_edgeAt = edgeOn ? 0.84 : 2.0;
  v_edge = selected ? mark : (suggested ? suggestMark : cls);
  v_innerAt = (selected || suggested) && labeled ? 0.70 : v_edgeAt;
  v_inner = cls;
}`;

// Per pixel only what differs between pixels of a point: outline or thumbnail
// texel. Branches on uniforms and flat inputs cost little; the texture read
// is one mip level, nearest texel (its level already has ~1 texel per pixel;
// bilinear cost a quarter more per frame in software GL for no visible gain).
// Variants, compiled when first needed: OPAQUE (square thumbnails, no
// dark-pixel threshold) has no discard, so that the depth test can skip the
// pixels of hidden thumbnails before they are shaded; PLAIN (no tint, no
// threshold) leaves out the brightness arithmetic.
const FRAG = (opaque: boolean, plain: boolean) => `#version 300 es
${opaque ? "#define OPAQUE" : ""}
${plain ? "#define PLAIN" : ""}
precision highp float;
uniform sampler2D u_atlas;
uniform float u_threshold;
uniform vec2 u_aspect;
uniform vec2 u_cell;
flat in vec2 v_cell;
flat in float v_lod;
flat in vec3 v_edge;
flat in float v_edgeAt;
flat in vec3 v_inner;
flat in float v_innerAt;
flat in vec3 v_fill;
flat in float v_tint;
flat in float v_dim;
out vec4 outColor;
void main() {
  // gl_PointCoord: (0,0) top-left of the point sprite; the thumbnail fills its middle (aspect).
  vec2 corner = (gl_PointCoord - 0.5) / u_aspect;
  float edge = 2.0 * max(abs(corner.x), abs(corner.y));
#ifndef OPAQUE
  if (edge > 1.0) discard;
#endif
  if (edge > v_innerAt) { outColor = vec4(edge > v_edgeAt ? v_edge : v_inner, 1.0); return; }
  vec3 rgb = textureLod(u_atlas, (v_cell + corner + 0.5) * u_cell, v_lod).rgb;
#ifndef PLAIN
  float lum = dot(rgb, vec3(0.299, 0.587, 0.114));
#ifndef OPAQUE
  if (lum < u_threshold) discard;
#endif
  rgb = mix(rgb, max(lum, 0.25) * v_fill, v_tint);
#endif
  outColor = vec4(rgb * v_dim, 1.0);
}`;

// Dots: rows drawn without a thumbnail (zoomed out, page not loaded, no
// sprites). A lean program: at 1M rows the vertex work is most of a frame.
const DOT_VERT = `#version 300 es
${ROW_INPUTS}
uniform float u_dotMaxPx;
flat out vec3 v_color;
flat out vec3 v_ring;
flat out float v_ringOn;
void main() {
  vec4 clip;
  float halfPx = placePoint(clip);
  gl_Position = clip;
  bool selected = (a_flags & 1u) != 0u;
  bool labeled = a_class > 0u;
  // A selected or suggested dot keeps room for its ring.
  float px = (a_flags & 7u) != 0u ? max(2.0 * halfPx, min(u_dotMaxPx, 7.0)) : 2.0 * halfPx;
  gl_PointSize = min(min(px, u_dotMaxPx) * u_dpr, u_maxPointPx);
  vec3 cls = paletteColor(a_class);
  vec3 c = labeled ? cls : cls * 0.75;
  if (u_colorMode == 1 && !labeled && a_pred > 0u) c = paletteColor(a_pred);
  if (u_colorMode == 2) c = ramp(a_unc);
  float dim = (u_anySelected == 1 && !selected) ? u_dim : 1.0;
  v_color = c * dim;
  v_ring = selected ? ((a_flags & 2u) != 0u ? vec3(1.0, 0.6, 0.0) : vec3(1.0)) : vec3(0.0, 0.9, 1.0);
  v_ringOn = (a_flags & 5u) != 0u ? 1.0 : 0.0;
}`;

const DOT_FRAG = `#version 300 es
precision highp float;
flat in vec3 v_color;
flat in vec3 v_ring;
flat in float v_ringOn;
out vec4 outColor;
void main() {
  vec2 c = gl_PointCoord * 2.0 - 1.0;
  float r2 = dot(c, c);
  if (r2 > 1.0) discard;
  outColor = vec4(v_ringOn > 0.5 && r2 > 0.38 ? v_ring : v_color, 1.0);
}`;

// The dots image (dotImage.ts) drawn over the whole canvas: one triangle, one texel per pixel.
const IMAGE_VERT = `#version 300 es
void main() {
  vec2 p = vec2(float((gl_VertexID & 1) * 4 - 1), float((gl_VertexID & 2) * 2 - 1));
  gl_Position = vec4(p, 0.0, 1.0);
}`;

const IMAGE_FRAG = `#version 300 es
precision highp float;
uniform sampler2D u_image;
out vec4 outColor;
void main() {
  outColor = texelFetch(u_image, ivec2(gl_FragCoord.xy), 0);
}`;

/** The map's background (RGB 0..1). */
const BACKGROUND = [0.07, 0.07, 0.07] as const;

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
  /** How the last frame drew its rows: "thumbnails" (where their page is loaded; dots elsewhere) or "dots". */
  lod: "thumbnails" | "dots";
  /** Rows the last frame drew (fewer than all when the view showed part of the map). */
  rowsDrawn: number;
  /** Size of a thumbnail in the last frame (CSS px; 2D). */
  pointPx: number;
  /** Whether the last frame drew its dots as one image (dotImage.ts). */
  dotsImage: boolean;
}

/** Culling pays when the view shows at most this fraction of the layout's extent (the index query costs the rest). */
const CULL_MAX_FRACTION = 0.6;
/** Thumbnails of rows whose page is not loaded are drawn as dots at most this large (px). */
const PLACEHOLDER_DOT_PX = 6;

type Program = { program: WebGLProgram; uniforms: Map<string, WebGLUniformLocation | null> };

export class Scene {
  readonly gl: WebGL2RenderingContext;
  /** Thumbnail programs by variant (see FRAG), compiled when first needed. */
  private thumbVariants = new Map<string, Program>();
  private thumbs: Program;
  /** The thumbnail program of the frame being drawn. */
  private thumbsNow: Program;
  private dots: Program;
  private image: Program;
  private imageVao: WebGLVertexArrayObject;
  private imageTex: WebGLTexture | null = null;
  private imagePixels = new Uint32Array(0);
  private imageSize: [number, number] = [0, 0];
  /** Per-row inputs of the dot colours, kept for the dots image (the GL reads its own copies). */
  private colorInputs: { classes: Uint16Array | null; flags: Uint8Array | null; pred: Uint16Array | null; unc: Float32Array | null; version: number } = { classes: null, flags: null, pred: null, unc: null, version: 0 };
  private colors: { stamp: string; colors: Uint32Array } | null = null;
  /** The program of the draw being issued (uniform calls go to it). */
  private active: Program;
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
  /** Rows in view (ascending), when the frame draws only those. */
  private cullIndexBuf: WebGLBuffer;
  private cull: { stamp: string; rows: Uint32Array } | null = null;
  private predBuf: WebGLBuffer;
  private uncBuf: WebGLBuffer;
  private textures: (WebGLTexture | null)[] = [];
  private fbo: WebGLFramebuffer | null = null;
  private n = 0;
  private sprite: SpriteInfo | null = null;
  /** Uploaded page sizes (smaller than the original when loaded at a reduced scale or above the GPU's limit). */
  private texSizes: [number, number][] = [];
  private from = new Float32Array(0);
  private to = new Float32Array(0);
  private current = new Float32Array(0);
  private currentT = -1;
  private animStart = 0;
  private animMs = 0;
  private index = new LayoutIndexCache();
  /** The atlas pages: which are loaded, which the view wants. */
  readonly sprites: SpritePages;
  readonly maxTextureSize: number;
  /** Largest point sprite the GL draws (px); thumbnails zoomed beyond it stay at this size. */
  readonly maxPointSize: number;
  readonly stats: FrameStats = { frameTimes: [], drawCalls: 0, lod: "dots", rowsDrawn: 0, pointPx: 0, dotsImage: false };
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
    this.thumbs = this.thumbProgram(false, false);
    this.dots = { program: link(gl, DOT_VERT, DOT_FRAG), uniforms: new Map() };
    this.image = { program: link(gl, IMAGE_VERT, IMAGE_FRAG), uniforms: new Map() };
    this.imageVao = gl.createVertexArray()!;
    this.active = this.thumbs;
    this.thumbsNow = this.thumbs;
    this.vao = gl.createVertexArray()!;
    this.fromBuf = gl.createBuffer()!;
    this.toBuf = gl.createBuffer()!;
    this.classBuf = gl.createBuffer()!;
    this.flagsBuf = gl.createBuffer()!;
    this.selIndexBuf = gl.createBuffer()!;
    this.sugIndexBuf = gl.createBuffer()!;
    this.cullIndexBuf = gl.createBuffer()!;
    this.predBuf = gl.createBuffer()!;
    this.uncBuf = gl.createBuffer()!;
    this.maxPointSize = (gl.getParameter(gl.ALIASED_POINT_SIZE_RANGE) as Float32Array)[1];
    this.sprites = new SpritePages(this);
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
    this.use(this.dots);
    gl.uniform3fv(this.u("u_palette"), paletteUniform());
  }

  /** The thumbnail program for square thumbnails without threshold (`opaque`) and without tint or threshold (`plain`). */
  private thumbProgram(opaque: boolean, plain: boolean): Program {
    const key = `${opaque}:${plain}`;
    let prog = this.thumbVariants.get(key);
    if (!prog) {
      prog = { program: link(this.gl, VERT, FRAG(opaque, plain)), uniforms: new Map() };
      this.thumbVariants.set(key, prog);
      this.use(prog);
      this.gl.uniform3fv(this.u("u_palette"), paletteUniform());
      this.gl.uniform1i(this.u("u_atlas"), 0);
    }
    return prog;
  }

  private use(prog: Program): void {
    this.active = prog;
    this.gl.useProgram(prog.program);
  }

  private u(name: string): WebGLUniformLocation | null {
    const m = this.active.uniforms;
    if (!m.has(name)) m.set(name, this.gl.getUniformLocation(this.active.program, name));
    return m.get(name)!;
  }

  /** Allocate per-row buffers for `n` rows; all rows start at `positions` (stride 3). */
  reset(n: number, positions: Float32Array, sprite: SpriteInfo | null): void {
    const gl = this.gl;
    for (const t of this.textures) if (t) gl.deleteTexture(t);
    this.textures = [];
    this.texSizes = [];
    this.sprites.open(null, null, null);
    this.n = n;
    this.sprite = sprite;
    this.from = positions.slice();
    this.to = positions.slice();
    this.current = positions.slice();
    this.currentT = 1;
    this.animMs = 0;
    this.cull = null;
    this.index.clear();
    this.colorInputs = { classes: null, flags: null, pred: null, unc: null, version: this.colorInputs.version + 1 };
    upload(gl, this.fromBuf, this.from, gl.DYNAMIC_DRAW);
    upload(gl, this.toBuf, this.to, gl.DYNAMIC_DRAW);
    upload(gl, this.classBuf, new Uint16Array(n), gl.DYNAMIC_DRAW);
    upload(gl, this.flagsBuf, new Uint8Array(n), gl.DYNAMIC_DRAW);
    upload(gl, this.predBuf, new Uint16Array(n), gl.DYNAMIC_DRAW);
    upload(gl, this.uncBuf, new Float32Array(n), gl.DYNAMIC_DRAW);
    this.setSelected(new Uint32Array(0));
    this.setSuggested(new Uint32Array(0));
  }

  /**
   * Upload one atlas page (an ImageBitmap, image or canvas of the page, at its
   * size or reduced: see spritePages.ts); replaces the page's texture.
   */
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
    this.dropPage(page);
    const tex = gl.createTexture()!;
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
    gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, w, h, 0, gl.RGBA, gl.UNSIGNED_BYTE, src);
    // Mipmaps keep thousands of zoomed-out thumbnails from shimmering.
    gl.generateMipmap(gl.TEXTURE_2D);
    // One mip level per point, chosen in the vertex shader; see FRAG.
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST_MIPMAP_NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    this.textures[page] = tex;
    this.texSizes[page] = [w, h];
  }

  /** Free page `page`'s texture (its rows are drawn as dots until it is loaded again). */
  dropPage(page: number): void {
    const tex = this.textures[page];
    if (tex) this.gl.deleteTexture(tex);
    this.textures[page] = null;
  }

  hasPage(page: number): boolean {
    return !!this.textures[page];
  }

  /** The spatial index of the positions the points are heading to (built when they change). */
  layoutIndex(): GridIndex {
    return this.index.of(this.to, this.n);
  }

  /** Animate from wherever the points are now to `next` (stride 3) over `ms`. */
  moveTo(next: Float32Array, ms: number, now = performance.now()): void {
    const cur = this.positionsAt(now);
    this.from = cur.slice();
    this.to = next.slice();
    this.animStart = now;
    this.animMs = ms;
    this.currentT = -1;
    this.cull = null;
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
    this.colorInputs = { ...this.colorInputs, classes: perRow, version: this.colorInputs.version + 1 };
  }

  /** Per row: the legend index of the predicted class (0 = none) and the uncertainty 0..1. */
  setPredictions(predLegend: Uint16Array, uncertainty: Float32Array): void {
    if (predLegend.length !== this.n || uncertainty.length !== this.n) return;
    upload(this.gl, this.predBuf, predLegend, this.gl.DYNAMIC_DRAW);
    upload(this.gl, this.uncBuf, uncertainty, this.gl.DYNAMIC_DRAW);
    this.colorInputs = { ...this.colorInputs, pred: predLegend, unc: uncertainty, version: this.colorInputs.version + 1 };
  }

  setFlags(flags: Uint8Array): void {
    upload(this.gl, this.flagsBuf, flags, this.gl.DYNAMIC_DRAW);
    this.colorInputs = { ...this.colorInputs, flags, version: this.colorInputs.version + 1 };
  }

  /**
   * Draw every row as a dot into one image on the CPU and show it (2D, many
   * rows, dots only): see dotImage.ts. `px`: dot size in device pixels.
   */
  private drawDotsImage(o: DrawOptions, viewProj: Float32Array, now: number, px: number): void {
    const gl = this.gl;
    const w = this.canvas.width, h = this.canvas.height;
    const ci = this.colorInputs;
    const stamp = `${ci.version}:${o.colorMode}:${o.anySelected}:${o.dim}:${this.n}`;
    if (this.colors?.stamp !== stamp) this.colors = { stamp, colors: rowColors(this.n, { ...ci, colorMode: o.colorMode, anySelected: o.anySelected, dim: o.dim }, this.colors?.colors) };
    if (this.imagePixels.length !== w * h) this.imagePixels = new Uint32Array(w * h);
    const m = viewProj;
    const bg = ((255 << 24) | (Math.round(BACKGROUND[2] * 255) << 16) | (Math.round(BACKGROUND[1] * 255) << 8) | Math.round(BACKGROUND[0] * 255)) >>> 0;
    drawDots(this.positionsAt(now), this.n, this.colors.colors, m[0] * 0.5 * w, (m[12] * 0.5 + 0.5) * w, m[5] * 0.5 * h, (m[13] * 0.5 + 0.5) * h, px, w, h, bg, this.imagePixels);
    if (!this.imageTex) {
      this.imageTex = gl.createTexture()!;
      gl.bindTexture(gl.TEXTURE_2D, this.imageTex);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
      gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    }
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, this.imageTex);
    const bytes = new Uint8Array(this.imagePixels.buffer);
    if (this.imageSize[0] === w && this.imageSize[1] === h) gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, bytes);
    else gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, w, h, 0, gl.RGBA, gl.UNSIGNED_BYTE, bytes);
    this.imageSize = [w, h];
    this.use(this.image);
    gl.uniform1i(this.u("u_image"), 0);
    gl.bindVertexArray(this.imageVao);
    gl.drawArrays(gl.TRIANGLES, 0, 3);
    gl.bindVertexArray(null);
  }

  /** Rows to draw on top (the selection); sorted here so each page's rows are one range. */
  setSelected(rows: Uint32Array): void {
    this.selRows = rows.slice().sort();
    this.uploadIndices(this.selIndexBuf, this.selRows);
  }

  /** Suggested rows, drawn on top of everything but the focus and hover. */
  setSuggested(rows: Uint32Array): void {
    this.sugRows = rows.slice().sort();
    this.uploadIndices(this.sugIndexBuf, this.sugRows);
  }

  private uploadIndices(buf: WebGLBuffer, rows: Uint32Array): void {
    const gl = this.gl;
    gl.bindVertexArray(this.vao);
    gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, buf);
    gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, rows.length ? rows : new Uint32Array(1), gl.DYNAMIC_DRAW);
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

  /** Size of a thumbnail on screen (CSS px) in a 2D view; 0 in 3D (it varies with depth). */
  static pointPx(camera: Camera, halfSize: number, width: number, height: number): number {
    if (camera.dims !== 2) return 0;
    const { quadScale } = viewMatrices(camera, width, height);
    return 2 * Math.max(halfSize * quadScale[1] * height * 0.5, 1.5);
  }

  /**
   * The world rectangle a 2D view shows, widened by a point's half-size so
   * that rows partly on screen count (x0, y0, x1, y1); null in 3D.
   */
  static viewRect(camera: Camera, halfSize: number, width: number, height: number): [number, number, number, number] | null {
    if (camera.dims !== 2) return null;
    const { viewProj } = viewMatrices(camera, width, height);
    const halfW = 1 / viewProj[0], halfH = 1 / viewProj[5];
    // A point is at least 1.5 px in half-size, and at most the GL's largest point.
    const perPx = (2 * halfH) / Math.max(1, height);
    const pad = Math.max(halfSize, 1.5 * perPx) * 1.3;
    const [tx, ty] = camera.target;
    return [tx - halfW - pad, ty - halfH - pad, tx + halfW + pad, ty + halfH + pad];
  }

  /**
   * Rows in view (ascending) when the frame may draw only those, or null to
   * draw every row. `all`: whatever part of the map is in view (front-to-back
   * drawing needs the list); the GL buffer then holds them descending.
   */
  private rowsInView(o: DrawOptions, width: number, height: number, now: number, all = false): Uint32Array | null {
    if (o.camera.dims !== 2 || this.isAnimating(now) || this.n < 2048) return null;
    const rect = Scene.viewRect(o.camera, o.halfSize, width, height)!;
    const index = this.layoutIndex();
    const span = index.side;
    const ex = span * index.cellW, ey = span * index.cellH;
    const fx = Math.max(0, Math.min(rect[2], index.minX + ex) - Math.max(rect[0], index.minX)) / ex;
    const fy = Math.max(0, Math.min(rect[3], index.minY + ey) - Math.max(rect[1], index.minY)) / ey;
    if (!all && fx * fy > CULL_MAX_FRACTION) return null;
    const stamp = `${rect.join(",")}:${all}`;
    if (this.cull?.stamp !== stamp) {
      const rows = index.rowsInRect(rect[0], rect[1], rect[2], rect[3]);
      this.cull = { stamp, rows };
      this.uploadIndices(this.cullIndexBuf, all ? rows.slice().reverse() : rows);
    }
    return this.cull.rows;
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
    gl.clearColor(BACKGROUND[0], BACKGROUND[1], BACKGROUND[2], 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    if (this.n === 0) return;
    const { viewProj, quadScale } = viewMatrices(o.camera, width, height);
    if (o.camera.dims === 3) {
      gl.enable(gl.DEPTH_TEST);
      gl.depthFunc(gl.LEQUAL);
    } else {
      gl.disable(gl.DEPTH_TEST);
    }
    const s = this.sprite;
    const pointPx = Scene.pointPx(o.camera, o.halfSize, width, height);
    // Levels of detail: thumbnails where they can be read (always in 3D, where sizes vary with depth), dots elsewhere.
    const thumbnails = !!s && (o.camera.dims === 3 || pointPx >= LOD_THUMB_PX);
    const aspect: [number, number] = s ? (s.thumb_width >= s.thumb_height ? [1, s.thumb_height / s.thumb_width] : [s.thumb_width / s.thumb_height, 1]) : [1, 1];
    const noThreshold = !(o.threshold > 0);
    this.thumbsNow = thumbnails ? this.thumbProgram(aspect[0] === 1 && aspect[1] === 1 && noThreshold, noThreshold && o.colorMode === 0 && !(o.tint > 0)) : this.thumbs;
    // 2D thumbnails, still: drawn last row first with a depth per row (later rows nearer), so that the
    // pixels of thumbnails hidden under later ones are skipped before they are shaded. Software GL spends
    // most of a frame shading pixels, and in a dense cluster most thumbnails lie under others.
    const frontToBack = thumbnails && o.camera.dims === 2 && !this.isAnimating(now) && this.n >= 2048;
    if (frontToBack) {
      gl.enable(gl.DEPTH_TEST);
      gl.depthFunc(gl.LESS);
    }
    for (const prog of thumbnails ? [this.dots, this.thumbsNow] : [this.dots]) {
      this.use(prog);
      gl.uniformMatrix4fv(this.u("u_viewProj"), false, viewProj);
      gl.uniform2f(this.u("u_quadScale"), quadScale[0], quadScale[1]);
      gl.uniform1f(this.u("u_halfSize"), o.halfSize);
      gl.uniform1f(this.u("u_minHalfPx"), 1.5);
      gl.uniform1f(this.u("u_t"), this.tAt(now));
      gl.uniform2f(this.u("u_viewport"), width, height);
      gl.uniform1f(this.u("u_tint"), o.tint);
      gl.uniform1f(this.u("u_dim"), o.dim);
      gl.uniform1i(this.u("u_colorMode"), o.colorMode);
      gl.uniform1i(this.u("u_anySelected"), o.anySelected ? 1 : 0);
      gl.uniform1f(this.u("u_dpr"), window.devicePixelRatio || 1);
      gl.uniform1f(this.u("u_maxPointPx"), this.maxPointSize);
      gl.uniform1f(this.u("u_grow"), 1);
      gl.uniform1f(this.u("u_depthRows"), frontToBack ? this.n : 0);
    }
    // Dots stand in for thumbnails not loaded yet: small then; with no sprites at all they are the points.
    this.use(this.dots);
    gl.uniform1f(this.u("u_dotMaxPx"), thumbnails ? PLACEHOLDER_DOT_PX : s ? LOD_THUMB_PX : this.maxPointSize);
    if (thumbnails) {
      this.use(this.thumbsNow);
      gl.uniform1f(this.u("u_threshold"), o.threshold);
      gl.uniform2f(this.u("u_aspect"), aspect[0], aspect[1]);
      gl.activeTexture(gl.TEXTURE0);
    }
    // Hundreds of thousands of dots: one image drawn on the CPU instead of a GL point per row (dotImage.ts).
    const asImage = !thumbnails && o.camera.dims === 2 && this.n >= DOT_IMAGE_MIN_ROWS && pointPx <= LOD_THUMB_PX;
    // Before the VAO is bound: uploading the rows in view binds and unbinds it. The image needs no list
    // (and so no index, rebuilt after every layout frame).
    const inView = asImage ? null : this.rowsInView(o, width, height, now, frontToBack);
    let calls = 0;
    const perPage = s ? s.per_page : this.n;
    const pages = s ? s.pages : 1;
    /** Program for page `p`'s rows: its thumbnails when loaded and readable, else dots. */
    const choose = (p: number) => {
      if (thumbnails && this.textures[p]) {
        this.use(this.thumbsNow);
        this.bindPage(p);
      } else {
        this.use(this.dots);
      }
    };
    const dpr = window.devicePixelRatio || 1;
    if (asImage) {
      this.drawDotsImage(o, viewProj, now, Math.max(1, Math.round(pointPx * dpr)));
      calls++;
    }
    gl.bindVertexArray(this.vao);
    if (inView) gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, this.cullIndexBuf);
    // Each page's rows: a range of vertices, or of the rows in view (ascending; uploaded descending when front to back).
    const ranges: [number, number, number][] = [];
    let lo = 0;
    for (let p = 0; p < pages && !asImage; p++) {
      const start = p * perPage;
      const count = Math.min(perPage, this.n - start);
      if (count <= 0) break;
      if (!inView) {
        ranges.push([p, start, count]);
        continue;
      }
      let hi = lo;
      while (hi < inView.length && inView[hi] < start + count) hi++;
      if (hi > lo) ranges.push([p, frontToBack ? inView.length - hi : lo, hi - lo]);
      lo = hi;
    }
    if (frontToBack) ranges.reverse();
    for (const [p, first, count] of ranges) {
      choose(p);
      if (inView) gl.drawElements(gl.POINTS, count, gl.UNSIGNED_INT, first * 4);
      else gl.drawArrays(gl.POINTS, first, count);
      calls++;
    }
    if (frontToBack) gl.disable(gl.DEPTH_TEST);
    // The selection, then the suggestions, once more on top (one indexed draw per page holding such rows).
    for (const [rows, buf] of [[this.selRows, this.selIndexBuf], [this.sugRows, this.sugIndexBuf]] as const) {
      if (!rows.length || rows.length >= this.n) continue;
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, buf);
      let a = 0;
      while (a < rows.length) {
        const page = Math.floor(rows[a] / perPage);
        let b = a;
        while (b < rows.length && Math.floor(rows[b] / perPage) === page) b++;
        choose(page);
        gl.drawElements(gl.POINTS, b - a, gl.UNSIGNED_INT, a * 4);
        calls++;
        a = b;
      }
    }
    // The focus and the hovered row once more on top, larger, so they are never hidden.
    if (o.camera.dims === 3) gl.disable(gl.DEPTH_TEST);
    for (const [row, grow] of [[o.focus, 1.0], [o.hover, 2.2]] as const) {
      if (row < 0 || row >= this.n) continue;
      choose(Math.floor(row / perPage));
      gl.uniform1f(this.u("u_grow"), grow);
      gl.drawArrays(gl.POINTS, row, 1);
      gl.uniform1f(this.u("u_grow"), 1);
      calls++;
    }
    gl.bindVertexArray(null);
    this.stats.drawCalls = calls;
    this.stats.lod = thumbnails ? "thumbnails" : "dots";
    this.stats.rowsDrawn = inView ? inView.length : this.n;
    this.stats.dotsImage = asImage;
    this.stats.pointPx = pointPx;
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

  /** Bind loaded page `page`'s atlas and cell geometry to the thumbnail program. */
  private bindPage(page: number): void {
    const gl = this.gl;
    const s = this.sprite!;
    gl.bindTexture(gl.TEXTURE_2D, this.textures[page]);
    const [pw, ph] = s.page_sizes[page] ?? [s.per_row * s.thumb_width, Math.ceil(s.per_page / s.per_row) * s.thumb_height];
    gl.uniform1i(this.u("u_perRow"), s.per_row);
    gl.uniform1i(this.u("u_pageStart"), page * s.per_page);
    gl.uniform2f(this.u("u_cell"), s.thumb_width / pw, s.thumb_height / ph);
    const [tw] = this.texSizes[page] ?? [pw];
    gl.uniform1f(this.u("u_cellTexels"), (Math.max(s.thumb_width, s.thumb_height) * tw) / pw);
  }

  /**
   * The thumbnail of `row` as RGBA pixels read back from its atlas page, or
   * null (no sprites; its page not loaded: then it is asked for, and the
   * panels draw it once pagesLoaded changes).
   */
  readThumbnail(row: number): ImageData | null {
    const s = this.sprite;
    if (!s || row < 0 || row >= this.n) return null;
    const page = Math.floor(row / s.per_page);
    const tex = this.textures[page];
    if (!tex) {
      this.sprites.wantRow(row);
      return null;
    }
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
