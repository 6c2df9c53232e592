// The HTTP API, with the token the user typed (kept in localStorage).
const TOKEN_KEY = "proftask.token";

export function token() { return localStorage.getItem(TOKEN_KEY) || ""; }
export function setToken(value) { localStorage.setItem(TOKEN_KEY, value); }

function headers(extra = {}) {
  const h = { ...extra };
  if (token()) h.Authorization = "Bearer " + token();
  return h;
}

export class ApiError extends Error {
  constructor(status, code, reason) { super(reason); this.status = status; this.code = code; }
}

// The error the server answered ({code, errorReason}), or its bare text when it is not JSON.
function errorOf(response, text) {
  let data;
  try { data = JSON.parse(text); } catch { data = {}; }
  return new ApiError(response.status, data.code || "HTTP_" + response.status, data.errorReason || text || response.statusText);
}

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  if (!response.ok) throw errorOf(response, text);
  try { return JSON.parse(text); } catch { return { errorReason: text }; }
}

// An array is the parameter repeated, one value each: an instance name may hold a comma.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) for (const each of v) q.append(k, each);
    else if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  return q.toString();
}

// Downloads go through fetch so the token travels in a header, never in the URL.
export async function download(path, filename) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw errorOf(response, await response.text());
  const url = URL.createObjectURL(await response.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
