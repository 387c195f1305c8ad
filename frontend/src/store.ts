// One observable state store that every view reads. Views subscribe and
// re-render the parts they own; nothing else holds a copy of shared state.
// Per-point data lives in typed arrays inside the state (never one object per
// point); changing them means replacing the array or bumping a revision.

export type Listener<S> = (state: S, changed: ReadonlySet<keyof S>) => void;

export class Store<S extends object> {
  private state: S;
  private listeners = new Set<Listener<S>>();
  private pending = new Set<keyof S>();
  private batching = 0;

  constructor(initial: S) {
    this.state = initial;
  }

  get(): S {
    return this.state;
  }

  /** Shallow-merge a patch; listeners hear which keys changed (by identity). */
  set(patch: Partial<S>): void {
    const next = { ...this.state };
    for (const k of Object.keys(patch) as (keyof S)[]) {
      if (!Object.is(next[k], patch[k])) {
        next[k] = patch[k] as S[keyof S];
        this.pending.add(k);
      }
    }
    this.state = next;
    if (this.batching === 0) this.flush();
  }

  /** Run several `set`s and notify once. */
  batch(fn: () => void): void {
    this.batching++;
    try {
      fn();
    } finally {
      this.batching--;
      if (this.batching === 0) this.flush();
    }
  }

  subscribe(fn: Listener<S>): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private flush(): void {
    if (this.pending.size === 0) return;
    const changed = this.pending;
    this.pending = new Set();
    for (const l of [...this.listeners]) l(this.state, changed);
  }
}
