// A canvas flame graph (icicle: root on top) of the API's pre-ordered elements. Widths are
// proportional to total; a node's children are laid out left to right in the API's order; the
// part of a node that neither its children nor its self cover is what maxNodes left out, drawn
// hatched as "other". Text is drawn with fillText, so names are never parsed as markup.

const ROW = 18;
const FONT = "12px ui-monospace, SFMono-Regular, Menlo, monospace";

// The tree in typed arrays: a merged tree can have tens of thousands of nodes.
export function buildTree(elements, weightOf = (e) => e.total, selfOf = (e) => e.self) {
  const n = elements.length;
  const parent = new Int32Array(n), depth = new Int32Array(n);
  const total = new Float64Array(n), self = new Float64Array(n), x = new Float64Array(n), w = new Float64Array(n);
  const next = new Float64Array(n); // where the next child of a node starts
  const index = new Map();
  const names = new Array(n);
  let maxDepth = 0;
  for (let i = 0; i < n; i++) {
    const e = elements[i];
    index.set(e.id, i);
    names[i] = e.codeSignature;
    total[i] = weightOf(e);
    self[i] = selfOf(e);
    const p = i === 0 ? -1 : index.get(e.parentId);
    parent[i] = p;
    depth[i] = p < 0 ? 0 : depth[p] + 1;
    if (depth[i] > maxDepth) maxDepth = depth[i];
  }
  const root = total[0] || 1;
  for (let i = 0; i < n; i++) {
    w[i] = total[i] / root;
    const p = parent[i];
    x[i] = p < 0 ? 0 : next[p];
    if (p >= 0) next[p] += w[i];
    next[i] = x[i];
  }
  const other = []; // [node, x, width] of what maxNodes dropped under a node
  for (let i = 0; i < n; i++) {
    const gap = x[i] + w[i] - next[i] - self[i] / root;
    if (gap > 1e-9) other.push([i, next[i], gap]);
  }
  const byDepth = Array.from({ length: maxDepth + 1 }, () => []);
  for (let i = 0; i < n; i++) byDepth[depth[i]].push(i); // pre-order: increasing x per depth
  return { n, parent, depth, total, self, x, w, names, maxDepth, byDepth, other, elements };
}

function hashHue(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) | 0;
  return Math.abs(h);
}

export class FlameGraph {
  // opts.color(i, tree) -> CSS color overrides the default warm palette (the diff view uses it)
  // opts.describe(i, tree) -> lines for the tooltip; opts.onZoom(i)
  constructor(canvas, tooltip, opts = {}) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.opts = opts;
    this.tree = null;
    this.focus = 0;
    this.matched = null;
    canvas.addEventListener("mousemove", (ev) => this.hover(ev));
    canvas.addEventListener("mouseleave", () => { this.tooltip.hidden = true; });
    canvas.addEventListener("click", (ev) => {
      const i = this.nodeAt(ev);
      if (i >= 0) this.zoomTo(i);
    });
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
  }

  setTree(tree) {
    this.tree = tree;
    this.focus = 0;
    this.canvas.dataset.focus = tree.names[0];
    this.matched = null;
    this.draw();
  }

  zoomTo(i) {
    this.focus = i;
    this.canvas.dataset.focus = this.tree.names[i]; // what is zoomed, for people and tests alike
    this.draw();
    if (this.opts.onZoom) this.opts.onZoom(i);
  }

  // Highlights the frames whose name contains `text` (or matches /regex/); returns how many
  // match and their total, each match counted once even when matches nest (recursion).
  search(text) {
    const t = this.tree;
    if (!t || !text) {
      this.matched = null;
      this.draw();
      return null;
    }
    let test;
    if (text.length > 2 && text.startsWith("/") && text.endsWith("/")) {
      try { const re = new RegExp(text.slice(1, -1), "i"); test = (s) => re.test(s); } catch { test = () => false; }
    } else {
      const needle = text.toLowerCase();
      test = (s) => s.toLowerCase().includes(needle);
    }
    const matched = new Uint8Array(t.n), under = new Uint8Array(t.n);
    let count = 0, total = 0;
    for (let i = 1; i < t.n; i++) {
      const p = t.parent[i];
      under[i] = under[p] || matched[p];
      if (test(t.names[i])) {
        matched[i] = 1;
        count++;
        if (!under[i]) total += t.total[i];
      }
    }
    this.matched = matched;
    this.draw();
    return { count, total, root: t.total[0] };
  }

  draw() {
    const t = this.tree, c = this.canvas;
    if (!t) return;
    const ratio = window.devicePixelRatio || 1;
    const width = c.parentElement.clientWidth || 800;
    const height = (t.maxDepth + 1) * ROW;
    c.width = Math.floor(width * ratio);
    c.height = Math.floor(height * ratio);
    c.style.height = height + "px";
    const g = c.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = FONT;
    g.textBaseline = "middle";
    const charWidth = g.measureText("M").width;
    const fx = t.x[this.focus], fw = t.w[this.focus] || 1;
    const scale = width / fw;
    const inFocus = (i) => {
      for (let a = i; a >= 0; a = t.parent[a]) if (a === this.focus) return true;
      return false;
    };
    const hatch = this.hatchPattern(g);
    for (let d = 0; d <= t.maxDepth; d++) {
      for (const i of t.byDepth[d]) {
        let left = (t.x[i] - fx) * scale, right = left + t.w[i] * scale;
        if (right <= 0 || left >= width || right - left < 0.3) continue;
        if (d < t.depth[this.focus]) { left = 0; right = width; } // ancestors span the view
        else if (!inFocus(i)) continue;
        left = Math.max(0, left);
        right = Math.min(width, right);
        const y = d * ROW;
        g.fillStyle = this.colorOf(i);
        g.fillRect(left, y, Math.max(right - left - 0.5, 0.5), ROW - 1);
        const room = Math.floor((right - left - 6) / charWidth);
        if (room >= 3) {
          const name = t.names[i];
          g.fillStyle = this.matched && !this.matched[i] ? "#6b7280" : "#111827";
          g.fillText(name.length > room ? name.slice(0, room - 1) + "…" : name, left + 3, y + ROW / 2);
        }
      }
    }
    g.fillStyle = hatch;
    for (const [i, ox, ow] of t.other) {
      if (!(i === this.focus || inFocus(i))) continue;
      const left = (ox - fx) * scale, wpx = ow * scale;
      if (wpx < 0.5 || left >= width) continue;
      g.fillRect(Math.max(0, left), (t.depth[i] + 1) * ROW, wpx, ROW - 1);
    }
  }

  hatchPattern(g) {
    const p = document.createElement("canvas");
    p.width = p.height = 6;
    const pg = p.getContext("2d");
    pg.fillStyle = "#e5e7eb";
    pg.fillRect(0, 0, 6, 6);
    pg.strokeStyle = "#9ca3af";
    pg.beginPath();
    pg.moveTo(0, 6);
    pg.lineTo(6, 0);
    pg.stroke();
    return g.createPattern(p, "repeat");
  }

  colorOf(i) {
    if (this.matched && !this.matched[i]) return "#e5e7eb";
    if (this.matched) return "#f472b6";
    if (this.opts.color) return this.opts.color(i, this.tree);
    if (i === 0) return "#d1d5db";
    const hsh = hashHue(this.tree.names[i]);
    return `hsl(${10 + (hsh % 45)}, ${70 + (hsh >> 8) % 20}%, ${58 + (hsh >> 16) % 12}%)`;
  }

  nodeAt(ev) {
    const t = this.tree;
    if (!t) return -1;
    const rect = this.canvas.getBoundingClientRect();
    const d = Math.floor((ev.clientY - rect.top) / ROW);
    if (d < 0 || d > t.maxDepth) return -1;
    if (d <= t.depth[this.focus]) {
      let a = this.focus;
      while (t.depth[a] > d) a = t.parent[a];
      return a;
    }
    const fx = t.x[this.focus], fw = t.w[this.focus] || 1;
    const at = fx + ((ev.clientX - rect.left) / rect.width) * fw;
    const row = t.byDepth[d];
    let lo = 0, hi = row.length - 1, found = -1;
    while (lo <= hi) { // the last node starting at or before `at`
      const mid = (lo + hi) >> 1;
      if (t.x[row[mid]] <= at) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (found < 0) return -1;
    const i = row[found];
    return at < t.x[i] + t.w[i] ? i : -1;
  }

  hover(ev) {
    const i = this.nodeAt(ev);
    if (i < 0 || !this.opts.describe) { this.tooltip.hidden = true; return; }
    this.tooltip.textContent = this.opts.describe(i, this.tree).join("\n");
    this.tooltip.hidden = false;
    const x = Math.min(ev.clientX + 14, window.innerWidth - this.tooltip.offsetWidth - 8);
    this.tooltip.style.left = x + "px";
    this.tooltip.style.top = ev.clientY + 14 + "px";
  }
}

// Per function: self summed over its nodes, total summed over the nodes with no ancestor of
// the same name (so recursion is not counted twice).
export function topFunctions(tree) {
  const rows = new Map();
  const onPath = new Map();
  const stack = [];
  for (let i = 1; i < tree.n; i++) {
    while (stack.length && stack[stack.length - 1] !== tree.parent[i]) {
      const j = stack.pop();
      onPath.set(tree.names[j], onPath.get(tree.names[j]) - 1);
    }
    const name = tree.names[i];
    let r = rows.get(name);
    if (!r) rows.set(name, (r = { name, self: 0, total: 0 }));
    r.self += tree.self[i];
    if (!onPath.get(name)) r.total += tree.total[i];
    onPath.set(name, (onPath.get(name) || 0) + 1);
    stack.push(i);
  }
  return [...rows.values()];
}
