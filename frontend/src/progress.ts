// What the header's progress bar says while a layout session prepares:
// the step under way, how far it is, and the server's estimate of the time left.
import type { SessionStatus } from "./api";

const PHASE_TEXT: Record<string, string> = {
  loading: "Loading the features",
  neighbors: "Nearest neighbours",
  affinities: "Affinities",
  pca: "PCA initialisation",
  first_iterations: "First t-SNE iterations",
};
/** A UMAP session's steps where they differ (its "affinities" are umap-learn's graph and spectral start). */
const UMAP_PHASE_TEXT: Record<string, string> = {
  affinities: "UMAP graph and spectral initialisation",
  first_iterations: "First UMAP epochs",
};

/** "about 25 s left", "about 3 min left", "almost done"; "" when unknown. */
export function etaText(eta: number | null | undefined): string {
  if (typeof eta !== "number" || !Number.isFinite(eta) || eta < 0) return "";
  if (eta < 1.5) return "almost done";
  if (eta < 20) return `about ${Math.round(eta)} s left`;
  if (eta < 90) return `about ${Math.round(eta / 5) * 5} s left`;
  return `about ${Math.round(eta / 60)} min left`;
}

/**
 * The progress line of a preparing session, e.g. "Nearest neighbours… 40% · about 25 s left",
 * and the bar's fraction (-1: indeterminate, for steps that report no fraction).
 */
export function preparingProgress(st: SessionStatus): { text: string; fraction: number } {
  const overall = Math.max(0, Math.min(1, st.progress ?? 0));
  const phase = st.phase ?? null;
  if (!phase || !(phase in PHASE_TEXT)) {
    // A server that does not name its phases (older versions).
    return { text: `Preparing the layout… ${Math.round(overall * 100)}%`, fraction: overall };
  }
  const parts = [`${(st.method === "umap" && UMAP_PHASE_TEXT[phase]) || PHASE_TEXT[phase]}…`];
  // Only the neighbour search and the calibration report a fraction of their own.
  const measured = phase === "neighbors" || phase === "affinities";
  if (measured) parts[0] += ` ${Math.round(Math.max(0, Math.min(1, st.phase_progress ?? 0)) * 100)}%`;
  const eta = etaText(st.eta_s);
  // (with an estimate the line stays short enough for the header's one line)
  if (phase === "first_iterations" && !eta) parts.push("the map follows in a moment");
  if (eta) parts.push(eta);
  // The first iterations are costed by the server (the bar goes on to the first frame);
  // a server that does not cost them says progress 1 there: no fraction to show.
  const unmeasured = phase === "first_iterations" && overall >= 1;
  return { text: parts.join(" · "), fraction: unmeasured ? -1 : overall };
}
