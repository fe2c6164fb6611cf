// API access: every call carries the token; artifact bytes become cached blob URLs; every call is timed.
export const timings = { api: [] };
window.tamperscopeTimings = timings;

let token = sessionStorage.getItem("tamperscope-token") || "";
export function getToken() { return token; }
export function setToken(value) {
  token = value;
  sessionStorage.setItem("tamperscope-token", value);
}

export async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, { Authorization: "Bearer " + token });
  const started = performance.now();
  const res = await fetch(path, Object.assign({}, options, { headers }));
  timings.api.push({ path: path.split("?")[0], ms: Math.round(performance.now() - started), status: res.status });
  if (!res.ok) {
    let message = res.status + " " + res.statusText;
    try { const body = await res.json(); message = body.message || body.detail || message; } catch (e) { /* not JSON */ }
    const err = new Error(message);
    err.status = res.status;
    throw err;
  }
  return res;
}

export async function getJson(path) { return (await api(path)).json(); }

const blobs = new Map();
// A blob URL for one stored artifact of an asset (the API serves only URIs the asset references); ``frame``
// names the frame of a face crop, so the server reads only that frame's faces.
export function artifactUrl(assetId, uri, frame) {
  const key = assetId + " " + uri;
  if (!blobs.has(key)) {
    blobs.set(key, api("/api/assets/" + assetId + "/artifact?uri=" + encodeURIComponent(uri) +
      (frame ? "&frame=" + encodeURIComponent(frame) : ""))
      .then((res) => res.blob()).then((b) => URL.createObjectURL(b))
      .catch((e) => { blobs.delete(key); throw e; }));
  }
  return blobs.get(key);
}

export async function download(assetId, kind) {
  const res = await api("/api/assets/" + assetId + "/reports/latest." + kind);
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = "tamperscope-" + assetId + "." + kind;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
