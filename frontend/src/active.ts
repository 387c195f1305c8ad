// Active learning in the tab, free of DOM and WebGL: the classifier's
// predictions as typed arrays, what the status line says, how a suggestion
// becomes a selection, and whether the model is sure enough of a group to
// label it as predicted.
import type { ClassifierStatus, PredictionsResponse, SuggestionItem } from "./api";
import type { SelectionSpec } from "./selection";

export interface Predictions {
  status: ClassifierStatus;
  /** Label version the model was trained on (null before the first model). */
  version: number | null;
  /** The classifier's class names; `predicted` indexes into them. */
  classes: string[];
  error: string | null;
  trainSeconds: number;
  /** Per row, null until a model exists: class index into `classes`. */
  predicted: Int32Array | null;
  confidence: Float32Array | null;
  /** Entropy divided by its maximum (log of the class count): 0 sure .. 1 clueless. */
  uncertainty: Float32Array | null;
}

/** Typed arrays from the JSON answer; arrays of the wrong length are dropped (never indexed out of range). */
export function parsePredictions(res: PredictionsResponse, rows: number): Predictions {
  const classes = Array.isArray(res.classes) ? res.classes.map(String) : [];
  let predicted: Int32Array | null = null;
  let confidence: Float32Array | null = null;
  let uncertainty: Float32Array | null = null;
  if (Array.isArray(res.predicted) && res.predicted.length === rows && Array.isArray(res.confidence) && res.confidence.length === rows) {
    predicted = Int32Array.from(res.predicted, (k) => (Number.isInteger(k) && k >= 0 && k < classes.length ? k : -1));
    confidence = Float32Array.from(res.confidence, (c) => (Number.isFinite(c) ? c : 0));
    const maxEntropy = Math.log(Math.max(2, classes.length));
    if (Array.isArray(res.uncertainty) && res.uncertainty.length === rows) {
      uncertainty = Float32Array.from(res.uncertainty, (u) => (Number.isFinite(u) ? Math.min(1, Math.max(0, u / maxEntropy)) : 1));
    } else {
      uncertainty = Float32Array.from(confidence, (c) => 1 - c);
    }
  }
  return {
    status: res.status,
    version: typeof res.version === "number" ? res.version : null,
    classes,
    error: res.error ?? null,
    trainSeconds: Number(res.train_seconds) || 0,
    predicted,
    confidence,
    uncertainty,
  };
}

/** The status line: one short phrase, plus the server's message where there is one. */
export function classifierStatusText(p: Predictions | null, fetchError: string | null = null): string {
  if (fetchError) return `error: ${fetchError}`;
  if (!p) return "not asked yet";
  switch (p.status) {
    case "training":
      return p.predicted ? "training on the new labels… (showing the previous model)" : "training…";
    case "ready":
      return `ready · trained on ${p.classes.length} classes in ${p.trainSeconds.toFixed(1)} s`;
    case "needs_labels":
      return `needs labels: ${p.error ?? "label rows of at least two classes."}`;
    case "error":
      return `error: ${p.error ?? "training failed."}`;
    default:
      return "idle";
  }
}

/**
 * Per row, the legend's class index (1-based, 0 = none) of the predicted
 * class, so the map colours predictions with the legend's colours.
 */
export function predictedLegendIndex(p: Predictions, legend: readonly string[], rows: number): Uint16Array {
  const out = new Uint16Array(rows);
  if (!p.predicted) return out;
  const map = p.classes.map((c) => legend.indexOf(c) + 1);
  const n = Math.min(rows, p.predicted.length);
  for (let i = 0; i < n; i++) {
    const k = p.predicted[i];
    out[i] = k >= 0 ? map[k] : 0;
  }
  return out;
}

/** The prediction for one row as text ("zero · 93%"), or null when there is none. */
export function predictionOf(p: Predictions | null, row: number): { label: string; confidence: number; uncertainty: number } | null {
  if (!p || !p.predicted || !p.confidence || row < 0 || row >= p.predicted.length) return null;
  const k = p.predicted[row];
  if (k < 0) return null;
  return { label: p.classes[k], confidence: p.confidence[row], uncertainty: p.uncertainty ? p.uncertainty[row] : 1 - p.confidence[row] };
}

/**
 * The selection a suggestion stands for: its row focused, its group
 * pre-selected (and no neighbours beyond it). `k` is the user's neighbours
 * setting, kept as it is for the next focus.
 */
export function suggestionSpec(item: SuggestionItem, rows: number, k: number): SelectionSpec {
  const group = item.group.filter((r) => Number.isInteger(r) && r >= 0 && r < rows && r !== item.row);
  return { focus: item.row, k, withNeighbours: false, base: Uint32Array.from(group), added: new Set(), excluded: new Set() };
}

/** Distinct rows a suggestion selects (its row and its group). */
export function suggestionSize(item: SuggestionItem): number {
  return new Set([item.row, ...item.group]).size;
}

export interface Consensus {
  /** The class to apply, when the model is sure of the group. */
  label: string | null;
  /** Unlabeled selected rows the action would label. */
  rows: number[];
  /** Lowest confidence among those rows (1 when there are none). */
  minConfidence: number;
  /** Why the action is not offered (empty when it is). */
  reason: string;
}

/**
 * "Label selection as predicted": offered when every unlabeled selected row
 * is predicted the same class with at least `threshold` confidence, and every
 * already labeled selected row carries that class too.
 */
export function selectionConsensus(
  members: ArrayLike<number>,
  perRowLabel: ArrayLike<number>,
  legend: readonly string[],
  p: Predictions | null,
  threshold: number,
): Consensus {
  const none = (reason: string): Consensus => ({ label: null, rows: [], minConfidence: 0, reason });
  if (members.length === 0) return none("Select a group first.");
  if (!p || !p.predicted || !p.confidence) return none("No model yet: label rows of at least two classes.");
  let label: string | null = null;
  let minConfidence = 1;
  const rows: number[] = [];
  const classes = new Set<string>();
  for (let j = 0; j < members.length; j++) {
    const r = members[j];
    const k = perRowLabel[r];
    if (k > 0) {
      classes.add(legend[k - 1]);
      continue;
    }
    const pk = r < p.predicted.length ? p.predicted[r] : -1;
    if (pk < 0) return none(`No prediction for row ${r}.`);
    classes.add(p.classes[pk]);
    minConfidence = Math.min(minConfidence, p.confidence[r]);
    rows.push(r);
  }
  if (rows.length === 0) return none("Every selected row is labeled already.");
  if (classes.size > 1) return none(`The model does not agree on one class here (${[...classes].slice(0, 4).join(", ")}${classes.size > 4 ? ", …" : ""}).`);
  label = [...classes][0];
  if (minConfidence < threshold) {
    return { label: null, rows, minConfidence, reason: `The model is only ${pct(minConfidence)} sure of some rows (needs ${pct(threshold)}).` };
  }
  return { label, rows, minConfidence, reason: "" };
}

export function pct(x: number): string {
  return `${Math.round(100 * x)}%`;
}

/** Colour of an uncertainty in [0, 1] (sure: blue, unsure: red), as in the map's shader. */
export function uncertaintyColor(u: number): string {
  const [r, g, b] = uncertaintyRgb(u);
  const hex = (v: number) => Math.round(255 * v).toString(16).padStart(2, "0");
  return `#${hex(r)}${hex(g)}${hex(b)}`;
}

export function uncertaintyRgb(u: number): [number, number, number] {
  const t = Math.min(1, Math.max(0, u));
  // blue (0.16,0.47,1) -> yellow (1,0.85,0.2) -> red (1,0.2,0.2)
  if (t < 0.5) {
    const s = t / 0.5;
    return [0.16 + 0.84 * s, 0.47 + 0.38 * s, 1 - 0.8 * s];
  }
  const s = (t - 0.5) / 0.5;
  return [1, 0.85 - 0.65 * s, 0.2];
}
