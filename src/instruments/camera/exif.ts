/**
 * Adds an EXIF block (IFD0: ImageDescription, Software, DateTime) to a JPEG without
 * re-encoding it: the image data stays byte for byte what the camera produced.
 *
 * Written here because the image libraries (sharp/libvips) can only write EXIF while
 * re-encoding, and the one package that inserts it losslessly (piexifjs) is unmaintained
 * and works on binary strings. The format is small: an APP1 segment "Exif\0\0" holding a
 * TIFF header and one IFD of ASCII entries.
 */

/** An APP1 payload cannot exceed 65533 bytes (its length field is 16 bits, length included). */
const MAX_APP1_PAYLOAD = 65533;

export interface ExifText {
  /** ImageDescription (0x010E): we store every Thing's state there as JSON. */
  description: string;
  /** Software (0x0131). */
  software?: string;
  /** DateTime (0x0132), local time as EXIF wants it ("YYYY:MM:DD HH:MM:SS"). */
  date?: Date;
}

/** The JPEG with an EXIF APP1 segment after SOI (and after a JFIF APP0, which must stay first). */
export function insertExif(jpeg: Buffer, text: ExifText): Buffer {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error("not a JPEG (no SOI marker)");
  const app1 = exifSegment(text);
  let at = 2;
  if (jpeg[2] === 0xff && jpeg[3] === 0xe0) at = 4 + ((jpeg[4]! << 8) | jpeg[5]!);
  return Buffer.concat([jpeg.subarray(0, at), app1, jpeg.subarray(at)]);
}

function exifDate(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}:${pad(date.getMonth() + 1)}:${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

function exifSegment(text: ExifText): Buffer {
  const entries: [number, Buffer][] = [
    [0x010e, Buffer.from(`${text.description}\0`, "utf8")],
    [0x0131, Buffer.from(`${text.software ?? "labthings-ts"}\0`, "utf8")],
    [0x0132, Buffer.from(`${exifDate(text.date ?? new Date())}\0`, "latin1")],
  ];
  // TIFF header (8) + entry count (2) + 12 per entry + next-IFD offset (4), then values.
  const ifdSize = 2 + 12 * entries.length + 4;
  const fixed = 6 + 8 + ifdSize;
  const valuesSize = entries.reduce(
    (sum, [, value]) => sum + (value.length > 4 ? value.length : 0),
    0,
  );
  const overflow = fixed + valuesSize - MAX_APP1_PAYLOAD;
  if (overflow > 0) {
    // Keep the image valid: shorten the description (it says so) rather than fail the capture.
    const note = "…[truncated: too large for EXIF]\0";
    const keep = Math.max(0, entries[0]![1].length - overflow - Buffer.byteLength(note) - 1);
    entries[0]![1] = Buffer.concat([entries[0]![1].subarray(0, keep), Buffer.from(note, "utf8")]);
  }
  const values = entries.reduce((sum, [, value]) => sum + (value.length > 4 ? value.length : 0), 0);
  const tiff = Buffer.alloc(8 + ifdSize + values);
  tiff.write("II", 0, "latin1"); // little-endian
  tiff.writeUInt16LE(42, 2);
  tiff.writeUInt32LE(8, 4); // IFD0 right after the header
  tiff.writeUInt16LE(entries.length, 8);
  let valueOffset = 8 + ifdSize;
  entries.forEach(([tag, value], index) => {
    const at = 10 + 12 * index;
    tiff.writeUInt16LE(tag, at);
    tiff.writeUInt16LE(2, at + 2); // ASCII
    tiff.writeUInt32LE(value.length, at + 4);
    if (value.length <= 4) value.copy(tiff, at + 8);
    else {
      tiff.writeUInt32LE(valueOffset, at + 8);
      value.copy(tiff, valueOffset);
      valueOffset += value.length;
    }
  });
  tiff.writeUInt32LE(0, 10 + 12 * entries.length); // no IFD1
  const payload = Buffer.concat([Buffer.from("Exif\0\0", "latin1"), tiff]);
  const header = Buffer.from([0xff, 0xe1, 0, 0]);
  header.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([header, payload]);
}
