// The map viewer: an image with one selectable forensic map over it (opacity slider), zoom and pan, a
// magnifier, and copy-move matches drawn as lines.
import { artifactUrl } from "./api.js";
import { el, fmt, svg } from "./charts.js";

const loaded = (img) => (img.complete && img.naturalWidth ? Promise.resolve() :
  new Promise((resolve, reject) => { img.onload = resolve; img.onerror = reject; }));

export class MapViewer {
  constructor(root, idPrefix) {
    this.root = root;
    this.id = idPrefix;
    root.classList.add("viewer");
    this.select = el("select", { id: idPrefix + "-map", class: "map-select", "aria-label": "map" });
    this.opacity = el("input", { id: idPrefix + "-opacity", type: "range", min: "0", max: "100", value: "60",
      "aria-label": "map opacity" });
    this.opacityText = el("span", { class: "hint" }, "60 %");
    this.magnify = el("input", { id: idPrefix + "-magnifier", type: "checkbox" });
    this.showLines = el("input", { id: idPrefix + "-lines", type: "checkbox", checked: "" });
    const zoomIn = el("button", { type: "button", id: idPrefix + "-zoom-in", title: "zoom in" }, "+");
    const zoomOut = el("button", { type: "button", id: idPrefix + "-zoom-out", title: "zoom out" }, "−");
    const reset = el("button", { type: "button", id: idPrefix + "-zoom-reset", title: "fit" }, "fit");
    this.zoomText = el("span", { class: "hint", id: idPrefix + "-zoom" }, "");
    const magLabel = el("label", {}, " magnifier");
    magLabel.prepend(this.magnify);
    this.linesLabel = el("label", {}, " copy-move matches");
    this.linesLabel.prepend(this.showLines);
    const tools = el("div", { class: "viewer-tools" });
    tools.append(el("label", { for: this.select.id }, "map "), this.select, el("span", {}, " opacity "), this.opacity,
      this.opacityText, zoomOut, zoomIn, reset, this.zoomText, magLabel, this.linesLabel);
    this.frame = el("div", { class: "viewer-frame", id: idPrefix + "-frame" });
    this.stage = el("div", { class: "viewer-stage" });
    this.base = el("img", { class: "viewer-base", alt: "analysed image", id: idPrefix + "-base", draggable: "false" });
    this.heat = el("img", { class: "viewer-heat", alt: "map", id: idPrefix + "-heat", draggable: "false" });
    this.lines = svg("svg", { class: "viewer-lines", id: idPrefix + "-lines-svg", preserveAspectRatio: "none" });
    this.stage.append(this.base, this.heat, this.lines);
    this.loupe = el("canvas", { class: "magnifier", width: "200", height: "200", id: idPrefix + "-loupe" });
    this.frame.append(this.stage, this.loupe);
    this.caption = el("p", { class: "hint viewer-caption", id: idPrefix + "-caption" });
    root.replaceChildren(tools, this.frame, this.caption);
    this.view = { s: 1, tx: 0, ty: 0 };
    this.opacity.addEventListener("input", () => this.applyOpacity());
    this.select.addEventListener("change", () => this.choose(this.select.value));
    this.showLines.addEventListener("change", () => { this.lines.style.display = this.showLines.checked ? "" : "none"; });
    zoomIn.addEventListener("click", () => this.zoomAt(1.5));
    zoomOut.addEventListener("click", () => this.zoomAt(1 / 1.5));
    reset.addEventListener("click", () => this.fit());
    this.frame.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const box = this.frame.getBoundingClientRect();
      this.zoomAt(ev.deltaY < 0 ? 1.25 : 0.8, ev.clientX - box.left, ev.clientY - box.top);
    }, { passive: false });
    let drag = null;
    this.frame.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, ...this.view }; });
    window.addEventListener("mouseup", () => { drag = null; });
    this.frame.addEventListener("mousemove", (ev) => {
      if (drag) {
        this.view.tx = drag.tx + ev.clientX - drag.x;
        this.view.ty = drag.ty + ev.clientY - drag.y;
        this.apply();
      }
      this.drawLoupe(ev);
    });
    this.frame.addEventListener("mouseleave", () => { this.loupe.style.display = "none"; });
  }

  // Show ``baseUri`` of ``assetId`` with its ``maps``; ``size`` is the pixel size the copy-move lines use.
  async show(assetId, baseUri, maps, size, preferred) {
    this.assetId = assetId;
    this.maps = maps;
    this.size = size;
    this.select.replaceChildren(el("option", { value: "" }, "none (image only)"));
    for (const m of maps) {
      this.select.append(el("option", { value: m.module },
        m.module.replace("forensics.", "") + (m.score !== null ? "  " + fmt(m.score, 2) : "  (n/a)")));
    }
    this.base.src = await artifactUrl(assetId, baseUri);
    await loaded(this.base);
    this.fit();
    const scored = maps.filter((m) => m.score !== null).sort((a, b) => b.score - a.score);
    const pick = maps.find((m) => m.module === preferred) || scored[0] || maps[0];
    await this.choose(pick ? pick.module : "");
  }

  async choose(module) {
    this.select.value = module;
    const m = this.maps.find((x) => x.module === module);
    this.lines.replaceChildren();
    this.linesLabel.hidden = !(m && m.lines.length);
    if (!m || !m.saliency_uri) {
      this.heat.removeAttribute("src");
      this.heat.hidden = true;
      this.caption.textContent = "image only";
      return;
    }
    this.heat.hidden = false;
    this.heat.src = await artifactUrl(this.assetId, m.saliency_uri);
    await loaded(this.heat);
    this.applyOpacity();
    const [w, h] = this.size[0] ? this.size : [this.base.naturalWidth, this.base.naturalHeight];
    this.lines.setAttribute("viewBox", `0 0 ${w} ${h}`);
    for (const [x1, y1, x2, y2] of m.lines) {
      this.lines.append(svg("line", { x1, y1, x2, y2, class: "match-line" }));
      this.lines.append(svg("circle", { cx: x1, cy: y1, r: 3, class: "match-end" }));
      this.lines.append(svg("circle", { cx: x2, cy: y2, r: 3, class: "match-end" }));
    }
    this.caption.textContent = `${m.module}: score ${fmt(m.score)} (${m.status})` +
      (m.lines.length ? ` · ${m.lines.length} matched point pairs drawn` : "");
  }

  applyOpacity() {
    this.heat.style.opacity = this.opacity.value / 100;
    this.opacityText.textContent = this.opacity.value + " %";
  }

  fit() {
    const w = this.base.naturalWidth || 1, h = this.base.naturalHeight || 1;
    const fw = this.frame.clientWidth || 900, fh = this.frame.clientHeight || 520;
    const s = Math.min(fw / w, fh / h);
    this.stage.style.width = w + "px";
    this.stage.style.height = h + "px";
    this.view = { s, tx: (fw - w * s) / 2, ty: (fh - h * s) / 2 };
    this.apply();
  }

  zoomAt(factor, cx, cy) {
    const fx = cx ?? this.frame.clientWidth / 2, fy = cy ?? this.frame.clientHeight / 2;
    const s = Math.max(0.05, Math.min(40, this.view.s * factor));
    this.view.tx = fx - (fx - this.view.tx) * s / this.view.s;
    this.view.ty = fy - (fy - this.view.ty) * s / this.view.s;
    this.view.s = s;
    this.apply();
  }

  apply() {
    const { s, tx, ty } = this.view;
    this.stage.style.transform = `translate(${tx}px, ${ty}px) scale(${s})`;
    this.zoomText.textContent = Math.round(s * 100) + " %";
  }

  drawLoupe(ev) {
    if (!this.magnify.checked || !this.base.naturalWidth) { this.loupe.style.display = "none"; return; }
    const box = this.frame.getBoundingClientRect();
    const mx = ev.clientX - box.left, my = ev.clientY - box.top;
    const ix = (mx - this.view.tx) / this.view.s, iy = (my - this.view.ty) / this.view.s;
    const size = this.loupe.width, span = size / (this.view.s * 4);
    const ctx = this.loupe.getContext("2d");
    ctx.clearRect(0, 0, size, size);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(this.base, ix - span / 2, iy - span / 2, span, span, 0, 0, size, size);
    if (!this.heat.hidden && this.heat.naturalWidth) {
      const k = this.heat.naturalWidth / this.base.naturalWidth;
      ctx.globalAlpha = this.opacity.value / 100;
      ctx.drawImage(this.heat, (ix - span / 2) * k, (iy - span / 2) * k, span * k, span * k, 0, 0, size, size);
      ctx.globalAlpha = 1;
    }
    this.loupe.style.display = "block";
    this.loupe.style.left = (mx + 16) + "px";
    this.loupe.style.top = (my + 16) + "px";
  }
}
