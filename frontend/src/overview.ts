// The embeddings overview: every embedding discovery found, broken ones
// included, each with its problems spelled out.
import type { EmbeddingInfo, EmbeddingList } from "./api";
import { h } from "./dom";

export function embeddingKey(e: { run: string; name: string }): string {
  return `${e.run}\u0000${e.name}`;
}

export function embeddingTitle(e: { run: string; name: string }): string {
  return e.run === "." || e.run === e.name ? e.name : `${e.run} / ${e.name}`;
}

/** "1,797 x 64"; "?" where a broken source could not say (rows/dims null). */
export function shapeText(e: { rows: number | null; dims: number | null }): string {
  const n = (v: number | null) => (typeof v === "number" ? v.toLocaleString("en-US") : "?");
  return `${n(e.rows)} x ${n(e.dims)}`;
}

export function describeEmbedding(e: EmbeddingInfo): string {
  const sprite = e.sprite ? `sprites ${e.sprite.thumb_width}x${e.sprite.thumb_height}` : "no sprites";
  return `${shapeText(e)} · ${e.format} · ${sprite}`;
}

/** Table of embeddings; `onOpen` is called for a row that can be opened. */
export function renderOverview(list: EmbeddingList, onOpen: (e: EmbeddingInfo) => void): HTMLElement {
  const root = h("div", { class: "al-list", testid: "al-embedding-list" });
  if (list.embeddings.length === 0) {
    root.append(
      h(
        "p",
        { testid: "al-no-embeddings" },
        list.scanning
          ? "Still scanning the log directory for embeddings…"
          : `No embeddings found in ${list.logdir}. Write some with tensorboard_al_plugin.write_embedding, or point --logdir at Embedding Projector logs.`,
      ),
    );
    return root;
  }
  const body = h("tbody");
  for (const e of list.embeddings) {
    const problems = e.problems.length
      ? h("ul", { class: "al-problems", testid: "al-problems" }, ...e.problems.map((p) => h("li", {}, p)))
      : h("span", { class: "al-ok" }, "ok");
    const tr = h(
      "tr",
      {
        class: e.ok ? "openable" : "",
        testid: "al-embedding-row",
        "data-run": e.run,
        "data-name": e.name,
        "data-ok": String(e.ok),
        title: e.ok ? "Open in the labeling view" : "This embedding cannot be opened",
      },
      h("td", {}, e.run),
      h("td", {}, e.name),
      h("td", { class: "al-stat" }, shapeText(e)),
      h("td", {}, e.format),
      h("td", {}, e.sprite ? `yes (${e.sprite.thumb_width}x${e.sprite.thumb_height}, ${e.sprite.pages} page${e.sprite.pages === 1 ? "" : "s"})` : "no"),
      h("td", {}, e.ok ? problems : h("div", {}, h("strong", { class: "al-problems" }, "Cannot be opened."), problems)),
    );
    if (e.ok) tr.addEventListener("click", () => onOpen(e));
    body.append(tr);
  }
  root.append(
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, h("th", {}, "run"), h("th", {}, "embedding"), h("th", {}, "rows x dims"), h("th", {}, "format"), h("th", {}, "sprite"), h("th", {}, "problems"))),
      body,
    ),
  );
  if (list.scanning) root.append(h("p", { class: "al-small" }, "Still scanning; more embeddings may appear."));
  return root;
}
