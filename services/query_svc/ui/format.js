// Values in their sample type's unit, and DOM building that only ever sets text (profiles
// carry arbitrary bytes in their names: nothing from the server is parsed as HTML).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "className") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// The unit figures carry: the sample type's unit, or for counts what is counted ("samples").
export function unitOf(sampleType) {
  const [name, unit] = (sampleType || "").split("/");
  return !unit || unit === "count" ? name || "count" : unit;
}

export function formatValue(v, unit) {
  const abs = Math.abs(v);
  const scaled = (steps) => {
    for (const [div, suffix] of steps) if (abs >= div) return (v / div).toFixed(abs / div >= 100 ? 0 : 2) + " " + suffix;
    return `${v} ${steps[steps.length - 1][1]}`;
  };
  if (unit === "nanoseconds") return scaled([[3.6e12, "h"], [6e10, "min"], [1e9, "s"], [1e6, "ms"], [1e3, "µs"], [1, "ns"]]);
  if (unit === "microseconds") return scaled([[1e6, "s"], [1e3, "ms"], [1, "µs"]]);
  if (unit === "milliseconds") return scaled([[1e3, "s"], [1, "ms"]]);
  if (unit === "bytes") return scaled([[2 ** 40, "TiB"], [2 ** 30, "GiB"], [2 ** 20, "MiB"], [2 ** 10, "KiB"], [1, "B"]]);
  return `${v.toLocaleString("en-US")} ${unit}`;
}

export function pct(part, whole) {
  if (!whole) return "0%";
  const p = (100 * part) / whole;
  return (Math.abs(p) >= 10 ? p.toFixed(1) : p.toFixed(2)) + "%";
}

export function time(ms) { return ms ? new Date(ms).toLocaleString() : ""; }
