// clearfill editor: paint a mask over an image, send both to /v1/remove, compare.
// Plain JS, no dependencies, works offline. Coordinates on the canvases are image pixels.
"use strict";

// With `clearfill serve --token`, the URL it prints carries the token after '#'; API calls send it.
const apiToken = new URLSearchParams(location.hash.slice(1)).get("token");
const apiHeaders = apiToken ? { Authorization: `Bearer ${apiToken}` } : {};

const $ = (id) => document.getElementById(id);
const imageCanvas = $("image"), maskCanvas = $("mask"), stage = $("stage"), viewport = $("viewport");
const imageCtx = imageCanvas.getContext("2d"), maskCtx = maskCanvas.getContext("2d", { willReadFrequently: true });
const MASK_COLOUR = "rgb(255, 40, 40)";
const state = {
  source: null,        // Blob of the image being edited (the original, then each result)
  fileName: "image.png",
  tool: "brush", size: 40,
  zoom: 1, panX: 0, panY: 0,
  undo: [], redo: [], painting: false, panning: null, last: null,
  resultUrl: null,
};

function setStatus(text, busy = false) { $("status").textContent = text; $("status").classList.toggle("busy", busy); }

// ---------------------------------------------------------------- loading
async function openImage(blob, name) {
  const bitmap = await createImageBitmap(blob);
  state.source = blob; state.fileName = name || state.fileName;
  for (const c of [imageCanvas, maskCanvas]) { c.width = bitmap.width; c.height = bitmap.height; }
  imageCtx.drawImage(bitmap, 0, 0);
  maskCtx.clearRect(0, 0, maskCanvas.width, maskCanvas.height);
  state.undo = []; state.redo = [];
  $("result").classList.add("hidden"); $("compare-label").classList.add("hidden");
  maskCanvas.style.opacity = "";
  $("drop-hint").classList.add("hidden");
  $("remove").disabled = false;
  fit();
}

async function loadMask(blob) {
  const bitmap = await createImageBitmap(blob);
  const scratch = new OffscreenCanvas(maskCanvas.width, maskCanvas.height).getContext("2d");
  scratch.drawImage(bitmap, 0, 0, maskCanvas.width, maskCanvas.height);
  const pixels = scratch.getImageData(0, 0, maskCanvas.width, maskCanvas.height);
  snapshot();
  const out = maskCtx.createImageData(pixels.width, pixels.height);
  for (let i = 0; i < pixels.data.length; i += 4) {
    const on = Math.max(pixels.data[i], pixels.data[i + 1], pixels.data[i + 2]) > 127 && pixels.data[i + 3] > 127;
    out.data.set(on ? [255, 40, 40, 255] : [0, 0, 0, 0], i);
  }
  maskCtx.putImageData(out, 0, 0);
}

// ---------------------------------------------------------------- view: zoom and pan
function applyView() { stage.style.transform = `translate(${state.panX}px, ${state.panY}px) scale(${state.zoom})`; }
function fit() {
  const box = viewport.getBoundingClientRect();
  state.zoom = Math.min(box.width / imageCanvas.width, box.height / imageCanvas.height, 1) || 1;
  state.panX = (box.width - imageCanvas.width * state.zoom) / 2;
  state.panY = (box.height - imageCanvas.height * state.zoom) / 2;
  applyView();
}
function zoomAt(factor, cx, cy) {
  const box = viewport.getBoundingClientRect();
  const x = (cx ?? box.width / 2), y = (cy ?? box.height / 2);
  const next = Math.min(32, Math.max(0.05, state.zoom * factor));
  state.panX = x - (x - state.panX) * next / state.zoom;
  state.panY = y - (y - state.panY) * next / state.zoom;
  state.zoom = next; applyView();
}
function toImage(event) {
  const box = maskCanvas.getBoundingClientRect();
  return { x: (event.clientX - box.left) * maskCanvas.width / box.width,
           y: (event.clientY - box.top) * maskCanvas.height / box.height };
}

// ---------------------------------------------------------------- painting and history
function snapshot() {
  state.undo.push(maskCtx.getImageData(0, 0, maskCanvas.width, maskCanvas.height));
  if (state.undo.length > 50) state.undo.shift();
  state.redo = [];
}
function undo() { if (state.undo.length) { state.redo.push(current()); maskCtx.putImageData(state.undo.pop(), 0, 0); } }
function redo() { if (state.redo.length) { state.undo.push(current()); maskCtx.putImageData(state.redo.pop(), 0, 0); } }
function current() { return maskCtx.getImageData(0, 0, maskCanvas.width, maskCanvas.height); }
function stroke(from, to, pressure) {
  maskCtx.globalCompositeOperation = state.tool === "eraser" ? "destination-out" : "source-over";
  maskCtx.strokeStyle = MASK_COLOUR; maskCtx.fillStyle = MASK_COLOUR;
  maskCtx.lineWidth = state.size * (pressure || 1); maskCtx.lineCap = "round"; maskCtx.lineJoin = "round";
  maskCtx.beginPath(); maskCtx.moveTo(from.x, from.y); maskCtx.lineTo(to.x, to.y); maskCtx.stroke();
}
function maskIsEmpty() { return !current().data.some((v, i) => i % 4 === 3 && v > 0); }

// One finger paints; a second finger turns the gesture into pinch-zoom and pan
// (the stroke the first finger had begun is taken back).
const touches = new Map();  // pointerId -> latest client position, touch pointers only
let pinch = null;           // distance and midpoint of the two fingers at the previous move
function twoFingers() {
  const [a, b] = [...touches.values()];
  return { distance: Math.hypot(a.x - b.x, a.y - b.y) || 1, x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
}
function touchDown(event) {
  if (event.pointerType !== "touch") return false;
  touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
  if (touches.size < 2) return false;
  if (state.painting) { state.painting = false; maskCtx.putImageData(state.undo.pop(), 0, 0); }
  pinch = twoFingers();
  return true;
}
function touchMove(event) {
  if (!touches.has(event.pointerId)) return false;
  touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
  if (!pinch) return false;
  if (touches.size === 2) {
    const now = twoFingers(), box = viewport.getBoundingClientRect();
    state.panX += now.x - pinch.x; state.panY += now.y - pinch.y;
    zoomAt(now.distance / pinch.distance, now.x - box.left, now.y - box.top);
    pinch = now;
  }
  return true;  // while a pinch lasts, no finger paints
}
function touchUp(event) {
  touches.delete(event.pointerId);
  if (touches.size === 0) pinch = null;
}

maskCanvas.addEventListener("pointerdown", (event) => {
  if (!state.source) return;
  maskCanvas.setPointerCapture(event.pointerId);
  if (touchDown(event)) return;
  if (event.button === 1 || event.button === 2 || state.spaceHeld) {
    state.panning = { x: event.clientX - state.panX, y: event.clientY - state.panY }; return;
  }
  snapshot(); state.painting = true; state.last = toImage(event);
  stroke(state.last, state.last, event.pointerType === "pen" ? event.pressure * 2 : 1);
});
maskCanvas.addEventListener("pointermove", (event) => {
  if (touchMove(event)) return;
  if (state.panning) { state.panX = event.clientX - state.panning.x; state.panY = event.clientY - state.panning.y; applyView(); return; }
  if (!state.painting) return;
  const point = toImage(event);
  stroke(state.last, point, event.pointerType === "pen" ? event.pressure * 2 : 1);
  state.last = point;
});
for (const type of ["pointerup", "pointercancel"]) {
  maskCanvas.addEventListener(type, (event) => { touchUp(event); state.painting = false; state.panning = null; });
}
maskCanvas.addEventListener("contextmenu", (event) => event.preventDefault());
viewport.addEventListener("wheel", (event) => {
  event.preventDefault();
  const box = viewport.getBoundingClientRect();
  zoomAt(event.deltaY < 0 ? 1.15 : 1 / 1.15, event.clientX - box.left, event.clientY - box.top);
}, { passive: false });

// ---------------------------------------------------------------- removal
function maskBlob() {
  const out = new OffscreenCanvas(maskCanvas.width, maskCanvas.height);
  const ctx = out.getContext("2d");
  ctx.fillStyle = "black"; ctx.fillRect(0, 0, out.width, out.height);
  const alpha = current();
  const pixels = ctx.getImageData(0, 0, out.width, out.height);
  for (let i = 3; i < alpha.data.length; i += 4) if (alpha.data[i] > 0) pixels.data.fill(255, i - 3, i);
  ctx.putImageData(pixels, 0, 0);
  return out.convertToBlob({ type: "image/png" });
}

async function removeObjects() {
  if (maskIsEmpty()) { setStatus("Paint over what should go first."); return; }
  $("remove").disabled = true; setStatus("Removing…", true);
  const form = new FormData();
  form.append("image", state.source, state.fileName);
  form.append("mask", await maskBlob(), "mask.png");
  try {
    const response = await fetch("/v1/remove?stages=1", { method: "POST", body: form, headers: apiHeaders });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    showResult(body);
    setStatus(`Done (seed ${body.seed}).`);
  } catch (error) {
    setStatus(`Failed: ${error.message}`);
  } finally {
    $("remove").disabled = false;
  }
}

function showResult(body) {
  const result = $("result");
  result.src = body.image;
  result.width = imageCanvas.width; result.height = imageCanvas.height;
  result.classList.remove("hidden"); $("compare-label").classList.remove("hidden");
  maskCanvas.style.opacity = "0";  // show the result itself; "Keep editing" brings the mask back
  setCompare($("compare").value);
  state.resultUrl = body.output;
  const link = $("download");
  link.href = body.output; link.download = "clearfill-" + state.fileName; link.classList.remove("hidden");
  const strip = $("strip"); strip.replaceChildren();
  for (const [name, url] of Object.entries(body.pictures)) {
    const figure = document.createElement("figure");
    figure.innerHTML = `<img alt="${name}"><figcaption>${name}</figcaption>`;
    figure.querySelector("img").src = url; strip.append(figure);
  }
  $("keep-editing")?.remove();
  const keep = document.createElement("button");
  keep.id = "keep-editing"; keep.textContent = "Keep editing the result";
  keep.addEventListener("click", async () => openImage(await (await fetch(state.resultUrl)).blob(), state.fileName));
  $("download").after(keep);
}

// the result shows to the right of the slider, the original to its left
function setCompare(value) { $("result").style.clipPath = `inset(0 0 0 ${value}%)`; }

// ---------------------------------------------------------------- controls
function setTool(tool) { state.tool = tool; $("brush").classList.toggle("active", tool === "brush"); $("eraser").classList.toggle("active", tool === "eraser"); }
function setSize(size) { state.size = Math.max(2, Math.min(300, size)); $("size").value = state.size; $("size-value").textContent = Math.round(state.size); }

$("open").addEventListener("change", (e) => e.target.files[0] && openImage(e.target.files[0], e.target.files[0].name));
$("mask-file").addEventListener("change", (e) => e.target.files[0] && loadMask(e.target.files[0]));
$("brush").addEventListener("click", () => setTool("brush"));
$("eraser").addEventListener("click", () => setTool("eraser"));
$("size").addEventListener("input", (e) => setSize(Number(e.target.value)));
$("undo").addEventListener("click", undo);
$("redo").addEventListener("click", redo);
$("clear").addEventListener("click", () => { snapshot(); maskCtx.clearRect(0, 0, maskCanvas.width, maskCanvas.height); });
$("mask-download").addEventListener("click", async () => {
  const link = document.createElement("a"); link.href = URL.createObjectURL(await maskBlob()); link.download = "mask.png"; link.click();
});
$("zoom-in").addEventListener("click", () => zoomAt(1.25));
$("zoom-out").addEventListener("click", () => zoomAt(1 / 1.25));
$("zoom-fit").addEventListener("click", fit);
$("remove").addEventListener("click", removeObjects);
$("compare").addEventListener("input", (e) => setCompare(e.target.value));
viewport.addEventListener("dragover", (e) => e.preventDefault());
viewport.addEventListener("drop", (e) => { e.preventDefault(); const f = e.dataTransfer.files[0]; if (f) openImage(f, f.name); });
document.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT" && e.target.type !== "range") return;
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === "z") { e.preventDefault(); e.shiftKey ? redo() : undo(); }
  else if ((e.ctrlKey || e.metaKey) && key === "y") { e.preventDefault(); redo(); }
  else if (e.key === "[") setSize(state.size / 1.2);
  else if (e.key === "]") setSize(state.size * 1.2);
  else if (key === "b") setTool("brush");
  else if (key === "e") setTool("eraser");
  else if (e.key === "+" || e.key === "=") zoomAt(1.25);
  else if (e.key === "-") zoomAt(1 / 1.25);
  else if (e.key === " ") state.spaceHeld = true;
});
document.addEventListener("keyup", (e) => { if (e.key === " ") state.spaceHeld = false; });
window.clearfill = { state, maskIsEmpty, undo, redo };  // for tests and the console
