// proftask's web UI: tasks, progress, the flame graph of a task and the diff of two. Plain ES
// modules over the HTTP API (DESIGN §2); no build step.
import { api, download, query, setToken, token } from "/ui/api.js";
import { FlameGraph, buildTree, topFunctions } from "/ui/flamegraph.js";
import { formatValue, h, pct, time, unitOf } from "/ui/format.js";

const EVENTS = ["CPU", "HEAP", "ALLOCS", "BLOCK", "MUTEX", "GOROUTINE", "THREADCREATE"];
const MAX_NODES = [["2000", "2,000 nodes"], ["5000", "5,000 nodes"], ["20000", "20,000 nodes"], ["50000", "50,000 nodes"]];
const view = document.getElementById("view");
const tooltip = document.getElementById("tooltip");
let timer = null; // the progress refresh of the open task
let createWarning = ""; // the create answer's warning (no live agent), shown on the new task's page

function route() {
  clearInterval(timer);
  tooltip.hidden = true;
  const [path, search] = location.hash.slice(1).split("?");
  const params = new URLSearchParams(search || "");
  const parts = (path || "/tasks").split("/").filter(Boolean);
  view.replaceChildren();
  if (createWarning) view.append(h("p", { id: "create-warning", className: "error", role: "status" }, createWarning));
  createWarning = "";
  if (parts[0] === "task" && parts[1]) return taskView(decodeURIComponent(parts[1]));
  if (parts[0] === "diff") return diffView(params);
  return tasksView(params);
}

function errorBox(id) { return h("p", { id, className: "error", role: "alert" }); }
function showError(box, e) { box.textContent = e ? `${e.code || "ERROR"}: ${e.message}` : ""; }

// ---------------------------------------------------------------- tasks: list and create
async function tasksView(params) {
  const service = params.get("service") || "";
  const listError = errorBox("list-error");
  const createError = errorBox("create-error");
  const body = h("tbody");
  const filter = h("input", { id: "service-filter", value: service, placeholder: "all services" });
  const form = h("form", { id: "create-form", className: "inline" },
    h("label", {}, "Service", h("input", { name: "serviceId", required: false, placeholder: "checkout" })),
    h("label", {}, "Instances (comma-separated)", h("input", { name: "instances", size: 32, placeholder: "checkout-1,checkout-2" })),
    h("label", {}, "Event", h("select", { name: "events" }, EVENTS.map((e) => h("option", { value: e }, e)))),
    h("label", {}, "Duration (min)", h("input", { name: "duration", type: "number", value: "1", style: "width:6em" })),
    h("label", {}, "dumpPeriod", h("input", { name: "dumpPeriod", type: "number", placeholder: "BLOCK/MUTEX", style: "width:8em" })),
    h("button", { type: "submit", id: "create-button" }, "Create task"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const num = (v) => (v === "" || v === null ? null : Number(v));
    const request = {
      serviceId: f.get("serviceId"),
      serviceInstanceIds: String(f.get("instances")).split(",").map((s) => s.trim()).filter(Boolean),
      events: f.get("events"), duration: num(f.get("duration")), dumpPeriod: num(f.get("dumpPeriod")),
    };
    showError(createError, null);
    try {
      const created = await api("/api/v1/pprof/tasks", { method: "POST", body: request });
      createWarning = (created.warnings || []).join(" ");
      location.hash = "#/task/" + encodeURIComponent(created.id);
    } catch (e) { showError(createError, e); }
  });
  view.append(
    h("section", {}, h("h2", {}, "New task"), form, createError),
    h("section", {}, h("h2", {}, "Tasks"),
      h("form", { className: "inline", onsubmit: (ev) => { ev.preventDefault(); location.hash = "#/tasks?" + query({ service: filter.value }); } },
        h("label", {}, "Service", filter), h("button", { type: "submit" }, "Filter")),
      listError,
      h("table", { id: "tasks" }, h("thead", {}, h("tr", {}, ["Created", "Service", "Event", "Instances", "Duration", "Task"].map((c) => h("th", {}, c)))), body)));
  try {
    const { tasks } = await api("/api/v1/pprof/tasks?" + query({ serviceId: service }));
    for (const t of tasks) {
      body.append(h("tr", {},
        h("td", {}, time(t.createTime)), h("td", { className: "name" }, t.serviceId), h("td", {}, t.events),
        h("td", { className: "name" }, t.serviceInstanceIds.join(", ")), h("td", {}, t.duration ? t.duration + " min" : ""),
        h("td", {}, h("a", { href: "#/task/" + encodeURIComponent(t.id) }, t.id))));
    }
    if (!tasks.length) body.append(h("tr", {}, h("td", { colspan: 6, className: "muted" }, "No tasks yet.")));
  } catch (e) { showError(listError, e); }
}

// ---------------------------------------------------------------- one task: progress + flame graph
async function taskView(taskId) {
  const err = errorBox("task-error");
  view.append(err);
  let task;
  try { task = await api("/api/v1/pprof/tasks/" + encodeURIComponent(taskId)); } catch (e) { return showError(err, e); }
  const summary = h("p", { id: "progress-summary", className: "summary" });
  const bar = h("div", { className: "bar" }, h("div", { style: "width:0%" }));
  const rows = h("tbody");
  const progressSection = h("section", { id: "progress" },
    h("h2", {}, `${task.events} task for `, h("span", { className: "name" }, task.serviceId)),
    h("p", { className: "muted" }, `created ${time(task.createTime)} · ${task.duration ? task.duration + " min · " : ""}task ${task.id} · `,
      h("a", { href: "#/diff?" + query({ base: task.id }) }, "compare with another task")),
    h("div", {}, bar, " ", summary),
    h("table", {}, h("thead", {}, h("tr", {}, ["Instance", "Status", "Notified", "Finished", "Messages"].map((c) => h("th", {}, c)))), rows));
  const analysis = h("section", { id: "analysis", hidden: true });
  view.append(progressSection, analysis);
  let shownInstances = "";

  async function refresh() {
    let progress;
    try {
      progress = await api(`/api/v1/pprof/tasks/${encodeURIComponent(taskId)}/progress`);
    } catch (e) {
      if (e.status === 404) { summary.textContent = "waiting for the task's first event…"; return; }
      return showError(err, e);
    }
    const done = new Set(progress.successInstanceIds), failed = new Set(progress.errorInstanceIds);
    rows.replaceChildren();
    for (const instance of task.serviceInstanceIds) {
      const logs = progress.logs.filter((l) => l.instanceId === instance);
      const first = (type) => logs.find((l) => l.operationType === type);
      const status = done.has(instance) ? "finished" : failed.has(instance) ? "error" : first("NOTIFIED") ? "notified" : "waiting";
      const messages = logs.filter((l) => l.operationType !== "NOTIFIED" && l.operationType !== "EXECUTION_FINISHED")
        .map((l) => h("div", {}, `${time(l.operationTime)} ${l.operationType}: ${l.message}`));
      rows.append(h("tr", { "data-instance": instance },
        h("td", { className: "name" }, instance),
        h("td", { className: "status-" + status }, { finished: "finished", error: "error", notified: "notified, profiling", waiting: "waiting for the agent" }[status]),
        h("td", {}, time(first("NOTIFIED")?.operationTime)), h("td", {}, time(first("EXECUTION_FINISHED")?.operationTime)),
        h("td", {}, messages)));
    }
    const settled = task.serviceInstanceIds.filter((i) => done.has(i) || failed.has(i)).length;
    bar.firstChild.style.width = (100 * settled) / task.serviceInstanceIds.length + "%";
    summary.textContent = `${done.size} finished, ${failed.size} failed, ${task.serviceInstanceIds.length - settled} pending`;
    if (settled === task.serviceInstanceIds.length) clearInterval(timer);
    const finished = task.serviceInstanceIds.filter((i) => done.has(i)).join(",");
    if (finished && finished !== shownInstances) {
      shownInstances = finished;
      analysis.hidden = false;
      flameSection(analysis, task, finished.split(","));
    }
  }
  await refresh();
  timer = setInterval(refresh, 2000);
}

function flameSection(section, task, instances) {
  const err = errorBox("analysis-error");
  const picks = instances.map((i) => h("label", { className: "inline" }, h("span", {},
    h("input", { type: "checkbox", name: "instance", value: i, checked: true }), " ", i)));
  const sampleType = h("select", { id: "sample-type" });
  const granularity = h("select", { id: "granularity" }, h("option", { value: "function" }, "function"), h("option", { value: "line" }, "line"));
  const maxNodes = h("select", { id: "max-nodes" }, MAX_NODES.map(([v, label]) => h("option", { value: v, selected: v === "5000" }, label)));
  const searchBox = h("input", { id: "search", placeholder: "search (text or /regex/)", size: 28 });
  const searchInfo = h("span", { id: "search-info", className: "muted" });
  const exports = h("span", { id: "exports" });
  const header = h("p", { id: "flame-header", className: "muted" });
  const canvas = h("canvas", { className: "flame", id: "flame" });
  const top = h("div", { className: "top-table", id: "top-table" });
  const reset = h("button", { type: "button", id: "reset-zoom" }, "Reset zoom");
  section.replaceChildren(
    h("h2", {}, "Flame graph"),
    h("div", { className: "controls" }, h("div", {}, h("div", { className: "muted" }, "Instances"), picks),
      h("label", {}, "Sample type", sampleType), h("label", {}, "Granularity", granularity), h("label", {}, "Size", maxNodes),
      h("label", {}, "Search", searchBox), reset),
    h("p", {}, searchInfo), err, header,
    h("div", { className: "flame-layout" }, h("div", { className: "flame-wrap" }, canvas), top),
    h("p", {}, "Export: ", exports));
  let result = null;
  const graph = new FlameGraph(canvas, tooltip, { describe: (i, t) => describeNode(i, t, result) });
  reset.addEventListener("click", () => graph.zoomTo(0));
  searchBox.addEventListener("input", () => showSearch(graph, searchBox.value, searchInfo, result));

  const selection = () => ({
    instanceIds: [...section.querySelectorAll("input[name=instance]:checked")].map((c) => c.value).join(","),
    sampleType: sampleType.value, granularity: granularity.value,
  });
  async function load() {
    showError(err, null);
    const sel = selection();
    if (!sel.instanceIds) { showError(err, { code: "ARGUMENT_ERROR", message: "choose at least one instance" }); return; }
    const n = Number(maxNodes.value);
    const params = { ...sel, maxNodes: n, instanceStats: n > 0 && n <= 20000 && sel.instanceIds.includes(",") ? "true" : "" };
    try {
      result = await api(`/api/v1/pprof/tasks/${encodeURIComponent(task.id)}/analysis?` + query(params));
    } catch (e) { return showError(err, e); }
    sampleType.replaceChildren(...result.sampleTypes.map((t) => h("option", { value: t, selected: t === result.sampleType }, t)));
    const unit = unitOf(result.sampleType);
    const root = result.tree.elements[0];
    header.textContent = `${result.sampleType}: ${formatValue(root.total, unit)} over ${result.instanceIds.length} instance(s)` +
      (result.truncated ? ` · ${result.truncated.toLocaleString("en-US")} smaller nodes shown as "other" (hatched)` : "");
    graph.setTree(buildTree(result.tree.elements));
    showSearch(graph, searchBox.value, searchInfo, result);
    topTable(top, topFunctions(graph.tree), unit, root.total, result.truncated);
    exports.replaceChildren(...["pprof", "folded", "speedscope"].map((format) => {
      const path = `/api/v1/pprof/tasks/${encodeURIComponent(task.id)}/export?` + query({ ...sel, sampleType: result.sampleType, format });
      const name = `proftask-${task.id}.${{ pprof: "pb.gz", folded: "folded", speedscope: "speedscope.json" }[format]}`;
      return h("a", { href: path, className: "export", "data-format": format, onclick: (ev) => { ev.preventDefault(); download(path, name).catch((e) => showError(err, e)); } }, format, " ");
    }));
  }
  for (const el of [sampleType, granularity, maxNodes, ...section.querySelectorAll("input[name=instance]")]) el.addEventListener("change", load);
  load();
}

function describeNode(i, t, result) {
  const e = t.elements[i];
  const unit = unitOf(result.sampleType);
  const p = t.parent[i];
  const lines = [e.codeSignature,
    `total ${formatValue(e.total, unit)} · ${pct(e.total, t.total[0])} of all · ${p >= 0 ? pct(e.total, t.total[p]) + " of parent" : ""}`,
    `self ${formatValue(e.self, unit)} · ${pct(e.self, t.total[0])} of all`];
  if (e.instances !== undefined) {
    lines.push(`in ${e.instances} of ${result.instanceCount} instances · share ${pct(e.shareMin, 1)} – ${pct(e.shareMax, 1)} of an instance`);
  }
  return lines;
}

function showSearch(graph, text, info, result) {
  const found = graph.search(text);
  info.textContent = found
    ? `${found.count} matching frames · ${formatValue(found.total, unitOf(result?.sampleType))} · ${pct(found.total, found.root)} of total`
    : "";
}

function topTable(container, rows, unit, rootTotal, truncated, columns = [["self", "Self"], ["total", "Total"]]) {
  let sortKey = columns[0][0];
  const render = () => {
    const sorted = [...rows].sort((a, b) => (sortKey === "name" ? a.name.localeCompare(b.name) : Math.abs(b[sortKey]) - Math.abs(a[sortKey]))).slice(0, 300);
    const th = (key, label, cls) => h("th", { className: `sortable ${cls || ""} ${key === sortKey ? "sorted" : ""}`, "data-sort": key,
      onclick: () => { sortKey = key; render(); } }, label);
    container.replaceChildren(...[h("table", {},
      h("thead", {}, h("tr", {}, th("name", "Function"), columns.map(([k, label]) => th(k, label, "num")))),
      h("tbody", {}, sorted.map((r) => h("tr", {}, h("td", { className: "name" }, r.name),
        columns.map(([k]) => h("td", { className: "num", title: formatValue(r[k], unit) }, r.format ? r.format(k) : pct(r[k], rootTotal))))))),
    truncated ? h("p", { className: "muted" }, "From the nodes shown; the hatched rest is not broken down.") : null].filter(Boolean));
  };
  render();
}

// ---------------------------------------------------------------- diff of two tasks / instance sets
async function diffView(params) {
  const err = errorBox("diff-error");
  let tasks = [];
  try { tasks = (await api("/api/v1/pprof/tasks?limit=500")).tasks; } catch (e) { showError(err, e); }
  const taskSelect = (id, chosen) => h("select", { id }, tasks.map((t) =>
    h("option", { value: t.id, selected: t.id === chosen }, `${time(t.createTime)} ${t.events} ${t.serviceId} (${t.id.slice(0, 8)})`)));
  const base = taskSelect("diff-base", params.get("base"));
  const compare = taskSelect("diff-compare", params.get("compare") || params.get("base"));
  const baseInstances = h("input", { id: "diff-base-instances", value: params.get("baseInstances") || "", placeholder: "all finished" });
  const compareInstances = h("input", { id: "diff-compare-instances", value: params.get("compareInstances") || "", placeholder: "all finished" });
  const granularity = h("select", { id: "diff-granularity" }, h("option", {}, "function"), h("option", {}, "line"));
  const header = h("p", { id: "diff-header", className: "muted" });
  const canvas = h("canvas", { className: "flame", id: "diff-flame" });
  const top = h("div", { className: "top-table", id: "diff-table" });
  const go = h("button", { type: "submit", id: "diff-go" }, "Compare");
  const form = h("form", { className: "controls" },
    h("label", {}, "Base task", base), h("label", {}, "Base instances", baseInstances),
    h("label", {}, "Compare task", compare), h("label", {}, "Compare instances", compareInstances),
    h("label", {}, "Granularity", granularity), go);
  view.append(h("section", {}, h("h2", {}, "Diff"), form, err,
    h("p", { className: "legend" }, h("span", { style: "background:#ef4444" }, "larger share in compare"), h("span", { style: "background:#3b82f6;color:#fff" }, "smaller share in compare")),
    header, h("div", { className: "flame-layout" }, h("div", { className: "flame-wrap" }, canvas), top)));
  let diff = null;
  const share = (v, root) => (root ? v / root : 0);
  const graph = new FlameGraph(canvas, tooltip, {
    color: (i, t) => {
      const e = t.elements[i];
      const b = share(e.baseTotal, diff.base.total), c = share(e.compareTotal, diff.compare.total);
      const change = Math.max(b, c) ? (c - b) / Math.max(b, c) : 0;
      const a = Math.min(1, Math.abs(change));
      return change >= 0 ? `rgba(239, 68, 68, ${0.15 + 0.85 * a})` : `rgba(59, 130, 246, ${0.15 + 0.85 * a})`;
    },
    describe: (i, t) => {
      const e = t.elements[i], unit = unitOf(diff.sampleType);
      const b = share(e.baseTotal, diff.base.total), c = share(e.compareTotal, diff.compare.total);
      return [e.codeSignature,
        `base ${formatValue(e.baseTotal, unit)} (${pct(b, 1)}) · self ${formatValue(e.baseSelf, unit)}`,
        `compare ${formatValue(e.compareTotal, unit)} (${pct(c, 1)}) · self ${formatValue(e.compareSelf, unit)}`,
        `change ${(c - b >= 0 ? "+" : "")}${(100 * (c - b)).toFixed(2)} points of total`];
    },
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError(err, null);
    const p = { baseTaskId: base.value, compareTaskId: compare.value, baseInstanceIds: baseInstances.value.replace(/\s/g, ""),
      compareInstanceIds: compareInstances.value.replace(/\s/g, ""), granularity: granularity.value, maxNodes: 5000 };
    try { diff = await api("/api/v1/pprof/diff?" + query(p)); } catch (e) { return showError(err, e); }
    const unit = unitOf(diff.sampleType);
    header.textContent = `${diff.sampleType}: base ${formatValue(diff.base.total, unit)} (${diff.base.instanceIds.join(", ")}) → ` +
      `compare ${formatValue(diff.compare.total, unit)} (${diff.compare.instanceIds.join(", ")}); widths are the sum of both shares`;
    graph.setTree(buildTree(diff.tree.elements, (e) => share(e.baseTotal, diff.base.total) + share(e.compareTotal, diff.compare.total),
      (e) => share(e.baseSelf, diff.base.total) + share(e.compareSelf, diff.compare.total)));
    const rows = new Map();
    for (const e of diff.tree.elements.slice(1)) {
      const r = rows.get(e.codeSignature) || { name: e.codeSignature, base: 0, compare: 0 };
      r.base += share(e.baseSelf, diff.base.total);
      r.compare += share(e.compareSelf, diff.compare.total);
      rows.set(e.codeSignature, r);
    }
    const list = [...rows.values()].map((r) => ({ ...r, change: r.compare - r.base,
      format(k) { return (k === "change" && this.change > 0 ? "+" : "") + (100 * this[k]).toFixed(2) + "%"; } }));
    topTable(top, list, unit, 1, diff.truncated, [["change", "Self change"], ["base", "Base self"], ["compare", "Compare self"]]);
  });
  if (params.get("base") && params.get("compare")) form.requestSubmit();
}

// ---------------------------------------------------------------- start
const tokenInput = document.getElementById("token");
tokenInput.value = token();
tokenInput.addEventListener("change", () => { setToken(tokenInput.value); route(); });
window.addEventListener("hashchange", route);
route();
