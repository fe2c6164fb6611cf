// Charts drawn as inline SVG: the signed contribution bars and the video timeline.
const NS = "http://www.w3.org/2000/svg";

export function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== "" && text !== null && text !== undefined) node.textContent = text;
  return node;
}

export function svg(tag, attrs = {}, text = "") {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== "") node.textContent = text;
  return node;
}

export const fmt = (x, digits = 3) => (x === null || x === undefined ? "-" : Number(x).toFixed(digits));
export const seconds = (ms) => (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";

// Ten distinguishable colours, then the same colours dashed: no two branch lines look alike.
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
  "#7f7f7f", "#393b79"];
export function seriesStyle(i) {
  return { stroke: PALETTE[i % PALETTE.length], dash: i >= PALETTE.length ? "6 3" : "" };
}

// Signed logit contributions, one bar per model column, biggest first; red pushes towards manipulated.
export function contributionChart(contributions, intercept) {
  const rows = [...contributions];
  if (intercept !== undefined && intercept !== null) rows.push({ column: "baseline (intercept)", value: intercept });
  const W = 620, rowH = 24, L = 210, R = 70, H = rowH * rows.length + 30;
  const max = Math.max(0.25, ...rows.map((r) => Math.abs(r.value)));
  const mid = L + (W - L - R) / 2;
  const scale = (W - L - R) / 2 / max;
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, id: "contrib-svg", role: "img",
    "aria-label": "signed contribution of each branch feature to the logit" });
  rows.forEach((r, i) => {
    const y = 6 + i * rowH;
    const w = Math.abs(r.value) * scale;
    const cls = r.column.startsWith("baseline") ? "bar-base" : r.value >= 0 ? "bar-pos" : "bar-neg";
    root.append(svg("text", { x: L - 8, y: y + 15, "text-anchor": "end", class: "bar-label" },
      r.column + (r.raw !== undefined && r.raw !== null ? " = " + fmt(r.raw) : "")));
    root.append(svg("rect", { x: r.value >= 0 ? mid : mid - w, y: y + 3, width: Math.max(w, 1), height: rowH - 8,
      class: "bar " + cls }));
    // the value sits on the other side of the zero line, so it never runs into the labels
    root.append(svg("text", { x: r.value >= 0 ? mid - 4 : mid + 4, y: y + 15,
      "text-anchor": r.value >= 0 ? "end" : "start", class: "bar-value" }, (r.value >= 0 ? "+" : "") + fmt(r.value, 2)));
  });
  const bottom = 6 + rows.length * rowH;
  root.append(svg("line", { x1: mid, x2: mid, y1: 2, y2: bottom, class: "axis" }));
  root.append(svg("text", { x: mid - 6, y: bottom + 16, "text-anchor": "end", class: "axis-label" }, "← towards real"));
  root.append(svg("text", { x: mid + 6, y: bottom + 16, class: "axis-label" }, "towards manipulated →"));
  return root;
}

function xAxis(root, x, end, y0, L, Rx) {
  root.append(svg("line", { x1: L, x2: Rx, y1: y0, y2: y0, class: "axis" }));
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((s) => end / 1000 / s <= 12) || 1200;
  for (let t = 0; t <= end / 1000 + 1e-9; t += step) {
    root.append(svg("line", { x1: x(t * 1000), x2: x(t * 1000), y1: y0, y2: y0 + 4, class: "axis" }));
    root.append(svg("text", { x: x(t * 1000), y: y0 + 15, "text-anchor": "middle", class: "axis-label" }, t + " s"));
  }
}

function yAxis(root, y, L) {
  for (const s of [0, 0.5, 1]) {
    root.append(svg("text", { x: L - 6, y: y(s) + 4, "text-anchor": "end", class: "axis-label" }, String(s)));
    root.append(svg("line", { x1: L, x2: L - 3, y1: y(s), y2: y(s), class: "axis" }));
  }
}

const mid = (p) => ((p.t_start_ms + p.t_end_ms) / 2);
function path(points, x, y, value) {
  return points.map((p, j) => (j ? "L" : "M") + x(mid(p)).toFixed(1) + " " + y(value(p)).toFixed(1)).join(" ");
}

// The fused per-window probability with shaded suspicious segments, shot boundaries and the policy lines.
export function timelineChart(tl, end, onSeek) {
  const W = 960, H = 210, L = 44, R = 16, T = 12, B = 28;
  const x = (ms) => L + (W - L - R) * ms / end;
  const y = (s) => T + (H - T - B) * (1 - s);
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, id: "timeline-svg", class: "timeline" });
  for (const seg of tl.suspicious) {
    root.append(svg("rect", { x: x(seg.t_start_ms), y: y(1), width: Math.max(x(seg.t_end_ms) - x(seg.t_start_ms), 2),
      height: y(0) - y(1), class: "suspicious" }, ""));
  }
  tl.shots.forEach((shot, i) => {
    if (i === 0) return;
    root.append(svg("line", { x1: x(shot.t_start_ms), x2: x(shot.t_start_ms), y1: y(0), y2: y(1),
      class: "shot-boundary" }));
  });
  root.append(svg("line", { x1: L, x2: W - R, y1: y(tl.suspicious_p), y2: y(tl.suspicious_p), class: "p-line" }));
  if (tl.policy_high !== null && tl.policy_high <= 1) {
    root.append(svg("line", { x1: L, x2: W - R, y1: y(tl.policy_high), y2: y(tl.policy_high), class: "policy-line" }));
  }
  const scored = tl.fused.filter((p) => p.probability !== null);
  if (scored.length) {
    // one line per face track (windows of different tracks overlap in time); the first is #fused-line
    const tracks = [...new Set(scored.map((p) => p.track_id))];
    tracks.forEach((track, i) => {
      const line = svg("path", { d: path(scored.filter((p) => p.track_id === track), x, y, (p) => p.probability),
        class: "fused-line", "stroke-dasharray": i ? "7 3" : "", "data-track": String(track) });
      if (i === 0) line.id = "fused-line";
      line.append(svg("title", {}, "face track " + track));
      root.append(line);
    });
    for (const p of scored) {
      const dot = svg("circle", { cx: x(mid(p)), cy: y(p.probability), r: 3, class: "fused-dot" });
      dot.append(svg("title", {}, `${seconds(p.t_start_ms)}–${seconds(p.t_end_ms)}: p = ${fmt(p.probability)}`));
      root.append(dot);
    }
  } else {
    root.append(svg("text", { x: L + 12, y: y(0.5) - 8, class: "empty-note" },
      "no fused per-window probability: no window has a face track the deep models could score"));
  }
  yAxis(root, y, L);
  xAxis(root, x, end, y(0), L, W - R);
  root.append(svg("line", { x1: x(0), x2: x(0), y1: y(0), y2: y(1), class: "cursor", id: "timeline-cursor" }));
  root.addEventListener("click", (ev) => {
    const box = root.getBoundingClientRect();
    const ms = ((ev.clientX - box.left) * W / box.width - L) / (W - L - R) * end;
    if (ms >= 0 && ms <= end) onSeek(ms);
  });
  root.moveCursor = (ms) => {
    const c = root.querySelector("#timeline-cursor");
    c.setAttribute("x1", x(ms));
    c.setAttribute("x2", x(ms));
  };
  return root;
}

// The branch lines under the main timeline, only those switched on.
export function branchChart(branches, names, end) {
  const W = 960, H = 150, L = 44, R = 16, T = 8, B = 26;
  const x = (ms) => L + (W - L - R) * ms / end;
  const y = (s) => T + (H - T - B) * (1 - Math.max(0, Math.min(1, s)));
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, id: "branches-svg", class: "timeline" });
  const all = Object.keys(branches);
  for (const name of names) {
    const style = seriesStyle(all.indexOf(name));
    const pts = branches[name];
    root.append(svg("path", { d: path(pts, x, y, (p) => p.score), class: "branch-line", "data-branch": name,
      stroke: style.stroke, "stroke-dasharray": style.dash }));
    if (pts.length < 40) {
      for (const p of pts) root.append(svg("circle", { cx: x(mid(p)), cy: y(p.score), r: 2, fill: style.stroke }));
    }
  }
  yAxis(root, y, L);
  xAxis(root, x, end, y(0), L, W - R);
  return root;
}
