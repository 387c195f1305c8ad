// Rounds: every classifier retrain is one (GET rounds). Step or play through
// them; in model view the map shows the shown round's classifier hidden layer
// (its first principal axes) and moves the thumbnails from round to round; the
// rows labeled in the shown round are ringed on the map. Nothing is asked of
// the server until the Rounds panel is opened (the accuracy estimates cost
// trainings there).
import { type ActionContext, currentRef, messageOf, sameRef, sleep } from "./actionContext";
import { applyAlignment, bestAlignment } from "./align";
import type { Api } from "./api";
import { flatten } from "./layoutSession";

export type RoundsApi = Pick<Api, "rounds" | "roundPositions">;

/** Playing: time each round is shown. */
export const ROUND_STEP_MS = 1600;
/** How long the thumbnails take to move to the next round's places. */
export const ROUND_MOVE_MS = 900;
/** While the server estimates accuracies, the list is asked for again this often. */
export const ESTIMATE_POLL_MS = 1500;

export class RoundsController {
  /** Bumps when another embedding opens: answers for the one before are dropped. */
  private token = 0;
  /** Bumps when playing starts or stops: a loop that finds another value stops. */
  private playGen = 0;
  private polling = false;
  private open = false;
  /** Normalised model-view positions (stride 3) per round of the open embedding. */
  private readonly cache = new Map<number, Float32Array>();

  constructor(
    private readonly api: RoundsApi,
    private readonly ctx: ActionContext,
    /** Show the layout again (the session's last frame, or the PCA preview). */
    private readonly restoreLayout: () => void,
  ) {}

  /** Another embedding opens (the store was reset from initialState()). */
  reset(): void {
    this.token++;
    this.playGen++;
    this.polling = false;
    this.cache.clear();
  }

  get playing(): boolean {
    return this.ctx.store.get().roundsPlaying;
  }

  /** The Rounds panel opened or closed: fetch the rounds, or stop playing and show the layout again. */
  setOpen(open: boolean): void {
    this.open = open;
    if (open) {
      void this.refresh();
      return;
    }
    this.stop();
    const s = this.ctx.store.get();
    if (s.modelView) this.setModelView(false);
    this.ctx.store.set({ round: 0 });
  }

  /** Read the rounds again (after a retrain, or while accuracies are being estimated). */
  async refresh(): Promise<void> {
    const { store, host } = this.ctx;
    const ref = currentRef(store);
    if (!ref || !this.open || !store.get().embedding?.labels_supported) return;
    const token = this.token;
    try {
      const info = await this.api.rounds(ref);
      if (token !== this.token || !sameRef(ref, currentRef(store))) return;
      const n = info.rounds.length;
      const s = store.get();
      // A new round while the newest was shown (and nothing plays): show the new one.
      const followNewest = !this.playing && s.round > 0 && s.rounds !== null && s.round === s.rounds.rounds.length;
      const round = followNewest ? n : Math.min(s.round, n);
      store.set({ rounds: info, round });
      if (followNewest && round !== s.round && s.modelView) await this.showModel(round);
      if (info.estimating && !this.polling) {
        this.polling = true;
        setTimeout(() => {
          this.polling = false;
          if (token === this.token) void this.refresh();
        }, ESTIMATE_POLL_MS);
      }
    } catch (err) {
      if (token === this.token) host.showError(`Could not read the rounds: ${messageOf(err)}`);
    }
  }

  /** Show round `round` (1-based): ring its labeled rows; in model view, move the map to its places. */
  async show(round: number): Promise<void> {
    const { store } = this.ctx;
    const n = store.get().rounds?.rounds.length ?? 0;
    if (n === 0) return;
    round = Math.max(1, Math.min(n, Math.round(round)));
    store.set({ round });
    if (store.get().modelView) await this.showModel(round);
  }

  step(delta: number): Promise<void> {
    const s = this.ctx.store.get();
    const n = s.rounds?.rounds.length ?? 0;
    return this.show((s.round || (delta > 0 ? 0 : n + 1)) + delta);
  }

  /** Model view on (the shown round's, else the newest round's) or off (the layout again). */
  async setModelView(on: boolean): Promise<void> {
    const { store } = this.ctx;
    const s = store.get();
    if (on === s.modelView) return;
    store.set({ modelView: on });
    if (on) {
      const n = s.rounds?.rounds.length ?? 0;
      if (n) await this.show(s.round || n);
    } else {
      this.restoreLayout();
    }
  }

  /** Play from the shown round (from the first when at the last) to the newest, one step every ROUND_STEP_MS. */
  async play(): Promise<void> {
    if (this.playing) {
      this.stop();
      return;
    }
    const { store } = this.ctx;
    const n = store.get().rounds?.rounds.length ?? 0;
    if (n < 1) return;
    const mine = ++this.playGen;
    store.set({ roundsPlaying: true });
    let round = store.get().round;
    if (round < 1 || round >= n) round = 1;
    try {
      for (; round <= (store.get().rounds?.rounds.length ?? 0) && this.playGen === mine; round++) {
        await this.show(round);
        if (this.playGen === mine) await sleep(ROUND_STEP_MS);
      }
    } finally {
      if (this.playGen === mine) this.stop();
    }
  }

  stop(): void {
    this.playGen++;
    if (this.ctx.store.get().roundsPlaying) this.ctx.store.set({ roundsPlaying: false });
  }

  private async showModel(round: number): Promise<void> {
    const { store, host, scene } = this.ctx;
    const ref = currentRef(store);
    if (!ref) return;
    const token = this.token;
    let pos = this.cache.get(round);
    if (!pos) {
      try {
        const frame = await this.api.roundPositions(ref, round);
        if (token !== this.token) return;
        if (frame.rows !== store.get().rows) throw new Error(`round ${round} has ${frame.rows} rows, the embedding ${store.get().rows}`);
        pos = frame.normalized;
        this.cache.set(round, pos);
      } catch (err) {
        if (token === this.token) host.showError(`Could not show round ${round}'s model view: ${messageOf(err)}`);
        return;
      }
    }
    const s = store.get();
    if (!s.modelView || s.round !== round) return; // moved on meanwhile
    let next = s.viewDims === 2 ? flatten(pos) : pos;
    // A view's principal axes may come flipped or swapped against the one shown: turn it to match,
    // so the thumbnails move instead of mirroring.
    const shown = scene ? scene.positionsAt(performance.now()) : s.positions;
    if (shown && shown.length === next.length) next = applyAlignment(next, bestAlignment(shown, next, s.rows, s.viewDims));
    scene?.moveTo(next, ROUND_MOVE_MS);
    store.set({ positions: next, positionsRevision: s.positionsRevision + 1, positionsSource: "model" });
  }
}

/** The rows a round labeled (or cleared) and those suggested before it: what the map rings while the round is shown. */
export function roundRows(s: { rounds: { rounds: { changed: [number, string | null][]; suggested?: number[] }[] } | null; round: number; rows: number }): Uint32Array {
  const r = s.round > 0 ? s.rounds?.rounds[s.round - 1] : undefined;
  if (!r) return new Uint32Array(0);
  const rows = new Set<number>(r.changed.map(([row]) => row));
  for (const row of r.suggested ?? []) rows.add(row);
  return Uint32Array.from([...rows].filter((row) => row >= 0 && row < s.rows).sort((a, b) => a - b));
}
