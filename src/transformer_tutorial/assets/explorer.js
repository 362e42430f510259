// explorer.js: draws the book's explorers from data (see EXPLORER_DATA.md).
// Plain ES module, no dependencies. Live: anywidget `render({model, el})`.
// Book: `mountStatic()` mounts every `.tt-explorer` holding a `script.tt-explorer-data`.
// Text from the data is only ever set with textContent (never parsed as markup).

const NS = "http://www.w3.org/2000/svg";
const W = 680; // viewBox width
const FS = 12; // font size (units); never below 11.5
const CW = 6.9; // estimated width of one character at FS
const GAP = 24; // between panels
const OKABE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"];
// matplotlib's viridis and RdBu_r sampled at 11 points; interpolated linearly between them.
const STOPS = {
  attention: ["#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
    "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725"],
  diverging: ["#053061", "#2065ab", "#4393c3", "#90c4dd", "#d1e5f0", "#f7f6f6",
    "#fddbc7", "#f3a481", "#d6604d", "#b1182b", "#67001f"],
};
const LUT = {}; // colormap -> 257 [css colour, luminance] (the centre, 128, is exact)

function lut(name) {
  if (LUT[name]) return LUT[name];
  const rgb = (STOPS[name] || STOPS.attention).map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
  const out = [];
  for (let i = 0; i <= 256; i++) {
    const t = (i / 256) * (rgb.length - 1), k = Math.min(Math.floor(t), rgb.length - 2), f = t - k;
    const c = rgb[k].map((v, j) => Math.round(v + (rgb[k + 1][j] - v) * f));
    out.push([`rgb(${c})`, (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255]);
  }
  return (LUT[name] = out);
}

// Value -> [0, 1]; "diverging" is centred on 0 (two slopes when vmin < 0 < vmax).
function norm(v, vmin, vmax, cmap) {
  let t;
  if (cmap === "diverging" && vmin < 0 && vmax > 0) t = v < 0 ? 0.5 - (0.5 * v) / vmin : 0.5 + (0.5 * v) / vmax;
  else t = vmax > vmin ? (v - vmin) / (vmax - vmin) : 0.5;
  return Math.min(1, Math.max(0, t));
}
const colour = (v, vmin, vmax, cmap) => lut(cmap)[Math.round(norm(v, vmin, vmax, cmap) * 256)];

// ---------- small helpers ----------
function fmt(v, digits) {
  if (typeof v !== "number" || !isFinite(v)) return String(v);
  const s = digits == null ? String(+v.toPrecision(4)) : v.toFixed(digits);
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}
const fill = (tpl, vals) => String(tpl).replace(/\{(\w+)\}/g, (m, k) => (k in vals ? vals[k] : m));
const chars = (s) => Array.from(String(s));
const maxLen = (a) => a.reduce((m, s) => Math.max(m, chars(s).length), 0);
function fit(s, n) {
  const c = chars(s);
  return c.length <= n ? String(s) : c.slice(0, Math.max(1, n - 1)).join("") + "…";
}
// JupyterLab's notebook shortcuts (arrow keys select cells in command mode) would swallow the
// keys of a focused control; Lumino skips elements marked data-lm-suppress-shortcuts.
const KEYS_OURS = "data-lm-suppress-shortcuts";
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (tag === "input" || tag === "select" || tag === "button") e.setAttribute(KEYS_OURS, "true");
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}
function svg(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
// A text element; `max` truncates to that many characters (full text kept in a <title>).
function text(g, x, y, s, o = {}) {
  const t = svg("text", { x, y, "font-size": o.size || FS }, g);
  if (o.anchor) t.setAttribute("text-anchor", o.anchor);
  if (o.weight) t.setAttribute("font-weight", o.weight);
  if (o.base) t.setAttribute("dominant-baseline", o.base);
  if (o.rot) t.setAttribute("transform", `rotate(${o.rot} ${x} ${y})`);
  if (o.fill) t.setAttribute("fill", o.fill);
  if (o.cls) t.setAttribute("class", o.cls);
  return setText(t, s, o.max);
}
function setText(t, s, max) {
  const full = String(s), shown = max ? fit(full, max) : full;
  t.textContent = shown;
  if (shown !== full) svg("title", {}, t).textContent = full;
  t.max = max;
  return t;
}
const panelTitle = (g, p, x, y, w) =>
  p.title ? text(g, x + w / 2, y + 13, p.title, { anchor: "middle", weight: 600, max: Math.floor(w / (1.15 * CW)) }) : null; // bold: wider
// Round tick values covering [a, b].
function ticks(a, b, n = 4) {
  if (!(b > a)) return [a];
  const raw = (b - a) / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(a / step - 1e-9) * step; v <= b + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}
const tickFmt = (v) => String(+v.toPrecision(4));

// Axis with ticks: "x" along the bottom of [x0, x1] at y, or "y" along the left at x.
function axis(g, dir, at, from, to, lo, hi, title) {
  const span = hi - lo || 1;
  const pos = (v) => from + ((v - lo) / span) * (to - from);
  if (dir === "x") {
    svg("line", { x1: from, x2: to, y1: at, y2: at, class: "tt-axis" }, g);
    for (const v of ticks(lo, hi, Math.max(2, Math.min(6, Math.floor((to - from) / 60))))) {
      svg("line", { x1: pos(v), x2: pos(v), y1: at, y2: at + 4, class: "tt-axis" }, g);
      text(g, pos(v), at + 16, tickFmt(v), { anchor: "middle" });
    }
    if (title) text(g, (from + to) / 2, at + 33, title, { anchor: "middle", max: Math.floor((to - from) / CW) });
  } else {
    svg("line", { x1: at, x2: at, y1: from, y2: to, class: "tt-axis" }, g);
    for (const v of ticks(lo, hi, Math.max(2, Math.min(5, Math.floor(Math.abs(to - from) / 40))))) {
      svg("line", { x1: at - 4, x2: at, y1: pos(v), y2: pos(v), class: "tt-axis" }, g);
      text(g, at - 6, pos(v), tickFmt(v), { anchor: "end", base: "central" });
    }
    if (title) text(g, at - 40, (from + to) / 2, title, { anchor: "middle", rot: -90, max: Math.floor(Math.abs(to - from) / CW) });
  }
  return pos;
}

// ---------- panels: each draws into <g> at (x, y) with width w and returns its height ----------

// A colour bar in its own <g>: `place(x, y, h)` (re)draws it there; its gradient is made once.
function colourbar(ctx, g, vmin, vmax, cmap) {
  const id = `${ctx.uid}-cb${ctx.n++}`;
  const grad = svg("linearGradient", { id, x1: 0, y1: 1, x2: 0, y2: 0 }, ctx.defs);
  for (let i = 0; i <= 10; i++) {
    const v = vmin + ((vmax - vmin) * i) / 10;
    svg("stop", { offset: i / 10, "stop-color": colour(v, vmin, vmax, cmap)[0] }, grad);
  }
  const bar = svg("g", {}, g);
  let at = "";
  return (x, y, h) => {
    if (at === (at = `${x},${y},${h}`)) return;
    bar.textContent = "";
    svg("rect", { x, y, width: 12, height: h, fill: `url(#${id})`, class: "tt-colourbar" }, bar);
    for (const v of ticks(vmin, vmax, 4)) {
      const ty = y + h - ((v - vmin) / (vmax - vmin || 1)) * h;
      svg("line", { x1: x + 12, x2: x + 15, y1: ty, y2: ty, class: "tt-axis" }, bar);
      text(bar, x + 17, ty, tickFmt(v), { base: "central" });
    }
  };
}

// Keep exactly `n` children in `group`; returns them. Children taken out are kept aside and
// come back first, in their order (a cell keeps its row and column); then `make()` new ones.
function pool(group, n, make) {
  const spare = group.ttSpare || (group.ttSpare = []);
  while (group.childElementCount > n) spare.push(group.removeChild(group.lastChild));
  while (group.childElementCount < n) group.appendChild(spare.length ? spare.pop() : make());
  return group.children;
}
const sameList = (a, b) => a === b || (!!a && !!b && a.length === b.length && a.every((v, i) => v === b[i]));
const sameMask = (a, b) => a === b || (!!a && !!b && a.length === b.length && a.every((r, i) => sameList(r, b[i])));

// Heatmap panel at (x, y), width w. `key` names it for the cursor state; `scale` overrides
// vmin/vmax (grids). Its elements are made once: a frame with other tokens (another count
// included) moves, adds or removes cells and labels and recolours them, never rebuilds.
// ctx.up[key](q, y) draws panel q (same layout, other values/tokens/mask) and returns its height.
function heatmap(ctx, g, p, x, y, w, key, scale) {
  const [vmin, vmax] = scale || [p.vmin, p.vmax];
  const cmap = p.colormap === "diverging" ? "diverging" : "attention";
  const digits = p.digits == null ? 2 : p.digits;
  const rt = p.row_title ? 18 : 0, cbW = scale ? 0 : 52;
  const head = panelTitle(g, p, x, y, w);
  const labels = svg("g", { class: "tt-labels" }, g);
  const rowLabels = svg("g", {}, labels), colLabels = svg("g", {}, labels);
  // Hovering a (possibly truncated) label shows it whole.
  labels.addEventListener("pointerover", (e) => { const t = e.target.closest("text"); if (t) ctx.say(t.lastChild.textContent); });
  const rowTitle = p.row_title ? text(g, 0, 0, "", { anchor: "middle" }) : null;
  const colTitle = p.col_title ? text(g, 0, 0, "", { anchor: "middle" }) : null;
  const hm = svg("g", { class: "tt-heatmap", tabindex: 0, role: "img", [KEYS_OURS]: "true" }, g);
  const cells = svg("g", {}, hm), notes = svg("g", {}, hm);
  const cursor = svg("rect", { class: "tt-cursor", fill: "none", visibility: "hidden" }, hm);
  const bar = scale ? null : colourbar(ctx, g, vmin, vmax, cmap);
  const proto = svg("rect", { class: "tt-cell" });
  const note = () => text(null, 0, 0, "", { anchor: "middle", base: "central", size: 11.5, cls: "tt-ann" });
  // Layout of the current tokens (set by `place`) and the values shown (set by `update`).
  let cur = p, rows = [], cols = [], mask = null, nr = 0, nc = 0, top = y, gx = 0, cs = 0, height = 0, flat = null, at = null;
  let rects = [], marks = [];
  const isMasked = (i, j) => !!(mask && mask[i] && mask[i][j]);
  const place = (q, yy) => {
    rows = q.rows || []; cols = q.cols || []; mask = q.mask; nr = rows.length; nc = cols.length;
    top = yy + (head ? 22 : 0);
    if (head) { head.setAttribute("y", yy + 13); }
    const labW = Math.min(Math.max(maxLen(rows) * CW + 8, 20), w * 0.3);
    cs = Math.max(4, Math.min((w - rt - labW - cbW) / Math.max(nc, 1), 46));
    const off = x + Math.max(0, (w - rt - labW - cbW - cs * nc) / 2); // centred in its slot
    gx = off + rt + labW;
    const gh = cs * nr;
    // Column labels: horizontal when they fit in a cell, else rotated and truncated.
    const isFlat = maxLen(cols) * CW <= cs - 2;
    const colH = isFlat ? 18 : Math.min(maxLen(cols) * CW, 84) + 8;
    const rowChars = Math.max(2, Math.floor((labW - 6) / CW)), colChars = Math.max(2, Math.floor((colH - 8) / CW));
    const step = Math.ceil(13 / cs); // cells thinner than a line of text: label every step-th
    const rl = pool(rowLabels, Math.ceil(nr / step), () => text(null, 0, 0, "", { anchor: "end", base: "central" }));
    for (let k = 0; k < rl.length; k++) {
      const t = rl[k];
      t.setAttribute("x", gx - 5); t.setAttribute("y", top + (k * step + 0.5) * cs);
      setText(t, rows[k * step], rowChars);
    }
    if (isFlat !== flat) { colLabels.textContent = ""; colLabels.ttSpare = []; } // other attributes: made afresh
    flat = isFlat;
    const cl = pool(colLabels, Math.ceil(nc / step), () => (flat
      ? text(null, 0, 0, "", { anchor: "middle" })
      : text(null, 0, 0, "", { anchor: "end", base: "central", rot: -90 })));
    for (let k = 0; k < cl.length; k++) {
      const t = cl[k], cx = gx + (k * step + 0.5) * cs, cy = top + gh + (flat ? 14 : 5);
      t.setAttribute("x", cx); t.setAttribute("y", cy);
      if (!flat) t.setAttribute("transform", `rotate(-90 ${cx} ${cy})`);
      setText(t, cols[k * step], flat ? undefined : colChars);
    }
    if (rowTitle) {
      rowTitle.setAttribute("x", off + 12); rowTitle.setAttribute("y", top + gh / 2);
      rowTitle.setAttribute("transform", `rotate(-90 ${off + 12} ${top + gh / 2})`);
      setText(rowTitle, q.row_title, Math.floor(gh / CW));
    }
    if (colTitle) {
      colTitle.setAttribute("x", gx + (cs * nc) / 2); colTitle.setAttribute("y", top + gh + colH + 14);
      setText(colTitle, q.col_title, Math.floor((w - rt) / CW));
    }
    // Cells, one <g> per row, in units of one cell (the group scales them): cell (i, j) keeps
    // its element while the tokens change; only the cell size (+0.3, no seams) follows cs.
    cells.setAttribute("transform", `translate(${gx} ${top}) scale(${cs})`);
    const side = (cs + 0.3) / cs;
    const hatch = mask ? ctx.hatch(cs) : null;
    const lines = pool(cells, nr, () => svg("g", {}));
    rects = [];
    for (let i = 0; i < nr; i++) {
      const line = lines[i];
      const made = pool(line, nc, () => {
        const r = proto.cloneNode(false), j = line.childElementCount;
        for (const [a, v] of [["x", j], ["y", i], ["width", side], ["height", side], ["data-row", i], ["data-col", j]]) r.setAttribute(a, v);
        r.ttSide = side;
        return r;
      });
      for (let j = 0; j < nc; j++) {
        const r = made[j], m = isMasked(i, j);
        if (r.ttSide !== side) { r.setAttribute("width", side); r.setAttribute("height", side); r.ttSide = side; }
        if (m) { r.setAttribute("fill", hatch); r.setAttribute("data-masked", "true"); }
        else if (r.ttMasked) r.removeAttribute("data-masked");
        r.ttMasked = m;
        rects.push(r);
      }
    }
    // Values written in the cells (when they fit), in absolute units: their text keeps its size.
    const ann = q.annotate && cs >= 15 && cs >= Math.max(fmt(vmin, digits).length, fmt(vmax, digits).length) * 6.5 + 2;
    let shown = 0;
    for (let i = 0; i < nr; i++) for (let j = 0; j < nc; j++) shown += ann && !isMasked(i, j) ? 1 : 0;
    const ns = pool(notes, shown, note);
    marks = [];
    for (let i = 0, m = 0; i < nr; i++) {
      for (let j = 0; j < nc; j++) {
        const t = ann && !isMasked(i, j) ? ns[m++] : null;
        if (t) { t.setAttribute("x", gx + (j + 0.5) * cs); t.setAttribute("y", top + (i + 0.5) * cs); }
        marks.push(t);
      }
    }
    cursor.setAttribute("x", gx); cursor.setAttribute("y", top);
    cursor.setAttribute("width", cs); cursor.setAttribute("height", cs);
    const c = ctx.state.cursors[key];
    if (c && (c[0] >= nr || c[1] >= nc)) { delete ctx.state.cursors[key]; cursor.setAttribute("visibility", "hidden"); }
    if (bar) bar(gx + cs * nc + 10, top, Math.max(gh, 60));
    height = top - yy + gh + colH + (q.col_title ? 22 : 4);
  };
  const update = (q, yy = y) => {
    if (yy !== at || !sameList(q.rows, rows) || !sameList(q.cols, cols) || !sameMask(q.mask, mask)) place(q, (at = yy));
    cur = q;
    if (head) setText(head, q.title, head.max);
    hm.setAttribute("aria-label", q.title || "heatmap");
    const values = q.values || [];
    for (let i = 0, k = 0; i < nr; i++) {
      const row = values[i] || [];
      for (let j = 0; j < nc; j++, k++) {
        const v = row[j];
        rects[k].setAttribute("data-value", v);
        if (isMasked(i, j)) continue;
        const [c, lum] = colour(v, vmin, vmax, cmap);
        rects[k].setAttribute("fill", c);
        if (marks[k]) { marks[k].textContent = fmt(v, digits); marks[k].setAttribute("fill", lum > 0.5 ? "#111" : "#fff"); }
      }
    }
    if (cursor.getAttribute("visibility") === "visible") placeCursor();
    return height;
  };
  // Hover / keyboard readout, and a cursor cell moved by the arrow keys.
  const say = (i, j) => ctx.say(fill(cur.hover || "{row} → {col}: {value}", {
    row: rows[i], col: cols[j], value: isMasked(i, j) ? "masked" : fmt((cur.values[i] || [])[j], digits),
  }));
  const placeCursor = () => {
    const c = ctx.state.cursors[key];
    if (!c) return;
    cursor.setAttribute("x", gx + c[1] * cs);
    cursor.setAttribute("y", top + c[0] * cs);
    cursor.setAttribute("visibility", "visible");
    say(c[0], c[1]);
  };
  // A cell chosen (click, or Enter on the cursor): a `tt-pick` event for the page's own use.
  const pick = (i, j) => hm.dispatchEvent(new CustomEvent("tt-pick", { bubbles: true, detail: { row: i, col: j, rows, cols } }));
  hm.addEventListener("pointerover", (e) => {
    const d = e.target.dataset;
    if (d && d.row != null) say(+d.row, +d.col);
  });
  hm.addEventListener("click", (e) => {
    const d = e.target.dataset;
    if (d && d.row != null) pick(+d.row, +d.col);
  });
  hm.addEventListener("focus", () => { ctx.state.cursors[key] = ctx.state.cursors[key] || [0, 0]; placeCursor(); });
  hm.addEventListener("blur", () => cursor.setAttribute("visibility", "hidden"));
  hm.addEventListener("keydown", (e) => {
    const c = ctx.state.cursors[key] || [0, 0];
    if (e.key === "Enter") { pick(c[0], c[1]); return; }
    const d = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[e.key];
    if (!d) return;
    e.preventDefault();
    ctx.state.cursors[key] = [Math.min(nr - 1, Math.max(0, c[0] + d[0])), Math.min(nc - 1, Math.max(0, c[1] + d[1]))];
    placeCursor();
  });
  ctx.up[key] = update;
  return update(p);
}

// The items of a grid shown on its current page (clamped), and the page.
function pageOf(p, pages, key) {
  const items = p.items || [], per = p.per_page || items.length || 1;
  const page = Math.min(pages[key] || 0, Math.max(0, Math.ceil(items.length / per) - 1));
  return [items.slice(page * per, page * per + per), page, per];
}

// Grid of heatmaps sharing one colour scale; `per_page` items shown at a time.
// Item slots are keyed by position on the page, so a page change can recolour in place.
function grid(ctx, g, p, x, y, w, key) {
  const items = p.items || [], [shown, page, per] = pageOf(p, ctx.state.pages, key);
  const pages = Math.ceil(items.length / per);
  const buttons = p.per_page && pages > 1 ? ctx.pager(key, p.page_label || "items", pages, per, items.length, page) : [];
  const vmin = Math.min(...items.map((it) => it.vmin)), vmax = Math.max(...items.map((it) => it.vmax));
  const cmap = (items[0] || {}).colormap === "diverging" ? "diverging" : "attention";
  const head = panelTitle(g, p, x, y, w);
  const top = y + (head ? 22 : 0);
  const ncol = Math.max(1, Math.min(p.columns || 1, shown.length)), gw = w - 56;
  const iw = (gw - GAP * (ncol - 1)) / ncol;
  const subs = shown.map(() => svg("g", {}, g));
  const bar = colourbar(ctx, g, vmin, vmax, cmap);
  // Items row by row: a row is as tall as its tallest item (their tokens may differ).
  const layOut = (now) => {
    let rowTop = top;
    for (let i = 0; i < now.length; i += ncol) {
      let h = 0;
      for (let j = 0; j < ncol && i + j < now.length; j++) {
        const k = `${key}/${i + j}`;
        h = Math.max(h, ctx.up[k] ? ctx.up[k](now[i + j], rowTop) : heatmap(ctx, subs[i + j], now[i + j], x + j * (iw + GAP), rowTop, iw, k, [vmin, vmax]));
      }
      rowTop += h + 12;
    }
    bar(x + gw + 8, top, Math.min(Math.max(rowTop - top - 40, 60), 240));
    return rowTop - y;
  };
  ctx.up[key] = (q) => {
    if (head) setText(head, q.title, head.max);
    const [now, pg] = pageOf(q, ctx.state.pages, key);
    buttons.forEach((b, k) => b.setAttribute("aria-pressed", String(k === pg)));
    return layOut(now);
  };
  return layOut(shown);
}

function bars(ctx, g, p, x, y, w) {
  const labels = p.labels || [], values = p.values || [], n = values.length;
  const lo = p.vmin, hi = p.vmax, digits = p.digits == null ? 2 : p.digits;
  const hl = new Set(p.highlight || []);
  const barColour = (v, i) => (hl.has(i) ? OKABE[1] : p.colors === "sign" ? (v < 0 ? STOPS.diverging[1] : STOPS.diverging[9]) : OKABE[0]);
  const say = (i) => ctx.say(fill(p.hover || "{label}: {value}", { label: labels[i], value: fmt(values[i], digits) }));
  let top = y;
  const head = panelTitle(g, p, x, top, w);
  top += head ? 22 : 0;
  const group = svg("g", { class: "tt-bars" }, g);
  group.addEventListener("pointerover", (e) => { if (e.target.dataset.index != null) say(+e.target.dataset.index); });
  const rect = (i, bx, by, bw, bh) => svg("rect", { x: bx, y: by, width: Math.max(bw, 0.5), height: bh, fill: barColour(values[i], i), class: "tt-bar", "data-index": i, "data-value": values[i] }, group);
  if (p.orientation === "vertical") {
    const left = x + 52, right = x + w - 4, ph = 170;
    const pos = axis(g, "y", left, top + ph, top, lo, hi, p.value_title);
    const bw = (right - left) / Math.max(n, 1), zero = pos(Math.min(Math.max(0, lo), hi));
    values.forEach((v, i) => rect(i, left + i * bw + bw * 0.1, Math.min(zero, pos(v)), bw * 0.8, Math.abs(pos(v) - zero)));
    svg("line", { x1: left, x2: right, y1: zero, y2: zero, class: "tt-axis" }, g);
    const lw = maxLen(labels) * CW, flat = lw <= bw - 2, step = flat ? 1 : Math.max(1, Math.ceil(16 / bw));
    const lh = flat ? 18 : Math.min(lw, 70) + 8;
    labels.forEach((l, i) => {
      if (i % step) return;
      const cx = left + (i + 0.5) * bw;
      if (flat) text(g, cx, top + ph + 14, l, { anchor: "middle" });
      else text(g, cx, top + ph + 5, l, { anchor: "end", base: "central", rot: -90, max: Math.floor((lh - 8) / CW) });
    });
    if (p.label_title) text(g, (left + right) / 2, top + ph + lh + 14, p.label_title, { anchor: "middle" });
    return top - y + ph + lh + (p.label_title ? 22 : 4);
  }
  const rh = 22, labW = Math.min(maxLen(labels) * CW + 10, w * 0.35), left = x + labW, right = x + w - 44;
  const pos = axis(g, "x", top + rh * n + 2, left, right, lo, hi, p.value_title);
  const zero = pos(Math.min(Math.max(0, lo), hi));
  values.forEach((v, i) => {
    const by = top + i * rh;
    text(g, left - 6, by + rh / 2, labels[i], { anchor: "end", base: "central", max: Math.floor((labW - 8) / CW) });
    rect(i, Math.min(zero, pos(v)), by + 3, Math.abs(pos(v) - zero), rh - 6);
    text(g, v < 0 ? Math.min(zero, pos(v)) - 4 : Math.max(zero, pos(v)) + 4, by + rh / 2, fmt(v, digits), { anchor: v < 0 ? "end" : "start", base: "central", cls: "tt-ann" });
  });
  svg("line", { x1: zero, x2: zero, y1: top, y2: top + rh * n, class: "tt-axis" }, g);
  if (p.label_title) text(g, x, top - 6, p.label_title, { max: Math.floor(labW / CW) });
  return top - y + rh * n + (p.value_title ? 42 : 24);
}

function lines(ctx, g, p, x, y, w, key) {
  const xs = p.x || [], series = p.series || [], digits = p.digits == null ? 2 : p.digits;
  let top = y;
  const head = panelTitle(g, p, x, top, w);
  top += head ? 22 : 0;
  // Legend, wrapped onto as many lines as it needs.
  let lx = x + 52, ly = top + 8;
  series.forEach((s, k) => {
    const sw = 28 + chars(s.name).length * CW + 14;
    if (lx + sw > x + w && lx > x + 52) { lx = x + 52; ly += 18; }
    svg("line", { x1: lx, x2: lx + 20, y1: ly, y2: ly, stroke: OKABE[k % 6], "stroke-width": 2.5, "stroke-dasharray": s.style === "dashed" ? "6 4" : s.style === "points" ? "1 5" : "none", "stroke-linecap": "round" }, g);
    text(g, lx + 26, ly, s.name, { base: "central" });
    lx += sw;
  });
  top = ly + 16;
  const left = x + 52, right = x + w - 14, ph = 190;
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const X = axis(g, "x", top + ph, left, right, x0, x1, p.x_title);
  const Y = axis(g, "y", left, top + ph, top, p.ymin, p.ymax, p.y_title);
  const plot = svg("g", { class: "tt-lines", tabindex: 0, role: "img", [KEYS_OURS]: "true", "aria-label": p.title || "line chart" }, g);
  if (p.xmarker != null) svg("line", { x1: X(p.xmarker), x2: X(p.xmarker), y1: top, y2: top + ph, class: "tt-marker" }, plot);
  series.forEach((s, k) => {
    const c = OKABE[k % 6], pts = xs.map((v, i) => [X(v), Y(s.y[i])]).filter((q) => isFinite(q[1]));
    if (s.style === "points") pts.forEach(([cx, cy]) => svg("circle", { cx, cy, r: 3, fill: c }, plot));
    else svg("path", { d: "M" + pts.map((q) => q.map((v) => v.toFixed(1)).join(" ")).join("L"), fill: "none", stroke: c, "stroke-width": 2, "stroke-dasharray": s.style === "dashed" ? "6 4" : "none" }, plot);
  });
  const dot = svg("circle", { r: 5, fill: "none", class: "tt-cursor", visibility: "hidden" }, plot);
  const show = (k, i) => {
    const s = series[k];
    if (!s) return;
    ctx.state.cursors[key] = [k, i];
    dot.setAttribute("cx", X(xs[i])); dot.setAttribute("cy", Y(s.y[i])); dot.setAttribute("visibility", "visible");
    ctx.say(`${s.name} at ${fmt(xs[i])}: ${fmt(s.y[i], digits)}`);
  };
  const hit = svg("rect", { x: left, y: top, width: right - left, height: ph, fill: "transparent" }, plot);
  hit.addEventListener("pointermove", (e) => {
    const m = hit.getScreenCTM();
    if (!m) return;
    const pt = new DOMPoint(e.clientX, e.clientY).matrixTransform(m.inverse());
    let best = [Infinity, 0, 0];
    series.forEach((s, k) => xs.forEach((v, i) => {
      const d = (X(v) - pt.x) ** 2 + (Y(s.y[i]) - pt.y) ** 2;
      if (d < best[0]) best = [d, k, i];
    }));
    show(best[1], best[2]);
  });
  plot.addEventListener("focus", () => show(...(ctx.state.cursors[key] || [0, 0])));
  plot.addEventListener("keydown", (e) => {
    const d = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] }[e.key];
    if (!d) return;
    e.preventDefault();
    const [k, i] = ctx.state.cursors[key] || [0, 0];
    show((k + d[0] + series.length) % series.length, Math.min(xs.length - 1, Math.max(0, i + d[1])));
  });
  return top - y + ph + (p.x_title ? 40 : 22);
}

function histogram(ctx, g, p, x, y, w) {
  const edges = p.edges || [], counts = p.counts || [];
  let top = y;
  const head = panelTitle(g, p, x, top, w);
  top += head ? 22 : 0;
  const left = x + 52, right = x + w - 14, ph = 180, ymax = Math.max(1, ...counts) * 1.05;
  const X = axis(g, "x", top + ph, left, right, p.xmin ?? edges[0], p.xmax ?? edges[edges.length - 1], p.x_title);
  const Y = axis(g, "y", left, top + ph, top, 0, ymax, p.y_title);
  const group = svg("g", { class: "tt-bars" }, g);
  counts.forEach((c, i) => svg("rect", { x: X(edges[i]), y: Y(c), width: Math.max(0.5, X(edges[i + 1]) - X(edges[i]) - 0.5), height: Math.max(0, Y(0) - Y(c)), fill: OKABE[0], class: "tt-bar", "data-index": i, "data-value": c }, group));
  group.addEventListener("pointerover", (e) => {
    const i = e.target.dataset.index;
    if (i != null) ctx.say(`${fmt(edges[+i])} to ${fmt(edges[+i + 1])}: ${fmt(counts[+i])}`);
  });
  return top - y + ph + (p.x_title ? 40 : 22);
}

const PANELS = { heatmap, grid, bars, lines, histogram };

// ---------- drawFigure: the public drawing entry (also used by the in-browser MiniLM) ----------

let seq = 0;
// What decides the SVG's structure: everything but values, descriptions, titles' text and a
// heatmap's tokens and mask (its cells and labels are moved, added or removed in place); for a
// paged grid only the items on the current page (and how many there are).
const FREE = new Set(["values", "description", "rows", "cols", "mask"]);
const layout = (frame, pages) => JSON.stringify(
  (frame.panels || []).map((p, i) => (p.kind === "grid" ? { ...p, n: (p.items || []).length, items: pageOf(p, pages, String(i))[0] } : p)),
  (k, v) => (FREE.has(k) ? undefined : k === "title" ? !!v : v),
) + JSON.stringify(frame.widths);
/**
 * Draw one Frame (EXPLORER_DATA.md) into `container`, replacing what it held.
 * `state` is kept by the caller between calls: {pages, cursors} persist grid pages and cursors;
 * `state.readout` (an element) receives hover/keyboard text. Returns the SVG element.
 */
export function drawFigure(container, frame, state = {}) {
  state.pages = state.pages || {};
  state.cursors = state.cursors || {};
  state.frame = frame;
  // Same layout as the SVG on screen (only values/titles differ): recolour it in place.
  const sig = frame && frame.error == null ? layout(frame, state.pages) : null;
  if (sig && sig === state.sig && state.svg && state.svg.parentNode === container) {
    const h = Math.max(0, ...frame.panels.map((p, i) => state.up[i](p)));
    state.svg.setAttribute("viewBox", `0 0 ${W} ${Math.ceil(h + 8)}`);
    state.svg.setAttribute("aria-label", frame.title || "figure");
    return state.svg;
  }
  container.textContent = "";
  state.sig = null;
  if (!frame || frame.error != null) {
    container.appendChild(el("div", "tt-explorer-error", frame ? frame.error : "no data"));
    return null;
  }
  const uid = `tt${Math.random().toString(36).slice(2, 8)}${seq++}`;
  const root = svg("svg", { viewBox: `0 0 ${W} 100`, class: "tt-svg", role: "group", "aria-label": frame.title || "figure" });
  const defs = svg("defs", {}, root);
  const hatches = {};
  const ctx = {
    uid, defs, state, n: 0, up: {},
    say: (s) => { if (state.readout) state.readout.textContent = s; },
    // Hatching for masked cells drawn at `scale` (cells are drawn in units of one cell).
    hatch(scale) {
      let hatchId = hatches[scale];
      if (!hatchId) {
        hatchId = hatches[scale] = `${uid}-hatch${this.n++}`;
        const pat = svg("pattern", { id: hatchId, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: `scale(${1 / scale}) rotate(45)` }, defs);
        svg("rect", { width: 6, height: 6, fill: "#fff" }, pat);
        svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#bbb", "stroke-width": 2 }, pat);
      }
      return `url(#${hatchId})`;
    },
    // Page selector of a grid: HTML buttons above the SVG, redrawing on click.
    pager(key, label, pages, per, count, page) {
      const bar = el("div", "tt-explorer-pages");
      bar.setAttribute("role", "group");
      bar.dataset.panel = key;
      bar.appendChild(el("span", "tt-explorer-pages-label", label));
      for (let k = 0; k < pages; k++) {
        const b = el("button", "", `${k * per}–${Math.min(count, k * per + per) - 1}`);
        b.type = "button";
        b.setAttribute("aria-pressed", String(k === page));
        b.setAttribute("aria-label", `${label} ${b.textContent}`);
        b.addEventListener("click", (e) => {
          const t0 = performance.now();
          state.pages[key] = k;
          drawFigure(container, state.frame, state);
          const nb = container.querySelectorAll(`.tt-explorer-pages[data-panel="${key}"] button`)[k];
          if (nb && e.detail === 0) nb.focus();
          if (state.onDraw) state.onDraw(t0);
        });
        bar.appendChild(b);
      }
      container.insertBefore(bar, root);
      return [...bar.children].slice(1);
    },
  };
  container.appendChild(root);
  const panels = frame.panels || [], ws = frame.widths || panels.map(() => 1);
  const total = ws.reduce((a, b) => a + b, 0) || 1, free = W - GAP * Math.max(0, panels.length - 1);
  let x = 0, h = 0;
  panels.forEach((p, i) => {
    const w = (free * (ws[i] || 1)) / total, draw = PANELS[p.kind];
    const g = svg("g", { class: `tt-panel tt-panel-${p.kind}` }, root);
    if (draw) h = Math.max(h, draw(ctx, g, p, x, 4, w, String(i)));
    else text(g, x, 20, `unknown panel kind: ${p.kind}`);
    x += w + GAP;
  });
  root.setAttribute("viewBox", `0 0 ${W} ${Math.ceil(h + 8)}`);
  state.svg = root;
  state.up = ctx.up;
  if (panels.every((_, i) => ctx.up[i])) state.sig = sig;
  return root;
}

// ---------- the explorer: controls + figure + readout + status ----------

const CSS = `
.tt-explorer{font-family:var(--pst-font-family-base,var(--jp-ui-font-family,system-ui,-apple-system,"Segoe UI",sans-serif));margin:1em 0;line-height:1.4}
.tt-explorer .tt-explorer-title{font-weight:600;margin-bottom:.4em}
.tt-explorer .tt-explorer-controls{display:flex;flex-wrap:wrap;gap:.4em 1.4em;align-items:center;margin-bottom:.5em}
.tt-explorer .tt-explorer-control{display:flex;align-items:center;gap:.5em}
.tt-explorer input[type=range]{width:11em}
.tt-explorer output{min-width:3em;font-variant-numeric:tabular-nums}
.tt-explorer select,.tt-explorer input[type=text],.tt-explorer button{font:inherit;font-size:.9em;padding:.15em .4em;border:1px solid #bbb;border-radius:4px;background:#fff;color:#222}
.tt-explorer input[type=text]{width:16em}
.tt-explorer button[aria-pressed=true]{background:#0072B2;color:#fff;border-color:#0072B2}
.tt-explorer .tt-explorer-pages{display:flex;gap:.3em;align-items:center;margin:.2em 0}
.tt-explorer .tt-explorer-frame-title{font-size:.95em;text-align:center}
.tt-explorer .tt-svg{display:block;width:100%;height:auto;max-width:860px;overflow:visible;font-family:inherit;fill:currentColor}
.tt-explorer .tt-axis{stroke:currentColor;stroke-opacity:.6}
.tt-explorer .tt-marker{stroke:#555;stroke-dasharray:4 3}
.tt-explorer .tt-cursor{stroke:#D55E00;stroke-width:2.5;pointer-events:none}
.tt-explorer .tt-ann{pointer-events:none}
.tt-explorer [tabindex]:focus{outline:none}
.tt-explorer [tabindex]:focus-visible .tt-cursor{stroke-width:3}
.tt-explorer .tt-explorer-readout{min-height:1.4em;font-size:.9em;font-variant-numeric:tabular-nums}
.tt-explorer .tt-explorer-status{font-size:.9em;color:#555}
.tt-explorer .tt-explorer-status.tt-error{color:#b2182b}
.tt-explorer .tt-explorer-error{color:#b2182b}
.tt-explorer .tt-explorer-caption{font-size:.9em;color:#555;margin-top:.3em}
`;

function injectCss() {
  if (document.getElementById("tt-explorer-css")) return;
  const s = el("style", "", CSS);
  s.id = "tt-explorer-css";
  document.head.appendChild(s);
}

// One view of an explorer in `host`: returns {remove, onMsg (for the kernel's replies)}.
function view(model, host) {
  injectCss();
  host.classList.add("tt-explorer");
  host.dataset.ttMounted = "1";
  let spec = model.get("spec");
  if (typeof spec === "string") spec = JSON.parse(spec);
  const frames = Object.assign({}, spec.frames);
  const controls = (spec.controls || []).map((c) => ({ ...c, labels: [...c.labels] }));
  const index = controls.map((c) => c.index || 0);
  const live = typeof model.send === "function";
  const box = el("div", "tt-explorer-body");
  if (spec.title) box.appendChild(el("div", "tt-explorer-title", spec.title));
  const bar = el("div", "tt-explorer-controls");
  const frameTitle = el("div", "tt-explorer-frame-title");
  const figure = el("div", "tt-explorer-figure");
  const readout = el("div", "tt-explorer-readout");
  const status = el("div", "tt-explorer-status");
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  const caption = el("div", "tt-explorer-caption", spec.caption || "");
  const state = { pages: {}, cursors: {}, readout };
  const setStatus = (s, error) => { status.textContent = s; status.classList.toggle("tt-error", !!error); };
  const finish = (t0) => {
    const ms = performance.now() - t0, key = index.join(",");
    host.dataset.key = key;
    host.dataset.renderMs = ms.toFixed(2);
    if (Array.isArray(window.__ttRenderLog)) window.__ttRenderLog.push({ key, ms });
  };
  state.onDraw = finish;
  const update = (t0 = performance.now()) => {
    const frame = frames[index.join(",")] || { error: `no data for ${index.join(",")}` };
    readout.textContent = "";
    if (frame.error != null) {
      figure.hidden = true; frameTitle.textContent = "";
      figure.textContent = "";
      setStatus(String(frame.error), true);
    } else {
      figure.hidden = false;
      frameTitle.textContent = frame.title || "";
      drawFigure(figure, frame, state);
      setStatus(frame.description || "");
    }
    finish(t0);
  };
  const stamp = (e) => (e && e.timeStamp > 0 ? Math.min(e.timeStamp, performance.now()) : performance.now());
  const setters = controls.map((c, k) => {
    const wrap = el("label", "tt-explorer-control");
    wrap.appendChild(el("span", "tt-explorer-label", c.label || c.name));
    bar.appendChild(wrap);
    if (c.kind === "slider") {
      const input = el("input");
      Object.assign(input, { type: "range", min: 0, max: c.labels.length - 1, step: 1, value: index[k] });
      input.name = c.name;
      const out = el("output", "", c.labels[index[k]]);
      input.setAttribute("aria-valuetext", c.labels[index[k]]);
      input.addEventListener("input", (e) => {
        index[k] = +input.value;
        out.textContent = c.labels[index[k]];
        input.setAttribute("aria-valuetext", c.labels[index[k]]);
        update(stamp(e));
      });
      wrap.append(input, out);
      return null;
    }
    const select = el("select");
    select.name = c.name;
    const fillOptions = () => {
      select.textContent = "";
      c.labels.forEach((l, i) => select.appendChild(new Option(l, String(i))));
      select.value = String(index[k]);
    };
    fillOptions();
    select.addEventListener("change", (e) => { index[k] = +select.value; update(stamp(e)); });
    wrap.appendChild(select);
    if (c.kind !== "text" || !live) return null;
    // Live text control: the reader's own sentence goes to the kernel.
    const form = el("form", "tt-explorer-text");
    const input = el("input");
    input.type = "text";
    input.placeholder = "your own sentence";
    input.setAttribute("aria-label", `${c.label || c.name}: your own sentence`);
    const go = el("button", "", "Show");
    go.type = "submit";
    form.append(input, go);
    const ask = () => {
      const t = input.value.trim();
      if (!t) { setStatus("Type a sentence first.", true); return; }
      setStatus("computing…");
      model.send({ type: "text", control: c.name, text: t });
    };
    form.addEventListener("submit", (e) => { e.preventDefault(); ask(); });
    // Enter submits by itself here: a notebook's own key handling cancels the form's.
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); e.stopPropagation(); ask(); }
    });
    bar.appendChild(form);
    return { control: c, k, fillOptions };
  });
  // Answers from the kernel to a text control.
  const onMsg = (msg) => {
    if (msg && msg.type === "progress") { setStatus(String(msg.message)); return; }
    if (!msg || (msg.type !== "frames" && msg.type !== "error")) return;
    const s = setters.find((x) => x && x.control.name === msg.control);
    if (msg.type === "error") { setStatus(String(msg.message), true); figure.hidden = true; frameTitle.textContent = ""; return; }
    const t0 = performance.now();
    Object.assign(frames, msg.frames);
    if (s) {
      s.control.labels[msg.index] = msg.text;
      index[s.k] = msg.index;
      s.fillOptions();
    }
    update(t0);
  };
  box.append(bar, frameTitle, figure, readout, status, caption);
  host.appendChild(box);
  update();
  return { remove: () => box.remove(), onMsg };
}

// anywidget entry: one view, drawn again when the kernel replaces `spec`.
function render({ model, el: host }) {
  let v = view(model, host);
  const onMsg = (msg) => v.onMsg(msg);
  const onSpec = () => { v.remove(); v = view(model, host); };
  model.on("msg:custom", onMsg);
  model.on("change:spec", onSpec);
  return () => {
    if (model.off) { model.off("msg:custom", onMsg); model.off("change:spec", onSpec); }
    v.remove();
  };
}

// A stand-in for the widget model in the built book: data only, no kernel. An explorer whose
// spec names a model that runs in the page (`browser_model`) answers typed sentences there.
function staticModel(spec, host) {
  const listeners = [];
  const model = {
    get: (k) => (k === "spec" ? spec : undefined),
    on(event, cb) { if (event === "msg:custom") listeners.push(cb); },
    off() {},
  };
  const answer = spec.browser_model && IN_PAGE_MODELS[spec.browser_model.name];
  if (answer) {
    const typed = {};
    model.send = (msg) => {
      const reply = (r) => listeners.forEach((cb) => cb({ control: msg.control, text: msg.text, ...r }));
      answer(spec, msg, typed, reply, host).catch((err) => reply({ type: "error", message: err.message }));
    };
  }
  return model;
}

const loadedModels = {};
const mb = (bytes) => (bytes / 1e6).toFixed(1);

// Chapter 7: every head of a chosen layer of MiniLM, run in the page by onnxruntime-web
// (`_models/minilm/minilm.js`), loaded only when the reader first types a sentence; under the
// explorer, minilm.js's analyses of that sentence (heads ranked for a pair of tokens, a token's
// similarity to anchor words by layer), drawn by drawFigure.
async function minilmLayers(spec, msg, typed, reply, host) {
  const where = spec.browser_model;
  if (globalThis.location.protocol === "file:") throw new Error(where.file_message);
  const root = new URL(where.site_root, globalThis.location.href);
  const lib = await import(new URL("_models/minilm/minilm.js", root).href);
  if (!loadedModels.minilm) {
    loadedModels.minilm = lib.loadMiniLM(root.href, ({ loaded, total, done }) => reply({
      type: "progress",
      message: done ? "MiniLM loaded; running it…" : `loading MiniLM into this page: ${mb(loaded)} of ${mb(total)} MB`,
    }));
    loadedModels.minilm.catch(() => { delete loadedModels.minilm; });
  }
  const model = await loadedModels.minilm;
  const result = await model.run(msg.text);
  const c = spec.controls.findIndex((x) => x.name === msg.control);
  const layer = spec.controls.findIndex((x) => x.name === "layer");
  const examples = spec.controls[c].labels;
  if (!(msg.text in typed)) typed[msg.text] = examples.length + Object.keys(typed).length;
  const index = examples.includes(msg.text) ? examples.indexOf(msg.text) : typed[msg.text];
  const frames = {};
  spec.controls[layer].labels.forEach((label, i) => {
    const key = []; key[c] = index; key[layer] = i;
    frames[key.join(",")] = lib.layerHeadsFrame(result, Number(label));
  });
  reply({ type: "frames", index, frames });
  host.ttAnalyses = host.ttAnalyses || lib.analysesView(host, model, drawFigure);
  await host.ttAnalyses.show(result);
}

const IN_PAGE_MODELS = { "minilm-layers": minilmLayers };

/** Mount every `.tt-explorer` on the page that is not mounted yet (idempotent). */
export function mountStatic(root = document) {
  for (const host of root.querySelectorAll(".tt-explorer:not([data-tt-mounted])")) {
    const data = host.querySelector("script.tt-explorer-data");
    if (!data) continue;
    host.dataset.ttMounted = "1";
    try {
      render({ model: staticModel(JSON.parse(data.textContent), host), el: host });
    } catch (err) {
      console.error("explorer:", err);
      host.appendChild(el("div", "tt-explorer-error", `This explorer could not be drawn: ${err.message}`));
    }
  }
}

export default { render };
