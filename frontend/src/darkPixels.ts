// "Hide dark pixels": the brightness below which thumbnail pixels are not
// drawn. Chosen from the sprite's background unless the person set their own,
// which is remembered per embedding (and log directory) in this browser.
import type { ActionContext } from "./actionContext";
import type { EmbeddingInfo } from "./api";
import { sampleBackground } from "./background";
import { embeddingKey } from "./overview";
import { readPref, writePref } from "./prefs";

export class DarkPixelThreshold {
  /** Distinguishes browser preferences of embeddings of different log directories (the logdir). */
  private scope = "";

  constructor(private readonly ctx: ActionContext) {}

  /** The preference key of the open embedding in this log directory. */
  key(): string {
    const e = this.ctx.store.get().embedding;
    return `tensorboard-al:threshold:${this.scope}:${e ? embeddingKey(e) : ""}`;
  }

  /** The open embedding's own setting if the person made one, else 0 until the sprite is read. */
  restore(scope: string): void {
    this.scope = scope;
    const userThreshold = Number(readPref(this.key()) ?? NaN);
    const hasUser = Number.isFinite(userThreshold);
    const { store } = this.ctx;
    store.set({ thresholdAuto: null, thresholdUser: hasUser, display: { ...store.get().display, threshold: hasUser ? userThreshold : 0 } });
  }

  /** Read the sprite's background and, unless the user set their own, use the threshold it suggests. */
  chooseFromSprite(page: ImageBitmap, sprite: NonNullable<EmbeddingInfo["sprite"]>, rows: number): void {
    let est;
    try {
      est = sampleBackground(page, sprite, rows);
    } catch {
      est = { kind: "mixed" as const, level: 0, threshold: 0, text: "auto: could not read the thumbnails, nothing hidden (0)" };
    }
    const s = this.ctx.store.get();
    this.ctx.store.set({ thresholdAuto: est, display: s.thresholdUser ? s.display : { ...s.display, threshold: est.threshold } });
  }

  /** The user's own setting, remembered for this embedding in this browser. */
  set(value: number): void {
    if (!Number.isFinite(value)) return;
    const v = Math.max(0, Math.min(1, value));
    this.ctx.store.set({ thresholdUser: true, display: { ...this.ctx.store.get().display, threshold: v } });
    writePref(this.key(), String(v));
  }

  /** Back to the threshold chosen from the sprite (forgets the user's setting). */
  auto(): void {
    writePref(this.key(), null);
    const s = this.ctx.store.get();
    this.ctx.store.set({ thresholdUser: false, display: { ...s.display, threshold: s.thresholdAuto?.threshold ?? 0 } });
  }
}
