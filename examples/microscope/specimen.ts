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

function specimenSvg(size: number, seed: number): string {
  const rand = random(seed);
  const parts: string[] = [];
  const between = (a: number, b: number) => a + (b - a) * rand();
  // Connective-tissue fibres.
  for (let i = 0; i < 220; i++) {
    const x = between(0, size);
    const y = between(0, size);
    const c1 = `${x + between(-300, 300)},${y + between(-300, 300)}`;
    const end = `${x + between(-500, 500)},${y + between(-500, 500)}`;
    parts.push(
      `<path d="M${x},${y} Q${c1} ${end}" stroke="#d46a9a" stroke-opacity="${between(0.15, 0.45).toFixed(2)}" stroke-width="${between(2, 7).toFixed(1)}" fill="none"/>`,
    );
  }
  // Cells: pale cytoplasm with a dark nucleus and a nucleolus.
  for (let i = 0; i < 1600; i++) {
    const x = between(0, size);
    const y = between(0, size);
    const r = between(14, 34);
    const angle = between(0, 180).toFixed(0);
    parts.push(
      `<g transform="translate(${x.toFixed(1)},${y.toFixed(1)}) rotate(${angle})">` +
        `<ellipse rx="${r.toFixed(1)}" ry="${(r * between(0.55, 0.95)).toFixed(1)}" fill="#e58fb4" fill-opacity="0.55" stroke="#b04a7f" stroke-opacity="0.6" stroke-width="1.5"/>` +
        `<ellipse cx="${between(-4, 4).toFixed(1)}" rx="${(r * 0.38).toFixed(1)}" ry="${(r * 0.3).toFixed(1)}" fill="#4b2a7a" fill-opacity="0.85"/>` +
        `<circle cx="${between(-3, 3).toFixed(1)}" r="${(r * 0.09).toFixed(1)}" fill="#241040"/></g>`,
    );
  }
  // Fine granules: high-frequency detail that defocus washes out (and JPEG sizes reveal).
  for (let i = 0; i < 9000; i++) {
    parts.push(
      `<circle cx="${between(0, size).toFixed(1)}" cy="${between(0, size).toFixed(1)}" r="${between(0.8, 2.2).toFixed(1)}" fill="#6d2f6f" fill-opacity="${between(0.3, 0.8).toFixed(2)}"/>`,
    );
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="#f6e4ec"/>${parts.join("")}</svg>`;
}

export class Specimen {
  private constructor(
    private readonly pixels: Buffer,
    readonly size: number,
  ) {}

  /** Draw and rasterise the specimen (a few hundred milliseconds, in the thread pool). */
  static async create(size = 2400, seed = 20260501): Promise<Specimen> {
    const pixels = await sharp(Buffer.from(specimenSvg(size, seed)), { limitInputPixels: false })
      .removeAlpha()
      .raw()
      .toBuffer();
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
