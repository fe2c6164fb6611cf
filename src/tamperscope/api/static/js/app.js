// tamperscope case page: plain ES modules, no build step, no CDN. Routes: #/ (cases), #/upload,
// #/case/<id>, #/compare/<a>/<b>. Every API call carries the token (see api.js).
import { api, artifactUrl, download, getJson, getToken, setToken, timings } from "./api.js";
import { branchChart, contributionChart, el, fmt, seconds, seriesStyle, timelineChart } from "./charts.js";
import { MapViewer } from "./viewer.js";

const $ = (id) => document.getElementById(id);
const BAND_CLASS = (band) => "band-" + (band || "none");
const list = { q: "", media_type: "", band: "", uploaded_from: "", uploaded_to: "", sort: "upload_time",
  order: "desc", offset: 0, limit: 20 };
const selected = new Set();
let current = null;
let viewer = null;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function fillTable(id, rows, classes = []) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = el("tr");
    row.forEach((cell, i) => {
      const td = el("td", classes[i] ? { class: classes[i] } : {});
      if (cell instanceof Node) td.append(cell); else td.textContent = cell === null || cell === undefined ? "-" : String(cell);
      tr.append(td);
    });
    body.append(tr);
  }
  if (!rows.length) {
    const tr = el("tr");
    tr.append(el("td", { colspan: String($(id).querySelectorAll("th").length), class: "hint" }, "none"));
    body.append(tr);
  }
}

const loaded = (img) => (img.complete && img.naturalWidth ? Promise.resolve() :
  new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; }));

// ---------------------------------------------------------------- token and upload
$("save-token").addEventListener("click", async () => {
  setToken($("token").value.trim());
  try {
    await api("/api/assets?limit=1");
    $("token-status").textContent = "token accepted";
    route();
  } catch (e) {
    $("token-status").textContent = "token rejected (" + e.message + ")";
  }
});

$("upload").addEventListener("click", async () => {
  showError("");
  const file = $("file").files[0];
  if (!file) { showError("choose a file first"); return; }
  $("progress-box").hidden = false;
  $("progress").value = 0;
  $("progress-text").textContent = "uploading";
  try {
    const up = await (await api("/api/assets?name=" + encodeURIComponent(file.name),
      { method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } })).json();
    const job = await (await api("/api/assets/" + up.asset_id + "/analyze", { method: "POST" })).json();
    for (;;) {
      const state = await getJson("/api/jobs/" + job.job_id);
      $("progress").value = state.fraction;
      $("progress-text").textContent = state.status + " - " + state.message;
      if (state.status === "done") break;
      if (state.status === "failed") throw new Error("analysis failed: " + state.error);
      await new Promise((r) => setTimeout(r, 500));
    }
    location.hash = "#/case/" + up.asset_id;
  } catch (e) {
    showError(e.message);
  }
});

// ---------------------------------------------------------------- case list
function reloadList() {
  delete document.body.dataset.rendered;
  showList().catch((e) => showError(e.message));
}

function listQuery() {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(list)) if (v !== "" && v !== null) params.set(k, v);
  return params.toString();
}

async function showList() {
  const res = await api("/api/assets?" + listQuery());
  const rows = await res.json();
  const total = Number(res.headers.get("X-Total-Count") || rows.length);
  fillTable("assets", rows.map((a) => {
    const box = el("input", { type: "checkbox", "data-id": a.asset_id, class: "pick", "aria-label": "select" });
    box.checked = selected.has(a.asset_id);
    box.addEventListener("change", () => {
      if (box.checked) selected.add(a.asset_id); else selected.delete(a.asset_id);
      $("compare-selected").disabled = selected.size !== 2;
    });
    const link = el("a", { href: "#/case/" + a.asset_id, class: "asset-link" }, a.original_name);
    const band = el("span", { class: "badge " + BAND_CLASS(a.band) },
      a.band ? a.band.replace(/_/g, " ") + " " + fmt(a.probability, 2) : "no verdict");
    const media = (a.media_type || "unknown") + (a.status === "analyzed" ? "" : " · " + a.status) +
      (a.duration_ms ? " · " + seconds(a.duration_ms) : "");
    return [box, link, media, band, a.upload_time.slice(0, 19).replace("T", " "),
      (a.size_bytes / 1048576).toFixed(2) + " MiB", a.sha256.slice(0, 16) + "…"];
  }), ["", "", "", "", "", "num", "mono"]);
  $("page-info").textContent = total ? `${list.offset + 1}–${list.offset + rows.length} of ${total}` : "no cases";
  $("page-prev").disabled = list.offset === 0;
  $("page-next").disabled = list.offset + rows.length >= total;
  document.querySelectorAll("#assets th[data-sort]").forEach((th) => {
    th.classList.toggle("sorted", th.dataset.sort === list.sort);
    th.dataset.order = th.dataset.sort === list.sort ? list.order : "";
  });
  $("compare-selected").disabled = selected.size !== 2;
  document.body.dataset.rendered = "list";
}

$("filters").addEventListener("submit", (ev) => {
  ev.preventDefault();
  Object.assign(list, { q: $("f-q").value.trim(), media_type: $("f-media").value, band: $("f-band").value,
    uploaded_from: $("f-from").value, uploaded_to: $("f-to").value ? $("f-to").value + "T23:59:59" : "", offset: 0 });
  reloadList();
});
document.querySelectorAll("#assets th[data-sort]").forEach((th) => th.addEventListener("click", () => {
  list.order = list.sort === th.dataset.sort && list.order === "desc" ? "asc" : "desc";
  list.sort = th.dataset.sort;
  list.offset = 0;
  reloadList();
}));
$("page-prev").addEventListener("click", () => { list.offset = Math.max(0, list.offset - list.limit); reloadList(); });
$("page-next").addEventListener("click", () => { list.offset += list.limit; reloadList(); });
$("compare-selected").addEventListener("click", () => {
  const [a, b] = [...selected];
  location.hash = `#/compare/${a}/${b}`;
});

// ---------------------------------------------------------------- case page
function renderVerdict(v) {
  const box = $("verdict");
  const reading = $("verdict-reading");
  reading.replaceChildren();
  $("contributions").replaceChildren();
  $("branches-missing").replaceChildren();
  if (!v) {
    box.textContent = "no verdict";
    box.className = "verdict band-none";
    reading.append(el("li", {}, "The fusion stage has not run for this asset."));
    return;
  }
  if (v.band === null || v.probability === null) {
    box.textContent = "no verdict";
    box.className = "verdict band-none";
    reading.append(el("li", {}, v.reason || "No calibrated verdict."));
    return;
  }
  box.textContent = v.band_text + "  p = " + fmt(v.probability);
  box.className = "verdict " + BAND_CLASS(v.band);
  for (const s of v.reading.sentences) reading.append(el("li", {}, s));
  reading.append(el("li", { class: "hint" }, `model ${v.model_id}, policy ${v.policy_version}`));
  $("contributions").append(contributionChart(v.contributions, v.intercept));
  for (const m of v.missing) {
    $("branches-missing").append(el("li", { class: "missing-branch" }, `${m.branch}: missing (${m.why}); the model ` +
      "reads its missing indicator instead"));
  }
  for (const m of v.not_selected) $("branches-missing").append(el("li", { class: "hint" }, `${m.branch}: ${m.why}`));
  if (!v.missing.length) {
    $("branches-missing").append(el("li", { class: "hint" }, "every branch of the model had evidence: " +
      v.present.join(", ")));
  }
}

function renderTimeline(c) {
  const tl = c.timeline;
  const end = Math.max(c.asset.duration_ms || 0, ...c.frames.map((f) => f.t_ms), 1);
  const high = tl.policy_high !== null && tl.policy_high <= 1 ? `policy threshold p = ${fmt(tl.policy_high, 2)} ` +
    "(dash-dot line)" : "the policy's 'likely manipulated' threshold is closed (no threshold reached its precision)";
  $("timeline-legend").textContent = `Thick line: fused probability per clip window. Shaded: windows with p ≥ ` +
    `${tl.suspicious_p} (more likely manipulated than not on the calibration set); dotted line p = ` +
    `${tl.suspicious_p}; ${high}; dashed verticals: shot boundaries (${tl.shots.length} shot(s)). Click to jump.`;
  const main = timelineChart(tl, end, seek);
  $("timeline").replaceChildren(main);
  const names = Object.keys(tl.branches);
  const on = new Set(names.filter((n) => n.startsWith("deep.")));
  const toggles = $("branch-toggles");
  toggles.replaceChildren(el("span", { class: "hint" }, "branch lines: "));
  names.forEach((name, i) => {
    const box = el("input", { type: "checkbox", value: name, class: "branch-toggle" });
    box.checked = on.has(name);
    const style = seriesStyle(i);
    const label = el("label", { class: "toggle" });
    label.append(box, el("span", { class: "swatch", style: `background:${style.stroke}` }),
      " " + name + " (" + tl.branches[name].length + ")");
    box.addEventListener("change", () => {
      if (box.checked) on.add(name); else on.delete(name);
      $("branch-timeline").replaceChildren(branchChart(tl.branches, [...on], end));
    });
    toggles.append(label);
  });
  $("branch-timeline").replaceChildren(branchChart(tl.branches, [...on], end));
  return main;
}

async function renderFaces(c) {
  const box = $("faces");
  box.replaceChildren();
  if (!c.faces.length) {
    box.append(el("p", { class: "hint" }, "No face was scored by the frame model (no face found, or no model)."));
    return [];
  }
  const waits = [];
  for (const f of c.faces) {
    const fig = el("figure", { class: "face" });
    const pair = el("div", { class: "face-pair" });
    const images = {};
    for (const [uri, alt, cls] of [[f.crop_uri, "face crop", "crop"], [f.saliency_uri, "Grad-CAM", "gradcam"]]) {
      if (!uri) continue;
      const img = el("img", { alt, class: cls });
      images[cls] = artifactUrl(c.asset.asset_id, uri, f.frame_id).then((u) => { img.src = u; return loaded(img); })
        .then(() => img);
      pair.append(img);
    }
    waits.push(...Object.values(images));
    if (images.crop && images.gradcam) {
      const blend = el("canvas", { class: "gradcam-overlay", width: "112", height: "112",
        title: "Grad-CAM over the crop (weighted by the map)" });
      waits.push(Promise.all([images.crop, images.gradcam]).then(([crop, map]) => overlayMap(blend, crop, map)));
      pair.append(blend);
    } else if (!images.gradcam) {
      pair.append(el("span", { class: "hint no-map" }, "no Grad-CAM kept for this frame"));
    }
    fig.append(pair, el("figcaption", {}, `${seconds(f.t_ms)} · track ${f.track_id} · p(face) = ${fmt(f.score)}`));
    fig.addEventListener("click", () => seek(f.t_ms));
    box.append(fig);
  }
  return waits;
}

// Jet colours of a [0, 1] value, as the forensic heat maps use.
const jet = (v) => [1.5 - Math.abs(4 * v - 3), 1.5 - Math.abs(4 * v - 2), 1.5 - Math.abs(4 * v - 1)]
  .map((c) => Math.round(255 * Math.max(0, Math.min(1, c))));

// The crop with its (grey) saliency map laid over it in jet colours, each pixel weighted by the map.
function overlayMap(canvas, crop, map) {
  if (!crop.naturalWidth || !map.naturalWidth) return;
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.drawImage(map, 0, 0, width, height);
  const heat = ctx.getImageData(0, 0, width, height).data;
  ctx.drawImage(crop, 0, 0, width, height);
  const out = ctx.getImageData(0, 0, width, height);
  for (let i = 0; i < out.data.length; i += 4) {
    const v = heat[i] / 255, a = 0.6 * v, c = jet(v);
    for (let k = 0; k < 3; k++) out.data[i + k] = out.data[i + k] * (1 - a) + c[k] * a;
  }
  ctx.putImageData(out, 0, 0);
}

let scrubTimer = null;
let scrubDone = null;
function seek(ms) {
  if (!current || !current.frames.length) return;
  const frames = current.frames;
  let best = 0;
  frames.forEach((f, i) => { if (Math.abs(f.t_ms - ms) < Math.abs(frames[best].t_ms - ms)) best = i; });
  $("scrubber").value = best;
  return showFrame(best);
}

function showFrame(i) {
  const f = current.frames[i];
  $("scrubber-time").textContent = `${seconds(f.t_ms)} (${i + 1}/${current.frames.length})`;
  const main = $("timeline-svg");
  if (main && main.moveCursor) main.moveCursor(f.t_ms);
  clearTimeout(scrubTimer);
  if (scrubDone) scrubDone();  // a superseded load counts as done
  return new Promise((resolve) => {
    scrubDone = resolve;
    scrubTimer = setTimeout(async () => {
      const img = $("scrub-img");
      img.src = await artifactUrl(current.asset.asset_id, f.uri);
      await loaded(img);
      const dets = current.timeline ? current.timeline.fused.filter((p) => p.t_start_ms <= f.t_ms &&
        f.t_ms <= p.t_end_ms && p.probability !== null) : [];
      $("scrub-caption").textContent = f.frame_id + (dets.length ? " · window p = " +
        dets.map((p) => fmt(p.probability, 2)).join(", ") : "");
      resolve();
    }, 60);
  });
}
$("scrubber").addEventListener("input", () => showFrame(Number($("scrubber").value)));
$("scrub-prev").addEventListener("click", () => { $("scrubber").stepDown(); showFrame(Number($("scrubber").value)); });
$("scrub-next").addEventListener("click", () => { $("scrubber").stepUp(); showFrame(Number($("scrubber").value)); });

function mapWindows(c) {
  const windows = Object.keys(c.maps);
  const sel = $("map-window");
  sel.replaceChildren();
  const times = Object.fromEntries(c.frames.map((f) => [f.frame_id, f.t_ms]));
  for (const w of windows) sel.append(el("option", { value: w }, w === "asset" ? "image" : seconds(times[w] ?? 0)));
  $("map-window-box").hidden = c.asset.media_type !== "video" || !windows.length;
  return windows;
}

async function showMaps(c, windowId) {
  const maps = c.maps[windowId] || [];
  const uri = windowId === "asset" ? (c.image && c.image.uri) : (c.frames.find((f) => f.frame_id === windowId) || {}).uri;
  if (!uri) { $("viewer").replaceChildren(el("p", { class: "hint" }, "No stored image to show maps on.")); return; }
  if (!viewer || !$("viewer").contains(viewer.frame)) viewer = new MapViewer($("viewer"), "viewer");
  const size = c.asset.media_type === "image" ? [c.asset.width, c.asset.height] : [0, 0];
  await viewer.show(c.asset.asset_id, uri, maps, size, viewer.select.value || null);
}
$("map-window").addEventListener("change", () => showMaps(current, $("map-window").value));

function renderMetadata(c) {
  const m = c.metadata;
  $("metadata-in-verdict").textContent = m.metadata_in_verdict ? "Metadata entered this verdict (a fusion branch " +
    "reads the flags and the C2PA status)." : "Metadata did not enter this verdict: the fusion model for this media " +
    "does not read it (it did not raise held-out accuracy). The flags below are for the examiner.";
  const flags = $("flags");
  flags.replaceChildren();
  for (const f of m.flags) {
    const li = el("li", { class: "flag" });
    li.append(el("span", { class: "flag-sentence" }, f.sentence), " ",
      el("span", { class: "badge " + (f.in_verdict ? "in-verdict" : "not-in-verdict") },
        f.in_verdict ? "entered the verdict" : "not in the verdict"));
    const dl = el("dl", { class: "flag-values" });
    for (const [k, v] of Object.entries(f.values)) dl.append(el("dt", {}, k), el("dd", {}, JSON.stringify(v)));
    li.append(el("div", { class: "hint" }, `${f.module} · weight ${fmt(f.score, 2)}`), dl);
    flags.append(li);
  }
  if (!m.flags.length) flags.append(el("li", { class: "hint" }, "No metadata rule raised a flag."));
  const tags = $("tags");
  tags.replaceChildren();
  for (const [k, v] of Object.entries(m.tags)) tags.append(el("dt", {}, k), el("dd", {}, String(v)));
  tags.append(el("dt", {}, "tags read"), el("dd", {}, String(m.tag_count)));
}

function renderProvenance(p) {
  const text = { valid: "valid C2PA manifest", invalid: "C2PA manifest present but INVALID", absent: "no C2PA manifest",
    remote_not_fetched: "manifest is remote (not fetched: no network)", inaccessible: "manifest inaccessible",
    unsupported: "format not supported by the C2PA reader" };
  $("c2pa-status").replaceChildren(el("span", { class: "badge c2pa-" + (p.status || "none"), id: "c2pa-badge" },
    text[p.status] || "not checked (the metadata stage did not run)"));
  const dl = $("c2pa");
  dl.replaceChildren();
  const add = (k, v) => { if (v !== null && v !== undefined && v !== "") dl.append(el("dt", {}, k), el("dd", {}, v)); };
  add("validation", p.validation_state);
  add("failure codes", p.failure_codes.join(", "));
  const m = p.manifest;
  if (m) {
    add("title", m.title);
    add("signer", [m.signer, m.common_name].filter(Boolean).join(" / "));
    add("signed at", m.signed_at);
    add("claim generator", m.claim_generator);
    add("actions", m.actions.map((a) => a.action + (a.software ? " (" + a.software + ")" : "")).join(", ") || "none");
    add("ingredients", m.ingredients.map((i) => `${i.title} [${i.relationship}]`).join(", ") || "none");
    add("manifests in store", String(m.manifests_in_store));
  }
}

async function showCase(id) {
  const started = performance.now();
  const c = await getJson("/api/assets/" + id + "/case");
  const apiDone = performance.now();
  current = c;
  const a = c.asset;
  $("asset-name").textContent = a.original_name;
  $("asset-facts").textContent = `${a.media_type} · ${a.width}x${a.height}` +
    (a.duration_ms ? ` · ${seconds(a.duration_ms)}` : "") + ` · ${(a.size_bytes / 1048576).toFixed(2)} MiB · id ` +
    `${a.asset_id} · SHA-256 ${a.sha256} · uploaded by ${a.uploaded_by} ${a.upload_time.slice(0, 19)}`;
  $("report-hash").textContent = c.report ? "report JSON SHA-256 " + c.report.sha256_json.slice(0, 16) + "…" :
    "no report yet";
  $("download-json").disabled = $("download-pdf").disabled = !c.report;
  renderVerdict(c.verdict);
  const waits = [];
  $("video-panels").hidden = a.media_type !== "video";
  if (a.media_type === "video") {
    renderTimeline(c);
    waits.push(...await renderFaces(c));
    $("scrubber").max = Math.max(0, c.frames.length - 1);
    const peak = c.faces.length ? c.faces[0].t_ms : 0;
    if (c.frames.length) waits.push(seek(peak));
  }
  const windows = mapWindows(c);
  $("maps-panel").hidden = !windows.length;
  if (windows.length) waits.push(showMaps(c, windows[0]));
  fillTable("modules", c.modules.map((m) => [m.module, m.status, fmt(m.score), m.reason || ""]), ["mono"]);
  renderMetadata(c);
  renderProvenance(c.provenance);
  fillTable("audit", c.custody.map((e) => [e.event_id, e.when.slice(0, 19), e.who, e.action, e.hash.slice(0, 16) + "…"]),
    ["", "", "", "", "mono"]);
  fillTable("stages", c.stages.map((s) => [s.stage, s.version, s.status, s.error || ""]));
  await Promise.all(waits);
  const nav = performance.getEntriesByType("navigation")[0];
  timings.case = { asset_id: a.asset_id, api_ms: Math.round(apiDone - started),
    rendered_ms: Math.round(performance.now() - started),
    since_dom_content_loaded_ms: nav ? Math.round(performance.now() - nav.domContentLoadedEventEnd) : null,
    frames: c.frames.length, faces: c.faces.length, windows: c.timeline ? c.timeline.fused.length : 0 };
  document.body.dataset.rendered = a.asset_id;
}

$("download-json").addEventListener("click", () => download(current.asset.asset_id, "json").catch((e) => showError(e.message)));
$("download-pdf").addEventListener("click", () => download(current.asset.asset_id, "pdf").catch((e) => showError(e.message)));
$("compare-go").addEventListener("click", () => {
  const other = $("compare-with").value.trim();
  if (other) location.hash = `#/compare/${current.asset.asset_id}/${other}`;
});

// ---------------------------------------------------------------- comparison
async function showCompare(a, b) {
  const c = await getJson(`/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  for (const [side, data] of [["a", c.a], ["b", c.b]]) {
    const box = $("cmp-" + side);
    const v = data.verdict;
    box.replaceChildren(el("h3", {}, side.toUpperCase() + ": "),
      el("div", { class: "verdict small " + BAND_CLASS(v && v.band) },
        v && v.band ? v.band_text + "  p = " + fmt(v.probability) : "no verdict"),
      el("p", { class: "mono" }, `${data.asset.asset_id} · ${data.asset.media_type} ${data.asset.width}x` +
        `${data.asset.height} · C2PA ${data.provenance.status || "-"}`));
    box.querySelector("h3").append(el("a", { href: "#/case/" + data.asset.asset_id }, data.asset.original_name));
  }
  const p = c.phash;
  $("phash").replaceChildren(el("strong", { id: "phash-distance" }, p.distance === null ? "pHash distance: n/a" :
    `pHash distance: ${p.distance} of 64 bits` + (p.frames_a > 1 || p.frames_b > 1 ? ` (median best match over ` +
    `${p.frames_a} frame(s) of A; minimum ${p.min_distance}; ${p.near_duplicates} near-duplicate frame(s))` : "")),
  el("p", { class: "hint" }, p.method + (p.note ? " · " + p.note : "")));
  const windowOf = (d) => (d.maps.asset ? "asset" : Object.keys(d.maps)[0]);
  const sides = { a: c.a, b: c.b };
  const modules = [...new Set([c.a, c.b].flatMap((d) => (d.maps[windowOf(d)] || []).map((m) => m.module)))].sort();
  const sel = $("cmp-map");
  sel.replaceChildren(el("option", { value: "" }, "none (image only)"), ...modules.map((m) => el("option", { value: m },
    m.replace("forensics.", ""))));
  sel.value = modules.includes("forensics.ela") ? "forensics.ela" : modules[0] || "";
  const draw = async () => {
    await Promise.all(Object.entries(sides).map(async ([side, d]) => {
      const w = windowOf(d);
      const maps = d.maps[w] || [];
      const frame = d.frames.find((f) => f.frame_id === w);
      const base = w === "asset" ? d.image && d.image.uri : frame && frame.uri;
      const img = $("cmp-img-" + side), heat = $("cmp-heat-" + side);
      const m = maps.find((x) => x.module === sel.value);
      const baseUri = base || (m && m.overlay_uri) || (maps[0] && maps[0].overlay_uri);
      if (baseUri) img.src = await artifactUrl(d.asset.asset_id, baseUri);
      heat.hidden = !(m && m.saliency_uri);
      if (m && m.saliency_uri) heat.src = await artifactUrl(d.asset.asset_id, m.saliency_uri);
      heat.style.opacity = $("cmp-opacity").value / 100;
      $("cmp-cap-" + side).textContent = m ? `${m.module}: ${fmt(m.score)}` : "image only";
      await loaded(img);
    }));
  };
  sel.onchange = draw;
  $("cmp-opacity").oninput = () => document.querySelectorAll(".cmp-stack .heat").forEach((h) => {
    h.style.opacity = $("cmp-opacity").value / 100;
  });
  await draw();
  $("diff-count").textContent = `(${c.metadata_diff_total} tag(s) differ` +
    (c.metadata_diff_total > c.metadata_diff.length ? `, first ${c.metadata_diff.length} shown)` : ")");
  fillTable("metadata-diff", c.metadata_diff.map((d) => [d.tag, d.a === null || d.a === undefined ? "—" :
    JSON.stringify(d.a), d.b === null || d.b === undefined ? "—" : JSON.stringify(d.b)]), ["mono", "mono", "mono"]);
  document.body.dataset.rendered = "compare";
}

// ---------------------------------------------------------------- routing
async function route() {
  showError("");
  delete document.body.dataset.rendered;
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const view = parts[0] || "cases";
  const target = { cases: "list-view", upload: "upload-view", case: "case-view", compare: "compare-view" }[view] ||
    "list-view";
  document.querySelectorAll(".view").forEach((s) => { s.hidden = s.id !== target; });
  if (!getToken()) {
    if (target !== "upload-view") showError("Paste an API token above (tamperscope token create NAME).");
    return;
  }
  try {
    if (view === "case") await showCase(parts[1]);
    else if (view === "compare") await showCompare(parts[1], parts[2]);
    else if (target === "list-view") await showList();
  } catch (e) {
    showError(e.message);
  }
}

window.addEventListener("hashchange", route);
if (getToken()) $("token").value = getToken();
route();
