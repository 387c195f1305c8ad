// Opening an embedding: the state starts again from initialState() (keeping
// what the person chose, see stateForEmbedding), then the tensor, metadata,
// labels and any running layout session load together, the quick PCA preview
// is drawn, and the sprite pages follow. Opening another embedding meanwhile
// drops everything that arrives for the old one.
import { type ActionContext, messageOf } from "./actionContext";
import { type Api, ApiError, type EmbeddingInfo } from "./api";
import { normalizePositions } from "./camera";
import type { DarkPixelThreshold } from "./darkPixels";
import type { LabelsController } from "./labelsController";
import type { LayoutSession } from "./layoutSession";
import { pcaProject } from "./pca";
import type { PredictionsFollower } from "./predictionsFollower";
import type { SelectionController } from "./selectionController";
import { stateForEmbedding } from "./state";

export type LoadingApi = Pick<Api, "tensor" | "metadata" | "labels" | "layoutStatus" | "spritePage">;

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
    // Progress: tensor bytes are half the bar, sprite pages the other half.
    const tensorShare = pages ? 0.5 : 0.9;
    const stale = () => token !== this.token;
    try {
      host.setProgress("Loading tensor…", 0);
      const [tensor, metadata, labelState, session] = await Promise.all([
        this.api.tensor(ref, (loaded, total) => {
          if (!stale() && total > 0) host.setProgress(`Loading tensor… ${mb(loaded)} of ${mb(total)}`, (loaded / total) * tensorShare);
        }),
        e.metadata_columns.length ? this.api.metadata(ref).catch((err) => this.partFailed("metadata", err)) : Promise.resolve(null),
        e.labels_supported ? this.api.labels(ref).catch((err) => this.partFailed("labels", err)) : Promise.resolve(null),
        this.api.layoutStatus(ref).catch((err) => this.partFailed("layout status", err)),
      ]);
      if (stale()) return;
      if (tensor.rows !== e.rows) throw new ApiError(`The tensor has ${tensor.rows} rows but the embedding list says ${e.rows}.`, 200, "tensor");
      store.set({
        tensor: tensor.data,
        rows: tensor.rows,
        dims: tensor.dims,
        metadata: metadata && metadata.data.length ? metadata : null,
        mask: new Uint8Array(tensor.rows),
      });
      labels.setLabels(labelState ?? { version: 0, labels: [], classes: [], can_undo: false, can_redo: false });
      // The classifier trains on the server in the background; ask what it knows.
      if (labelState && e.labels_supported) predictions.schedule(0);
      host.setProgress("Projecting (PCA)…", tensorShare);
      await nextFrame();
      if (stale()) return;
      const pca = pcaProject(tensor.data, tensor.rows, tensor.dims, 3);
      layout.showPreview(normalizePositions(pca, tensor.rows, 3), tensor.rows, e.sprite, session);
      for (let p = 0; p < pages; p++) {
        host.setProgress(`Loading thumbnails… page ${p + 1} of ${pages}`, tensorShare + ((1 - tensorShare) * p) / pages);
        const blob = await this.api.spritePage(ref, p);
        if (stale()) return;
        let bitmap: ImageBitmap;
        try {
          bitmap = await createImageBitmap(blob);
        } catch {
          throw new ApiError(`Sprite page ${p} is not a readable image.`, 200, "sprite");
        }
        if (stale()) return;
        this.ctx.scene?.setAtlasPage(p, bitmap);
        if (p === 0 && e.sprite) threshold.chooseFromSprite(bitmap, e.sprite, Math.min(e.rows, e.sprite.per_page));
        bitmap.close();
        store.set({ pagesLoaded: p + 1 });
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

function nextFrame(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}
