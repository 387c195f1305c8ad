// Turning a new layout to match the one on screen. A t-SNE starts from a PCA
// of the features, but its axes may come out flipped or swapped relative to
// the quick client-side PCA the map shows first; without this the first frame
// would send every thumbnail across the map instead of letting the PCA
// preview unfold into the t-SNE.

/** Output axis k takes `signs[k]` times input axis `perm[k]` (stride-3 positions). */
export interface Alignment {
  perm: number[];
  signs: number[];
}

export const IDENTITY: Alignment = { perm: [0, 1, 2], signs: [1, 1, 1] };

const PERMS: Record<number, number[][]> = {
  2: [[0, 1, 2], [1, 0, 2]],
  3: [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]],
};

/**
 * The signed permutation of the first `dims` axes that brings `next` closest
 * to `shown` (both stride 3, `rows` points, about centred): the one
 * maximising sum_i <shown_i, R next_i>.
 */
export function bestAlignment(shown: Float32Array, next: Float32Array, rows: number, dims: 2 | 3): Alignment {
  const c = [new Float64Array(3), new Float64Array(3), new Float64Array(3)];
  const n = Math.min(rows, Math.floor(shown.length / 3), Math.floor(next.length / 3));
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < dims; a++) {
      const s = shown[3 * i + a];
      for (let b = 0; b < dims; b++) c[a][b] += s * next[3 * i + b];
    }
  }
  let best = IDENTITY;
  let bestScore = -Infinity;
  for (const perm of PERMS[dims]) {
    let score = 0;
    const signs = [1, 1, 1];
    for (let k = 0; k < dims; k++) {
      const v = c[k][perm[k]];
      signs[k] = v < 0 ? -1 : 1;
      score += Math.abs(v);
    }
    // Ties (e.g. no points) keep the identity, the first candidate.
    if (score > bestScore + 1e-12) {
      bestScore = score;
      best = { perm: perm.slice(), signs };
    }
  }
  return best;
}

/** `pos` (stride 3) turned by `a`, into `out` (a new array by default; `pos` itself turns it in place). */
export function applyAlignment(pos: Float32Array, a: Alignment, out: Float32Array = new Float32Array(pos.length)): Float32Array {
  const [p0, p1, p2] = a.perm;
  const [s0, s1, s2] = a.signs;
  if (out === pos && p0 === 0 && p1 === 1 && p2 === 2 && s0 === 1 && s1 === 1 && s2 === 1) return out;
  for (let i = 0; i + 2 < pos.length; i += 3) {
    const x = pos[i + p0];
    const y = pos[i + p1];
    const z = pos[i + p2];
    out[i] = s0 * x;
    out[i + 1] = s1 * y;
    out[i + 2] = s2 * z;
  }
  return out;
}
