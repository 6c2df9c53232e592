// A canvas flame graph (icicle: root on top, or callers-up when inverted) of the API's pre-ordered
// elements. Widths are proportional to total; a node's children are laid out left to right in
// the API's order (heaviest first). Three kinds of blocks are drawn:
//  - frames;
//  - merged frames: the children of one parent that are each narrower than MIN_PX are drawn as
//    one block ("N frames, total X"), and so are all the descendants of a merged block at each
//    depth, so no part of a node's value is ever left white;
//  - "other" (hatched): the part of a node that neither its children nor its self cover, which
//    is what the server's maxNodes left out (total - self - sum of children).
// Text is drawn with fillText, so names are never parsed as markup.

const ROW = 18;
const MIN_PX = 2; // narrower frames are drawn merged with their narrow siblings
const FONT = "12px ui-monospace, SFMono-Regular, Menlo, monospace";

// The tree in typed arrays: a merged tree can have tens of thousands of nodes.
// A frame of a function without a name (Go's threadcreate stacks) is named "" in the tree, as
// `go tool pprof -raw` prints it; drawn as pprof's reports show it.
export function shownName(name) {
  return name === "" ? "<unknown>" : name;
}

export function buildTree(elements, weightOf = (e) => e.total, selfOf = (e) => e.self) {
  const n = elements.length;
  const parent = new Int32Array(n), depth = new Int32Array(n), end = new Int32Array(n);
  const total = new Float64Array(n), self = new Float64Array(n), x = new Float64Array(n), w = new Float64Array(n);
  const next = new Float64Array(n); // where the next child of a node starts
  const index = new Map();
  const names = new Array(n);
  const kids = Array.from({ length: n }, () => []);
  let maxDepth = 0;
  for (let i = 0; i < n; i++) {
    const e = elements[i];
    index.set(e.id, i);
    names[i] = e.codeSignature;
    total[i] = weightOf(e);
    self[i] = selfOf(e);
    const p = i === 0 ? -1 : index.get(e.parentId);
    parent[i] = p;
    if (p >= 0) kids[p].push(i);
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
  for (let i = n - 1; i >= 0; i--) { // pre-order: a subtree is the range [i, end[i])
    const k = kids[i];
    end[i] = k.length ? end[k[k.length - 1]] : i + 1;
  }
  const other = []; // [node, x, width, value] of what maxNodes dropped under a node
  for (let i = 0; i < n; i++) {
    const gap = x[i] + w[i] - next[i] - self[i] / root;
    if (gap > 1e-9) other.push([i, next[i], gap, gap * root]);
  }
  const byDepth = Array.from({ length: maxDepth + 1 }, () => []);
  for (let i = 0; i < n; i++) byDepth[depth[i]].push(i); // pre-order: increasing x per depth
  return { n, parent, depth, end, total, self, x, w, names, kids, maxDepth, byDepth, other, elements };
}

// The names from the root's child down to node i (the API's `focus`).
export function pathOf(tree, i) {
  const path = [];
  for (let a = i; a > 0; a = tree.parent[a]) path.push(tree.names[a]);
  return path.reverse();
}

// The node at `path` below the root, or -1.
export function findPath(tree, path) {
  let at = 0;
  for (const name of path) {
    at = tree.kids[at].find((k) => tree.names[k] === name) ?? -1;
    if (at < 0) return -1;
  }
  return at;
}

// A matcher for search text: a substring, or a /regex/; {error} for an invalid regex.
export function matcher(text) {
  if (text.length > 2 && text.startsWith("/") && text.endsWith("/")) {
    try {
      const re = new RegExp(text.slice(1, -1), "i");
      return { test: (s) => re.test(s) };
    } catch (e) {
      return { error: `invalid regular expression ${text}: ${e.message}` };
    }
  }
  const needle = text.toLowerCase();
  return { test: (s) => s.toLowerCase().includes(needle) };
}

function hashHue(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) | 0;
  return Math.abs(h);
}

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

export class FlameGraph {
  // opts.color(i, tree) -> CSS colour overrides the default warm palette (the diff view uses it)
  // opts.describe(i, tree), opts.describeMerged(block, tree), opts.describeOther(i, value, tree)
  //   -> lines for the tooltip
  // opts.onZoom(i): a node was chosen (click, Enter); without it the graph zooms by itself
  // opts.onReset(): Escape; opts.inverted: callers drawn upwards (the sandwich's upper half)
  constructor(canvas, tooltip, opts = {}) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.opts = opts;
    this.tree = null;
    this.focus = 0;
    this.matched = null;
    this.marked = null; // every occurrence of the function chosen in the table
    this.rows = [];
    this.hovered = null;
    this.selected = null; // the keyboard's block
    canvas.__graph = this; // for tests: the layout they find frames in
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "img");
    canvas.addEventListener("mousemove", (ev) => this.hover(ev));
    canvas.addEventListener("mouseleave", () => { this.tooltip.hidden = true; this.hovered = null; this.draw(); });
    canvas.addEventListener("click", (ev) => {
      const b = this.blockAt(ev);
      if (b) this.activate(b);
    });
    canvas.addEventListener("keydown", (ev) => this.key(ev));
    canvas.addEventListener("blur", () => { this.tooltip.hidden = true; });
    new ResizeObserver(() => this.draw()).observe(canvas.parentElement);
  }

  setTree(tree, focus = 0) {
    this.tree = tree;
    this.matched = null;
    this.marked = null;
    this.selected = null;
    this.hovered = null;
    this.zoomTo(focus, false);
  }

  // Nothing drawn: the graph of an earlier choice must not stand beside the error of this one.
  clear() {
    this.tree = null;
    this.rows = [];
    this.matched = this.marked = this.selected = this.hovered = null;
    this.tooltip.hidden = true;
    this.canvas.width = 0;
    this.canvas.style.height = "0px";
    delete this.canvas.dataset.focus;
  }

  zoomTo(i, notify = true) {
    this.focus = i;
    this.canvas.dataset.focus = this.tree.names[i]; // what is zoomed, for people and tests alike
    this.draw();
    if (notify && this.opts.onZoomed) this.opts.onZoomed(i);
  }

  // The node a block leads to: a frame itself; for "other" the node it belongs to (its
  // subtree is what the server can send); for merged frames their parent, or when that is
  // already the zoomed node, the heaviest of them.
  target(b) {
    if (b.kind !== "merged") return b.i;
    if (b.parentNode >= 0 && b.parentNode !== this.focus) return b.parentNode;
    return b.heaviest;
  }

  activate(b) {
    const i = this.target(b);
    if (!this.selected) this.tooltip.hidden = true; // the block under the mouse is about to move
    if (this.opts.onZoom) this.opts.onZoom(i);
    else this.zoomTo(i);
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
    const m = matcher(text);
    if (m.error) {
      this.matched = null;
      this.draw();
      return { error: m.error };
    }
    const { count, total, matched } = this.matching(m.test);
    this.matched = matched;
    this.draw();
    return { count, total, root: t.total[0] };
  }

  matching(test) {
    const t = this.tree;
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
    return { count, total, matched };
  }

  // Marks every occurrence of one function (the table's choice); null clears.
  mark(name) {
    this.marked = name && this.tree ? this.matching((s) => s === name).matched : null;
    this.draw();
  }

  // Blocks per depth, left to right, for the current zoom and width.
  layout(width) {
    const t = this.tree;
    const fx = t.x[this.focus], fw = t.w[this.focus] || 1;
    const scale = width / fw;
    const rows = [];
    const put = (d, b) => { (rows[d] || (rows[d] = [])).push(b); };
    for (let a = this.focus; a >= 0; a = t.parent[a]) { // the zoomed node and its ancestors span the view
      rows[t.depth[a]] = [{ kind: "node", i: a, depth: t.depth[a], left: 0, right: width }];
    }
    const blockOf = new Map(); // merged node -> its block
    const mergedUnder = new Map(); // parent node or parent block -> merged block of its children
    let frames = 0, merged = 0;
    for (let i = this.focus + 1; i < t.end[this.focus]; i++) {
      const p = t.parent[i], d = t.depth[i];
      const parentBlock = blockOf.get(p);
      if (parentBlock || t.w[i] * scale < MIN_PX) {
        const key = parentBlock || p;
        let b = mergedUnder.get(key);
        if (!b) {
          b = { kind: "merged", depth: d, x0: t.x[i], x1: t.x[i] + t.w[i], count: 0, total: 0, heaviest: i,
            parentNode: parentBlock ? -1 : p, parentBlock, members: [] };
          mergedUnder.set(key, b);
          put(d, b);
        }
        b.x0 = Math.min(b.x0, t.x[i]);
        b.x1 = Math.max(b.x1, t.x[i] + t.w[i]);
        b.count++;
        b.total += t.total[i];
        if (t.total[i] > t.total[b.heaviest]) b.heaviest = i;
        b.members.push(i);
        blockOf.set(i, b);
        merged++;
      } else {
        put(d, { kind: "node", i, depth: d, left: (t.x[i] - fx) * scale, right: (t.x[i] + t.w[i] - fx) * scale });
        frames++;
      }
    }
    for (const row of rows) {
      for (const b of row || []) {
        if (b.kind !== "merged") continue;
        b.left = (b.x0 - fx) * scale;
        b.right = Math.max(b.left + 1, (b.x1 - fx) * scale); // never invisible
      }
    }
    for (const [i, ox, ow, value] of t.other) {
      if (blockOf.has(i) || t.depth[i] < t.depth[this.focus] || i < this.focus || i >= t.end[this.focus]) continue;
      const left = (ox - fx) * scale;
      put(t.depth[i] + 1, { kind: "other", i, value, depth: t.depth[i] + 1, left, right: Math.max(left + 1, left + ow * scale) });
    }
    for (const row of rows) if (row) row.sort((a, b) => a.left - b.left);
    this.canvas.dataset.frames = String(frames); // drawn one by one
    this.canvas.dataset.merged = String(merged); // drawn inside merged blocks
    return rows;
  }

  y(d) { return (this.opts.inverted ? this.rows.length - 1 - d : d) * ROW; }

  draw() {
    const t = this.tree, c = this.canvas;
    if (!t) return;
    const ratio = window.devicePixelRatio || 1;
    const width = c.parentElement.clientWidth || 800;
    this.rows = this.layout(width);
    const height = this.rows.length * ROW;
    c.width = Math.floor(width * ratio);
    c.height = Math.floor(height * ratio);
    c.style.height = height + "px";
    const g = c.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = FONT;
    g.textBaseline = "middle";
    const charWidth = g.measureText("M").width;
    const text = cssVar("--flame-text", "#111827"), dim = cssVar("--flame-dim-text", "#6b7280");
    const hatch = this.hatchPattern(g);
    const label = (s, left, right, y, color) => {
      const room = Math.floor((right - left - 6) / charWidth);
      if (room < 3) return;
      g.fillStyle = color;
      g.fillText(s.length > room ? s.slice(0, room - 1) + "…" : s, left + 3, y + ROW / 2);
    };
    for (const row of this.rows) {
      for (const b of row || []) {
        const left = Math.max(0, b.left), right = Math.min(width, b.right);
        if (right <= 0 || left >= width) continue;
        const y = this.y(b.depth), wpx = Math.max(right - left - 0.5, 0.5);
        if (b.kind === "other") {
          g.fillStyle = hatch;
          g.fillRect(left, y, wpx, ROW - 1);
        } else if (b.kind === "merged") {
          const found = this.matched && b.members.some((i) => this.matched[i]);
          const marked = this.marked && b.members.some((i) => this.marked[i]);
          g.fillStyle = marked ? cssVar("--flame-mark", "#a78bfa") : found ? cssVar("--flame-match", "#f472b6") : cssVar("--flame-merged", "#c8b79a");
          g.fillRect(left, y, wpx, ROW - 1);
          label(`${b.count} frames`, left, right, y, text);
        } else {
          g.fillStyle = this.colorOf(b.i);
          g.fillRect(left, y, wpx, ROW - 1);
          label(shownName(t.names[b.i]), left, right, y, this.matched && !this.matched[b.i] ? dim : text);
        }
      }
    }
    for (const b of [this.hovered, this.selected]) {
      if (!b) continue;
      const fresh = this.find(b);
      if (!fresh) continue;
      g.strokeStyle = cssVar("--flame-outline", "#111827");
      g.lineWidth = 2;
      g.strokeRect(Math.max(1, fresh.left) , this.y(fresh.depth) + 1, Math.max(Math.min(width, fresh.right) - Math.max(1, fresh.left) - 1, 1), ROW - 3);
    }
  }

  // The block of the current layout that stands for `b` (layouts are rebuilt on every draw).
  find(b) {
    const row = this.rows[b.depth] || [];
    if (b.kind === "merged") return row.find((r) => r.kind === "merged" && r.heaviest === b.heaviest) || null;
    return row.find((r) => r.kind === b.kind && r.i === b.i) || null;
  }

  hatchPattern(g) {
    const p = document.createElement("canvas");
    p.width = p.height = 6;
    const pg = p.getContext("2d");
    pg.fillStyle = cssVar("--flame-hatch-bg", "#e5e7eb");
    pg.fillRect(0, 0, 6, 6);
    pg.strokeStyle = cssVar("--flame-hatch-line", "#9ca3af");
    pg.beginPath();
    pg.moveTo(0, 6);
    pg.lineTo(6, 0);
    pg.stroke();
    return g.createPattern(p, "repeat");
  }

  colorOf(i) {
    if (this.marked && this.marked[i]) return cssVar("--flame-mark", "#a78bfa");
    if (this.matched && !this.matched[i]) return cssVar("--flame-unmatched", "#e5e7eb");
    if (this.matched) return cssVar("--flame-match", "#f472b6");
    if (this.opts.color) return this.opts.color(i, this.tree);
    if (i === 0) return cssVar("--flame-root", "#d1d5db");
    const hsh = hashHue(this.tree.names[i]);
    return `hsl(${10 + (hsh % 45)}, ${70 + (hsh >> 8) % 20}%, ${58 + (hsh >> 16) % 12}%)`;
  }

  blockAt(ev) {
    const rect = this.canvas.getBoundingClientRect();
    const r = Math.floor((ev.clientY - rect.top) / ROW);
    const d = this.opts.inverted ? this.rows.length - 1 - r : r;
    const row = this.rows[d];
    if (!row) return null;
    const at = ev.clientX - rect.left;
    let best = null;
    for (const b of row) if (b.left <= at && at < b.right) best = b; // the last wins, as drawn
    return best;
  }

  lines(b) {
    const o = this.opts, t = this.tree;
    if (b.kind === "merged") return o.describeMerged ? o.describeMerged(b, t) : [`${b.count} frames`];
    if (b.kind === "other") return o.describeOther ? o.describeOther(b.i, b.value, t) : ["other"];
    return o.describe ? o.describe(b.i, t) : [t.names[b.i]];
  }

  showTooltip(b, x, y) {
    this.tooltip.textContent = this.lines(b).join("\n");
    this.tooltip.hidden = false;
    this.tooltip.style.left = Math.max(4, Math.min(x + 14, window.innerWidth - this.tooltip.offsetWidth - 8)) + "px";
    this.tooltip.style.top = y + 14 + "px";
  }

  hover(ev) {
    const b = this.blockAt(ev);
    const same = b && this.hovered && b.kind === this.hovered.kind && b.i === this.hovered.i && b.heaviest === this.hovered.heaviest;
    this.hovered = b;
    if (!same) this.draw();
    if (!b) { this.tooltip.hidden = true; return; }
    this.showTooltip(b, ev.clientX, ev.clientY);
  }

  // Arrows move between blocks (up: parent, down: first child, left/right: neighbours of the
  // row), Enter zooms into the selected one, Escape resets.
  key(ev) {
    if (!this.tree) return;
    const keys = ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Enter", "Escape"];
    if (!keys.includes(ev.key)) return;
    ev.preventDefault();
    if (ev.key === "Escape") { this.selected = null; if (this.opts.onReset) this.opts.onReset(); else this.zoomTo(0); return; }
    let cur = this.selected && this.find(this.selected);
    if (!cur) cur = this.rows[this.tree.depth[this.focus]][0];
    else if (ev.key === "Enter") { this.activate(cur); return; }
    else {
      const up = this.opts.inverted ? "ArrowDown" : "ArrowUp", down = this.opts.inverted ? "ArrowUp" : "ArrowDown";
      const mid = (b) => (Math.max(0, b.left) + b.right) / 2;
      const row = this.rows[cur.depth];
      const k = row.indexOf(cur);
      if (ev.key === "ArrowLeft" && k > 0) cur = row[k - 1];
      else if (ev.key === "ArrowRight" && k < row.length - 1) cur = row[k + 1];
      else if (ev.key === up && cur.depth > 0) {
        cur = (this.rows[cur.depth - 1] || []).find((b) => b.left <= mid(cur) && mid(cur) <= b.right) || this.rows[cur.depth - 1][0];
      } else if (ev.key === down && this.rows[cur.depth + 1]) {
        cur = this.rows[cur.depth + 1].find((b) => b.right > cur.left && b.left < cur.right) || cur;
      }
    }
    this.selected = cur;
    this.canvas.dataset.selected = cur.kind === "node" ? this.tree.names[cur.i] : cur.kind;
    const lines = this.lines(cur);
    this.canvas.setAttribute("aria-label", lines.join(". "));
    this.draw();
    const rect = this.canvas.getBoundingClientRect();
    this.showTooltip(cur, rect.left + Math.max(0, cur.left), rect.top + this.y(cur.depth) + ROW / 2);
  }
}

// Per function: self summed over its nodes, total summed over the nodes with no ancestor of
// the same name (so recursion is not counted twice). From the tree loaded: the fallback when
// the server has no /top.
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
    if (!r) rows.set(name, (r = { name, flat: 0, cum: 0 }));
    r.flat += tree.self[i];
    if (!onPath.get(name)) r.cum += tree.total[i];
    onPath.set(name, (onPath.get(name) || 0) + 1);
    stack.push(i);
  }
  return [...rows.values()];
}

// The sandwich of one function from the loaded tree: its callers (paths up to the root, merged,
// the function at the bottom) and its callees (its subtrees, merged), each as API-shaped
// elements in pre-order. Outermost occurrences only, so recursion is counted once.
export function sandwich(tree, name) {
  const callers = { name, total: 0, self: 0, kids: new Map() };
  const callees = { name, total: 0, self: 0, kids: new Map() };
  const child = (node, n) => {
    let c = node.kids.get(n);
    if (!c) node.kids.set(n, (c = { name: n, total: 0, self: 0, kids: new Map() }));
    return c;
  };
  const addSubtree = (into, i) => {
    for (const k of tree.kids[i]) {
      const c = child(into, tree.names[k]);
      c.total += tree.total[k];
      c.self += tree.self[k];
      addSubtree(c, k);
    }
  };
  let occurrences = 0;
  const visit = (i, inside) => {
    const hit = i > 0 && tree.names[i] === name;
    if (hit && !inside) {
      occurrences++;
      const v = tree.total[i];
      callees.total += v;
      callees.self += tree.self[i];
      addSubtree(callees, i);
      callers.total += v;
      let at = callers;
      for (let a = tree.parent[i]; a > 0; a = tree.parent[a]) { at = child(at, tree.names[a]); at.total += v; }
      at.self += v; // the path ends here
    }
    for (const k of tree.kids[i]) visit(k, inside || hit);
  };
  visit(0, false);
  const elements = (root) => {
    const out = [];
    let id = 0;
    const emit = (node, parentId) => {
      const myId = String(id++);
      out.push({ id: myId, parentId, codeSignature: node.name, total: node.total, self: node.self });
      for (const c of [...node.kids.values()].sort((a, b) => b.total - a.total || (a.name < b.name ? -1 : 1))) emit(c, myId);
    };
    emit(root, null);
    return out;
  };
  return { occurrences, callers: elements(callers), callees: elements(callees) };
}
