// Label state as the map draws it: one Uint16 class index per row (0 =
// unlabeled, k = classes[k - 1] of the label store), derived from the
// server's LabelState, which the client only ever replaces wholesale.
import type { LabelState } from "./api";

export interface LabelIndex {
  /**
   * Class names, index k-1 for class index k (which also picks the colour):
   * the classes seen earlier in this session in their order, then the
   * store's new ones. A class left with no rows (e.g. after an undo) keeps its
   * index, so colours never move; it is only left out of `legend`.
   */
  classes: string[];
  counts: number[];
  /** Class indices (1-based) with at least one row, in `classes` order: the legend and the 1-9 keys. */
  legend: number[];
  perRow: Uint16Array;
  unlabeled: number;
}

/**
 * `known`: class names seen earlier in this session, in their order; they keep
 * their indices (colours) even when the store no longer reports them (e.g.
 * after an undo), but only classes with rows are in the legend.
 */
export function indexLabels(state: LabelState, rows: number, known: readonly string[] = []): LabelIndex {
  const classes = [...known];
  for (const c of state.classes) if (!classes.includes(c.name)) classes.push(c.name);
  const byName = new Map<string, number>();
  classes.forEach((c, i) => byName.set(c, i + 1));
  const perRow = new Uint16Array(rows);
  const counts = new Array<number>(classes.length).fill(0);
  let unlabeled = 0;
  const n = Math.min(rows, state.labels.length);
  for (let i = 0; i < n; i++) {
    const l = state.labels[i];
    if (l === null || l === undefined) {
      unlabeled++;
      continue;
    }
    let k = byName.get(l);
    if (k === undefined) {
      // A label missing from `classes` (should not happen): still show it.
      classes.push(l);
      counts.push(0);
      k = classes.length;
      byName.set(l, k);
    }
    perRow[i] = k;
    counts[k - 1]++;
  }
  unlabeled += rows - n;
  const legend: number[] = [];
  counts.forEach((c, i) => {
    if (c > 0) legend.push(i + 1);
  });
  return { classes, counts, legend, perRow, unlabeled };
}

/** Classes whose name starts with (then contains) the typed text, for autocomplete. */
export function suggestClasses(classes: readonly string[], typed: string, limit = 8): string[] {
  const t = typed.trim().toLowerCase();
  if (!t) return classes.slice(0, limit);
  const starts = classes.filter((c) => c.toLowerCase().startsWith(t));
  const contains = classes.filter((c) => !c.toLowerCase().startsWith(t) && c.toLowerCase().includes(t));
  return [...starts, ...contains].slice(0, limit);
}

/** A label the store accepts: 1..256 characters, no control characters. */
export function validateLabel(label: string): string | null {
  const t = label.trim();
  if (!t) return "Type a label first.";
  if (t.length > 256) return "A label has at most 256 characters.";
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(t)) return "A label cannot contain tabs, newlines or other control characters.";
  return null;
}
