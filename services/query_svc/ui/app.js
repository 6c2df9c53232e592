// proftask's web UI: tasks, progress, the flame graph of a task and the diff of two. Plain ES
// modules over the HTTP API (DESIGN §2); no build step. Every view has a URL (DESIGN §4c):
//   /ui/tasks?service=&before=&limit=     the task list (paged, newest first)
//   /ui/tasks/{id}?instanceIds=&sampleType=&granularity=&maxNodes=&focus=&search=&fn=
//   /ui/diff?base=&compare=&baseInstances=&compareInstances=&sampleType=&granularity=&focus=&search=
// focus is the JSON array of frame names from the root's child to the zoomed node (the API's
// `focus`); fn is the function chosen in the top table (highlighted, with its sandwich). Zoom
// and view changes push history entries, so back and forward walk them.
import { ApiError, api, download, query, setToken, token } from "/ui/api.js";
import { FlameGraph, buildTree, findPath, pathOf, sandwich, shownName, topFunctions } from "/ui/flamegraph.js";
import { formatValue, h, pct, time, unitOf } from "/ui/format.js";

const EVENTS = ["CPU", "HEAP", "ALLOCS", "BLOCK", "MUTEX", "GOROUTINE", "THREADCREATE"];
const TIMED = ["CPU", "BLOCK", "MUTEX"]; // profiled for `duration` minutes
const MAX_DURATION = 15;
const MAX_NODES = [["2000", "2,000 nodes"], ["5000", "5,000 nodes"], ["20000", "20,000 nodes"], ["50000", "50,000 nodes"]];
const PAGE = 20;
const view = document.getElementById("view");
const tooltip = document.getElementById("tooltip");
let timers = []; // the refreshes of the open view
let current = null; // {key, update(params)}: the open view, updated in place when only its params change

// ---------------------------------------------------------------- routing
export function navigate(url, { replace = false } = {}) {
  if (url === location.pathname + location.search) return;
  history[replace ? "replaceState" : "pushState"](null, "", url);
  route();
}

// Only the params change (search typed, …): the URL follows without a new history entry.
function setParams(params, { push = false } = {}) {
  const q = nonEmpty(params);
  const url = location.pathname + (q ? "?" + q : "");
  if (url !== location.pathname + location.search) history[push ? "pushState" : "replaceState"](null, "", url);
}

// The params as a query, empty ones left out and repeated ones (instanceIds) kept, each value:
// Object.fromEntries kept the last of them, and a choice of instances became one.
function nonEmpty(params) {
  return new URLSearchParams([...params].filter(([, v]) => v !== "")).toString();
}

// A comma-separated list as typed: blanks around the commas go, those inside a name stay.
function listed(text) {
  return text.split(",").map((name) => name.trim()).filter(Boolean).join(",");
}

function link(href, ...children) {
  return h("a", { href, onclick: (ev) => {
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    navigate(href);
  } }, ...children);
}

function title(...parts) { document.title = [...parts, "proftask"].join(" · "); }
let createWarning = ""; // the create answer's warning (no live agent), shown on the new task's page

function route() {
  tooltip.hidden = true;
  const parts = location.pathname.split("/").filter(Boolean); // ["ui", "tasks", id]
  const params = new URLSearchParams(location.search);
  let key, open;
  if (parts[0] === "ui" && parts[1] === "tasks" && parts[2]) {
    const id = decodeURIComponent(parts[2]);
    key = "task:" + id;
    open = () => taskView(id, params);
  } else if (parts[0] === "ui" && parts[1] === "diff") {
    key = "diff";
    open = () => diffView(params);
  } else {
    key = "tasks";
    open = () => tasksView(params);
  }
  if (current && current.key === key && current.update) return current.update(params);
  for (const t of timers) clearInterval(t);
  timers = [];
  current = { key };
  view.replaceChildren();
  if (createWarning) view.append(h("p", { id: "create-warning", className: "error", role: "status" }, createWarning));
  createWarning = "";
  open();
}

// Old links (#/task/ID, #/diff?…, #/tasks?…) still open their view.
function fromHash() {
  const m = location.hash.match(/^#\/(task|diff|tasks)(?:\/([^?]*))?(?:\?(.*))?$/);
  if (!m) return;
  const search = m[3] ? "?" + m[3] : "";
  const url = m[1] === "task" && m[2] ? "/ui/tasks/" + m[2] + search : m[1] === "diff" ? "/ui/diff" + search : "/ui/tasks" + search;
  history.replaceState(null, "", url);
}

function errorBox(id) { return h("p", { id, className: "error", role: "alert" }); }
function showError(box, e) { box.textContent = e ? `${e.code || "ERROR"}: ${e.message}` : ""; }

// ---------------------------------------------------------------- tasks: list and create
// A task's status from its progress: waiting = no instance reported yet, running = some did and
// not all settled, finished = all finished, failed = all settled and at least one failed.
// The instances that never will settle: not handed the task by its deadline, or handed it at t
// and not settled by t + (deadline - creation) (their agent went away): missed_instances of
// proftask/core/progress.py.
function missedInstances(task, progress, now = Date.now()) {
  const settled = new Set([...progress.successInstanceIds, ...progress.errorInstanceIds]);
  const deadline = task.deadline ?? task.createTime + (task.duration || 0) * 60000;
  const notified = new Map();
  for (const l of progress.logs) {
    if (l.operationType === "NOTIFIED") notified.set(l.instanceId, Math.min(l.operationTime, notified.get(l.instanceId) ?? Infinity));
  }
  return new Set(task.serviceInstanceIds.filter((i) => !settled.has(i)
    && now > (notified.has(i) ? notified.get(i) + deadline - task.createTime : deadline)));
}

// The rule of proftask/core/progress.py task_status, which the CLI's `task list` uses.
function taskStatus(task, progress, now = Date.now()) {
  const done = new Set(progress.successInstanceIds), failed = new Set(progress.errorInstanceIds);
  const ids = task.serviceInstanceIds, missed = missedInstances(task, progress, now);
  const ended = ids.filter((i) => done.has(i) || failed.has(i) || missed.has(i)).length;
  const status = ids.length && ids.every((i) => done.has(i)) ? "finished"
    : ended === ids.length ? "failed"
    : !progress.logs.length ? "waiting" : "running";
  return { status, done: ids.filter((i) => done.has(i)).length, failed: ids.filter((i) => !done.has(i) && (failed.has(i) || missed.has(i))).length };
}

async function progressOf(taskId) {
  try {
    return await api(`/api/v1/pprof/tasks/${encodeURIComponent(taskId)}/progress`);
  } catch (e) {
    if (e.status === 404) return { logs: [], successInstanceIds: [], errorInstanceIds: [] };
    throw e;
  }
}

// What the server would refuse, said before sending: field, value and rule.
function checkTask(request, raw) {
  const problems = [];
  const say = (field, value, rule) => problems.push({ field, text: `${field} ${JSON.stringify(value)}: ${rule}` });
  if (!request.serviceId.trim()) say("serviceId", request.serviceId, "is required (the service to profile)");
  if (!request.serviceInstanceIds.length) say("instances", raw.instances, "at least one instance id is required (comma-separated)");
  if (!request.events) say("events", request.events, `is required: one of ${EVENTS.join(", ")}`);
  if (TIMED.includes(request.events)) {
    const d = Number(raw.duration);
    if (raw.duration === "" || !Number.isInteger(d) || d < 1 || d > MAX_DURATION) {
      say("duration", raw.duration, `must be a whole number of minutes from 1 to ${MAX_DURATION} for ${request.events}`);
    }
  }
  if (request.events === "BLOCK" || request.events === "MUTEX") {
    const p = Number(raw.dumpPeriod);
    if (raw.dumpPeriod === "" || !Number.isInteger(p) || p <= 0) say("dumpPeriod", raw.dumpPeriod, `must be a whole number greater than 0 for ${request.events}`);
  }
  return problems;
}

async function tasksView(params) {
  const service = params.get("service") || "";
  const before = params.get("before") || ""; // "createTime:id" of the last task of the previous page
  const page = Math.min(500, Math.max(1, Number.parseInt(params.get("limit"), 10) || PAGE));
  title("Tasks");
  const listError = errorBox("list-error");
  const createError = h("div", { id: "create-error", className: "error", role: "alert" });
  const body = h("tbody");
  const pager = h("p", { id: "pager" });
  const filter = h("input", { id: "service-filter", value: service, placeholder: "all services" });
  const field = (name, input) => { input.name = name; input.id = "create-" + name; return input; };
  const form = h("form", { id: "create-form", className: "inline", novalidate: true },
    h("label", {}, "Service", field("serviceId", h("input", { placeholder: "checkout" }))),
    h("label", {}, "Instances (comma-separated)", field("instances", h("input", { size: 32, placeholder: "checkout-1,checkout-2" }))),
    h("label", {}, "Event", field("events", h("select", {}, h("option", { value: "" }, "choose…"), EVENTS.map((e) => h("option", { value: e }, e))))),
    h("label", {}, "Duration (min, 1–15)", field("duration", h("input", { type: "number", value: "1", min: 1, max: MAX_DURATION, step: 1, style: "width:6em" }))),
    h("label", {}, "dumpPeriod (BLOCK/MUTEX)", field("dumpPeriod", h("input", { type: "number", min: 1, step: 1, placeholder: "e.g. 1", style: "width:8em" }))),
    h("button", { type: "submit", id: "create-button" }, "Create task"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const raw = Object.fromEntries([...f.entries()].map(([k, v]) => [k, String(v).trim()]));
    const events = raw.events;
    const request = {
      serviceId: raw.serviceId || "",
      serviceInstanceIds: raw.instances.split(",").map((s) => s.trim()).filter(Boolean),
      events,
      duration: TIMED.includes(events) ? Number(raw.duration) : null,
      dumpPeriod: events === "BLOCK" || events === "MUTEX" ? Number(raw.dumpPeriod) : null,
    };
    for (const el of form.elements) el.removeAttribute("aria-invalid");
    const problems = checkTask(request, raw);
    if (problems.length) {
      for (const p of problems) form.elements[p.field]?.setAttribute("aria-invalid", "true");
      createError.replaceChildren(h("strong", {}, "Not sent:"), h("ul", {}, problems.map((p) => h("li", { "data-field": p.field }, p.text))));
      return;
    }
    createError.replaceChildren();
    try {
      const created = await api("/api/v1/pprof/tasks", { method: "POST", body: request });
      createWarning = (created.warnings || []).join(" ");
      navigate("/ui/tasks/" + encodeURIComponent(created.id));
    } catch (e) { createError.textContent = `${e.code || "ERROR"}: ${e.message}`; }
  });
  view.append(
    h("section", {}, h("h2", {}, "Tasks"),
      h("form", { className: "inline", onsubmit: (ev) => { ev.preventDefault(); navigate("/ui/tasks?" + query({ service: filter.value.trim() })); } },
        h("label", {}, "Service", filter), h("button", { type: "submit" }, "Filter"),
        h("span", { className: "muted" }, "refreshes every 5 s")),
      listError,
      h("table", { id: "tasks" }, h("thead", {}, h("tr", {}, ["Created", "Service", "Event", "Instances", "Duration", "Status", "Task"].map((c) => h("th", {}, c)))), body),
      pager),
    h("section", {}, h("h2", {}, "New task"), form, createError));

  async function refresh() {
    try {
      let tasks;
      if (before) {
        const [bt, bid] = [Number(before.split(":")[0]), before.split(":").slice(1).join(":")];
        // the API pages by time; ties are cut by id, as it sorts
        const got = (await api("/api/v1/pprof/tasks?" + query({ serviceId: service, endTime: bt, limit: page + 100 }))).tasks;
        tasks = got.filter((t) => t.createTime < bt || (t.createTime === bt && t.id < bid));
      } else {
        tasks = (await api("/api/v1/pprof/tasks?" + query({ serviceId: service, limit: page + 1 }))).tasks;
      }
      const more = tasks.length > page;
      tasks = tasks.slice(0, page);
      const statuses = await Promise.all(tasks.map((t) => progressOf(t.id).then((p) => taskStatus(t, p), () => null)));
      body.replaceChildren(...tasks.map((t, k) => {
        const s = statuses[k];
        return h("tr", { "data-task": t.id },
          h("td", {}, time(t.createTime)), h("td", { className: "name" }, t.serviceId), h("td", {}, t.events),
          h("td", { className: "name" }, t.serviceInstanceIds.join(", ")), h("td", {}, t.duration ? t.duration + " min" : ""),
          h("td", { className: "task-status status-" + (s ? s.status : "unknown") },
            s ? `${s.status} (${s.done} finished, ${s.failed} failed of ${t.serviceInstanceIds.length})` : "?"),
          h("td", {}, link("/ui/tasks/" + encodeURIComponent(t.id), t.id)));
      }));
      if (!tasks.length) body.append(h("tr", {}, h("td", { colspan: 7, className: "muted" }, before ? "No older tasks." : "No tasks yet.")));
      const last = tasks[tasks.length - 1];
      pager.replaceChildren(
        before ? link("/ui/tasks?" + query({ service, limit: params.get("limit") }), "← newest") : "", " ",
        more && last ? link("/ui/tasks?" + query({ service, limit: params.get("limit"), before: `${last.createTime}:${last.id}` }), "older →") : "");
      showError(listError, null);
    } catch (e) { showError(listError, e); }
  }
  await refresh();
  timers.push(setInterval(refresh, 5000));
}

// ---------------------------------------------------------------- one task: progress + flame graph
function clock(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

async function taskView(taskId, params) {
  const err = errorBox("task-error");
  view.append(err);
  title("Task " + taskId.slice(0, 8));
  let task;
  try { task = await api("/api/v1/pprof/tasks/" + encodeURIComponent(taskId)); } catch (e) { return showError(err, e); }
  title("Flame graph", `${task.events} task ${task.id.slice(0, 8)}`, task.serviceId);
  const summary = h("span", { id: "progress-summary", className: "summary" });
  const timing = h("span", { id: "task-timing", className: "muted" });
  const bar = h("div", { className: "bar", id: "progress-bar", role: "img" },
    h("div", { className: "seg-finished" }), h("div", { className: "seg-failed" }), h("div", { className: "seg-pending" }));
  const rows = h("tbody");
  const instancesSummary = h("summary", { id: "instances-summary" }, "Instances and logs");
  const instances = h("details", { id: "instances", open: true },
    instancesSummary,
    h("table", {}, h("thead", {}, h("tr", {}, ["Instance", "Status", "Notified", "Finished", "Messages"].map((c) => h("th", {}, c)))), rows));
  const progressSection = h("section", { id: "progress" },
    h("h2", {}, `${task.events} task for `, h("span", { className: "name" }, task.serviceId), " ",
      h("span", { className: "muted small" }, `created ${time(task.createTime)} · ${task.duration ? task.duration + " min · " : ""}task ${task.id} · `,
        link("/ui/diff?" + query({ base: task.id }), "compare with another task"))),
    h("div", { className: "progress-line" }, bar, summary, timing),
    instances);
  const analysis = h("section", { id: "analysis", hidden: true });
  view.append(progressSection, analysis);
  let flame = null, shownInstances = "", settled = false, closed = false;
  current.update = (p) => flame && flame.update(p);

  async function refresh() {
    let progress;
    try { progress = await progressOf(taskId); } catch (e) { return showError(err, e); }
    const done = new Set(progress.successInstanceIds), failed = new Set(progress.errorInstanceIds);
    const missed = missedInstances(task, progress);
    rows.replaceChildren();
    let firstFailure = null; // shown on the folded list: why an instance failed, without a click
    for (const instance of task.serviceInstanceIds) {
      const logs = progress.logs.filter((l) => l.instanceId === instance);
      const first = (type) => logs.find((l) => l.operationType === type);
      const status = done.has(instance) ? "finished" : failed.has(instance) ? "error" : missed.has(instance) ? "missed"
        : first("NOTIFIED") ? "notified" : "waiting";
      const messages = logs.filter((l) => l.operationType !== "NOTIFIED" && l.operationType !== "EXECUTION_FINISHED")
        .map((l) => h("div", {}, `${time(l.operationTime)} ${l.operationType}: ${l.message}`));
      const error = logs.filter((l) => l.operationType !== "NOTIFIED" && l.operationType !== "EXECUTION_FINISHED").at(-1);
      if (!firstFailure && failed.has(instance) && !done.has(instance) && error) firstFailure = `${instance}: ${error.message}`;
      rows.append(h("tr", { "data-instance": instance },
        h("td", { className: "name" }, instance),
        h("td", { className: "status-" + status }, { finished: "finished", error: "failed", missed: "missed: not handed the task by its deadline, or its agent went away after", notified: "notified, profiling", waiting: "waiting for the agent" }[status]),
        h("td", {}, time(first("NOTIFIED")?.operationTime)), h("td", {}, time(first("EXECUTION_FINISHED")?.operationTime)),
        h("td", {}, messages)));
    }
    const all = task.serviceInstanceIds.length;
    const nDone = task.serviceInstanceIds.filter((i) => done.has(i)).length;
    const nFailed = task.serviceInstanceIds.filter((i) => !done.has(i) && (failed.has(i) || missed.has(i))).length;
    const pending = all - nDone - nFailed;
    const [fin, fail, pend] = bar.children;
    fin.style.width = (100 * nDone) / all + "%";
    fail.style.width = (100 * nFailed) / all + "%";
    pend.style.width = (100 * pending) / all + "%";
    bar.setAttribute("aria-label", `${nDone} finished, ${nFailed} failed, ${pending} pending`);
    summary.textContent = `${nDone} finished, ${nFailed} failed, ${pending} pending`;
    const why = firstFailure && firstFailure.length > 200 ? firstFailure.slice(0, 199) + "…" : firstFailure;
    instancesSummary.textContent = why ? `Instances and logs · ${nFailed} failed · ${why}` : "Instances and logs";
    instancesSummary.title = firstFailure || "";
    if (task.duration) {
      const elapsed = Date.now() - task.createTime, window = task.duration * 60_000;
      timing.textContent = elapsed < window
        ? `elapsed ${clock(elapsed)} of ${clock(window)} · ${clock(window - elapsed)} remaining`
        : `profiling window of ${task.duration} min ended ${clock(elapsed - window)} ago`;
    }
    settled = pending === 0;
    if (settled) {
      for (const t of timers) clearInterval(t);
      if (!closed) { instances.open = false; closed = true; } // the flame graph above the fold
    }
    const finished = task.serviceInstanceIds.filter((i) => done.has(i));
    if (finished.length && JSON.stringify(finished) !== shownInstances) { // a list, not joined: a name may hold a comma
      shownInstances = JSON.stringify(finished);
      analysis.hidden = false;
      flame = flameSection(analysis, task, finished, new URLSearchParams(location.search));
    }
  }
  await refresh();
  if (!settled) timers.push(setInterval(refresh, 2000));
}

// The instances a URL names (instanceIds repeated, or one listing several comma-separated, as
// the server reads them): a value that is a finished instance's whole name is that instance.
function chosenInstances(values, finished) {
  if (!values.filter(Boolean).length) return finished;
  return values.flatMap((v) => (finished.includes(v) ? [v] : v.split(",").filter(Boolean)));
}

function parseFocus(text) {
  if (!text) return [];
  try {
    const v = JSON.parse(text);
    return Array.isArray(v) && v.every((s) => typeof s === "string") ? v : [];
  } catch { return []; }
}

function flameSection(section, task, finished, initial) {
  const err = errorBox("analysis-error");
  const picks = finished.map((i) => h("label", { className: "inline" }, h("span", {},
    h("input", { type: "checkbox", name: "instance", value: i, checked: true }), " ", i)));
  const sampleType = h("select", { id: "sample-type" });
  const granularity = h("select", { id: "granularity" }, h("option", { value: "function" }, "function"), h("option", { value: "line" }, "line"));
  const maxNodes = h("select", { id: "max-nodes" }, MAX_NODES.map(([v, label]) => h("option", { value: v }, label)));
  const searchBox = h("input", { id: "search", type: "search", placeholder: "search (text or /regex/)", size: 28 });
  const searchInfo = h("span", { id: "search-info", className: "muted" });
  const exports = h("span", { id: "exports" });
  const header = h("p", { id: "flame-header", className: "muted" });
  const crumbs = h("nav", { id: "focus-path", className: "crumbs", "aria-label": "zoom path" });
  const canvas = h("canvas", { className: "flame", id: "flame", "aria-label": "flame graph: arrows move, Enter zooms, Escape resets" });
  const top = h("div", { className: "top-table", id: "top-table" });
  const topCache = new Map(); // this section's (this task, token and finished instances): topRows
  const sandwichBox = h("section", { id: "sandwich", hidden: true });
  const reset = h("button", { type: "button", id: "reset-zoom" }, "Reset zoom");
  section.replaceChildren(
    h("div", { className: "controls" }, h("h2", {}, "Flame graph"), h("div", {}, h("div", { className: "muted" }, "Instances"), picks),
      h("label", {}, "Sample type", sampleType), h("label", {}, "Granularity", granularity), h("label", {}, "Size", maxNodes),
      h("label", {}, "Search", searchBox), reset, h("span", {}, "Export: ", exports)),
    h("p", { className: "status-line" }, searchInfo), err, header, crumbs,
    h("div", { className: "flame-layout" }, h("div", { className: "flame-wrap" }, canvas), top),
    sandwichBox);
  let result = null; // the analysis drawn
  let params = initial;
  let applying = 0; // which update() is the newest: an older one's answer, or error, is not shown
  const cache = new Map(); // analysis query -> result, so back/forward and search do not refetch
  let focusUnsupported = false;
  const graph = new FlameGraph(canvas, tooltip, {
    describe: (i, t) => describeNode(i, t, result),
    describeMerged: (b, t) => describeMerged(b, t, result),
    describeOther: (i, v, t) => describeOther(i, v, t, result),
    onZoom: (i) => zoom(pathOf(graph.tree, i)),
    onReset: () => zoom([]),
  });

  const selection = () => ({
    instanceIds: [...section.querySelectorAll("input[name=instance]:checked")].map((c) => c.value),
    sampleType: sampleType.value || params.get("sampleType") || "", granularity: granularity.value,
  });
  function zoom(path) {
    const p = new URLSearchParams(location.search);
    if (path.length) p.set("focus", JSON.stringify(path)); else p.delete("focus");
    setParams(p, { push: true });
    update(p);
  }
  function commit() { // the controls into the URL, as a new history entry
    const { instanceIds, ...rest } = selection();
    if (!instanceIds.length) { // a URL naming no instance means every one: this choice stays out of it
      applying++; // an answer still on its way is not this choice's
      return showAlone({ code: "ARGUMENT_ERROR", message: "choose at least one instance" });
    }
    const p = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries({ ...rest, maxNodes: maxNodes.value })) p.set(k, v);
    p.delete("instanceIds"); // every instance: none named
    if (instanceIds.length !== finished.length) for (const i of instanceIds) p.append("instanceIds", i);
    if (maxNodes.value === "5000") p.delete("maxNodes");
    if (rest.granularity === "function") p.delete("granularity");
    p.delete("focus"); // another tree: its frames are not the zoomed ones
    setParams(p, { push: true });
    update(p);
  }
  for (const el of [sampleType, granularity, maxNodes, ...section.querySelectorAll("input[name=instance]")]) el.addEventListener("change", commit);
  reset.addEventListener("click", () => zoom([]));
  searchBox.addEventListener("input", () => {
    const p = new URLSearchParams(location.search);
    if (searchBox.value) p.set("search", searchBox.value); else p.delete("search");
    setParams(p);
    params = p;
    showSearch(graph, searchBox.value, searchInfo, result);
  });

  async function fetchAnalysis(q) {
    if (!cache.has(q)) cache.set(q, api(`/api/v1/pprof/tasks/${encodeURIComponent(task.id)}/analysis?` + q));
    try { return await cache.get(q); } catch (e) { cache.delete(q); throw e; }
  }

  // The error of this choice, and nothing of an earlier one: its graph, header, top table and
  // export links would be read as this choice's (e.g. 422 VALUES_OUT_OF_RANGE after checking one
  // instance more).
  function showAlone(e) {
    result = null;
    graph.clear();
    canvas.dataset.source = "none";
    for (const el of [header, crumbs, top, exports, sandwichBox]) el.replaceChildren();
    sandwichBox.hidden = true;
    showError(err, e);
  }

  // Everything the URL says, applied: instances, sample type, granularity, size, zoom, search, function.
  async function update(p) {
    params = p;
    const mine = ++applying;
    const stale = () => applying !== mine; // not the URL object: typing a search replaces it, and is no new choice
    const chosen = chosenInstances(p.getAll("instanceIds"), finished);
    for (const c of section.querySelectorAll("input[name=instance]")) c.checked = chosen.includes(c.value);
    granularity.value = p.get("granularity") || "function";
    maxNodes.value = MAX_NODES.some(([v]) => v === p.get("maxNodes")) ? p.get("maxNodes") : "5000";
    searchBox.value = p.get("search") || "";
    showError(err, null);
    const chosenIds = finished.filter((i) => chosen.includes(i));
    if (!chosenIds.length) return showAlone({ code: "ARGUMENT_ERROR", message: "choose at least one instance" });
    // every instance: none named, as in the URL (a fleet's names outgrow what a request line holds)
    const sel = { instanceIds: chosenIds.length === finished.length ? [] : chosenIds, sampleType: p.get("sampleType") || "", granularity: granularity.value };
    const n = Number(maxNodes.value);
    const base = { ...sel, maxNodes: n, instanceStats: n <= 20000 && chosenIds.length > 1 ? "true" : "" };
    const focus = parseFocus(p.get("focus"));
    let full, focused = null, focusError = null;
    try { full = await fetchAnalysis(query(base)); } catch (e) {
      if (stale()) return; // a newer URL is being applied
      if (!sampleType.options.length && sel.sampleType) sampleType.replaceChildren(h("option", { value: sel.sampleType, selected: true }, sel.sampleType));
      return showAlone(e);
    }
    // a cut tree: the zoomed node's subtree comes from the server, cut to maxNodes inside it
    if (focus.length && full.truncated && !focusUnsupported) {
      try {
        focused = await fetchAnalysis(query({ ...base, focus: JSON.stringify(focus) }));
        focusUnsupported = !focused.focus; // a server without `focus` sends the whole tree again
      } catch (e) { focusError = e; } // e.g. 400 naming a frame the profile does not have
    }
    if (stale()) return; // a newer URL is being applied
    const shown = focused && focused.focus ? focused : full;
    const fresh = shown !== result;
    result = shown;
    sampleType.replaceChildren(...full.sampleTypes.map((t) => h("option", { value: t, selected: t === full.sampleType }, t)));
    const unit = unitOf(full.sampleType);
    const tree = fresh || !graph.tree ? buildTree(shown.tree.elements) : graph.tree;
    let at = focus.length ? findPath(tree, focus) : 0;
    if (focusError) {
      showError(err, focusError);
      at = Math.max(at, 0);
    } else if (at < 0) {
      showError(err, { code: "NOT_FOUND", message: `the frame ${focus[focus.length - 1]} is not in this graph${shown.truncated ? " (the server has no focus yet: it may be in the hatched part)" : ""}` });
      at = 0;
    }
    if (fresh || !graph.tree) graph.setTree(tree, at); else graph.zoomTo(at, false);
    canvas.dataset.source = shown.focus ? "focus" : "full"; // whether the server sent the subtree
    const root = shown.tree.elements[0];
    header.textContent = `${full.sampleType}: ${formatValue(root.total, unit)} over ${full.instanceIds.length} instance(s)` +
      (shown.truncated ? ` · ${shown.truncated.toLocaleString("en-US")} smaller nodes${shown.focus ? " of this subtree" : ""} shown as "other" (hatched)` : "") +
      " · frames under 2 px drawn merged";
    crumbs.replaceChildren(...(focus.length ? [h("button", { type: "button", onclick: () => zoom([]) }, "all"),
      ...focus.map((name, k) => [" › ", h("button", { type: "button", className: "name", onclick: () => zoom(focus.slice(0, k + 1)) }, name)]).flat(),
      at > 0 ? h("span", { className: "muted" }, ` · ${formatValue(tree.total[at], unit)}, ${pct(tree.total[at], tree.total[0])} of all`) : ""] : []));
    showSearch(graph, searchBox.value, searchInfo, result);
    title(focus.length ? "Flame graph of " + focus[focus.length - 1] : "Flame graph", `${task.events} task ${task.id.slice(0, 8)}`, task.serviceId);
    const fn = p.get("fn") || "";
    graph.mark(fn);
    await topTable(top, topCache, task, { ...sel, sampleType: full.sampleType }, unit, full, fn, stale);
    if (stale()) return; // a newer URL is being applied: its own answer (or error) stands
    showSandwich(sandwichBox, fn, () => buildTree(full.tree.elements), unit, full);
    exports.replaceChildren(...["pprof", "folded", "speedscope"].map((format) => {
      const path = `/api/v1/pprof/tasks/${encodeURIComponent(task.id)}/export?` + query({ ...sel, sampleType: full.sampleType, format });
      const name = `proftask-${task.id}.${{ pprof: "pb.gz", folded: "folded", speedscope: "speedscope.json" }[format]}`;
      return h("a", { href: path, className: "export", "data-format": format, onclick: (ev) => { ev.preventDefault(); download(path, name).catch((e) => showError(err, e)); } }, format, " ");
    }));
  }
  update(initial);
  return { update };
}

function describeNode(i, t, result) {
  const e = t.elements[i];
  const unit = unitOf(result.sampleType);
  const p = t.parent[i];
  const lines = [shownName(e.codeSignature),
    `total ${formatValue(e.total, unit)} · ${pct(e.total, t.total[0])} of all${p >= 0 ? " · " + pct(e.total, t.total[p]) + " of parent" : ""}`,
    `self ${formatValue(e.self, unit)} · ${pct(e.self, t.total[0])} of all`];
  if (e.instances !== undefined) {
    lines.push(`in ${e.instances} of ${result.instanceCount} instances · share ${pct(e.shareMin, 1)} – ${pct(e.shareMax, 1)} of an instance`);
  }
  return lines;
}

function describeMerged(b, t, result, format = (v) => formatValue(v, unitOf(result.sampleType))) {
  const under = b.parentNode >= 0 ? t.names[b.parentNode] : "the merged frames above";
  const heaviest = [...b.members].sort((x, y) => t.total[y] - t.total[x]).slice(0, 5);
  return [`${b.count.toLocaleString("en-US")} frames, total ${format(b.total)} (${pct(b.total, t.total[0])} of all)`,
    `each too narrow to draw, under ${under}`,
    ...heaviest.map((i) => `  ${t.names[i]}  ${format(t.total[i])}`),
    "click (or Enter) to zoom in"];
}

function describeOther(i, value, t, result, format = (v) => formatValue(v, unitOf(result.sampleType))) {
  return [`other: ${format(value)} (${pct(value, t.total[0])} of all, ${pct(value, t.total[i])} of ${t.names[i]})`,
    `frames under ${t.names[i]} that the size limit left out: total − self − children`,
    `${(result.truncated || 0).toLocaleString("en-US")} nodes are left out of this graph in all`,
    "click (or Enter) to load this subtree from the server"];
}

function showSearch(graph, text, info, result) {
  const found = graph.search(text);
  info.classList.toggle("error", Boolean(found && found.error));
  info.textContent = !found ? "" : found.error ? found.error
    : `${found.count} matching frames · ${formatValue(found.total, unitOf(result?.sampleType))} · ${pct(found.total, found.root)} of total` +
      // a cut tree: the frames left out are not searched (the top table counts every frame)
      (result?.truncated ? ` in the ${(result.tree?.elements?.length ?? 0).toLocaleString("en-US")} nodes shown (the size limit left ${result.truncated.toLocaleString("en-US")} out; the top table counts them all)` : "");
}

// The whole profile's top functions from the server (pprof -top order); from the loaded tree
// when the server has no /top. `cache` is the flame section's own (by query): one of the
// module, keyed by the query alone, showed one task's rows beside another task's graph, another
// tenant's too after a token change, and "all instances" kept the rows of fewer finished ones.
async function topRows(cache, task, sel, full) {
  const q = query(sel);
  if (!cache.has(q)) {
    cache.set(q, api(`/api/v1/pprof/tasks/${encodeURIComponent(task.id)}/top?` + q).then(
      (r) => ({ rows: r.rows, total: r.total, exact: true }),
      (e) => {
        if (e.status !== 404) throw e; // a server without /top (the task itself was found)
        const rows = topFunctions(buildTree(full.tree.elements));
        rows.sort((a, b) => b.flat - a.flat || b.cum - a.cum || (a.name < b.name ? -1 : 1));
        return { rows, total: full.tree.elements[0].total, exact: false };
      }));
  }
  try { return await cache.get(q); } catch (e) { cache.delete(q); throw e; }
}

// stale(): a newer choice was made while the rows came: they are not shown beside its answer.
async function topTable(container, cache, task, sel, unit, full, fn, stale = () => false) {
  let top;
  try { top = await topRows(cache, task, sel, full); } catch (e) {
    if (stale()) return;
    container.replaceChildren(h("p", { className: "error", role: "alert" }, `${e.code}: ${e.message}`));
    return;
  }
  if (stale()) return;
  const columns = [["flat", "Flat"], ["cum", "Cum"]];
  const choose = (name) => {
    const p = new URLSearchParams(location.search);
    if (name && name !== p.get("fn")) p.set("fn", name); else p.delete("fn");
    navigate(location.pathname + "?" + nonEmpty(p));
  };
  let sortKey = container.dataset.sort || "flat";
  const render = () => {
    container.dataset.sort = sortKey;
    const order = sortKey === "name" ? (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
      : (a, b) => b[sortKey] - a[sortKey] || (a.name < b.name ? -1 : 1);
    const sorted = sortKey === "flat" ? top.rows.slice(0, 300) : [...top.rows].sort(order).slice(0, 300);
    const th = (key, label, cls) => h("th", { className: `sortable ${cls || ""} ${key === sortKey ? "sorted" : ""}`, "data-sort": key, tabindex: 0,
      onclick: () => { sortKey = key; render(); }, onkeydown: (ev) => { if (ev.key === "Enter") { sortKey = key; render(); } } }, label);
    container.replaceChildren(
      h("table", {},
        h("thead", {}, h("tr", {}, th("name", "Function"), columns.map(([k, label]) => [th(k, label, "num"), h("th", { className: "num" }, "%")]))),
        h("tbody", {}, sorted.map((r) => h("tr", { className: r.name === fn ? "chosen" : "" },
          h("td", { className: "name" }, h("button", { type: "button", className: "fn", title: "highlight in the graph and show its callers and callees",
            onclick: () => choose(r.name) }, shownName(r.name))),
          columns.map(([k]) => [h("td", { className: "num" }, formatValue(r[k], unit)), h("td", { className: "num" }, pct(r[k], top.total))]))))),
      top.exact ? h("p", { className: "muted" }, `whole profile, ${top.rows.length.toLocaleString("en-US")} functions (as go tool pprof -top)`)
        : h("p", { className: "muted", id: "top-note" }, "computed from the cut tree (the server has no /top): the hatched part is not broken down"));
  };
  render();
}

function showSandwich(box, fn, treeOf, unit, full) {
  if (!fn) { box.hidden = true; box.replaceChildren(); return; }
  const tree = treeOf();
  const s = sandwich(tree, fn);
  const format = (v) => formatValue(v, unit);
  const close = h("button", { type: "button", id: "close-sandwich", onclick: () => {
    const p = new URLSearchParams(location.search);
    p.delete("fn");
    navigate(location.pathname + "?" + nonEmpty(p));
  } }, "Close");
  const callers = h("canvas", { className: "flame", id: "sandwich-callers" });
  const callees = h("canvas", { className: "flame", id: "sandwich-callees" });
  box.hidden = false;
  box.replaceChildren(
    h("h3", {}, "Sandwich of ", h("span", { className: "name" }, fn), " ", close),
    h("p", { className: "muted" }, `computed in the browser from the ${tree.n.toLocaleString("en-US")} nodes loaded (${s.occurrences} occurrences)` +
      (full.truncated ? "; frames in the hatched part are not included" : "") + ". Callers above, callees below."),
    h("div", { className: "flame-wrap" }, callers), h("div", { className: "flame-wrap" }, callees));
  const opts = (inverted) => ({
    inverted,
    describe: (i, t) => [t.names[i], `${format(t.total[i])} · ${pct(t.total[i], t.total[0])} of ${fn}`],
    describeMerged: (b, t) => describeMerged(b, t, full, format),
  });
  new FlameGraph(callers, tooltip, opts(true)).setTree(buildTree(s.callers));
  new FlameGraph(callees, tooltip, opts(false)).setTree(buildTree(s.callees));
}

// ---------------------------------------------------------------- diff of two tasks / instance sets
async function diffView(params) {
  const err = errorBox("diff-error");
  title("Diff");
  let tasks = [];
  try { tasks = (await api("/api/v1/pprof/tasks?limit=500")).tasks; } catch (e) { showError(err, e); }
  const taskSelect = (id, chosen) => h("select", { id }, tasks.map((t) =>
    h("option", { value: t.id, selected: t.id === chosen }, `${time(t.createTime)} ${t.events} ${t.serviceId} (${t.id.slice(0, 8)})`)));
  const base = taskSelect("diff-base", params.get("base"));
  const compare = taskSelect("diff-compare", params.get("compare") || params.get("base"));
  const baseInstances = h("input", { id: "diff-base-instances", placeholder: "all finished" });
  const compareInstances = h("input", { id: "diff-compare-instances", placeholder: "all finished" });
  const granularity = h("select", { id: "diff-granularity" }, h("option", {}, "function"), h("option", {}, "line"));
  const sampleType = h("select", { id: "diff-sample-type" }, h("option", { value: "" }, "default"));
  const searchBox = h("input", { id: "diff-search", type: "search", placeholder: "search (text or /regex/)", size: 24 });
  const searchInfo = h("span", { id: "diff-search-info", className: "muted" });
  const reset = h("button", { type: "button", id: "diff-reset" }, "Reset zoom");
  const header = h("p", { id: "diff-header", className: "muted" });
  const canvas = h("canvas", { className: "flame", id: "diff-flame" });
  const top = h("div", { className: "top-table", id: "diff-table" });
  const go = h("button", { type: "submit", id: "diff-go" }, "Compare");
  const form = h("form", { className: "controls" },
    h("label", {}, "Base task", base), h("label", {}, "Base instances", baseInstances),
    h("label", {}, "Compare task", compare), h("label", {}, "Compare instances", compareInstances),
    h("label", {}, "Sample type", sampleType), h("label", {}, "Granularity", granularity), go,
    h("label", {}, "Search", searchBox), reset);
  view.append(h("section", {}, h("h2", {}, "Diff"), form, err,
    h("p", { className: "legend" }, h("span", { style: "background:#ef4444" }, "larger share in compare"), h("span", { style: "background:#3b82f6;color:#fff" }, "smaller share in compare"),
      h("span", { className: "muted" }, "widths are the sum of both shares")),
    h("p", { className: "status-line" }, searchInfo), header, h("div", { className: "flame-layout" }, h("div", { className: "flame-wrap" }, canvas), top)));
  let diff = null, shownKey = "";
  const share = (v, root) => (root ? v / root : 0);
  const points = (v) => (100 * v).toFixed(2) + " points";
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
      return [shownName(e.codeSignature),
        `base ${formatValue(e.baseTotal, unit)} (${pct(b, 1)}) · self ${formatValue(e.baseSelf, unit)}`,
        `compare ${formatValue(e.compareTotal, unit)} (${pct(c, 1)}) · self ${formatValue(e.compareSelf, unit)}`,
        `change ${(c - b >= 0 ? "+" : "")}${(100 * (c - b)).toFixed(2)} points of total`];
    },
    describeMerged: (b, t) => describeMerged(b, t, diff, (v) => `${(100 * v).toFixed(2)}% (sum of both shares)`),
    describeOther: (i, v, t) => [`other: ${points(v)} (sum of both shares) under ${t.names[i]}`,
      `${(diff.truncated || 0).toLocaleString("en-US")} nodes are left out of this diff in all`],
    onZoom: (i) => { const p = new URLSearchParams(location.search); const path = pathOf(graph.tree, i);
      if (path.length) p.set("focus", JSON.stringify(path)); else p.delete("focus"); setParams(p, { push: true }); apply(p); },
    onReset: () => { const p = new URLSearchParams(location.search); p.delete("focus"); setParams(p, { push: true }); apply(p); },
  });
  reset.addEventListener("click", () => graph.opts.onReset());
  searchBox.addEventListener("input", () => {
    const p = new URLSearchParams(location.search);
    if (searchBox.value) p.set("search", searchBox.value); else p.delete("search");
    setParams(p);
    showDiffSearch();
  });
  function showDiffSearch() {
    const found = graph.search(searchBox.value);
    searchInfo.classList.toggle("error", Boolean(found && found.error));
    searchInfo.textContent = !found ? "" : found.error ? found.error : `${found.count} matching frames · ${points(found.total)} of both shares (sum)`;
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams(query({ base: base.value, compare: compare.value, baseInstances: listed(baseInstances.value),
      compareInstances: listed(compareInstances.value), sampleType: sampleType.value,
      granularity: granularity.value === "function" ? "" : granularity.value, search: searchBox.value }));
    setParams(p, { push: true });
    apply(p);
  });
  for (const el of [sampleType, granularity]) el.addEventListener("change", () => form.requestSubmit());

  async function apply(p) {
    base.value = p.get("base") || base.value;
    compare.value = p.get("compare") || p.get("base") || compare.value;
    baseInstances.value = p.get("baseInstances") || "";
    compareInstances.value = p.get("compareInstances") || "";
    granularity.value = p.get("granularity") || "function";
    searchBox.value = p.get("search") || "";
    if (!p.get("base")) return;
    const q = { baseTaskId: p.get("base"), compareTaskId: p.get("compare") || p.get("base"), baseInstanceIds: p.get("baseInstances") || "",
      compareInstanceIds: p.get("compareInstances") || "", sampleType: p.get("sampleType") || "", granularity: granularity.value, maxNodes: 5000 };
    const key = query(q);
    title("Diff", `${q.baseTaskId.slice(0, 8)} → ${q.compareTaskId.slice(0, 8)}`);
    if (key !== shownKey) {
      showError(err, null);
      try { diff = await api("/api/v1/pprof/diff?" + key); } catch (e) {
        header.textContent = "";
        return showError(err, e);
      }
      shownKey = key;
      try { // the sample types to choose from: the base task's
        const types = await api(`/api/v1/pprof/tasks/${encodeURIComponent(q.baseTaskId)}/analysis?` + query({ instanceIds: q.baseInstanceIds, granularity: q.granularity, maxNodes: 1 }));
        sampleType.replaceChildren(...types.sampleTypes.map((t) => h("option", { value: t, selected: t === diff.sampleType }, t)));
      } catch { /* the diff itself is shown */ }
      const unit = unitOf(diff.sampleType);
      header.textContent = `${diff.sampleType}: base ${formatValue(diff.base.total, unit)} (${diff.base.instanceIds.join(", ")}) → ` +
        `compare ${formatValue(diff.compare.total, unit)} (${diff.compare.instanceIds.join(", ")})` +
        (diff.truncated ? ` · ${diff.truncated.toLocaleString("en-US")} smaller nodes shown as "other"` : "");
      graph.setTree(buildTree(diff.tree.elements, (e) => share(e.baseTotal, diff.base.total) + share(e.compareTotal, diff.compare.total),
        (e) => share(e.baseSelf, diff.base.total) + share(e.compareSelf, diff.compare.total)));
      const rows = new Map();
      for (const e of diff.tree.elements.slice(1)) {
        const r = rows.get(e.codeSignature) || { name: e.codeSignature, base: 0, compare: 0 };
        r.base += share(e.baseSelf, diff.base.total);
        r.compare += share(e.compareSelf, diff.compare.total);
        rows.set(e.codeSignature, r);
      }
      diffTable(top, [...rows.values()].map((r) => ({ ...r, change: r.compare - r.base })), diff.truncated);
    }
    const at = findPath(graph.tree, parseFocus(p.get("focus")));
    graph.zoomTo(at < 0 ? 0 : at, false);
    showDiffSearch();
  }
  current.update = apply;
  await apply(params);
}

function diffTable(container, rows, truncated) {
  let sortKey = "change";
  const columns = [["change", "Self change"], ["base", "Base self"], ["compare", "Compare self"]];
  const format = (k, v) => (k === "change" && v > 0 ? "+" : "") + (100 * v).toFixed(2) + (k === "change" ? " pts" : "%");
  const render = () => {
    const sorted = [...rows].sort((a, b) => (sortKey === "name" ? (a.name < b.name ? -1 : 1) : Math.abs(b[sortKey]) - Math.abs(a[sortKey]))).slice(0, 300);
    const th = (key, label, cls) => h("th", { className: `sortable ${cls || ""} ${key === sortKey ? "sorted" : ""}`, "data-sort": key, tabindex: 0,
      onclick: () => { sortKey = key; render(); }, onkeydown: (ev) => { if (ev.key === "Enter") { sortKey = key; render(); } } }, label);
    container.replaceChildren(h("table", {},
      h("thead", {}, h("tr", {}, th("name", "Function"), columns.map(([k, label]) => th(k, label, "num")))),
      h("tbody", {}, sorted.map((r) => h("tr", {}, h("td", { className: "name" }, shownName(r.name)),
        columns.map(([k]) => h("td", { className: "num" }, format(k, r[k]))))))),
    h("p", { className: "muted" }, "shares of each side's total" + (truncated ? "; from the nodes shown, the hatched rest is not broken down" : "")));
  };
  render();
}

// ---------------------------------------------------------------- start
const tokenInput = document.getElementById("token");
tokenInput.value = token();
tokenInput.addEventListener("change", () => { setToken(tokenInput.value); current = null; route(); });
for (const a of document.querySelectorAll("header a[href^='/ui/']")) {
  a.addEventListener("click", (ev) => {
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    current = null;
    navigate(a.getAttribute("href"));
  });
}
window.addEventListener("popstate", route);
window.addEventListener("hashchange", () => { fromHash(); route(); });
fromHash();
route();
export { ApiError };
