// Class colours: a qualitative palette (distinct on the dark map background);
// class k (1-based, in the label store's first-appearance order) gets entry
// (k - 1) mod length, so colours stay put as classes are added.
export const PALETTE: readonly string[] = [
  "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
  "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3",
  "#808000", "#ffd8b1", "#000075", "#a9a9a9",
];

export const UNLABELED_COLOR = "#9e9e9e";
export const SELECTION_COLOR = "#ffffff";
export const FOCUS_COLOR = "#ff9800";

export function classColor(classIndex: number): string {
  return classIndex <= 0 ? UNLABELED_COLOR : PALETTE[(classIndex - 1) % PALETTE.length];
}

export function hexToRgb(hex: string): [number, number, number] {
  const v = parseInt(hex.slice(1), 16);
  return [((v >> 16) & 255) / 255, ((v >> 8) & 255) / 255, (v & 255) / 255];
}

/** Flat RGB array for the shader uniform: entry 0 unlabeled, then the palette. */
export function paletteUniform(): Float32Array {
  const out = new Float32Array((PALETTE.length + 1) * 3);
  out.set(hexToRgb(UNLABELED_COLOR), 0);
  PALETTE.forEach((c, i) => out.set(hexToRgb(c), (i + 1) * 3));
  return out;
}
