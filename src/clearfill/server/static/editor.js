// clearfill editor: mark what should go (brush, select, find text), remove it through the
// server's job API with live progress, build on each result, compare with the original.
// Plain JS, no dependencies, works offline. Coordinates on the canvases are image pixels.
"use strict";

// With `clearfill serve --token`, the URL it prints carries the token after '#'; API calls send it.
const apiToken = new URLSearchParams(location.hash.slice(1)).get("token");
const apiHeaders = apiToken ? { Authorization: `Bearer ${apiToken}` } : {};

const $ = (id) => document.getElementById(id);
const viewport = $("viewport"), stage = $("stage");
const pictureCanvas = $("picture"), beforeCanvas = $("before"), maskCanvas = $("mask"), lassoCanvas = $("lasso");
const pictureCtx = pictureCanvas.getContext("2d"), beforeCtx = beforeCanvas.getContext("2d");
const maskCtx = maskCanvas.getContext("2d", { willReadFrequently: true }), lassoCtx = lassoCanvas.getContext("2d");
const MASK_COLOUR = "rgb(255, 40, 40)";
// A new photo's brush: wide enough to cover a typical object in a couple of strokes, and
// never under a fingertip on a touch screen.
const DEFAULT_BRUSH_PERCENT = 5, LEAST_TOUCH_BRUSH = 24;  // % of the short side; screen pixels
const STAGES = ["unblend", "mask", "remove", "crop", "resize", "refine", "stitch"];
const STAGE_WORDS = {
  unblend: "Undoing a semi-transparent mark", mask: "Preparing the mask", remove: "Removing",
  crop: "Cropping around the hole", resize: "Upscaling the crop", refine: "Refining", stitch: "Stitching back",
};

// The page is in one of four modes, derived from the state in refresh():
//   empty (no image) -> image (nothing marked) <-> painting (something marked) -> working (a job runs)
const state = {
  generation: 0,         // bumped by every open: answers for an older image are dropped
  versions: [],          // [{blob, bitmap, label, url, stages, picturesUrl, pictures}], the original first
  current: 0,            // the version shown and edited
  undo: [], redo: [],    // {kind: "mask", mask} | {kind: "version", from, to, mask}
  hasMask: false,
  downloaded: 0,         // the newest version downloaded (0: none but the original)
  maskChange: 0,         // counts changes to the mask: an encoding of an older one is not sent
  tool: "brush", sizePercent: DEFAULT_BRUSH_PERCENT, sizeChosen: false,
  zoom: 1, panX: 0, panY: 0, fitted: true,
  fileName: "image.png",
  job: null,             // {what, id, controller} while the server works for us
  limits: { max_pixels: Infinity, max_upload_mb: Infinity },
  pointer: null,         // last pointer position over the viewport (client coordinates)
  spaceHeld: false, painting: false, panning: null, last: null, selecting: null,
  split: false, splitAt: 50, comparing: false,
  // Remove on release (on by default on touch screens, like Magic Eraser): a brush stroke's
  // end runs Remove; strokes made while a removal runs wait in `queued` (lists of segments,
  // shown on the lasso layer) and are marked, then removed, when it ends.
  autoRemove: localStorage.getItem("clearfill.autoRemove") === null ? matchMedia("(pointer: coarse)").matches
                                                                     : localStorage.getItem("clearfill.autoRemove") === "1",
  queued: [], queuing: null,
};

// ---------------------------------------------------------------- status and modes
function say(text, error = false) { $("status").textContent = text; $("status").classList.toggle("error", error); }

function refresh() {
  const hasImage = state.versions.length > 0, working = state.job !== null, idle = hasImage && !working;
  const mode = !hasImage ? "empty" : working ? "working" : state.hasMask ? "painting" : "image";
  document.body.dataset.mode = mode;
  document.body.dataset.tool = state.tool;
  const enable = (id, on) => { $(id).disabled = !on; };
  for (const id of ["brush", "eraser", "select", "find-text", "size", "mask-upload"]) enable(id, idle);
  enable("clear", idle && state.hasMask);
  enable("undo", idle && state.undo.length > 0);
  enable("redo", idle && state.redo.length > 0);
  enable("remove", idle && state.hasMask);
  enable("download", idle && state.current > 0);
  enable("copy", idle && state.current > 0);
  for (const id of ["zoom-in", "zoom-out", "zoom-fit"]) enable(id, hasImage);
  enable("compare", hasImage && state.current > 0);
  enable("split", hasImage && state.current > 0);
  if (state.split && !(hasImage && state.current > 0)) setSplit(false);
  for (const button of $("history").querySelectorAll("button")) button.disabled = working;
  for (const tool of ["brush", "eraser", "select"]) $(tool).setAttribute("aria-pressed", String(state.tool === tool));
  $("progress").hidden = !working;
  updateCursor();
}

// ---------------------------------------------------------------- talking to the server
async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...apiHeaders, ...(options.headers || {}) } });
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

// Server-sent events through fetch (EventSource cannot send the token header).
async function readEvents(path, signal, onEvent) {
  const reader = (await api(path, { signal })).body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const data = buffer.slice(0, end).split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5)).join("\n");
      buffer = buffer.slice(end + 2);
      if (data && onEvent(JSON.parse(data)) === false) { reader.cancel(); return; }
    }
  }
}

async function loadLimits() {
  try {
    const limits = (await (await api("/v1/presets")).json()).limits;
    if (limits) state.limits = limits;
  } catch { /* an older server: no limits known until it answers a removal */ }
}

// ---------------------------------------------------------------- opening an image
function sizeProblem(width, height, bytes) {
  const megapixels = (n) => (n / 1e6).toFixed(1);
  if (width * height > state.limits.max_pixels) {
    return `This photo is ${megapixels(width * height)} megapixels; this server takes up to ` +
      `${megapixels(state.limits.max_pixels)}. Make it smaller first, or ask whoever runs the server to raise the limit.`;
  }
  if (bytes > state.limits.max_upload_mb * 1e6) {
    return `This file is ${(bytes / 1e6).toFixed(1)} MB; this server takes files up to ${state.limits.max_upload_mb} MB.`;
  }
  return null;
}

async function openFile(file) {
  if (!file) return;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    say(`"${file.name}" is not an image this browser can open (try PNG, JPEG or WebP). Nothing changed.`, true);
    return;
  }
  const problem = sizeProblem(bitmap.width, bitmap.height, file.size);
  if (problem) { bitmap.close(); say(problem, true); return; }
  if (!mayDropResults()) { bitmap.close(); say("Kept the results you have; nothing was opened."); return; }
  cancelJob();
  state.generation += 1;
  state.queued = []; state.queuing = null;
  for (const version of state.versions) URL.revokeObjectURL(version.url);
  state.versions = [{ blob: file, bitmap, label: "Original", url: URL.createObjectURL(file) }];
  state.current = 0; state.undo = []; state.redo = []; state.downloaded = 0;
  state.fileName = file.name || "image.png";
  for (const canvas of [pictureCanvas, beforeCanvas, lassoCanvas]) {
    canvas.width = bitmap.width; canvas.height = bitmap.height;
  }
  resetMask(bitmap.width, bitmap.height);
  beforeCtx.drawImage(bitmap, 0, 0);
  setSplit(false);
  showVersion();
  renderHistory();
  renderStages(null);
  fit();
  setSize(state.sizeChosen ? state.sizePercent : defaultBrush());
  say(`Opened ${state.fileName} (${bitmap.width} x ${bitmap.height}). Paint over what should go, then press Remove.`);
  refresh();
}

// Results never downloaded are not dropped without asking.
function mayDropResults() {
  const unsaved = state.versions.length - 1 - state.downloaded;
  if (unsaved <= 0) return true;
  return confirm(`Open another photo? ${unsaved === 1 ? "A result" : `${unsaved} results`} of this one ` +
                 "not downloaded yet will be lost.");
}

function showVersion() {
  const { bitmap } = state.versions[state.current];
  pictureCtx.clearRect(0, 0, pictureCanvas.width, pictureCanvas.height);
  pictureCtx.drawImage(bitmap, 0, 0, pictureCanvas.width, pictureCanvas.height);
}

// ---------------------------------------------------------------- view: zoom, pan, fit
function applyView() {
  stage.style.transform = `translate(${state.panX}px, ${state.panY}px) scale(${state.zoom})`;
  placeDivider();
  updateCursor();
}
function fit() {
  if (!state.versions.length) return;
  const box = viewport.getBoundingClientRect();
  state.zoom = Math.min(box.width / pictureCanvas.width, box.height / pictureCanvas.height, 1) || 1;
  state.panX = (box.width - pictureCanvas.width * state.zoom) / 2;
  state.panY = (box.height - pictureCanvas.height * state.zoom) / 2;
  state.fitted = true;
  applyView();
}
function zoomAt(factor, cx, cy) {
  if (!state.versions.length) return;
  const box = viewport.getBoundingClientRect();
  const x = cx ?? box.width / 2, y = cy ?? box.height / 2;
  const next = Math.min(32, Math.max(0.02, state.zoom * factor));
  state.panX = x - (x - state.panX) * next / state.zoom;
  state.panY = y - (y - state.panY) * next / state.zoom;
  state.zoom = next; state.fitted = false;
  applyView();
}
function panBy(dx, dy) { state.panX += dx; state.panY += dy; state.fitted = false; applyView(); }
new ResizeObserver(() => { if (state.fitted) fit(); else applyView(); }).observe(viewport);

function toImage(event) {
  const box = maskCanvas.getBoundingClientRect();
  return { x: (event.clientX - box.left) * maskCanvas.width / box.width,
           y: (event.clientY - box.top) * maskCanvas.height / box.height };
}

// ---------------------------------------------------------------- brush size and cursor
function brushPixels() { return Math.max(1, state.sizePercent / 100 * Math.min(maskCanvas.width, maskCanvas.height)); }
function defaultBrush() {
  const touch = matchMedia("(pointer: coarse)").matches, short = Math.min(maskCanvas.width, maskCanvas.height);
  const least = touch ? Math.ceil(1000 * LEAST_TOUCH_BRUSH / (short * state.zoom)) / 10 : 0;  // setSize keeps 0.1%
  return Math.max(DEFAULT_BRUSH_PERCENT, least);
}
function chooseSize(percent) { state.sizeChosen = true; setSize(percent); }
function setSize(percent) {
  state.sizePercent = Math.round(Math.max(0.2, Math.min(25, percent)) * 10) / 10;
  $("size").value = state.sizePercent;
  const image = Math.round(brushPixels()), screen = Math.round(brushPixels() * state.zoom);
  $("size-value").textContent = state.versions.length ? `${state.sizePercent}% · ${image} px` : `${state.sizePercent}%`;
  $("size-value").title = `${state.sizePercent}% of the image's short side: ${image} image pixels, ${screen} on screen`;
  $("size").setAttribute("aria-valuetext", $("size-value").title);
  updateCursor();
}
function updateCursor() {
  const cursor = $("cursor"), pointer = state.pointer;
  const show = pointer && pointer.overCanvas && state.versions.length && (!state.job || mayQueue()) && !state.spaceHeld &&
    (state.tool === "brush" || state.tool === "eraser");
  cursor.hidden = !show;
  if (!show) return;
  const diameter = brushPixels() * state.zoom, box = viewport.getBoundingClientRect();
  cursor.style.width = cursor.style.height = `${diameter}px`;
  cursor.style.transform = `translate(${pointer.x - box.left - diameter / 2}px, ${pointer.y - box.top - diameter / 2}px)`;
}

// ---------------------------------------------------------------- the mask and its history
// The mask canvas is the photo's size (24 MP: 96 MB of pixels), so nothing that runs per
// stroke reads all of it: an undo entry keeps the patch its change touched; `shadow` is the
// mask as of the last history entry (what a stroke in progress painted over);
// `state.maskBounds` is a box that holds every marked pixel; the per-pixel work of sending
// and loading masks runs in mask-worker.js.
const shadow = new OffscreenCanvas(1, 1), shadowCtx = shadow.getContext("2d", { willReadFrequently: true });
const maskWorker = new Worker("/static/mask-worker.js");
const workerCalls = new Map();
maskWorker.onmessage = ({ data }) => {
  const call = workerCalls.get(data.id);
  workerCalls.delete(data.id);
  if (data.error) call.reject(new Error(data.error)); else call.resolve(data);
};
async function inWorker(kind, source, extra = {}, part = null) {  // part: {x, y, w, h} of source, else all of it
  const bitmap = await (part ? createImageBitmap(source, part.x, part.y, part.w, part.h) : createImageBitmap(source));
  const id = workerCalls.size + performance.now();
  return new Promise((resolve, reject) => {
    workerCalls.set(id, { resolve, reject });
    maskWorker.postMessage({ id, kind, bitmap, ...extra }, [bitmap]);
  });
}

// Boxes are {x, y, w, h} in whole image pixels, or null for none.
function within(box) {
  if (!box) return null;
  const x0 = Math.max(0, Math.floor(box.x)), y0 = Math.max(0, Math.floor(box.y));
  const x1 = Math.min(maskCanvas.width, Math.ceil(box.x + box.w)), y1 = Math.min(maskCanvas.height, Math.ceil(box.y + box.h));
  return x1 > x0 && y1 > y0 ? { x: x0, y: y0, w: x1 - x0, h: y1 - y0 } : null;
}
function union(a, b) {
  if (!a || !b) return a || b;
  const x = Math.min(a.x, b.x), y = Math.min(a.y, b.y);
  return { x, y, w: Math.max(a.x + a.w, b.x + b.w) - x, h: Math.max(a.y + a.h, b.y + b.h) - y };
}
function wholeMask() { return { x: 0, y: 0, w: maskCanvas.width, h: maskCanvas.height }; }

// A patch is a box and the mask's pixels in it; putting it back restores that box.
function patchOf(ctx, box) {
  const rect = within(box);
  return { rect, pixels: rect && ctx.getImageData(rect.x, rect.y, rect.w, rect.h) };
}
function putPatch({ rect, pixels }) {
  if (!rect) return;
  for (const ctx of [maskCtx, shadowCtx]) ctx.putImageData(pixels, rect.x, rect.y);
  state.maskBounds = union(state.maskBounds, rect);
}
function syncShadow(box) {
  const rect = within(box);
  if (!rect) return;
  shadowCtx.clearRect(rect.x, rect.y, rect.w, rect.h);
  shadowCtx.drawImage(maskCanvas, rect.x, rect.y, rect.w, rect.h, rect.x, rect.y, rect.w, rect.h);
}
function resetMask(width, height) {
  for (const canvas of [maskCanvas, shadow]) { canvas.width = width; canvas.height = height; }
  state.maskBounds = null; state.hasMask = false; state.maskChange += 1;
}

// Only what is inside maskBounds can be marked, so only that is read.
function maskIsEmpty() {
  const rect = within(state.maskBounds);
  if (!rect) return true;
  const data = maskCtx.getImageData(rect.x, rect.y, rect.w, rect.h).data;
  for (let i = 3; i < data.length; i += 4) if (data[i]) return false;
  return true;
}
function maskChanged(marked = null) {
  state.hasMask = marked ?? !maskIsEmpty();
  if (!state.hasMask) state.maskBounds = null;
  state.maskChange += 1;
  encodeSoon();
  refresh();
}
function clearMask() {
  const rect = within(state.maskBounds);
  if (rect) for (const ctx of [maskCtx, shadowCtx]) ctx.clearRect(rect.x, rect.y, rect.w, rect.h);
  state.maskBounds = null;
  maskChanged(false);
}
function remember(entry) { state.undo.push(entry); if (state.undo.length > 60) state.undo.shift(); state.redo = []; }
// Before a change to `box` (the mask equals the shadow then): keep what is there.
function rememberMask(box) { remember({ kind: "mask", ...patchOf(maskCtx, box) }); }
// After a stroke: the shadow still holds what the stroke painted over.
function commitStroke(erase = state.tool === "eraser") {
  const box = state.strokeBounds;
  remember({ kind: "mask", ...patchOf(shadowCtx, box) });
  syncShadow(box);
  if (!erase) state.maskBounds = union(state.maskBounds, within(box));
  maskChanged(erase ? null : true);
}
function revertStroke() {
  const rect = within(state.strokeBounds);
  if (!rect) return;
  maskCtx.clearRect(rect.x, rect.y, rect.w, rect.h);
  maskCtx.drawImage(shadow, rect.x, rect.y, rect.w, rect.h, rect.x, rect.y, rect.w, rect.h);
}
function currentMask() { return maskCtx.getImageData(0, 0, maskCanvas.width, maskCanvas.height); }  // tests only

// Undo and redo are one move between the two stacks: the entry taken from one goes to the
// other with the pixels shown now in its box, so the way back restores them. (The stacks
// are strict: when an entry is taken, the mask is as it was just after that change.)
function travel(from, to) {
  if (state.job || !from.length) return;
  const entry = from.pop(), backwards = from === state.undo;
  to.push({ ...entry, ...patchOf(maskCtx, entry.rect) });
  if (entry.kind === "version") {
    state.current = backwards ? entry.from : entry.to;
    showVersion(); renderHistory(); renderStages(state.versions[state.current]);
  }
  putPatch(entry);
  maskChanged();
  say(entry.kind === "version" ? `${backwards ? "Back" : "Forward"} to ${state.versions[state.current].label}.`
                               : backwards ? "Undone." : "Redone.");
}
function undo() { travel(state.undo, state.redo); }
function redo() { travel(state.redo, state.undo); }
// A new version shown: the marks that made it go with it into the history, the mask is cleared.
function showOtherVersion(from, to) {
  remember({ kind: "version", from, to, ...patchOf(maskCtx, state.maskBounds) });
  state.current = to; showVersion(); renderHistory(); renderStages(state.versions[to]); clearMask();
}
function goToVersion(index) {
  if (state.job || index === state.current) return;
  showOtherVersion(state.current, index);
  say(`Showing ${state.versions[index].label}; new marks build on it.`);
}

// A segment is {from, to, width, erase}: a piece of a stroke with the brush it was made with.
function drawSegment(ctx, { from, to, width, erase }) {
  ctx.globalCompositeOperation = erase ? "destination-out" : "source-over";
  ctx.strokeStyle = MASK_COLOUR;
  ctx.lineWidth = width; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(from.x, from.y); ctx.lineTo(to.x, to.y); ctx.stroke();
}
function markSegment(segment) {
  const { from, to, width } = segment;
  drawSegment(maskCtx, segment);
  const reach = width / 2 + 2, x = Math.min(from.x, to.x) - reach, y = Math.min(from.y, to.y) - reach;
  state.strokeBounds = union(state.strokeBounds, { x, y, w: Math.abs(from.x - to.x) + 2 * reach, h: Math.abs(from.y - to.y) + 2 * reach });
}
function stroke(from, to, pressure) {
  const segment = { from, to, width: brushPixels() * (pressure || 1), erase: state.tool === "eraser" };
  if (state.queuing) { state.queuing.push(segment); drawSegment(lassoCtx, segment); } else markSegment(segment);
}

// Strokes made while a removal runs wait on the lasso layer; when it ends they become marks
// (each its own undo step) on the result, and Remove runs again unless it was cancelled.
function mayQueue() { return state.autoRemove && state.job?.what === "remove"; }
function drawQueued() {
  clearLasso();
  for (const segments of [...state.queued, state.queuing || []]) segments.forEach((s) => drawSegment(lassoCtx, s));
}
function markQueued(removeThem) {
  const strokes = state.queued;
  state.queued = []; state.queuing = null; clearLasso();
  if (!strokes.length) return;
  for (const segments of strokes) {
    state.strokeBounds = null;
    segments.forEach(markSegment);
    commitStroke(segments[0].erase);
  }
  if (removeThem && state.hasMask) removeMarked();
  else if (state.hasMask) say("The strokes made meanwhile are marked; press Remove when ready.");
}

// A mask image (white = remove) is added to what is already marked. One of another size is
// refused, or scaled when it has the photo's shape, and the caller is told which.
async function addMask(blob) {
  const probe = await createImageBitmap(blob), width = probe.width, height = probe.height;
  probe.close();
  const W = maskCanvas.width, H = maskCanvas.height;
  if (width !== W || height !== H) {
    if (Math.abs(width / height - W / H) > 0.01 * (W / H)) {
      throw new MaskSizeError(`The mask is ${width} x ${height} but the photo is ${W} x ${H}: a mask of another shape ` +
                              "would mark the wrong places. Nothing was added.");
    }
  }
  const found = await inWorker("overlay", blob, { width: W, height: H });
  rememberMask(found.bounds);
  maskCtx.globalCompositeOperation = "source-over";
  maskCtx.drawImage(found.bitmap, 0, 0);
  found.bitmap.close();
  syncShadow(found.bounds);
  state.maskBounds = union(state.maskBounds, found.bounds);
  maskChanged();
  return { share: found.share, scaledFrom: width !== W || height !== H ? `${width} x ${height}` : null };
}
class MaskSizeError extends Error {}

// The mask as the server takes it, encoded as soon as a change settles (a 24 MP mask takes
// a second), so that Remove finds it ready.
const encoded = { change: -1, blob: null, timer: 0 };
function maskBlob() {
  if (encoded.change !== state.maskChange) {
    encoded.change = state.maskChange;
    // only the box that holds every marked pixel is read (a 24 MP layer is 96 MB)
    const part = within(state.maskBounds) || { x: 0, y: 0, w: 1, h: 1 };
    encoded.blob = inWorker("encode", maskCanvas, { width: maskCanvas.width, height: maskCanvas.height, ...part },
                            part).then((answer) => answer.blob);
  }
  return encoded.blob;
}
function encodeSoon() {
  clearTimeout(encoded.timer);
  if (state.hasMask) encoded.timer = setTimeout(maskBlob, 250);
}

// ---------------------------------------------------------------- pointer: paint, select, pan, pinch
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
  if (state.painting) {  // the first finger's stroke is taken back
    state.painting = false;
    if (state.queuing) { state.queuing = null; drawQueued(); } else revertStroke();
  }
  if (state.selecting) { state.selecting = null; clearLasso(); }
  pinch = twoFingers();
  return true;
}
function touchMove(event) {
  if (!touches.has(event.pointerId)) return false;
  touches.set(event.pointerId, { x: event.clientX, y: event.clientY });
  if (!pinch) return false;
  if (touches.size === 2) {
    const now = twoFingers(), box = viewport.getBoundingClientRect();
    panBy(now.x - pinch.x, now.y - pinch.y);
    zoomAt(now.distance / pinch.distance, now.x - box.left, now.y - box.top);
    pinch = now;
  }
  return true;  // while a pinch lasts, no finger paints
}
function touchUp(event) { touches.delete(event.pointerId); if (touches.size === 0) pinch = null; }

maskCanvas.addEventListener("pointerdown", (event) => {
  if (!state.versions.length || (state.job && !(mayQueue() && state.tool !== "select"))) return;
  maskCanvas.setPointerCapture(event.pointerId);
  maskCanvas.focus({ preventScroll: true });
  if (touchDown(event)) return;
  if (event.button === 1 || event.button === 2 || state.spaceHeld) {
    state.panning = { x: event.clientX - state.panX, y: event.clientY - state.panY }; return;
  }
  const point = toImage(event);
  if (state.tool === "select") { state.selecting = { points: [point], negative: event.altKey }; drawLasso(); return; }
  state.painting = true; state.last = point; state.strokeBounds = null;
  state.queuing = state.job ? [] : null;
  stroke(point, point, event.pointerType === "pen" ? event.pressure * 2 : 1);
});
viewport.addEventListener("pointermove", (event) => {
  state.pointer = { x: event.clientX, y: event.clientY, overCanvas: event.target === maskCanvas };
  updateCursor();
});
viewport.addEventListener("pointerleave", () => { state.pointer = null; updateCursor(); });
maskCanvas.addEventListener("pointermove", (event) => {
  if (touchMove(event)) return;
  if (state.panning) {
    state.panX = event.clientX - state.panning.x; state.panY = event.clientY - state.panning.y;
    state.fitted = false; applyView(); return;
  }
  if (state.selecting) { state.selecting.points.push(toImage(event)); drawLasso(); return; }
  if (!state.painting) return;
  const point = toImage(event);
  stroke(state.last, point, event.pointerType === "pen" ? event.pressure * 2 : 1);
  state.last = point;
});
for (const type of ["pointerup", "pointercancel"]) {
  maskCanvas.addEventListener(type, (event) => {
    touchUp(event);
    if (state.painting) { state.painting = false; endStroke(); }
    state.panning = null;
    if (state.selecting && type === "pointerup") finishSelection();
  });
}
function endStroke() {
  if (state.queuing) {
    state.queued.push(state.queuing); state.queuing = null;
    say(`${state.queued.length === 1 ? "A stroke waits" : `${state.queued.length} strokes wait`} for the removal running now.`);
    return;
  }
  commitStroke();
  if (state.autoRemove && state.tool === "brush") removeMarked();
}
maskCanvas.addEventListener("contextmenu", (event) => event.preventDefault());
viewport.addEventListener("wheel", (event) => {
  event.preventDefault();
  const box = viewport.getBoundingClientRect();
  zoomAt(event.deltaY < 0 ? 1.15 : 1 / 1.15, event.clientX - box.left, event.clientY - box.top);
  setSize(state.sizePercent);
}, { passive: false });

function drawLasso() {
  clearLasso();
  const points = state.selecting.points;
  lassoCtx.lineWidth = 2 / state.zoom; lassoCtx.setLineDash([6 / state.zoom, 4 / state.zoom]);
  lassoCtx.strokeStyle = "#ffd43b";
  lassoCtx.beginPath(); points.forEach((p, i) => (i ? lassoCtx.lineTo(p.x, p.y) : lassoCtx.moveTo(p.x, p.y)));
  lassoCtx.stroke();
}
function clearLasso() { lassoCtx.clearRect(0, 0, lassoCanvas.width, lassoCanvas.height); }

// A drag that encloses an area is a lasso, a straight-ish drag a box, a tap a click
// (Alt-click: "not this").
function finishSelection() {
  const { points, negative } = state.selecting;
  state.selecting = null;
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const x0 = Math.min(...xs), y0 = Math.min(...ys), w = Math.max(...xs) - x0, h = Math.max(...ys) - y0;
  let area = 0;
  points.forEach((p, i) => { const q = points[(i + 1) % points.length]; area += p.x * q.y - q.x * p.y; });
  let select;
  if (w < 4 && h < 4) select = { points: [[points[0].x, points[0].y, !negative]] };
  else if (Math.abs(area) / 2 < 0.2 * w * h) select = { box: [Math.round(x0), Math.round(y0), Math.max(1, Math.round(w)), Math.max(1, Math.round(h))] };
  else select = { lasso: points.filter((_, i) => i % Math.ceil(points.length / 200) === 0).map((p) => [p.x, p.y]) };
  findMask({ select }, "Selecting the object…").finally(clearLasso);
}

// ---------------------------------------------------------------- server work: find a mask, remove
function startJob(what, text) {
  // The button that started the job is disabled while it runs, which drops the focus to the
  // page; it comes back where it was (or to what the job says to work on next).
  const job = { what, id: null, controller: new AbortController(), generation: state.generation,
                focusAfter: document.activeElement };
  state.job = job;
  job.started = performance.now();
  job.clock = setInterval(() => showProgress(), 1000);  // the time moves even while a long stage runs
  showProgress(text, what === "remove" ? 0 : null);
  refresh();
  return job;
}
function endJob(job) {
  clearInterval(job.clock);
  if (state.job !== job) return;
  state.job = null;
  refresh();
  const lost = !document.activeElement || document.activeElement === document.body;
  if ((lost || job.focusAfter === maskCanvas) && job.focusAfter?.isConnected) job.focusAfter.focus({ preventScroll: true });
}
function stale(job) { return job.generation !== state.generation || state.job !== job; }
function cancelJob() {
  const job = state.job;
  if (!job) return;
  if (job.id) api(`/v1/jobs/${job.id}`, { method: "DELETE" }).catch(() => {});
  job.controller.abort();
  job.cancelled = true;
  clearInterval(job.clock);
  state.job = null;
  refresh();
}
// What the job does now and how far along it is (percent; null: not known, the bar moves
// to and fro), with the seconds since it started; called with nothing, the clock ticks.
const shown = { text: "", percent: null };
function showProgress(text = shown.text, percent = shown.percent) {
  Object.assign(shown, { text, percent });
  const seconds = state.job ? ` (${Math.floor((performance.now() - state.job.started) / 1000)} s)` : "";
  $("progress-text").textContent = text + seconds;
  if (percent === null) $("progress-bar").removeAttribute("value"); else $("progress-bar").value = percent;
}

function imageForm(extra = {}) {
  const form = new FormData();
  const version = state.versions[state.current];
  form.append("image", version.blob, state.fileName);
  for (const [name, value] of Object.entries(extra)) form.append(name, value, name === "mask" ? "mask.png" : undefined);
  return form;
}

// Which selector picked the object: the weight-free one is a fallback worth naming.
const SELECTORS = { sam: " with SAM 2.1", grabcut: " by colour (no SAM weights here: it selects better)" };
async function findMask(options, text) {
  if (!state.versions.length || state.job) return;
  const job = startJob("mask", text);
  try {
    const form = imageForm();
    form.append("options", JSON.stringify(options));
    const response = await api("/v1/mask", { method: "POST", body: form, signal: job.controller.signal });
    const blob = await response.blob();
    if (stale(job)) return;
    const { share } = await addMask(blob);
    if (share > 0) job.focusAfter = maskCanvas;  // what to work on next: Enter there removes
    const by = SELECTORS[response.headers.get("X-Clearfill-Selector")] || "";
    say(share > 0 ? `Marked ${(share * 100).toFixed(1)}% of the image${by}; adjust it with the brush or eraser, then press Remove.`
                  : `Nothing was found there${by}.`);
  } catch (error) {
    if (!stale(job)) say(error.name === "AbortError" ? "Cancelled." : `Could not find a mask: ${error.message}`, true);
  } finally { endJob(job); }
}

async function removeMarked() {
  if (state.job || !state.hasMask) return;
  const job = startJob("remove", "Sending the image…");
  const from = state.current, started = performance.now();
  const notes = {}, ran = {};
  try {
    const form = imageForm({ mask: await maskBlob() });
    const created = await (await api("/v1/jobs?stages=1", { method: "POST", body: form, signal: job.controller.signal })).json();
    job.id = created.id;
    let last = null;
    await readEvents(created.events, job.controller.signal, (event) => {
      if (stale(job)) return false;
      last = event;
      followProgress(event, notes, ran);
      return !["done", "error", "cancelled"].includes(event.type);
    });
    if (stale(job)) return;
    if (!last || last.type === "cancelled") { job.cancelled = true; say("Cancelled: nothing changed."); return; }
    if (last.type === "error") throw new Error(last.error);
    // The result alone: the stage pictures wait until someone opens "How it was made".
    const blob = await (await api(last.result, { signal: job.controller.signal })).blob();
    const bitmap = await createImageBitmap(blob);
    if (stale(job)) return;
    addVersion({ blob, bitmap, label: `Result ${state.versions.length}`, url: URL.createObjectURL(blob),
                 stages: last.stages, picturesUrl: last.pictures, pictures: null }, from);
    say(describeResult(last.stages, (performance.now() - started) / 1000));
  } catch (error) {
    if (!stale(job)) say(error.name === "AbortError" ? "Cancelled: nothing changed." : `Removal failed: ${error.message}`, true);
  } finally {
    endJob(job);
    if (job.generation === state.generation && !state.job) markQueued(!job.cancelled && state.autoRemove);
  }
}

function followProgress(event, notes, ran) {
  if (event.type === "queued") {
    showProgress(event.waiting ? `Waiting for ${event.waiting} earlier removal(s)…` : "Starting…", 0);
  } else if (event.type === "stage") {
    const index = Math.max(0, STAGES.indexOf(event.stage));
    if (event.status === "end") { notes[event.stage] = event.note; ran[event.stage] = event.ran; }
    const done = index + (event.status === "end" ? 1 : 0);
    showProgress(`${STAGE_WORDS[event.stage] || event.stage}…`, 100 * done / STAGES.length);
  } else if (event.type === "progress") {
    const index = Math.max(0, STAGES.indexOf(event.stage));
    const what = event.stage === "refine" ? "step" : "part";
    showProgress(`${STAGE_WORDS[event.stage] || event.stage}: ${what} ${event.step} of ${event.total}`,
                 100 * (index + event.step / Math.max(1, event.total)) / STAGES.length);
  }
}

// The status line says what a person needs; the engine's own words stay in "How it was made".
const FILLS = {
  exemplar: "Filled from the photo itself", lama: "Filled by LaMa", "big-lama": "Filled by LaMa",
  telea: "Filled by smoothing in from the edges", ns: "Filled by smoothing in from the edges",
};
function describeResult(stages, seconds) {
  const byName = Object.fromEntries(stages.map((s) => [s.name, s]));
  const parts = [`Done in ${seconds.toFixed(1)} s.`];
  if (byName.unblend?.ran) parts.push("A see-through mark was lifted off the photo beneath.");
  if (byName.remove?.ran) {
    const method = Object.keys(FILLS).find((name) => byName.remove.note.startsWith(name));
    parts.push(method ? `${FILLS[method]}.` : "Filled.");
  }
  const refine = byName.refine;
  if (refine?.ran) parts.push("Then the detail pass polished it.");
  else if (refine && /is none|weights|not found|download/i.test(refine.note)) {
    parts.push("The detail pass needs model weights (see “How it was made”).");
  } else if (refine && /CPU/.test(refine.note)) parts.push("The detail pass needs a GPU, so it did not run.");
  return parts.join(" ");
}

function addVersion(version, from) {
  state.versions.push(version);
  showOtherVersion(from, state.versions.length - 1);
}

// ---------------------------------------------------------------- results: history strip, stage pictures
function renderHistory() {
  const list = $("history");
  list.replaceChildren(...(state.versions.length > 1 ? state.versions : []).map((version, index) => {
    const item = document.createElement("li"), button = document.createElement("button");
    button.type = "button";
    button.setAttribute("aria-current", String(index === state.current));
    button.title = index === state.current ? `${version.label} (shown)` : `Go back to ${version.label}`;
    const thumb = document.createElement("img");
    thumb.src = version.url; thumb.alt = "";
    const caption = document.createElement("span"); caption.textContent = version.label;
    button.append(thumb, caption);
    button.addEventListener("click", () => goToVersion(index));
    item.append(button);
    return item;
  }));
}

// A result's stage pictures are fetched the first time they are looked at (small previews the
// server kept beside the result), never before: a large photo's result does not wait for them.
async function showStages() {
  const version = state.versions[state.current];
  $("stages-dialog").showModal();
  if (!version || version.pictures || !version.picturesUrl) return;
  try {
    version.pictures = (await (await api(version.picturesUrl)).json()).pictures;
  } catch (error) {
    version.pictures = {};
    say(`The stage pictures are gone (the server keeps them for a while): ${error.message}`, true);
  }
  if (state.versions[state.current] === version) renderStages(version);
}

function renderStages(version) {
  const button = $("stages-button"), list = $("stages");
  button.hidden = !version || !version.stages;
  if (button.hidden) { list.replaceChildren(); return; }
  list.replaceChildren(...version.stages.filter((s) => s.ran || s.name !== "unblend").map((record) => {
    const item = document.createElement("li");
    const picture = version.pictures?.[record.name];
    if (picture) {
      const button = document.createElement("button"), img = document.createElement("img"), caption = document.createElement("span");
      button.type = "button"; button.title = `${record.name}: ${record.note} (click to enlarge)`;
      img.src = picture; img.alt = `${record.name} stage`;
      caption.textContent = `${record.name} · ${record.seconds.toFixed(2)} s`;
      button.append(img, caption);
      button.addEventListener("click", () => {
        $("viewer-image").src = picture; $("viewer-image").alt = `${record.name} stage`;
        $("viewer-caption").textContent = `${record.name}: ${record.note}`;
        $("viewer").showModal();
      });
      item.append(button);
    } else if (record.ran) {  // its picture is still on its way (or the server no longer has it)
      item.textContent = `${record.name} · ${record.seconds.toFixed(2)} s: ${record.note}`;
    } else {
      item.className = "skipped"; item.textContent = `${record.name} skipped: ${record.note}`;
    }
    return item;
  }));
}

// ---------------------------------------------------------------- comparing with the original
function startCompare() {
  if ($("compare").disabled || state.comparing) return;
  state.comparing = true;
  beforeCanvas.hidden = false; beforeCanvas.style.clipPath = "none";
  $("holding").hidden = false; $("compare").setAttribute("aria-pressed", "true");
}
function endCompare() {
  if (!state.comparing) return;
  state.comparing = false;
  $("holding").hidden = true; $("compare").removeAttribute("aria-pressed");
  setSplit(state.split);
}
function setSplit(on) {
  state.split = on;
  $("split").setAttribute("aria-pressed", String(on));
  $("divider").hidden = !on;
  beforeCanvas.hidden = !on && !state.comparing;
  placeDivider();
}
function placeDivider() {
  if (!state.split || state.comparing) return;
  beforeCanvas.style.clipPath = `inset(0 ${100 - state.splitAt}% 0 0)`;
  const x = state.panX + state.splitAt / 100 * pictureCanvas.width * state.zoom;
  $("divider").style.left = `${x}px`;
  $("divider-handle").setAttribute("aria-valuenow", String(Math.round(state.splitAt)));
}
function moveDivider(clientX) {
  const box = maskCanvas.getBoundingClientRect();
  state.splitAt = Math.max(0, Math.min(100, 100 * (clientX - box.left) / box.width));
  placeDivider();
}

// ---------------------------------------------------------------- controls
$("open-button").addEventListener("click", () => $("open").click());
$("open").addEventListener("change", (e) => { openFile(e.target.files[0]); e.target.value = ""; });
$("mask-upload").addEventListener("click", () => $("mask-file").click());
$("mask-file").addEventListener("change", async (e) => {
  const file = e.target.files[0]; e.target.value = "";
  if (!file) return;
  try {
    const { scaledFrom } = await addMask(file);
    maskCanvas.focus({ preventScroll: true });  // so that Enter, the next thing to press, removes
    say(scaledFrom ? `Mask loaded, scaled from ${scaledFrom} to the photo's size; press Remove.` : "Mask loaded; press Remove.");
  } catch (error) {
    say(error instanceof MaskSizeError ? error.message : `"${file.name}" is not an image; no mask loaded.`, true);
  }
});
$("download").addEventListener("click", () => {
  const version = state.versions[state.current], link = document.createElement("a");
  link.href = version.url; link.download = `clearfill-${state.fileName}`; link.click();
  state.downloaded = Math.max(state.downloaded, state.current);  // and what it was built from is in it
});
// Clipboards take PNG: a JPEG result is re-encoded (the promise lets the copy start at once,
// inside the click that asked for it).
async function copyResult() {
  const version = state.versions[state.current];
  const png = version.blob.type === "image/png" ? Promise.resolve(version.blob) : (async () => {
    const canvas = new OffscreenCanvas(version.bitmap.width, version.bitmap.height);
    canvas.getContext("2d").drawImage(version.bitmap, 0, 0);
    return canvas.convertToBlob({ type: "image/png" });
  })();
  try {
    await navigator.clipboard.write([new ClipboardItem({ "image/png": png })]);
    say(`Copied ${version.label}; paste it into another app.`);
  } catch (error) {
    say(`Could not copy (${error.message}); Download saves it instead.`, true);
  }
}
$("copy").addEventListener("click", copyResult);
$("auto-remove").checked = state.autoRemove;
$("auto-remove").addEventListener("change", (e) => {
  state.autoRemove = e.target.checked;
  localStorage.setItem("clearfill.autoRemove", state.autoRemove ? "1" : "0");
  if (!state.autoRemove && state.queued.length && !state.job) markQueued(false);
});
for (const tool of ["brush", "eraser", "select"]) $(tool).addEventListener("click", () => { state.tool = tool; refresh(); });
$("find-text").addEventListener("click", () => findMask({ detect: "text" }, "Looking for text and watermarks…"));
$("size").addEventListener("input", (e) => chooseSize(Number(e.target.value)));
$("clear").addEventListener("click", () => { rememberMask(state.maskBounds); clearMask(); });
$("undo").addEventListener("click", undo);
$("redo").addEventListener("click", redo);
$("zoom-in").addEventListener("click", () => { zoomAt(1.25); setSize(state.sizePercent); });
$("zoom-out").addEventListener("click", () => { zoomAt(1 / 1.25); setSize(state.sizePercent); });
$("zoom-fit").addEventListener("click", () => { fit(); setSize(state.sizePercent); });
$("remove").addEventListener("click", removeMarked);
$("cancel").addEventListener("click", () => { cancelJob(); say("Cancelled: nothing changed."); });
$("split").addEventListener("click", () => setSplit(!state.split));
$("help-button").addEventListener("click", () => $("help").showModal());
$("stages-button").addEventListener("click", showStages);
const compareButton = $("compare");
compareButton.addEventListener("pointerdown", (e) => { compareButton.setPointerCapture(e.pointerId); startCompare(); });
for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) compareButton.addEventListener(type, endCompare);
compareButton.addEventListener("keydown", (e) => { if (e.key === " " || e.key === "Enter") { e.preventDefault(); startCompare(); } });
compareButton.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") { e.preventDefault(); endCompare(); } });
const handle = $("divider-handle");
handle.addEventListener("pointerdown", (e) => { handle.setPointerCapture(e.pointerId); handle.dataset.dragging = "1"; });
handle.addEventListener("pointermove", (e) => { if (handle.dataset.dragging) moveDivider(e.clientX); });
handle.addEventListener("pointerup", () => { delete handle.dataset.dragging; });
handle.addEventListener("keydown", (e) => {
  const step = { ArrowLeft: -2, ArrowRight: 2, Home: -100, End: 100 }[e.key];
  if (step !== undefined) { e.preventDefault(); state.splitAt = Math.max(0, Math.min(100, state.splitAt + step)); placeDivider(); }
});
// Pasting an image (a screenshot, a copied photo) opens it.
document.addEventListener("paste", (e) => {
  if (typing(e.target)) return;
  const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
  if (file) { e.preventDefault(); openFile(file); }
});
viewport.addEventListener("dragover", (e) => e.preventDefault());
viewport.addEventListener("drop", (e) => { e.preventDefault(); openFile(e.dataTransfer.files[0]); });

// Keyboard. Space pans while the pointer is over the image: it must not also press
// whatever button kept the focus (that once cleared the mask).
function typing(target) { return target.tagName === "INPUT" && !["range", "file"].includes(target.type) || target.isContentEditable; }
function overImage() { return state.pointer?.overCanvas || document.activeElement === maskCanvas; }
document.addEventListener("keydown", (e) => {
  if (typing(e.target) || document.querySelector("dialog[open]")) return;
  const key = e.key, lower = key.toLowerCase(), command = e.ctrlKey || e.metaKey;
  if (key === " " && overImage()) { e.preventDefault(); state.spaceHeld = true; updateCursor(); return; }
  if (command && lower === "z") { e.preventDefault(); e.shiftKey ? redo() : undo(); return; }
  if (command && lower === "y") { e.preventDefault(); redo(); return; }
  if (command && lower === "c" && !$("copy").disabled && !String(getSelection())) { e.preventDefault(); copyResult(); return; }
  if (command || e.altKey) return;
  const onButton = e.target.tagName === "BUTTON" || e.target.tagName === "SUMMARY";
  if (key === "Enter" && !onButton) { e.preventDefault(); removeMarked(); }
  else if (key === "Escape") { if (state.job) { cancelJob(); say("Cancelled: nothing changed."); } else if (state.selecting) { state.selecting = null; clearLasso(); } else { fit(); setSize(state.sizePercent); } }
  else if (key === "\\" && !e.repeat) startCompare();
  else if (key === "?") $("help").showModal();
  else if (key === "[") chooseSize(state.sizePercent / 1.2);
  else if (key === "]") chooseSize(state.sizePercent * 1.2);
  else if (key === "+" || key === "=") { zoomAt(1.25); setSize(state.sizePercent); }
  else if (key === "-") { zoomAt(1 / 1.25); setSize(state.sizePercent); }
  else if (key === "0") { fit(); setSize(state.sizePercent); }
  else if (key.startsWith("Arrow") && e.target === maskCanvas) {
    e.preventDefault();
    panBy({ ArrowLeft: 40, ArrowRight: -40 }[key] || 0, { ArrowUp: 40, ArrowDown: -40 }[key] || 0);
  }
  else if (state.job) return;
  else if (lower === "b" || lower === "e" || lower === "s") { state.tool = { b: "brush", e: "eraser", s: "select" }[lower]; refresh(); }
  else if (lower === "t" && state.versions.length) $("find-text").click();
  else if (lower === "v" && !$("split").disabled) setSplit(!state.split);
  else if (lower === "o") $("open").click();
  else if (lower === "d" && !$("download").disabled) $("download").click();
});
document.addEventListener("keyup", (e) => {
  if (e.key === " " && state.spaceHeld) { e.preventDefault(); state.spaceHeld = false; updateCursor(); }
  if (e.key === "\\") endCompare();
});
window.addEventListener("blur", () => { state.spaceHeld = false; endCompare(); });

setSize(state.sizePercent);
refresh();
loadLimits();
window.clearfill = { state, maskIsEmpty, currentMask, maskBlob, undo, redo };  // for tests and the console
