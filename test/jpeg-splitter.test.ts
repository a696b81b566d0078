/**
 * The JPEG splitter on ffmpeg's real MJPEG output, cut at every kind of boundary, and on
 * a JPEG that contains another JPEG (an EXIF thumbnail), which fools splitters that
 * look for FF D8 / FF D9 byte pairs.
 */
import { execFileSync } from "node:child_process";
import fc from "fast-check";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { insertExif, JpegSplitter, jpegDimensions } from "../src/instruments/index.js";
import { findJpegEnd } from "./support/mjpeg-parser.js";

const stream = execFileSync("ffmpeg", [
  "-nostdin",
  "-loglevel",
  "error",
  "-f",
  "lavfi",
  "-i",
  "testsrc2=size=160x120:rate=30",
  "-frames:v",
  "12",
  "-c:v",
  "mjpeg",
  "-q:v",
  "4",
  "-f",
  "mjpeg",
  "pipe:1",
]);
const frames: Buffer[] = [];
for (let at = 0; at < stream.length; ) {
  const end = findJpegEnd(stream, at);
  frames.push(stream.subarray(at, end));
  at = end;
}

function split(data: Buffer, cuts: number[]): Buffer[] {
  const splitter = new JpegSplitter();
  const out: Buffer[] = [];
  let from = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b).concat(data.length)) {
    out.push(...splitter.push(data.subarray(from, cut)));
    from = cut;
  }
  return out;
}

describe("JpegSplitter", () => {
  it("gives back ffmpeg's frames byte for byte however the pipe chunks them", () => {
    expect(frames.length).toBe(12);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 40 }),
        (cuts) => {
          const out = split(stream, cuts);
          expect(out.length).toBe(frames.length);
          expect(out.every((frame, i) => frame.equals(frames[i]!))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
    // One byte at a time, the hardest case.
    expect(
      split(
        stream,
        Array.from({ length: stream.length - 1 }, (_, i) => i + 1),
      ).length,
    ).toBe(12);
  });

  it("skips garbage between frames and is not fooled by a JPEG inside a JPEG", async () => {
    const thumbnail = await sharp({
      create: { width: 8, height: 8, channels: 3, background: "red" },
    })
      .jpeg()
      .toBuffer();
    // An APP1 segment that carries a whole JPEG, as an EXIF thumbnail does.
    const app1 = Buffer.concat([
      Buffer.from([0xff, 0xe1, 0, 0]),
      Buffer.from("Exif\0\0"),
      thumbnail,
    ]);
    app1.writeUInt16BE(app1.length - 2, 2);
    const outer = Buffer.concat([frames[0]!.subarray(0, 2), app1, frames[0]!.subarray(2)]);
    const data = Buffer.concat([
      Buffer.from("noise\xff\x00"),
      outer,
      Buffer.from([0xff, 0xff]),
      frames[1]!,
    ]);
    const out = split(data, [3, 40, 41, 200]);
    expect(out.map((f) => f.length)).toEqual([outer.length, frames[1]!.length]);
    expect(jpegDimensions(out[0]!)).toEqual({ width: 160, height: 120 });
  });

  it("drops a frame cut short (no EOI) and keeps the one that follows it", () => {
    const cut = frames[2]!.subarray(0, Math.floor(frames[2]!.length / 2));
    const data = Buffer.concat([frames[0]!, cut, frames[3]!, frames[4]!]);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: data.length - 1 }), { maxLength: 20 }),
        (cuts) => {
          const out = split(data, cuts);
          expect(out.length).toBe(3);
          expect([
            out[0]!.equals(frames[0]!),
            out[1]!.equals(frames[3]!),
            out[2]!.equals(frames[4]!),
          ]).toEqual([true, true, true]);
        },
      ),
      { numRuns: 100 },
    );
    // The next frame's FF D8 split across two chunks.
    const ff = frames[0]!.length + cut.length;
    expect(split(data, [ff + 1]).map((f) => f.length)).toEqual([
      frames[0]!.length,
      frames[3]!.length,
      frames[4]!.length,
    ]);
  });

  it("inserts EXIF without touching the image data", async () => {
    const original = frames[0]!;
    const withExif = insertExif(original, { description: '{"a":1}' });
    // Take the APP1 segment out again: what is left is the original, byte for byte.
    const at = withExif.indexOf(Buffer.from([0xff, 0xe1]));
    const app1End = at + 2 + withExif.readUInt16BE(at + 2);
    expect(
      Buffer.concat([withExif.subarray(0, at), withExif.subarray(app1End)]).equals(original),
    ).toBe(true);
    const { width, height, exif } = await sharp(withExif).metadata();
    expect({ width, height }).toEqual({ width: 160, height: 120 });
    expect(exif?.includes('{"a":1}')).toBe(true);
  });
});
