// The tab's shell: header (embedding picker, progress, messages) and either the
// embeddings overview or the labeling view of one embedding.
import { Api, ApiError, type EmbeddingInfo, type EmbeddingList } from "./api";
import { clear, h } from "./dom";
import { LabelingView } from "./labelingView";
import { describeEmbedding, embeddingKey, embeddingTitle, renderOverview, shapeText } from "./overview";
import { readPref, writePref } from "./prefs";

/** localStorage key prefix of the embedding last open, per log directory (one browser may see several). */
const LAST_KEY = "tensorboard-al:last-embedding";

export class App {
  readonly api = new Api("./");
  private list: EmbeddingList | null = null;
  private readonly select: HTMLSelectElement;
  private readonly meta: HTMLElement;
  private readonly progressBar: HTMLElement;
  private readonly progressText: HTMLElement;
  private readonly progress: HTMLElement;
  private readonly banners: HTMLElement;
  private readonly body: HTMLElement;
  view: LabelingView | null = null;
  /** Key of what the body shows ("" = overview); null forces a re-render. */
  private opened: string | null = null;

  constructor(private readonly host: HTMLElement) {
    this.select = h("select", { testid: "al-embedding-select", title: "Embedding to label" });
    this.select.addEventListener("change", () => this.onPick());
    this.meta = h("span", { class: "al-meta", testid: "al-embedding-meta" });
    this.progressBar = h("div");
    this.progress = h("div", { class: "al-progress", testid: "al-progress", hidden: true }, this.progressBar);
    this.progressText = h("span", { class: "al-progress-text", testid: "al-progress-text" });
    this.banners = h("div", { testid: "al-messages" });
    this.body = h("div", { class: "al-body", style: "flex-direction:column" });
    const reload = h("button", { title: "Rescan the log directory", testid: "al-refresh" }, "Rescan");
    reload.addEventListener("click", () => void this.loadList(true));
    const root = h(
      "div",
      { class: "al-root" },
      h("div", { class: "al-header" }, h("h1", {}, "Active Labeling"), this.select, this.meta, this.progress, this.progressText, h("span", { style: "flex:1" }), reload),
      this.banners,
      this.body,
    );
    clear(host);
    host.append(root);
  }

  async start(): Promise<void> {
    await this.loadList(false);
  }

  async loadList(refresh: boolean): Promise<void> {
    this.setProgress("Listing embeddings…", -1);
    try {
      this.list = await this.api.embeddings(refresh);
    } catch (e) {
      this.setProgress(null);
      this.renderBody();
      this.showError(`Could not list the embeddings: ${messageOf(e)}`, () => void this.loadList(true));
      return;
    }
    this.setProgress(null);
    this.clearMessages();
    const keep = this.select.value;
    this.fillSelect();
    const want = refresh ? keep : keep || this.firstChoice(this.list);
    if (want && this.list.embeddings.some((e) => e.ok && embeddingKey(e) === want)) this.select.value = want;
    this.opened = null;
    this.renderBody();
    if (this.list.scanning && this.list.embeddings.length === 0) {
      // Discovery runs in the background on the server: ask again shortly.
      setTimeout(() => void this.loadList(false), 1500);
    }
  }

  /**
   * What to show when the tab opens: the embedding last open in this browser for this log
   * directory (if it is still there), else the only embedding when there is just one, else the
   * table ("").
   */
  private firstChoice(list: EmbeddingList): string {
    const openable = (key: string) => list.embeddings.some((e) => e.ok && embeddingKey(e) === key);
    const last = readPref(lastKey(list));
    if (last && openable(last)) return last;
    if (list.embeddings.length === 1 && list.embeddings[0].ok) return embeddingKey(list.embeddings[0]);
    return "";
  }

  private fillSelect(): void {
    const list = this.list;
    clear(this.select);
    this.select.append(h("option", { value: "" }, list && list.embeddings.length ? "— all embeddings —" : "— no embeddings —"));
    for (const e of list?.embeddings ?? []) {
      const opt = h("option", { value: embeddingKey(e), disabled: !e.ok }, `${embeddingTitle(e)} (${shapeText(e).replace(/,/g, "")})${e.ok ? "" : " — broken"}`);
      this.select.append(opt);
    }
  }

  private current(): EmbeddingInfo | null {
    const key = this.select.value;
    return this.list?.embeddings.find((e) => embeddingKey(e) === key) ?? null;
  }

  open(e: EmbeddingInfo): void {
    this.select.value = embeddingKey(e);
    this.onPick();
  }

  private onPick(): void {
    this.renderBody();
  }

  private renderBody(): void {
    const e = this.current();
    this.meta.textContent = e ? describeEmbedding(e) : "";
    const key = e ? embeddingKey(e) : "";
    if (key === this.opened && (!e || this.view?.el.isConnected)) return;
    this.opened = key;
    clear(this.body);
    this.clearMessages();
    if (this.list) writePref(lastKey(this.list), key);
    if (!e) {
      this.view?.close();
      if (this.list) this.body.append(renderOverview(this.list, (x) => this.open(x)));
      return;
    }
    for (const p of e.problems) this.showNotice(`${embeddingTitle(e)}: ${p}`);
    if (!this.view) {
      try {
        this.view = new LabelingView(this.api, this);
      } catch (err) {
        this.showError(`Cannot show the map: ${messageOf(err)}`);
        return;
      }
    }
    this.body.append(this.view.el);
    void this.view.open(e, this.list?.logdir ?? "");
  }

  /** fraction in [0,1], -1 for indeterminate, null hides the bar. */
  setProgress(text: string | null, fraction = -1): void {
    if (text === null) {
      this.progress.hidden = true;
      this.progressText.textContent = "";
      return;
    }
    this.progress.hidden = false;
    this.progressText.textContent = text;
    this.progressBar.style.width = fraction < 0 ? "100%" : `${Math.round(Math.max(0, Math.min(1, fraction)) * 100)}%`;
    this.progressBar.style.opacity = fraction < 0 ? "0.35" : "1";
  }

  showError(message: string, retry?: () => void): void {
    const el = h("div", { class: "al-banner error", role: "alert", testid: "al-error" }, message);
    if (retry) {
      const b = h("button", {}, "Retry");
      b.addEventListener("click", () => {
        el.remove();
        retry();
      });
      el.append(b);
    }
    const dismiss = h("button", { title: "Dismiss" }, "×");
    dismiss.addEventListener("click", () => el.remove());
    el.append(dismiss);
    this.banners.append(el);
  }

  showNotice(message: string): void {
    this.banners.append(h("div", { class: "al-banner notice", testid: "al-notice" }, message));
  }

  clearMessages(): void {
    clear(this.banners);
  }
}

function lastKey(list: EmbeddingList): string {
  return `${LAST_KEY}:${list.logdir}`;
}

export function messageOf(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
