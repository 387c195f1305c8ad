// Label actions: apply a label to the selection, clear, undo, redo, label as
// predicted, export, and pick up other people's labels. Every write names the
// label version it was based on; the server refuses a stale one (409), which is
// said as a notice, not an error.
import { type ActionContext, currentRef, messageOf, sameRef } from "./actionContext";
import { selectionConsensus } from "./active";
import { type Api, ApiError, type EmbeddingRef, type LabelAnswer, type LabelState } from "./api";
import { indexLabels, validateLabel } from "./labels";

export type LabelsApi = Pick<Api, "labels" | "assign" | "clear" | "undo" | "redo" | "exportUrl">;

export class LabelsController {
  /**
   * `onLabelsMoved`: the label version changed (a write, undo, someone else's
   * work): the server retrains the classifier and resumes a finished t-SNE.
   */
  constructor(
    private readonly api: LabelsApi,
    private readonly ctx: ActionContext,
    private readonly onLabelsMoved: () => void,
  ) {}

  /** Take `state` as the current labels (indexed per row, class order kept). */
  setLabels(state: LabelState): void {
    const s = this.ctx.store.get();
    const known = s.labelIndex ? s.labelIndex.classes : [];
    const moved = !!s.labelState && s.labelState.version !== state.version;
    this.ctx.store.set({ labelState: state, labelIndex: indexLabels(state, s.rows, known) });
    if (moved) this.onLabelsMoved();
  }

  private async write(what: string, fn: (ref: EmbeddingRef, version: number) => Promise<LabelAnswer>): Promise<boolean> {
    const ref = currentRef(this.ctx.store);
    const s = this.ctx.store.get();
    if (!ref || !s.labelState) return false;
    if (s.embedding && !s.embedding.labels_supported) {
      this.ctx.host.showError("Labels cannot be saved for this embedding (the server does not support labels here).");
      return false;
    }
    this.ctx.store.set({ writing: true });
    try {
      const answer = await fn(ref, s.labelState.version);
      // Saved; but if another embedding opened meanwhile, these labels are not its labels.
      if (sameRef(currentRef(this.ctx.store), ref)) {
        const next = withChanges(this.ctx.store.get().labelState, answer);
        if (next) this.setLabels(next);
        else void this.refresh(true);
      }
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) this.ctx.host.showNotice(err.message);
      else this.ctx.host.showError(`Could not ${what}: ${messageOf(err)}`);
      return false;
    } finally {
      this.ctx.store.set({ writing: false });
    }
  }

  /** Fetch the label state again (another person may have labeled meanwhile). */
  async refresh(afterWrite = false): Promise<void> {
    const ref = currentRef(this.ctx.store);
    const s = this.ctx.store.get();
    if (!ref || !s.labelState || (s.writing && !afterWrite) || !s.embedding?.labels_supported) return;
    try {
      const next = await this.api.labels(ref);
      if (sameRef(currentRef(this.ctx.store), ref) && next.version !== this.ctx.store.get().labelState?.version) this.setLabels(next);
    } catch {
      // A background refresh: the next write reports any real problem.
    }
  }

  /** Apply `label` to every selected row; returns an error message or "". */
  async apply(label: string): Promise<string> {
    const bad = validateLabel(label);
    if (bad) return bad;
    const rows = Array.from(this.ctx.store.get().members);
    if (rows.length === 0) return "Select some points first (click a point, search, or draw a box).";
    const ok = await this.write("save the label", (ref, v) => this.api.assign(ref, rows, label.trim(), v));
    return ok ? "" : "The label was not saved.";
  }

  /** Number keys: the k-th class (1-based) of the legend (classes with members). */
  async applyClassNumber(k: number): Promise<string> {
    const li = this.ctx.store.get().labelIndex;
    if (!li || k < 1 || k > li.legend.length) return "";
    return this.apply(li.classes[li.legend[k - 1] - 1]);
  }

  async clear(): Promise<string> {
    const rows = Array.from(this.ctx.store.get().members);
    if (rows.length === 0) return "Select the points whose label to clear.";
    await this.write("clear the labels", (ref, v) => this.api.clear(ref, rows, v));
    return "";
  }

  async undo(): Promise<void> {
    if (!this.ctx.store.get().labelState?.can_undo) return;
    await this.write("undo", (ref, v) => this.api.undo(ref, v));
  }

  async redo(): Promise<void> {
    if (!this.ctx.store.get().labelState?.can_redo) return;
    await this.write("redo", (ref, v) => this.api.redo(ref, v));
  }

  /** Label the selection's unlabeled rows with the class the model is sure of; returns an error message or "". */
  async labelAsPredicted(): Promise<string> {
    const s = this.ctx.store.get();
    const li = s.labelIndex;
    if (!li) return "";
    const c = selectionConsensus(s.members, li.perRow, li.classes, s.predictions, s.sureThreshold);
    if (!c.label) return c.reason;
    const label = c.label;
    const ok = await this.write("label as predicted", (ref, v) => this.api.assign(ref, c.rows, label, v));
    return ok ? "" : "The labels were not saved.";
  }

  /** Download the labels as CSV (a link to the export route, clicked). */
  exportCsv(): void {
    const ref = currentRef(this.ctx.store);
    if (!ref) return;
    const a = document.createElement("a");
    a.href = this.api.exportUrl(ref);
    a.download = `${ref.run === "." ? "" : ref.run + "_"}${ref.embedding}_labels.csv`.replace(/[^\w.-]+/g, "_");
    document.body.appendChild(a);
    a.click();
    a.remove();
  }
}

/**
 * The LabelState an answer stands for: the answer itself when it has every
 * row's label; else `prev` with the answer's changes applied, when `prev` is
 * the version they start from; else null (fetch the labels again).
 */
export function withChanges(prev: LabelState | null, answer: LabelAnswer): LabelState | null {
  if (answer.labels) return answer as LabelState;
  if (!prev || !answer.changes || answer.changes_from !== prev.version) return null;
  const labels = prev.labels.slice();
  for (const { label, rows } of answer.changes) for (const r of rows) labels[r] = label;
  const { changes: _c, changes_from: _f, ...rest } = answer;
  return { ...rest, labels };
}

