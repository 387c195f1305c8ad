// The tab's stylesheet, injected once (the iframe has no other CSS).
const CSS = `
:root { --al-bg:#fafafa; --al-panel:#fff; --al-border:#ddd; --al-text:#212121; --al-muted:#757575;
  --al-accent:#f57c00; --al-error:#c62828; --al-warn:#8d6e00; font-family: Roboto, "Helvetica Neue", Arial, sans-serif; }
[hidden] { display:none !important; }
html, body { margin:0; height:100%; background:var(--al-bg); color:var(--al-text); font-size:13px; }
.al-root { display:flex; flex-direction:column; height:100vh; }
.al-header { display:flex; align-items:center; gap:12px; padding:6px 12px; border-bottom:1px solid var(--al-border); background:var(--al-panel); min-height:36px; flex-wrap:wrap; }
.al-header h1 { font-size:14px; font-weight:500; margin:0; }
.al-header select { font-size:13px; padding:3px; max-width:340px; }
.al-meta { color:var(--al-muted); }
.al-progress { flex:0 0 180px; height:6px; background:#eee; border-radius:3px; overflow:hidden; }
.al-progress > div { height:100%; background:var(--al-accent); width:0; transition:width .15s; }
.al-progress-text { color:var(--al-muted); }
.al-banner { padding:8px 12px; border-bottom:1px solid var(--al-border); }
.al-banner.error { background:#ffebee; color:var(--al-error); }
.al-banner.notice { background:#fff8e1; color:var(--al-warn); }
.al-banner button { margin-left:12px; }
.al-body { flex:1; display:flex; min-height:0; }
.al-side { width:250px; flex:0 0 250px; overflow-y:auto; background:var(--al-panel); border-right:1px solid var(--al-border); padding:8px 10px; box-sizing:border-box; }
.al-side.right { border-right:none; border-left:1px solid var(--al-border); width:290px; flex-basis:290px; }
.al-side h2 { font-size:12px; text-transform:uppercase; letter-spacing:.05em; color:var(--al-muted); margin:12px 0 6px; font-weight:500; }
.al-side h2:first-child { margin-top:2px; }
.al-row { display:flex; align-items:center; gap:6px; margin:4px 0; }
.al-row label { flex:1; }
.al-row input[type=number], .al-row input[type=text] { width:80px; font-size:12px; }
.al-row input[type=range] { flex:1; min-width:60px; }
.al-row select { font-size:12px; min-width:0; max-width:100%; }
.al-stat { font-variant-numeric:tabular-nums; }
button { font-size:12px; padding:3px 8px; cursor:pointer; border:1px solid #bbb; background:#f5f5f5; border-radius:3px; }
button:hover:not(:disabled) { background:#eee; }
button:disabled { opacity:.45; cursor:default; }
button.primary { background:var(--al-accent); color:#fff; border-color:var(--al-accent); }
button.primary:hover:not(:disabled) { background:#ef6c00; }
button.active { background:#ffe0b2; border-color:var(--al-accent); }
.al-map { flex:1; position:relative; min-width:0; background:#111; }
.al-map canvas { width:100%; height:100%; display:block; cursor:crosshair; }
.al-map.tool-pan canvas { cursor:grab; }
.al-map svg { position:absolute; inset:0; pointer-events:none; width:100%; height:100%; }
.al-map-hint { position:absolute; left:8px; bottom:6px; color:#bbb; font-size:11px; pointer-events:none; text-shadow:0 0 2px #000; }
.al-map-fit { position:absolute; top:8px; right:8px; background:rgba(255,255,255,.9); z-index:4; }
.al-map-empty { position:absolute; inset:0; display:flex; align-items:center; justify-content:center; color:#ccc; font-size:14px; padding:24px; text-align:center; }
.al-tooltip { position:absolute; pointer-events:none; background:rgba(255,255,255,.97); border:1px solid #999; border-radius:4px; padding:6px; font-size:12px; box-shadow:0 2px 6px rgba(0,0,0,.35); max-width:260px; z-index:5; }
.al-tooltip canvas { width:112px; height:112px; image-rendering:pixelated; display:block; margin-bottom:4px; background:#000; }
.al-tooltip table { border-collapse:collapse; }
.al-tooltip td { padding:0 4px 0 0; vertical-align:top; }
.al-tooltip td:first-child { white-space:nowrap; }
.al-tooltip td + td { overflow-wrap:anywhere; }
.al-tooltip td:first-child { color:var(--al-muted); }
.al-classes { list-style:none; padding:0; margin:0; }
.al-classes li { display:flex; align-items:center; gap:6px; padding:2px 4px; border-radius:3px; cursor:pointer; }
.al-classes li:hover { background:#f0f0f0; }
.al-swatch { width:12px; height:12px; border-radius:2px; flex:0 0 12px; border:1px solid rgba(0,0,0,.25); box-sizing:border-box; }
.al-classes .key { color:var(--al-muted); width:12px; font-size:11px; }
.al-classes .name { flex:1; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.al-classes .count { font-variant-numeric:tabular-nums; color:var(--al-muted); }
.al-selgrid { display:flex; flex-wrap:wrap; gap:3px; margin-top:6px; }
.al-selgrid .thumb { position:relative; width:40px; height:40px; background:#000; border:2px solid transparent; box-sizing:border-box; }
.al-selgrid .thumb.focus { border-color:var(--al-accent); }
.al-selgrid .thumb canvas { width:100%; height:100%; display:block; image-rendering:pixelated; }
.al-selgrid .thumb .dot { width:100%; height:100%; display:flex; align-items:center; justify-content:center; color:#fff; font-size:10px; }
.al-selgrid .thumb[role=checkbox] { cursor:pointer; }
.al-selgrid .thumb[role=checkbox]:focus-visible { outline:2px solid var(--al-accent); outline-offset:1px; }
.al-selgrid .thumb button { position:absolute; top:-4px; right:-4px; width:15px; height:15px; padding:0; line-height:11px; font-size:11px; border-radius:8px; background:rgba(255,255,255,.9); color:#444; border-color:#999; }
.al-selgrid .thumb.off { border-style:dashed; border-color:#999; background:#ccc; }
.al-selgrid .thumb.off canvas, .al-selgrid .thumb.off .dot { opacity:.3; filter:grayscale(1); }
.al-selgrid .thumb.off button { color:#2e7d32; font-weight:bold; border-color:#2e7d32; }
.al-more { color:var(--al-muted); font-size:11px; margin-top:4px; }
.al-list table { border-collapse:collapse; width:100%; background:var(--al-panel); }
.al-list th, .al-list td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--al-border); vertical-align:top; }
.al-list th { color:var(--al-muted); font-weight:500; }
.al-list tr.openable:hover { background:#fff3e0; cursor:pointer; }
.al-list { padding:12px; overflow:auto; }
.al-problems { margin:4px 0 0; padding-left:18px; color:var(--al-error); }
.al-problems li { margin:2px 0; }
.al-ok { color:#2e7d32; }
.al-labelbox { display:flex; gap:4px; }
.al-labelbox input { flex:1; font-size:13px; padding:3px 5px; min-width:0; }
.al-small { color:var(--al-muted); font-size:11px; }
.al-advanced { margin:4px 0; }
.al-advanced summary { cursor:pointer; color:var(--al-muted); font-size:12px; }
.al-stats label { flex:0 0 auto; }
.al-stats .al-stat { flex:1; }
.al-classifier { font-size:11px; margin:4px 0; padding:2px 6px; border-radius:3px; background:#f5f5f5; color:var(--al-muted); }
.al-classifier.training { background:#e3f2fd; color:#1565c0; }
.al-classifier.ready { background:#e8f5e9; color:#2e7d32; }
.al-classifier.needs_labels { background:#fff8e1; color:var(--al-warn); }
.al-classifier.error { background:#ffebee; color:var(--al-error); }
.al-suggest-message:empty { display:none; }
.al-suggest-message { color:var(--al-warn); margin:4px 0; }
.al-suggest-list .thumb { cursor:pointer; border-color:#00bcd4; }
.al-suggest-list .thumb.focus { border-color:var(--al-accent); }
.al-suggest-list .thumb.done { opacity:.35; border-color:transparent; }
.al-suggest-list .rank, .al-suggest-list .size { position:absolute; font-size:9px; line-height:11px; padding:0 2px; background:rgba(0,0,0,.7); color:#fff; pointer-events:none; }
.al-suggest-list .rank { top:0; left:0; }
.al-suggest-list .size { bottom:0; right:0; color:#80deea; }
.al-ramp { flex:1; height:8px; border-radius:2px; background:linear-gradient(90deg, #2978ff, #ffd933 50%, #ff3333); }
.al-mark { fill:none; stroke:#00e5ff; stroke-width:2; }
.al-mark-text { fill:#00e5ff; font-size:12px; font-weight:bold; paint-order:stroke; stroke:#000; stroke-width:3px; }
.al-mark-round { stroke:#ffb300; stroke-dasharray:4 2; }
.al-rounds summary { cursor:pointer; font-weight:600; margin:8px 0 4px; }
.al-rounds-strip { display:flex; flex-wrap:wrap; gap:3px; margin:4px 0; max-height:120px; overflow-y:auto; }
.al-rounds-strip button { min-width:26px; padding:1px 4px; font-size:11px; }
.al-rounds-strip button.active { background:#ffb300; color:#000; border-color:#ffb300; }
`;

export function injectStyles(doc: Document = document): void {
  if (doc.getElementById("al-styles")) return;
  const style = doc.createElement("style");
  style.id = "al-styles";
  style.textContent = CSS;
  doc.head.appendChild(style);
}
