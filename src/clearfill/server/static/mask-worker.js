// clearfill editor: the per-pixel mask work of a large photo, off the page's main thread
// (a 24 MP mask is 96 MB of pixels: looping over it on the main thread froze the page).
//   {id, kind: "encode", bitmap}  -> {id, blob}: the painted layer as the server's mask,
//                                    a black and white PNG (white = remove)
//   {id, kind: "overlay", bitmap, width, height} -> {id, bitmap, share, bounds}: a found
//       mask (white = remove) drawn at width x height as the painted layer's colour,
//       transparent elsewhere; the share of the image it marks and the box around it
"use strict";

const MASK_RGBA = [255, 40, 40, 255];

function pixelsOf(bitmap, width = bitmap.width, height = bitmap.height) {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  return { canvas, ctx, image: ctx.getImageData(0, 0, canvas.width, canvas.height) };
}

function encode(bitmap) {
  const { canvas, ctx, image } = pixelsOf(bitmap);
  const data = image.data;
  for (let i = 0; i < data.length; i += 4) {
    const value = data[i + 3] ? 255 : 0;
    data[i] = data[i + 1] = data[i + 2] = value; data[i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  return canvas.convertToBlob({ type: "image/png" });
}

function overlay(bitmap, width, height) {
  const { canvas, ctx, image } = pixelsOf(bitmap, width, height);
  const data = image.data;
  let marked = 0, x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let i = 0; i < data.length; i += 4) {
    if (Math.max(data[i], data[i + 1], data[i + 2]) > 127 && data[i + 3] > 127) {
      data.set(MASK_RGBA, i); marked++;
      const pixel = i / 4, x = pixel % width, y = (pixel - x) / width;
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; y1 = y;
    } else data[i + 3] = 0;
  }
  ctx.putImageData(image, 0, 0);
  const bounds = marked ? { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 } : null;
  return { bitmap: canvas.transferToImageBitmap(), share: marked / (width * height), bounds };
}

self.onmessage = async ({ data: { id, kind, bitmap, width, height } }) => {
  try {
    if (kind === "encode") self.postMessage({ id, blob: await encode(bitmap) });
    else { const found = overlay(bitmap, width, height); self.postMessage({ id, ...found }, [found.bitmap]); }
  } catch (error) {
    self.postMessage({ id, error: String(error) });
  }
};
