"use strict";

/*
 * The local stack's own crowd HTML elements for its worker portal: <crowd-form>, <crowd-bounding-box>,
 * <full-instructions> and <short-instructions>, as custom elements with open shadow roots.
 *
 * No framework, no build step and nothing loaded from elsewhere: the portal serves this file under a
 * Content-Security-Policy of `script-src 'self'`, so there is no eval and no inline handler here.
 *
 * <crowd-bounding-box>'s `value` is the answer of AWS's element: boxes in image pixels (the natural size
 * of the image), integers, kept inside the image, in the order they were drawn.
 */
(() => {
  // One colour per label (at most 10 labels); a box whose label is not among them is grey.
  const PALETTE = [
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd",
    "#17becf", "#e377c2", "#8c564b", "#bcbd22", "#393b79",
  ];
  const OTHER_COLOUR = "#6e7781";
  const MAX_LABELS = 10;
  const MIN_BOX_PX = 2; // a drag smaller than this (image px) is a click, not a box
  const ZOOM_STEP = 1.25;
  const MAX_SCALE = 8; // screen px per image px
  const WHEEL_ZOOM_RATE = 0.002; // per wheel pixel
  const HISTORY_LIMIT = 200;
  const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];
  const NUDGES = new Map([["ArrowLeft", [-1, 0]], ["ArrowRight", [1, 0]], ["ArrowUp", [0, -1]], ["ArrowDown", [0, 1]]]);
  const NOT_TEXT_INPUTS = new Set(["button", "checkbox", "color", "file", "image", "radio", "range", "reset", "submit"]);

  // The bounding box that keyboard shortcuts act on when a page has several: the last one used.
  let activeBox = null;

  const clamp = (value, low, high) => Math.min(Math.max(value, low), high);

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (error) {
      return undefined;
    }
  }

  function isTextField(node) {
    if (!(node instanceof Element)) return false;
    if (node.isContentEditable) return true;
    const tag = node.localName;
    return tag === "textarea" || tag === "select" || (tag === "input" && !NOT_TEXT_INPUTS.has(node.type));
  }

  // Whether Space on this node means something to the node itself (pressing a button, ticking a box).
  function usesSpace(node) {
    return node instanceof Element && node.closest("button, input, select, textarea, summary, a[href]") !== null;
  }

  function meta(name) {
    const tag = document.querySelector('meta[name="' + name + '"]');
    return tag === null ? null : tag.content;
  }

  // [start, size] of the span a..b (either order) kept inside 0..limit, each edge rounded, at least 1 px.
  function roundSpan(a, b, limit) {
    let start = Math.round(clamp(Math.min(a, b), 0, limit));
    let end = Math.round(clamp(Math.max(a, b), 0, limit));
    if (end - start < 1) {
      end = Math.min(start + 1, limit);
      start = end - 1;
    }
    return [start, end - start];
  }

  // A stored box from two corners in image px (floats): the keys and their order of AWS's answer.
  function toBox(label, x0, y0, x1, y1, imageWidth, imageHeight) {
    const [left, width] = roundSpan(x0, x1, imageWidth);
    const [top, height] = roundSpan(y0, y1, imageHeight);
    return { height, label, left, top, width };
  }

  const copyBoxes = (boxes) => boxes.map((box) => Object.assign({}, box));

  function template(html) {
    const element = document.createElement("template");
    element.innerHTML = html;
    return element;
  }

  const BOX_CSS = `
:host { display: block; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; }
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
button { font: inherit; cursor: pointer; border: 1px solid #afb8c1; border-radius: 4px; background: #f6f8fa;
  color: inherit; padding: 4px 10px; }
button:hover:not(:disabled) { background: #eaeef2; }
button:disabled { cursor: default; opacity: 0.5; }
button:focus-visible, .viewport:focus-visible { outline: 2px solid #0969da; outline-offset: 1px; }
kbd { font: 12px ui-monospace, monospace; border: 1px solid #afb8c1; border-bottom-width: 2px; border-radius: 3px;
  padding: 0 4px; background: #fff; }
.header { font-size: 1.15rem; font-weight: 600; margin: 0 0 8px; }
.layout { display: flex; gap: 12px; align-items: flex-start; }
.workspace { flex: 1 1 0; min-width: 0; display: flex; flex-direction: column; gap: 6px; }
.toolbar { display: flex; align-items: center; gap: 6px; flex-wrap: wrap; }
.toolbar .zoom-level { min-width: 3.5em; text-align: center; font-variant-numeric: tabular-nums; }
.toolbar .spacer { flex: 1; }
.frame { position: relative; border: 1px solid #afb8c1; border-radius: 4px; background: #2d333b; overflow: hidden; }
.viewport { height: max(300px, calc(100vh - 270px)); overflow: auto; display: flex; }
.viewport.panning, .viewport.panning .stage, .viewport.panning .box { cursor: grab; }
.stage { position: relative; flex: none; margin: auto; touch-action: none; cursor: crosshair; user-select: none; }
.stage img { display: block; max-width: none; border: 0; padding: 0; -webkit-user-drag: none; }
.stage.pixelated img { image-rendering: pixelated; }
.overlay { position: absolute; inset: 0; }
.message { position: absolute; inset: auto 0 45% 0; margin: 0; text-align: center; color: #fff; }
.box { position: absolute; outline: 2px solid var(--c); outline-offset: -2px; cursor: move; }
.box.selected { outline-width: 3px; outline-offset: -3px; background: color-mix(in srgb, var(--c) 20%, transparent);
  box-shadow: 0 0 0 1px #fff; z-index: 2; }
.box.drawing { outline-style: dashed; pointer-events: none; }
.tag { position: absolute; left: 0; bottom: 100%; padding: 0 5px; border-radius: 3px 3px 0 0; background: var(--c);
  color: #fff; font-size: 12px; line-height: 18px; white-space: nowrap; pointer-events: none; }
.box.tag-inside .tag { top: 0; bottom: auto; border-radius: 0 0 3px 0; }
.handle { position: absolute; width: 10px; height: 10px; transform: translate(-50%, -50%); background: #fff;
  border: 2px solid var(--c); }
[data-handle*="n"] { top: 0; } [data-handle*="s"] { top: 100%; } [data-handle="e"], [data-handle="w"] { top: 50%; }
[data-handle*="w"] { left: 0; } [data-handle*="e"] { left: 100%; } [data-handle="n"], [data-handle="s"] { left: 50%; }
[data-handle="nw"], [data-handle="se"] { cursor: nwse-resize; }
[data-handle="ne"], [data-handle="sw"] { cursor: nesw-resize; }
[data-handle="n"], [data-handle="s"] { cursor: ns-resize; }
[data-handle="e"], [data-handle="w"] { cursor: ew-resize; }
.status { display: flex; gap: 16px; color: #57606a; font-variant-numeric: tabular-nums; min-height: 1.4em; }
.status .count { font-weight: 600; color: #1f2328; }
.status .coords { margin-left: auto; }
.panel { flex: 0 0 280px; display: flex; flex-direction: column; gap: 12px;
  max-height: max(360px, calc(100vh - 200px)); overflow: auto; }
.panel h3 { font-size: 0.95rem; margin: 0 0 6px; }
.labels { display: flex; flex-direction: column; gap: 4px; }
.label { display: flex; align-items: center; gap: 8px; text-align: left; background: #fff; }
.label[aria-pressed="true"] { border-color: var(--c); box-shadow: inset 0 0 0 2px var(--c); font-weight: 600; }
.label .swatch { width: 12px; height: 12px; border-radius: 2px; background: var(--c); flex: none; }
.label kbd { margin-left: auto; }
.no-labels { color: #b42318; margin: 0; }
.short { display: flex; flex-direction: column; gap: 8px; }
.shortcuts dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 8px; margin: 0; font-size: 12px; }
.shortcuts dt { white-space: nowrap; }
.shortcuts dd { margin: 0; color: #57606a; }
dialog { width: min(760px, 92vw); max-height: 86vh; padding: 0; border: 0; border-radius: 8px;
  box-shadow: 0 12px 40px rgba(0, 0, 0, 0.35); }
dialog::backdrop { background: rgba(0, 0, 0, 0.45); }
.dialog-head { display: flex; align-items: center; gap: 12px; padding: 12px 16px; border-bottom: 1px solid #d0d7de;
  position: sticky; top: 0; background: #fff; }
.dialog-head h2 { font-size: 1.1rem; margin: 0; flex: 1; }
.dialog-body { padding: 4px 16px 16px; }
`;

  const BOX_TEMPLATE = template(`<style>${BOX_CSS}</style>
<h2 class="header"></h2>
<div class="layout">
  <div class="workspace">
    <div class="toolbar" role="toolbar" aria-label="Image tools">
      <button type="button" class="zoom-out" aria-label="Zoom out" title="Zoom out (-)">&minus;</button>
      <span class="zoom-level"></span>
      <button type="button" class="zoom-in" aria-label="Zoom in" title="Zoom in (+)">+</button>
      <button type="button" class="fit" title="Fit the image (0)">Fit</button>
      <span class="spacer"></span>
      <button type="button" class="undo" title="Undo the last change (Ctrl+Z)" disabled>Undo</button>
      <button type="button" class="delete" title="Delete the selected box (Delete)" disabled>Delete box</button>
    </div>
    <div class="frame">
      <div class="viewport" tabindex="0" data-testid="crowd-bounding-box-viewport"
           aria-label="Image: press and drag to draw a box">
        <div class="stage">
          <img data-testid="crowd-bounding-box-image" alt="The image to label" draggable="false">
          <div class="overlay"></div>
        </div>
      </div>
      <p class="message" role="status"></p>
    </div>
    <div class="status">
      <span class="count" aria-live="polite"></span>
      <span class="selection"></span>
      <span class="coords"></span>
    </div>
  </div>
  <aside class="panel">
    <section>
      <h3>Labels</h3>
      <div class="labels" role="group" aria-label="Labels"></div>
    </section>
    <section class="short">
      <h3>Instructions</h3>
      <slot name="short-instructions"></slot>
      <button type="button" class="open-full" hidden>Full instructions</button>
    </section>
    <section class="shortcuts">
      <h3>Shortcuts</h3>
      <dl>
        <dt>Drag on the image</dt><dd>Draw a box</dd>
        <dt><kbd>1</kbd>&ndash;<kbd>9</kbd></dt><dd>Pick a label (relabels the selected box)</dd>
        <dt><kbd>Delete</kbd> <kbd>&#x232B;</kbd></dt><dd>Delete the selected box</dd>
        <dt>Arrow keys</dt><dd>Nudge the selected box 1 px (<kbd>Shift</kbd>: 10 px)</dd>
        <dt><kbd>Tab</kbd> <kbd>Shift</kbd>+<kbd>Tab</kbd></dt><dd>Next / previous box</dd>
        <dt><kbd>Esc</kbd></dt><dd>Deselect</dd>
        <dt><kbd>+</kbd> <kbd>-</kbd> <kbd>0</kbd></dt><dd>Zoom in, out, fit</dd>
        <dt><kbd>Ctrl</kbd>+wheel</dt><dd>Zoom at the pointer</dd>
        <dt><kbd>Space</kbd>+drag</dt><dd>Pan a zoomed image</dd>
        <dt><kbd>Ctrl</kbd>+<kbd>Z</kbd></dt><dd>Undo</dd>
        <dt><kbd>Ctrl</kbd>+<kbd>Enter</kbd></dt><dd>Submit</dd>
      </dl>
    </section>
  </aside>
</div>
<dialog class="full" aria-labelledby="full-header">
  <div class="dialog-head"><h2 id="full-header"></h2><button type="button" class="close">Close</button></div>
  <div class="dialog-body"><slot name="full-instructions"></slot></div>
</dialog>`);

  class CrowdBoundingBox extends HTMLElement {
    static get observedAttributes() {
      return ["src", "header", "labels", "initial-value"];
    }

    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      root.append(BOX_TEMPLATE.content.cloneNode(true));
      const find = (selector) => root.querySelector(selector);
      this._img = find("img");
      this._viewport = find(".viewport");
      this._stage = find(".stage");
      this._overlay = find(".overlay");
      this._message = find(".message");
      this._labelsElement = find(".labels");
      this._dialog = find("dialog");
      this._labels = [];
      this._labelIndex = 0; // the label new boxes get
      this._boxes = [];
      this._selected = null; // index into _boxes
      this._history = []; // earlier _boxes, for undo
      this._scale = 1;
      this._fitted = true; // keep fitting the image when the viewport's size changes
      this._drag = null;
      this._spaceHeld = false;
      this._loadState = "loading";

      this._onKeyDown = this._onKeyDown.bind(this);
      this._onKeyUp = this._onKeyUp.bind(this);
      this._onWindowBlur = () => this._setSpaceHeld(false);
      this._onDragMove = this._onDragMove.bind(this);
      this._onDragEnd = this._onDragEnd.bind(this);
      this._resizeObserver = new ResizeObserver(() => {
        if (this._fitted) this._fit();
      });

      this._img.addEventListener("load", () => this._onImageLoad());
      this._img.addEventListener("error", () => this._setLoadState("failed"));
      this._viewport.addEventListener("pointerdown", (event) => this._onPointerDown(event));
      this._viewport.addEventListener("pointermove", (event) => this._showPointer(event));
      this._viewport.addEventListener("pointerleave", () => this._showPointer(null));
      this._viewport.addEventListener("wheel", (event) => this._onWheel(event), { passive: false });
      this._labelsElement.addEventListener("click", (event) => {
        const button = event.target.closest("[data-label-index]");
        if (button === null) return;
        this._pickLabel(Number(button.dataset.labelIndex));
        this._refocus(event);
      });
      this._onClick(".zoom-in", () => this._zoomBy(ZOOM_STEP));
      this._onClick(".zoom-out", () => this._zoomBy(1 / ZOOM_STEP));
      this._onClick(".fit", () => this._fit());
      this._onClick(".undo", () => this._undo());
      this._onClick(".delete", () => this._deleteSelected());
      this._onClick(".open-full", () => this._openFullInstructions());
      find(".close").addEventListener("click", () => this._dialog.close());
      // A click on the backdrop (outside the dialog's content) closes it too.
      this._dialog.addEventListener("click", (event) => {
        if (event.target === this._dialog) this._dialog.close();
      });
      for (const slot of root.querySelectorAll("slot")) {
        slot.addEventListener("slotchange", () => this._showInstructions());
      }
      this._setLoadState("loading");
      this._renderLabels();
      this._render();
    }

    connectedCallback() {
      document.addEventListener("keydown", this._onKeyDown);
      document.addEventListener("keyup", this._onKeyUp);
      window.addEventListener("blur", this._onWindowBlur);
      this._resizeObserver.observe(this._viewport, { box: "border-box" });
      if (activeBox === null) activeBox = this;
    }

    disconnectedCallback() {
      document.removeEventListener("keydown", this._onKeyDown);
      document.removeEventListener("keyup", this._onKeyUp);
      window.removeEventListener("blur", this._onWindowBlur);
      this._resizeObserver.disconnect();
      this._stopDrag();
      if (activeBox === this) activeBox = null;
    }

    attributeChangedCallback(name, oldValue, value) {
      if (name === "src") {
        this._setLoadState("loading");
        this._img.src = value || "";
      } else if (name === "header") {
        const header = this.shadowRoot.querySelector(".header");
        header.textContent = value || "";
        header.hidden = !value;
      } else if (name === "labels") {
        const labels = parseJson(value);
        this._labels = Array.isArray(labels) ? labels.slice(0, MAX_LABELS).map(String) : [];
        this._labelIndex = Math.min(this._labelIndex, Math.max(this._labels.length - 1, 0));
        this._renderLabels();
        this._render();
      } else if (name === "initial-value" && this._loadState === "loaded") {
        this._reset();
      }
    }

    /** AWS's answer: the boxes in natural image pixels and the natural size of the image. */
    get value() {
      return {
        boundingBoxes: this._boxes.map((box) => ({
          height: box.height,
          label: box.label,
          left: box.left,
          top: box.top,
          width: box.width,
        })),
        inputImageProperties: { height: this._img.naturalHeight, width: this._img.naturalWidth },
      };
    }

    /** Why the answer can't be submitted yet, or null. */
    validate() {
      if (this._loadState === "failed") return "The image could not be loaded";
      return this._loadState === "loaded" ? null : "The image has not loaded yet";
    }

    // --- the image and its scale ---

    _onImageLoad() {
      this._setLoadState("loaded");
      this._reset();
      this._fit();
    }

    _setLoadState(state) {
      this._loadState = state;
      const messages = { loading: "Loading the image\u2026", failed: "The image could not be loaded." };
      this._message.textContent = messages[state] || "";
      this._message.hidden = state === "loaded";
      this._stage.hidden = state !== "loaded";
    }

    // The boxes of `initial-value`, with a fresh undo history.
    _reset() {
      const given = parseJson(this.getAttribute("initial-value") || "[]");
      const W = this._img.naturalWidth;
      const H = this._img.naturalHeight;
      const valid = (box) =>
        box !== null && typeof box === "object" && [box.left, box.top, box.width, box.height].every(Number.isFinite);
      this._boxes = (Array.isArray(given) ? given : [])
        .filter(valid)
        .map((box) => toBox(String(box.label ?? ""), box.left, box.top, box.left + box.width, box.top + box.height, W, H));
      this._history = [];
      this._selected = null;
      this._render();
    }

    _fitScale() {
      // The viewport's outer size, so that scrollbars of a zoomed image don't shrink the fit; 1 px spare
      // keeps a fitted image from overflowing by a rounding error.
      const area = this._viewport.getBoundingClientRect();
      const scale = Math.min((area.width - 1) / this._img.naturalWidth, (area.height - 1) / this._img.naturalHeight);
      return scale > 0 ? scale : 1;
    }

    _fit() {
      if (this._loadState !== "loaded") return;
      this._fitted = true;
      this._applyScale(this._fitScale());
      this._viewport.scrollTo(0, 0);
    }

    _zoomBy(factor, clientX, clientY) {
      if (this._loadState !== "loaded") return;
      const area = this._viewport.getBoundingClientRect();
      const x = clientX ?? area.left + this._viewport.clientWidth / 2;
      const y = clientY ?? area.top + this._viewport.clientHeight / 2;
      const fit = this._fitScale();
      const scale = clamp(this._scale * factor, fit, Math.max(MAX_SCALE, fit));
      // Keep the image point under (x, y) there: scroll by how far the new size moved it.
      const point = this._imagePoint(x, y);
      this._fitted = scale === fit;
      this._applyScale(scale);
      const rect = this._img.getBoundingClientRect();
      this._viewport.scrollLeft += rect.left + point.x * scale - x;
      this._viewport.scrollTop += rect.top + point.y * scale - y;
    }

    _applyScale(scale) {
      this._scale = scale;
      const width = this._img.naturalWidth * scale + "px";
      const height = this._img.naturalHeight * scale + "px";
      for (const element of [this._img, this._stage]) {
        element.style.width = width;
        element.style.height = height;
      }
      this._stage.classList.toggle("pixelated", scale >= 3);
      this._render();
    }

    // The image point (natural px, floats) at a point of the screen.
    _imagePoint(clientX, clientY) {
      const rect = this._img.getBoundingClientRect();
      return {
        x: ((clientX - rect.left) * this._img.naturalWidth) / rect.width,
        y: ((clientY - rect.top) * this._img.naturalHeight) / rect.height,
      };
    }

    _clampedPoint(point) {
      return { x: clamp(point.x, 0, this._img.naturalWidth), y: clamp(point.y, 0, this._img.naturalHeight) };
    }

    _onWheel(event) {
      if (!event.ctrlKey || this._loadState !== "loaded") return;
      event.preventDefault(); // the browser's page zoom
      const pixels = event.deltaMode === WheelEvent.DOM_DELTA_LINE ? event.deltaY * 16 : event.deltaY;
      this._zoomBy(Math.exp(-pixels * WHEEL_ZOOM_RATE), event.clientX, event.clientY);
    }

    // --- drawing, moving, resizing, panning with the pointer ---

    _onPointerDown(event) {
      if (event.button !== 0 || this._drag !== null || this._loadState !== "loaded") return;
      // A press on the viewport's scrollbars only scrolls.
      const area = this._viewport.getBoundingClientRect();
      if (event.clientX - area.left >= this._viewport.clientWidth) return;
      if (event.clientY - area.top >= this._viewport.clientHeight) return;
      activeBox = this;
      event.preventDefault(); // no text selection, no native image drag
      this._viewport.focus({ preventScroll: true });
      const target = event.composedPath()[0];
      const point = this._imagePoint(event.clientX, event.clientY);
      const handle = target.closest("[data-handle]");
      const boxElement = target.closest("[data-index]");
      if (this._spaceHeld) {
        const { scrollLeft, scrollTop } = this._viewport;
        this._drag = { kind: "pan", x: event.clientX, y: event.clientY, scrollLeft, scrollTop };
      } else if (handle !== null || boxElement !== null) {
        if (boxElement !== null) this._selected = Number(boxElement.dataset.index);
        this._drag = {
          kind: handle !== null ? "resize" : "move",
          handle: handle !== null ? handle.dataset.handle : null,
          start: point,
          box: Object.assign({}, this._boxes[this._selected]),
          before: copyBoxes(this._boxes),
        };
      } else if (this._stage.contains(target) && this._labels.length > 0) {
        this._selected = null;
        const start = this._clampedPoint(point);
        this._drag = { kind: "draw", start, end: start };
      } else {
        this._selected = null;
      }
      if (this._drag !== null) {
        window.addEventListener("pointermove", this._onDragMove);
        window.addEventListener("pointerup", this._onDragEnd);
        window.addEventListener("pointercancel", this._onDragEnd);
      }
      this._render();
    }

    _onDragMove(event) {
      const drag = this._drag;
      if (drag.kind === "pan") {
        this._viewport.scrollLeft = drag.scrollLeft - (event.clientX - drag.x);
        this._viewport.scrollTop = drag.scrollTop - (event.clientY - drag.y);
        return;
      }
      const W = this._img.naturalWidth;
      const H = this._img.naturalHeight;
      const point = this._imagePoint(event.clientX, event.clientY);
      const dx = point.x - drag.start.x;
      const dy = point.y - drag.start.y;
      const box = drag.box;
      if (drag.kind === "draw") {
        drag.end = this._clampedPoint(point);
      } else if (drag.kind === "move") {
        const left = clamp(box.left + dx, 0, W - box.width);
        const top = clamp(box.top + dy, 0, H - box.height);
        this._boxes[this._selected] = toBox(box.label, left, top, left + box.width, top + box.height, W, H);
      } else {
        // Each handle moves the edges it names; dragging past the opposite edge flips the box.
        const has = (side) => drag.handle.includes(side);
        const x0 = box.left + (has("w") ? dx : 0);
        const x1 = box.left + box.width + (has("e") ? dx : 0);
        const y0 = box.top + (has("n") ? dy : 0);
        const y1 = box.top + box.height + (has("s") ? dy : 0);
        this._boxes[this._selected] = toBox(box.label, x0, y0, x1, y1, W, H);
      }
      this._showPointer(event);
      this._render();
    }

    _onDragEnd(event) {
      const drag = this._drag;
      if (event.type === "pointerup") this._onDragMove(event);
      this._stopDrag();
      if (drag.kind === "draw" && event.type === "pointerup") {
        const { start, end } = drag;
        if (Math.abs(end.x - start.x) >= MIN_BOX_PX && Math.abs(end.y - start.y) >= MIN_BOX_PX) {
          const before = copyBoxes(this._boxes);
          const label = this._labels[this._labelIndex];
          // The new box is not selected: picking the label for the next box must not relabel this one.
          this._boxes.push(toBox(label, start.x, start.y, end.x, end.y, this._img.naturalWidth, this._img.naturalHeight));
          this._remember(before);
        }
      } else if (drag.kind === "move" || drag.kind === "resize") {
        this._remember(drag.before);
      }
      this._render();
    }

    _stopDrag() {
      this._drag = null;
      window.removeEventListener("pointermove", this._onDragMove);
      window.removeEventListener("pointerup", this._onDragEnd);
      window.removeEventListener("pointercancel", this._onDragEnd);
    }

    _showPointer(event) {
      const coords = this.shadowRoot.querySelector(".coords");
      if (event !== null && this._loadState === "loaded") {
        const point = this._imagePoint(event.clientX, event.clientY);
        if (point.x >= 0 && point.y >= 0 && point.x < this._img.naturalWidth && point.y < this._img.naturalHeight) {
          coords.textContent = `x ${Math.floor(point.x)}, y ${Math.floor(point.y)}`;
          return;
        }
      }
      coords.textContent = "x \u2013, y \u2013";
    }

    // --- keyboard ---

    _onKeyDown(event) {
      if ((activeBox !== null && activeBox !== this) || event.defaultPrevented) return;
      const origin = event.composedPath()[0];
      if (this._loadState !== "loaded" || this._dialog.open || event.altKey || isTextField(origin)) return;
      const key = event.key;
      if (event.ctrlKey || event.metaKey) {
        if (key.toLowerCase() === "z" && !event.shiftKey) {
          event.preventDefault();
          this._undo();
        }
        return;
      }
      let handled = true;
      if (/^[1-9]$/.test(key)) {
        handled = this._pickLabel(Number(key) - 1);
      } else if (key === "Delete" || key === "Backspace") {
        handled = this._deleteSelected();
      } else if (NUDGES.has(key)) {
        const step = event.shiftKey ? 10 : 1;
        const [dx, dy] = NUDGES.get(key);
        handled = this._nudge(dx * step, dy * step);
      } else if (key === "Escape") {
        handled = this._select(null);
      } else if (key === "Tab") {
        handled = this._cycle(event.shiftKey ? -1 : 1);
      } else if (key === "+" || key === "=") {
        this._zoomBy(ZOOM_STEP);
      } else if (key === "-" || key === "_") {
        this._zoomBy(1 / ZOOM_STEP);
      } else if (key === "0") {
        this._fit();
      } else if (key === " " && !usesSpace(origin)) {
        this._setSpaceHeld(true);
      } else {
        handled = false;
      }
      if (handled) event.preventDefault();
    }

    _onKeyUp(event) {
      if (event.key === " " && this._spaceHeld) {
        this._setSpaceHeld(false);
        event.preventDefault();
      }
    }

    _setSpaceHeld(held) {
      this._spaceHeld = held;
      this._viewport.classList.toggle("panning", held);
    }

    // After a click with the mouse, give the keyboard back to the image so that shortcuts and Space work.
    _refocus(event) {
      if (event.detail > 0) this._viewport.focus({ preventScroll: true });
    }

    _onClick(selector, action) {
      this.shadowRoot.querySelector(selector).addEventListener("click", (event) => {
        action();
        this._refocus(event);
      });
    }

    // --- changes to the boxes ---

    // Keep `before` for undo if the boxes changed since.
    _remember(before) {
      if (JSON.stringify(before) === JSON.stringify(this._boxes)) return;
      this._history.push(before);
      if (this._history.length > HISTORY_LIMIT) this._history.shift();
    }

    _undo() {
      if (this._history.length === 0) return;
      this._boxes = this._history.pop();
      if (this._selected !== null && this._selected >= this._boxes.length) this._selected = null;
      this._render();
    }

    _pickLabel(index) {
      if (index >= this._labels.length) return false;
      this._labelIndex = index;
      const box = this._selected === null ? null : this._boxes[this._selected];
      if (box !== null && box.label !== this._labels[index]) {
        const before = copyBoxes(this._boxes);
        box.label = this._labels[index];
        this._remember(before);
      }
      this._render();
      return true;
    }

    _deleteSelected() {
      if (this._selected === null) return false;
      const before = copyBoxes(this._boxes);
      this._boxes.splice(this._selected, 1);
      this._selected = null;
      this._remember(before);
      this._render();
      return true;
    }

    _nudge(dx, dy) {
      if (this._selected === null) return false;
      const before = copyBoxes(this._boxes);
      const box = this._boxes[this._selected];
      box.left = clamp(box.left + dx, 0, this._img.naturalWidth - box.width);
      box.top = clamp(box.top + dy, 0, this._img.naturalHeight - box.height);
      this._remember(before);
      this._render();
      this._reveal();
      return true;
    }

    _select(index) {
      if (index === this._selected) return false;
      this._selected = index;
      this._render();
      return true;
    }

    // Tab / Shift+Tab while the image has focus: the next / previous box; past the last (or the first),
    // nothing is selected and the browser moves focus on as usual.
    _cycle(direction) {
      if (this.shadowRoot.activeElement !== this._viewport || this._boxes.length === 0) return false;
      const next = this._selected === null ? (direction > 0 ? 0 : this._boxes.length - 1) : this._selected + direction;
      if (next < 0 || next >= this._boxes.length) {
        this._select(null);
        return false;
      }
      this._select(next);
      this._reveal();
      return true;
    }

    // Scroll a zoomed image so that the selected box is in view.
    _reveal() {
      const element = this._overlay.querySelector(".selected");
      if (element !== null) element.scrollIntoView({ block: "nearest", inline: "nearest" });
    }

    // --- instructions ---

    _fullInstructions() {
      return this.shadowRoot.querySelector('slot[name="full-instructions"]').assignedElements()[0] || null;
    }

    _showInstructions() {
      this.shadowRoot.querySelector(".open-full").hidden = this._fullInstructions() === null;
    }

    _openFullInstructions() {
      const full = this._fullInstructions();
      this.shadowRoot.querySelector("#full-header").textContent =
        (full !== null && full.getAttribute("header")) || "Full instructions";
      this._dialog.showModal();
    }

    // --- rendering ---

    _colour(label) {
      const index = this._labels.indexOf(label);
      return index >= 0 ? PALETTE[index] : OTHER_COLOUR;
    }

    _renderLabels() {
      const buttons = this._labels.map((label, index) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "label";
        button.dataset.labelIndex = String(index);
        button.style.setProperty("--c", PALETTE[index]);
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.setAttribute("aria-hidden", "true");
        const name = document.createElement("span");
        name.textContent = label;
        button.append(swatch, name);
        if (index < 9) {
          const key = document.createElement("kbd");
          key.textContent = String(index + 1);
          key.setAttribute("aria-hidden", "true"); // the button's name is the label alone
          button.append(key);
        }
        return button;
      });
      if (buttons.length === 0) {
        const note = document.createElement("p");
        note.className = "no-labels";
        note.textContent = "This task gives no labels, so no box can be drawn.";
        buttons.push(note);
      }
      this._labelsElement.replaceChildren(...buttons);
    }

    _render() {
      const scale = this._scale;
      const place = (element, left, top, width, height) => {
        element.style.left = left * scale + "px";
        element.style.top = top * scale + "px";
        element.style.width = width * scale + "px";
        element.style.height = height * scale + "px";
      };
      const elements = this._boxes.map((box, index) => {
        const element = document.createElement("div");
        element.className = "box";
        element.dataset.index = String(index);
        element.style.setProperty("--c", this._colour(box.label));
        place(element, box.left, box.top, box.width, box.height);
        // A tag above a box at the image's top edge would be cut off: it goes inside.
        element.classList.toggle("tag-inside", box.top * scale < 20);
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = `${index + 1} ${box.label}`;
        element.append(tag);
        if (index === this._selected) {
          element.classList.add("selected");
          for (const name of HANDLES) {
            const handle = document.createElement("span");
            handle.className = "handle";
            handle.dataset.handle = name;
            element.append(handle);
          }
        }
        return element;
      });
      const drag = this._drag;
      if (drag !== null && drag.kind === "draw") {
        const preview = document.createElement("div");
        preview.className = "box drawing";
        preview.style.setProperty("--c", this._colour(this._labels[this._labelIndex]));
        const { start, end } = drag;
        place(preview, Math.min(start.x, end.x), Math.min(start.y, end.y), Math.abs(end.x - start.x), Math.abs(end.y - start.y));
        elements.push(preview);
      }
      this._overlay.replaceChildren(...elements);

      for (const button of this._labelsElement.querySelectorAll("[data-label-index]")) {
        button.setAttribute("aria-pressed", String(Number(button.dataset.labelIndex) === this._labelIndex));
      }
      const root = this.shadowRoot;
      const count = this._boxes.length;
      root.querySelector(".count").textContent = count === 0 ? "No boxes yet" : count === 1 ? "1 box" : `${count} boxes`;
      const selected = this._selected === null ? null : this._boxes[this._selected];
      root.querySelector(".selection").textContent =
        selected === null
          ? ""
          : `Box ${this._selected + 1}: ${selected.label}, ${selected.width} \u00d7 ${selected.height} px at ${selected.left}, ${selected.top}`;
      root.querySelector(".delete").disabled = selected === null;
      root.querySelector(".undo").disabled = this._history.length === 0;
      root.querySelector(".zoom-level").textContent = `${Math.round(scale * 100)}%`;
    }
  }

  const FULL_STANDALONE = template(`<style>
:host { display: block; }
details { border: 1px solid #d0d7de; border-radius: 6px; padding: 0 12px; }
details[open] { padding-bottom: 8px; }
summary { cursor: pointer; font-weight: 600; padding: 8px 0; }
::slotted(img) { max-width: 100%; }
</style><details><summary></summary><slot></slot></details>`);

  const EMBEDDED = template(`<style>
:host { display: block; }
::slotted(img) { max-width: 100%; }
</style><slot></slot>`);

  const SHORT_STANDALONE = template(`<style>
:host { display: block; margin: 8px 0; }
::slotted(img) { max-width: 100%; }
</style><slot></slot>`);

  // Instructions shown by the <crowd-bounding-box> they are in (in its panel or its dialog, through the
  // named slot), or on their own where they stand alone.
  class Instructions extends HTMLElement {
    constructor() {
      super();
      this.attachShadow({ mode: "open" });
      this._embedded = null;
    }

    connectedCallback() {
      const embedded = this.parentElement !== null && this.parentElement.closest("crowd-bounding-box") !== null;
      if (embedded) {
        this.slot = this.localName;
      } else if (this.slot === this.localName) {
        this.removeAttribute("slot");
      }
      if (embedded !== this._embedded) {
        this._embedded = embedded;
        this.shadowRoot.replaceChildren(this._template(embedded).content.cloneNode(true));
      }
      this._render();
    }

    _render() {}
  }

  class FullInstructions extends Instructions {
    static get observedAttributes() {
      return ["header"];
    }

    attributeChangedCallback() {
      this._render();
    }

    _template(embedded) {
      return embedded ? EMBEDDED : FULL_STANDALONE;
    }

    _render() {
      const summary = this.shadowRoot.querySelector("summary");
      if (summary !== null) summary.textContent = this.getAttribute("header") || "Full instructions";
    }
  }

  class ShortInstructions extends Instructions {
    _template(embedded) {
      return embedded ? EMBEDDED : SHORT_STANDALONE;
    }
  }

  const FORM_TEMPLATE = template(`<style>
:host { display: block; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
.actions { display: flex; align-items: center; gap: 10px; margin-top: 12px; }
.submit { font: inherit; font-weight: 600; padding: 6px 20px; border: 1px solid #1a7f37; border-radius: 6px;
  background: #1f883d; color: #fff; cursor: pointer; }
.submit:disabled { opacity: 0.6; cursor: progress; }
.submit:focus-visible { outline: 2px solid #0969da; outline-offset: 2px; }
.hint { color: #57606a; font-size: 12px; }
.alert { margin: 10px 0 0; padding: 8px 12px; border: 1px solid #ff8182; border-radius: 6px; background: #ffebe9;
  color: #82071e; }
pre { margin: 10px 0 0; padding: 8px 12px; background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
  overflow: auto; max-height: 40vh; }
</style>
<slot></slot>
<div class="actions">
  <button type="button" class="submit">Submit</button>
  <span class="hint">or Ctrl+Enter</span>
</div>
<div class="alert" role="alert" hidden></div>
<pre class="preview" hidden></pre>`);

  const NETWORK_ERROR = "Could not reach the portal to submit. Check your connection and submit again.";

  // Collects the answers of the crowd elements in it and posts them to the portal (the page's
  // crowd-submit-url meta tag, with its csrf-token); without those tags it shows the answer instead.
  class CrowdForm extends HTMLElement {
    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      root.append(FORM_TEMPLATE.content.cloneNode(true));
      this._button = root.querySelector(".submit");
      this._alert = root.querySelector(".alert");
      this._preview = root.querySelector(".preview");
      this._busy = false;
      this._button.addEventListener("click", () => this.submit());
      this._onKeyDown = (event) => {
        if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && !event.defaultPrevented) {
          event.preventDefault();
          this.submit();
        }
      };
      // A plain <form> around or inside this one: Enter in its fields submits through here, never natively.
      this._onFormSubmit = (event) => {
        const form = event.target;
        if (form.contains(this) || this.contains(form)) {
          event.preventDefault();
          this.submit();
        }
      };
    }

    connectedCallback() {
      document.addEventListener("keydown", this._onKeyDown);
      document.addEventListener("submit", this._onFormSubmit, true);
    }

    disconnectedCallback() {
      document.removeEventListener("keydown", this._onKeyDown);
      document.removeEventListener("submit", this._onFormSubmit, true);
    }

    async submit() {
      if (this._busy) return;
      this._showError("");
      const answer = {};
      for (const element of this.querySelectorAll("[name]")) {
        if (!element.localName.startsWith("crowd-")) continue;
        const problem = typeof element.validate === "function" ? element.validate() : null;
        if (problem) {
          this._showError(problem);
          return;
        }
        answer[element.getAttribute("name")] = element.value;
      }
      const url = meta("crowd-submit-url");
      const token = meta("csrf-token");
      if (url === null || token === null) {
        // A template previewed outside the portal: nowhere to post to.
        this._preview.textContent = JSON.stringify(answer, null, 2);
        this._preview.hidden = false;
        return;
      }
      this._setBusy(true);
      let response;
      try {
        response = await fetch(url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
          body: JSON.stringify(answer),
        });
      } catch (error) {
        this._fail(NETWORK_ERROR);
        return;
      }
      let reply = null;
      try {
        reply = await response.json();
      } catch (error) {
        // Not JSON: the status tells what happened.
      }
      if (response.ok && reply !== null && typeof reply.next === "string") {
        location.assign(reply.next);
        return;
      }
      if (reply !== null && typeof reply.error === "string") {
        this._fail(reply.error);
      } else if (response.ok) {
        this._fail("The portal accepted the answer but named no next page; reload the page.");
      } else {
        this._fail(`Submitting failed (HTTP ${response.status}). Try again.`);
      }
    }

    _fail(message) {
      this._showError(message);
      this._setBusy(false);
    }

    _setBusy(busy) {
      this._busy = busy;
      this._button.disabled = busy;
      this._button.textContent = busy ? "Submitting\u2026" : "Submit";
    }

    _showError(message) {
      this._alert.textContent = message;
      this._alert.hidden = message === "";
    }
  }

  customElements.define("crowd-bounding-box", CrowdBoundingBox);
  customElements.define("full-instructions", FullInstructions);
  customElements.define("short-instructions", ShortInstructions);
  customElements.define("crowd-form", CrowdForm);
})();
