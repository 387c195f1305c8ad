// What every part of the labeling view's actions shares: the store, the page
// around it (progress bar, errors), the scene once the map exists, and the
// embedding being worked on. Each part names only the server calls it makes
// (a Pick of Api), so a unit test can hand it a plain object with canned answers.
import type { EmbeddingRef } from "./api";
import type { Scene } from "./scene";
import type { AppState } from "./state";
import type { Store } from "./store";

/** The page around the labeling view: the header's progress bar, errors with a retry, notices. */
export interface Host {
  setProgress(text: string | null, fraction?: number): void;
  showError(message: string, retry?: () => void): void;
  showNotice(message: string): void;
}

export interface ActionContext {
  readonly store: Store<AppState>;
  readonly host: Host;
  /** The map's scene, set by the map view when it is built (null in unit tests and before). */
  scene: Scene | null;
}

/** The embedding open in `store`, as the server routes name it, or null. */
export function currentRef(store: Store<AppState>): EmbeddingRef | null {
  const e = store.get().embedding;
  return e ? { run: e.run, embedding: e.name } : null;
}

export function sameRef(a: EmbeddingRef | null, b: EmbeddingRef | null): boolean {
  return !!a && !!b && a.run === b.run && a.embedding === b.embedding;
}

export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
