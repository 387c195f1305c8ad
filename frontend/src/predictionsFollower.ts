// Following the classifier: the server retrains it in the background after
// label writes; this asks for its predictions after a short wait and keeps
// asking while it trains. A newer request (or closing) cancels an older one.
import { type ActionContext, currentRef, messageOf, sleep } from "./actionContext";
import { parsePredictions } from "./active";
import { type Api, ApiError } from "./api";

/** How often to ask for predictions while the classifier trains. */
export const PREDICTIONS_POLL_MS = 1200;
/** Wait this long after a label write before asking for predictions (writes come in bursts). */
export const PREDICTIONS_DEBOUNCE_MS = 300;

export type PredictionsApi = Pick<Api, "predictions">;

export class PredictionsFollower {
  private token = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly api: PredictionsApi,
    private readonly ctx: ActionContext,
  ) {}

  cancel(): void {
    this.token++;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Ask for predictions after `delayMs`, then keep asking while the classifier trains. */
  schedule(delayMs: number): void {
    this.cancel();
    const token = this.token;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.follow(token);
    }, delayMs);
  }

  private async follow(token: number): Promise<void> {
    const ref = currentRef(this.ctx.store);
    if (!ref) return;
    for (;;) {
      let res;
      try {
        res = await this.api.predictions(ref);
      } catch (err) {
        if (token !== this.token) return;
        const msg =
          err instanceof ApiError && err.status === 404 && /no route/.test(err.message)
            ? "this server has no classifier (update tensorboard-al)."
            : messageOf(err);
        this.ctx.store.set({ predictionsError: msg });
        return;
      }
      if (token !== this.token) return;
      this.ctx.store.set({ predictions: parsePredictions(res, this.ctx.store.get().rows), predictionsError: null });
      if (res.status !== "training") return;
      await sleep(PREDICTIONS_POLL_MS);
      if (token !== this.token) return;
    }
  }
}
