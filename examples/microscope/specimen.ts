/**
 * A synthetic stained-tissue specimen, drawn once as SVG and rasterised by sharp, then
 * viewed through a window that follows the stage and blurs away from the focal plane.
 * All pixel work runs in sharp's (libvips) thread pool, off the event loop.
 */
import sharp from "sharp";

export interface ViewRequest {
  /** Centre of the view on the specimen, in specimen pixels. */
  centreX: number;
  centreY: number;
  width: number;
  height: number;
  /** Gaussian blur sigma in pixels; below 0.3 the view is sharp. */
  blurSigma: number;
  /** Per-channel brightness multipliers (red, green, blue). */
  gains: [number, number, number];
  quality?: number;
  /** Output size relative to the view (0.5: the same field of view at half resolution). */
  scale?: number;
  /** Stored in the JPEG's EXIF ImageDescription (e.g. the instrument state as JSON). */
  description?: string;
}

/** A small seeded PRNG (mulberry32): the same specimen on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One drawn element and the box it may paint into (for drawing tile by tile). */
interface Shape {
  svg: string;
  left: number;
  top: number;
  right: number;
  bottom: number;
}

function specimenShapes(size: number, seed: number): Shape[] {
  const rand = random(seed);
  const shapes: Shape[] = [];
  const between = (a: number, b: number) => a + (b - a) * rand();
  const around = (svg: string, xs: number[], ys: number[], margin: number): Shape => ({
    svg,
    left: Math.min(...xs) - margin,
    top: Math.min(...ys) - margin,
    right: Math.max(...xs) + margin,
    bottom: Math.max(...ys) + margin,
  });
  // Connective-tissue fibres (a quadratic curve stays inside its control points' box).
  for (let i = 0; i < 220; i++) {
    const x = between(0, size);
    const y = between(0, size);
    const cx = x + between(-300, 300);
    const cy = y + between(-300, 300);
    const ex = x + between(-500, 500);
    const ey = y + between(-500, 500);
    const width = between(2, 7);
    shapes.push(
      around(
        `<path d="M${x.toFixed(1)},${y.toFixed(1)} Q${cx.toFixed(1)},${cy.toFixed(1)} ${ex.toFixed(1)},${ey.toFixed(1)}" stroke="#d46a9a" stroke-opacity="${between(0.15, 0.45).toFixed(2)}" stroke-width="${width.toFixed(1)}" fill="none"/>`,
        [x, cx, ex],
        [y, cy, ey],
        width,
      ),
    );
  }
  // Cells: pale cytoplasm with a dark nucleus and a nucleolus.
  for (let i = 0; i < 1600; i++) {
    const x = between(0, size);
    const y = between(0, size);
    const r = between(14, 34);
    const angle = between(0, 180).toFixed(0);
    shapes.push(
      around(
        `<g transform="translate(${x.toFixed(1)},${y.toFixed(1)}) rotate(${angle})">` +
          `<ellipse rx="${r.toFixed(1)}" ry="${(r * between(0.55, 0.95)).toFixed(1)}" fill="#e58fb4" fill-opacity="0.55" stroke="#b04a7f" stroke-opacity="0.6" stroke-width="1.5"/>` +
          `<ellipse cx="${between(-4, 4).toFixed(1)}" rx="${(r * 0.38).toFixed(1)}" ry="${(r * 0.3).toFixed(1)}" fill="#4b2a7a" fill-opacity="0.85"/>` +
          `<circle cx="${between(-3, 3).toFixed(1)}" r="${(r * 0.09).toFixed(1)}" fill="#241040"/></g>`,
        [x],
        [y],
        r + 2,
      ),
    );
  }
  // Fine granules: high-frequency detail that defocus washes out (and JPEG sizes reveal).
  for (let i = 0; i < 9000; i++) {
    const x = between(0, size);
    const y = between(0, size);
    const r = between(0.8, 2.2);
    shapes.push(
      around(
        `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r.toFixed(1)}" fill="#6d2f6f" fill-opacity="${between(0.3, 0.8).toFixed(2)}"/>`,
        [x],
        [y],
        r,
      ),
    );
  }
  return shapes;
}

/** Side of the square tiles the specimen is drawn in. */
const TILE = 300;

export class Specimen {
  private constructor(
    private readonly pixels: Buffer,
    readonly size: number,
  ) {}

  /**
   * Draw and rasterise the specimen in the thread pool, tile by tile (a few hundred
   * milliseconds in all, but no single step longer than a few tens): a process exit
   * waits for the work in progress, so a signal right after start-up stays quick.
   * Rejects with the signal's reason when aborted between tiles.
   */
  static async create(
    options: { size?: number; seed?: number; signal?: AbortSignal } = {},
  ): Promise<Specimen> {
    const size = options.size ?? 2400;
    const shapes = specimenShapes(size, options.seed ?? 20260501);
    const pixels = Buffer.alloc(size * size * 3);
    for (let top = 0; top < size; top += TILE) {
      for (let left = 0; left < size; left += TILE) {
        options.signal?.throwIfAborted();
        const width = Math.min(TILE, size - left);
        const height = Math.min(TILE, size - top);
        const inside = shapes.filter(
          (s) =>
            s.right >= left && s.left <= left + width && s.bottom >= top && s.top <= top + height,
        );
        const svg =
          `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="${left} ${top} ${width} ${height}">` +
          `<rect x="${left}" y="${top}" width="${width}" height="${height}" fill="#f6e4ec"/>${inside.map((s) => s.svg).join("")}</svg>`;
        const tile = await sharp(Buffer.from(svg)).removeAlpha().raw().toBuffer();
        for (let row = 0; row < height; row++) {
          tile.copy(
            pixels,
            ((top + row) * size + left) * 3,
            row * width * 3,
            (row + 1) * width * 3,
          );
        }
      }
    }
    return new Specimen(pixels, size);
  }

  /** Encode the view as a JPEG. */
  async render(view: ViewRequest): Promise<Buffer> {
    const width = Math.min(view.width, this.size);
    const height = Math.min(view.height, this.size);
    const clamp = (centre: number, span: number) =>
      Math.round(Math.max(0, Math.min(this.size - span, centre - span / 2)));
    let image = sharp(this.pixels, {
      raw: { width: this.size, height: this.size, channels: 3 },
    }).extract({
      left: clamp(view.centreX, width),
      top: clamp(view.centreY, height),
      width,
      height,
    });
    if (view.blurSigma >= 0.3) image = image.blur(view.blurSigma);
    image = image.linear(view.gains, [0, 0, 0]);
    const scale = view.scale ?? 1;
    const outWidth = Math.round((view.width * scale) / 2) * 2;
    const outHeight = Math.round((view.height * scale) / 2) * 2;
    if (width !== outWidth || height !== outHeight) image = image.resize(outWidth, outHeight);
    if (view.description)
      image = image.withExif({
        IFD0: { ImageDescription: view.description, Software: "labthings-ts" },
      });
    return image.jpeg({ quality: view.quality ?? 80, mozjpeg: false }).toBuffer();
  }
}
