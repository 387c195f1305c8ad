// Tiny DOM helpers: the tab has a few dozen elements, no framework needed.

type Attrs = Record<string, string | number | boolean | undefined | null | EventListener>;
type Child = Node | string | null | undefined | false;

/** Create an element; `on*` attributes become listeners, `testid` becomes data-testid. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    } else if (k === "testid") {
      el.setAttribute("data-testid", String(v));
    } else if (k === "class") {
      el.className = String(v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** `text` with a line-break opportunity after every `/` and `\\`: a long file path wraps at its folders. */
export function breakAfterSlashes(text: string): Child[] {
  const out: Child[] = [];
  for (const part of text.split(/(?<=[/\\])/)) out.push(part, document.createElement("wbr"));
  out.pop();
  return out;
}
