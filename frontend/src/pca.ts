// A quick first look before any server-side layout exists: project the
// features on their top principal components. Components come from a sample
// of at most `sampleRows` rows (block power iteration on the centred sample),
// so 70,000 x 784 takes well under a second; every row is then projected.

export function pcaProject(data: Float32Array, rows: number, dims: number, components = 3, sampleRows = 4000, iterations = 30): Float32Array {
  const c = Math.min(components, dims);
  const out = new Float32Array(rows * components);
  if (rows === 0 || dims === 0) return out;
  const mean = new Float64Array(dims);
  for (let i = 0; i < rows; i++) for (let d = 0; d < dims; d++) mean[d] += data[i * dims + d];
  for (let d = 0; d < dims; d++) mean[d] /= rows;

  const step = Math.max(1, Math.floor(rows / sampleRows));
  const sample: number[] = [];
  for (let i = 0; i < rows; i += step) sample.push(i);
  const m = sample.length;
  const x = new Float64Array(m * dims);
  for (let j = 0; j < m; j++) {
    const o = sample[j] * dims;
    for (let d = 0; d < dims; d++) x[j * dims + d] = data[o + d] - mean[d];
  }

  // Deterministic start: a fixed pseudo-random block, so a reload shows the same picture.
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296) - 0.5;
  const v = new Float64Array(c * dims).map(() => rand());
  const xv = new Float64Array(m);
  const next = new Float64Array(c * dims);
  for (let it = 0; it < iterations; it++) {
    next.fill(0);
    for (let k = 0; k < c; k++) {
      // next_k = X^T (X v_k)
      for (let j = 0; j < m; j++) {
        let s = 0;
        const o = j * dims;
        for (let d = 0; d < dims; d++) s += x[o + d] * v[k * dims + d];
        xv[j] = s;
      }
      for (let j = 0; j < m; j++) {
        const s = xv[j];
        if (s === 0) continue;
        const o = j * dims;
        for (let d = 0; d < dims; d++) next[k * dims + d] += s * x[o + d];
      }
    }
    orthonormalize(next, c, dims);
    v.set(next);
  }
  for (let i = 0; i < rows; i++) {
    const o = i * dims;
    for (let k = 0; k < c; k++) {
      let s = 0;
      for (let d = 0; d < dims; d++) s += (data[o + d] - mean[d]) * v[k * dims + d];
      out[i * components + k] = s;
    }
  }
  return out;
}

/** Modified Gram-Schmidt on the rows of a c x dims block. */
export function orthonormalize(v: Float64Array, c: number, dims: number): void {
  for (let k = 0; k < c; k++) {
    for (let p = 0; p < k; p++) {
      let dot = 0;
      for (let d = 0; d < dims; d++) dot += v[k * dims + d] * v[p * dims + d];
      for (let d = 0; d < dims; d++) v[k * dims + d] -= dot * v[p * dims + d];
    }
    let norm = 0;
    for (let d = 0; d < dims; d++) norm += v[k * dims + d] ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < dims; d++) v[k * dims + d] /= norm;
  }
}
