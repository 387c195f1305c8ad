// Opening an embedding: the state starts again from initialState() (keeping
// what the person chose, see stateForEmbedding), then the quick PCA preview
// (computed by the server: the tab never downloads the features), metadata,
// labels and any running layout session load together, the preview is drawn,
// and the sprite pages the map's first view shows follow (spritePages.ts). Opening another embedding meanwhile drops
// everything that arrives for the old one.
import { type ActionContext, messageOf } from "./actionContext";
import { type Api, ApiError, type EmbeddingInfo } from "./api";
import type { DarkPixelThreshold } from "./darkPixels";
import type { LabelsController } from "./labelsController";
import type { LayoutSession } from "./layoutSession";
import type { PredictionsFollower } from "./predictionsFollower";
import type { SelectionController } from "./selectionController";
import { decodePage, scaledSprite } from "./spritePages";
import { stateForEmbedding } from "./state";

export type LoadingApi = Pick<Api, "preview" | "metadata" | "labels" | "layoutStatus" | "spritePage">;

/** The parts whose own state an opening resets or fills. */
export interface LoadTargets {
  selection: SelectionController;
  labels: LabelsController;
  predictions: PredictionsFollower;
  layout: LayoutSession;
  threshold: DarkPixelThreshold;
}

export class EmbeddingLoader {
  private token = 0;

  constructor(
    private readonly api: LoadingApi,
    private readonly ctx: ActionContext,
    private readonly parts: LoadTargets,
  ) {}

  /** Changes whenever an embedding opens or the view closes: work started before is stale. */
  generation(): number {
    return this.token;
  }

  /** Load embedding `e`; `scope` tells apart the browser preferences of different log directories. */
  async open(e: EmbeddingInfo, scope = ""): Promise<void> {
    const { store, host } = this.ctx;
    const { selection, labels, predictions, layout, threshold } = this.parts;
    const token = ++this.token;
    layout.stop();
    selection.forgetNeighbours();
    const ref = { run: e.run, embedding: e.name };
    store.set(stateForEmbedding(store.get(), e));
    threshold.restore(scope);
    predictions.cancel();
    const pages = e.sprite ? e.sprite.pages : 0;
    // Progress: the preview is a tenth of the bar, sprite pages the rest.
    const previewShare = pages ? 0.1 : 0.9;
    const stale = () => token !== this.token;
    try {
      // The server projects before it sends a byte: a bar that moves by itself until then.
      host.setProgress(`Projecting ${e.rows.toLocaleString("en-US")} rows on their principal axes (PCA)…`, -1);
      const [preview, metadata, labelState, session] = await Promise.all([
        this.api.preview(ref, (loaded, total) => {
          if (!stale() && total > 0) host.setProgress(`Loading the PCA preview… ${mb(loaded)} of ${mb(total)}`, (loaded / total) * previewShare);
        }),
        e.metadata_columns.length ? this.api.metadata(ref).catch((err) => this.partFailed("metadata", err)) : Promise.resolve(null),
        e.labels_supported ? this.api.labels(ref).catch((err) => this.partFailed("labels", err)) : Promise.resolve(null),
        this.api.layoutStatus(ref).catch((err) => this.partFailed("layout status", err)),
      ]);
      if (stale()) return;
      if (preview.rows !== e.rows) throw new ApiError(`The preview has ${preview.rows} rows but the embedding list says ${e.rows}.`, 200, "preview");
      store.set({ metadata: metadata && metadata.data.length ? metadata : null });
      labels.setLabels(labelState ?? { version: 0, labels: [], classes: [], can_undo: false, can_redo: false });
      // The classifier trains on the server in the background; ask what it knows.
      if (labelState && e.labels_supported) predictions.schedule(0);
      host.setProgress(pages ? "Loading thumbnails…" : "Drawing…", previewShare);
      layout.showPreview(preview.normalized, preview.rows, e.sprite, session);
      const sprites = this.ctx.scene?.sprites;
      if (e.sprite && sprites) {
        // Pages load by what the map shows (spritePages.ts): the first view's now, others as it pans and zooms.
        const sprite = e.sprite;
        let sampled = false;
        sprites.open(sprite, async (p, scale) => decodePage(await this.api.spritePage(ref, p), sprite, p, scale), {
          stale,
          loaded: (p, bitmap, scale, count) => {
            if (!sampled) {
              sampled = true;
              threshold.chooseFromSprite(bitmap, scaledSprite(sprite, scale), Math.min(e.rows - p * sprite.per_page, sprite.per_page));
            }
            if (!store.get().ready) host.setProgress(`Loading thumbnails… ${count} page${count === 1 ? "" : "s"}`, previewShare + (1 - previewShare) * (count / (count + 1)));
            store.set({ pagesLoaded: count });
          },
          failed: (p, err) => host.showError(`Could not load the thumbnails of rows ${p * sprite.per_page} to ${Math.min(e.rows, (p + 1) * sprite.per_page) - 1}: ${messageOf(err)}`),
        });
        await sprites.firstView();
        if (stale()) return;
        // A far view (dots) needs no page; the dark-pixel estimate reads one, loaded meanwhile.
        if (!sampled) sprites.wantRow(0);
      }
      host.setProgress(null);
      store.set({ ready: true });
    } catch (err) {
      if (stale()) return;
      host.setProgress(null);
      host.showError(`Could not open ${e.name}: ${messageOf(err)}`, () => void this.open(e, scope));
    }
  }

  /** Stop loading and following the open embedding (the view is left). */
  close(): void {
    this.token++;
    this.parts.layout.stop();
    this.parts.predictions.cancel();
  }

  private partFailed(part: string, err: unknown): null {
    this.ctx.host.showError(`Could not load the ${part}: ${messageOf(err)}`);
    return null;
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}
