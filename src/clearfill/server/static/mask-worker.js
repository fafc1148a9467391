// clearfill editor: the per-pixel mask work of a large photo, off the page's main thread
// (a 24 MP mask is 96 MB of pixels: looping over it on the main thread froze the page).
//   {id, kind: "encode", bitmap, width, height, x, y} -> {id, blob}: the painted layer as
//       the server's mask, a 1-bit PNG (white = remove) of width x height, a few KB even at
//       24 MP; the bitmap is the layer's part at (x, y) that holds every painted pixel
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

// A canvas can only write 8-bit RGBA PNGs: a 24 MP mask took the page a second to write
// and the server as long to read. Written here as 1-bit gray: every painted pixel (alpha
// above 0) white, the rest black, each row led by filter byte 0 and deflated by the
// browser's own zlib (CompressionStream).
async function encode(bitmap, width, height, left, top) {
  const { image: { width: partWidth, height: partHeight, data } } = pixelsOf(bitmap);
  const stride = Math.ceil(width / 8) + 1;
  const rows = new Uint8Array(stride * height);
  for (let y = 0; y < partHeight; y++) {
    const row = (top + y) * stride + 1;
    for (let x = left, alpha = y * partWidth * 4 + 3; x < left + partWidth; x++, alpha += 4) {
      if (data[alpha]) rows[row + (x >> 3)] |= 0x80 >> (x & 7);
    }
  }
  const deflated = new Blob([rows]).stream().pipeThrough(new CompressionStream("deflate"));
  const idat = new Uint8Array(await new Response(deflated).arrayBuffer());
  const header = new Uint8Array(13), view = new DataView(header.buffer);
  view.setUint32(0, width); view.setUint32(4, height);
  header[8] = 1;  // bit depth; colour type 0 (gray), compression, filter and interlace 0
  return new Blob([PNG_SIGNATURE, chunk("IHDR", header), chunk("IDAT", idat), chunk("IEND", new Uint8Array(0))],
                  { type: "image/png" });
}

const PNG_SIGNATURE = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
  return n >>> 0;
});

function chunk(type, body) {
  const bytes = new Uint8Array(12 + body.length), view = new DataView(bytes.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) bytes[4 + i] = type.charCodeAt(i);
  bytes.set(body, 8);
  let crc = 0xffffffff;
  for (let i = 4; i < 8 + body.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  view.setUint32(8 + body.length, (crc ^ 0xffffffff) >>> 0);
  return bytes;
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

self.onmessage = async ({ data: { id, kind, bitmap, width, height, x, y } }) => {
  try {
    if (kind === "encode") self.postMessage({ id, blob: await encode(bitmap, width, height, x, y) });
    else { const found = overlay(bitmap, width, height); self.postMessage({ id, ...found }, [found.bitmap]); }
  } catch (error) {
    self.postMessage({ id, error: String(error) });
  }
};
