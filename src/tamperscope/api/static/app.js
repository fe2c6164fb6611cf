"use strict";
// tamperscope web page: plain JS, no build step, no CDN. Every API call carries the token.
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("tamperscope-token") || "";
let currentAsset = null;
const objectUrls = [];

function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, { Authorization: "Bearer " + token });
  return fetch(path, Object.assign({}, options, { headers })).then(async (res) => {
    if (!res.ok) {
      let message = res.status + " " + res.statusText;
      try { const body = await res.json(); message = body.message || body.detail || message; } catch (e) { /* text */ }
      const err = new Error(message);
      err.status = res.status;
      throw err;
    }
    return res;
  });
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function fmt(x) { return x === null || x === undefined ? "-" : Number(x).toFixed(3); }

$("save-token").addEventListener("click", async () => {
  token = $("token").value.trim();
  try {
    await api("/api/assets?limit=1");
    sessionStorage.setItem("tamperscope-token", token);
    $("token-status").textContent = "token accepted";
  } catch (e) {
    $("token-status").textContent = "token rejected (" + e.message + ")";
  }
});

$("upload").addEventListener("click", async () => {
  showError("");
  const file = $("file").files[0];
  if (!file) { showError("choose a file first"); return; }
  $("result").hidden = true;
  $("progress-box").hidden = false;
  $("progress").value = 0;
  $("progress-text").textContent = "uploading";
  try {
    const up = await (await api("/api/assets?name=" + encodeURIComponent(file.name),
      { method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } })).json();
    currentAsset = up.asset_id;
    const job = await (await api("/api/assets/" + up.asset_id + "/analyze", { method: "POST" })).json();
    await poll(job.job_id);
    await showResult(up.asset_id);
  } catch (e) {
    showError(e.message);
  }
});

async function poll(jobId) {
  for (;;) {
    const job = await (await api("/api/jobs/" + jobId)).json();
    $("progress").value = job.fraction;
    $("progress-text").textContent = job.status + " - " + job.message;
    if (job.status === "done") return job;
    if (job.status === "failed") throw new Error("analysis failed: " + job.error);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function blobUrl(assetId, uri) {
  const res = await api("/api/assets/" + assetId + "/artifact?uri=" + encodeURIComponent(uri));
  const url = URL.createObjectURL(await res.blob());
  objectUrls.push(url);
  return url;
}

async function showResult(assetId) {
  objectUrls.splice(0).forEach((u) => URL.revokeObjectURL(u));
  const report = await (await api("/api/assets/" + assetId + "/reports/latest/content")).json();
  const meta = await (await api("/api/assets/" + assetId + "/reports/latest")).json();
  $("asset-name").textContent = report.asset.original_name + " (" + report.asset.asset_id + ")";
  const v = report.verdict;
  const verdict = $("verdict");
  if (v && v.band) {
    verdict.textContent = v.band.replace(/_/g, " ") + "  p = " + fmt(v.probability);
    verdict.className = "verdict band-" + v.band;
    $("verdict-meaning").textContent = v.meaning + " (policy " + v.policy_version + ", threshold " +
      fmt(v.threshold) + ")";
  } else {
    verdict.textContent = "no verdict";
    verdict.className = "verdict band-none";
    $("verdict-meaning").textContent = v ? v.meaning : "The fusion stage has not run; see the module results below.";
  }
  $("report-hash").textContent = "JSON SHA-256 " + meta.sha256_json;
  drawTimeline(report);
  await drawFrames(report);
  fillTable("flags", report.metadata_flags.map((f) => [f.module_name, f.window_id, JSON.stringify(f.evidence)]));
  fillTable("modules", report.detections.filter((d) => d.window_id === "asset")
    .map((d) => [d.module_name, d.status, fmt(d.score), JSON.stringify(d.evidence)]));
  const custody = $("custody");
  custody.replaceChildren();
  for (const [k, val] of [["SHA-256", report.asset.sha256], ["size", report.asset.size_bytes + " bytes"],
    ["uploaded by", report.asset.uploaded_by], ["chain hash", report.custody.chain_hash]]) {
    custody.append(el("dt", {}, k), el("dd", {}, String(val)));
  }
  const events = await (await api("/api/audit?asset=" + assetId)).json();
  fillTable("audit", events.map((e) => [e.event_id, e.when.slice(0, 19), e.who, e.action, e.hash.slice(0, 16) + "…"]));
  $("result").hidden = false;
}

function fillTable(id, rows) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = el("tr");
    row.forEach((cell, i) => tr.append(el("td", i === row.length - 1 ? { class: "evidence" } : {}, String(cell))));
    body.append(tr);
  }
  if (!rows.length) {
    const tr = el("tr");
    tr.append(el("td", { colspan: String($(id).querySelectorAll("th").length) }, "none"));
    body.append(tr);
  }
}

const NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function drawTimeline(report) {
  const W = 900, H = 220, L = 40, R = 180, T = 10, B = 30;
  const box = $("timeline");
  box.replaceChildren();
  const series = Object.entries(report.timelines);
  const end = Math.max(report.asset.duration_ms || 0, ...series.flatMap(([, p]) => p.map((q) => q.t_end_ms)), 1);
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, id: "timeline-svg" });
  const x = (ms) => L + (W - L - R) * ms / end;
  const y = (s) => T + (H - T - B) * (1 - s);
  root.append(svg("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), stroke: "#888" }));
  root.append(svg("line", { x1: L, y1: y(0), x2: L, y2: y(1), stroke: "#888" }));
  for (const s of [0, 0.5, 1]) {
    const t = svg("text", { x: L - 6, y: y(s) + 4, "text-anchor": "end", "font-size": 10 });
    t.textContent = s;
    root.append(t);
  }
  const label = svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 10 });
  label.textContent = "time (s), 0 - " + (end / 1000).toFixed(1);
  root.append(label);
  report.shots.forEach((shot, i) => {
    if (i === 0) return;
    root.append(svg("line", { x1: x(shot.t_start_ms), x2: x(shot.t_start_ms), y1: y(0), y2: y(1), stroke: "#555",
      "stroke-dasharray": "4 3", class: "shot-boundary" }));
  });
  const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
  series.forEach(([name, points], i) => {
    const colour = palette[i % palette.length];
    const d = points.map((p, j) => (j ? "L" : "M") + x((p.t_start_ms + p.t_end_ms) / 2).toFixed(1) + " " +
      y(p.score).toFixed(1)).join(" ");
    root.append(svg("path", { d, fill: "none", stroke: colour, "stroke-width": 1.5, class: "series" }));
    const t = svg("text", { x: W - R + 8, y: T + 12 + 14 * i, "font-size": 10, fill: colour });
    t.textContent = name;
    root.append(t);
  });
  if (!series.length) {
    const t = svg("text", { x: L + 10, y: H / 2, "font-size": 12, fill: "#666" });
    t.textContent = "no per-frame or per-window scores (" + report.shots.length + " shot(s))";
    root.append(t);
  }
  box.append(root);
}

async function drawFrames(report) {
  const box = $("frames");
  box.replaceChildren();
  const maps = {};
  for (const d of report.detections) {
    if (!d.overlay_uri && !d.saliency_uri) continue;
    const key = d.window_id === "asset" && report.frames.length === 1 ? report.frames[0].frame_id : d.window_id;
    (maps[key] = maps[key] || []).push(d);
  }
  for (const frame of report.frames.slice(0, 24)) {
    if (!frame.uri) continue;
    const fig = el("figure", { class: "frame" });
    const img = el("img", { alt: "frame " + frame.frame_id });
    const views = { frame: await blobUrl(report.asset.asset_id, frame.uri) };
    const dets = maps[frame.frame_id] || [];
    const strongest = (key) => dets.filter((d) => d[key])
      .sort((a, b) => (b.score ?? -1) - (a.score ?? -1))[0];
    const withOverlay = strongest("overlay_uri");
    const withMap = strongest("saliency_uri");
    if (withOverlay) views.overlay = await blobUrl(report.asset.asset_id, withOverlay.overlay_uri);
    if (withMap) views.saliency = await blobUrl(report.asset.asset_id, withMap.saliency_uri);
    img.src = views.frame;
    img.dataset.views = JSON.stringify(views);
    fig.append(img, el("figcaption", {}, (frame.t_ms / 1000).toFixed(2) + " s" +
      (withOverlay ? " · overlay: " + withOverlay.module_name : "") + (withMap ? " · map: " + withMap.module_name : "")));
    box.append(fig);
  }
}

document.querySelectorAll("input[name=view]").forEach((radio) => radio.addEventListener("change", () => {
  const view = document.querySelector("input[name=view]:checked").value;
  document.querySelectorAll("#frames img").forEach((img) => {
    const views = JSON.parse(img.dataset.views);
    img.src = views[view] || views.frame;
  });
}));

async function download(kind) {
  const res = await api("/api/assets/" + currentAsset + "/reports/latest." + kind);
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", { href: url, download: "tamperscope-" + currentAsset + "." + kind });
  document.body.append(a);
  a.click();
  a.remove();
}
$("download-json").addEventListener("click", () => download("json"));
$("download-pdf").addEventListener("click", () => download("pdf"));
if (token) $("token").value = token;
