import { buildInstance, JPEG_BASELINE, newInstanceUids } from './dicom-builder.js';

/** One 512 × 512 16-bit CT frame. */
export const FRAME_BYTES = 512 * 512 * 2;

/** The most a native Pixel Data element holds (a 32-bit even length). */
const MAX_NATIVE_PIXEL_BYTES = 0xfffffffe;

export interface LargeInstance {
  readonly key: ReturnType<typeof newInstanceUids>;
  readonly size: number;
  /** Bytes [offset, offset + count) of the file, made on demand. */
  bytes(offset: number, count: number): Buffer;
}

function item(tag: number, length: number): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(0xfffe, 0);
  header.writeUInt16LE(tag, 2);
  header.writeUInt32LE(length, 4);
  return header;
}

/**
 * A multi-frame CT instance of `frames` frames that is never held whole: any range of it is made
 * on demand, each frame filled with its own byte, so a misplaced block changes the hash. Native
 * (Explicit VR Little Endian) while the pixel data fits one element's 32-bit length; past 4 GiB,
 * encapsulated (JPEG baseline transfer syntax, one fragment per frame), as real instances that
 * large are.
 */
export function largeInstance(
  frames: number,
  key = newInstanceUids(),
  encapsulated = frames * FRAME_BYTES > MAX_NATIVE_PIXEL_BYTES,
): LargeInstance {
  const header = buildInstance({
    ...key,
    attributes: { '00280008': { vr: 'IS', value: String(frames) } },
    ...(encapsulated ? { transferSyntax: JPEG_BASELINE, fragments: [] } : { pixelBytes: 0 }),
  });
  // buildInstance ends with (7FE0,0010): native, 12 bytes of element header and no value; encapsulated,
  // the element header, an empty offset table item and the sequence delimiter (12 + 8 + 8 bytes).
  const pixelStart = header.length - (encapsulated ? 28 : 12);
  if (header.readUInt16LE(pixelStart) !== 0x7fe0 || header.readUInt16LE(pixelStart + 2) !== 0x0010) {
    throw new Error('buildInstance no longer ends with the Pixel Data element; update largeInstance.');
  }
  const unit = encapsulated ? 8 + FRAME_BYTES : FRAME_BYTES;
  const head = encapsulated ? header.subarray(0, header.length - 8) : header;
  const trailer = encapsulated ? header.subarray(header.length - 8) : Buffer.alloc(0);
  if (!encapsulated) header.writeUInt32LE(frames * FRAME_BYTES, header.length - 4);
  const bodyEnd = head.length + frames * unit;
  const size = bodyEnd + trailer.length;
  const fragmentHeader = item(0xe000, FRAME_BYTES);

  const bytes = (offset: number, count: number): Buffer => {
    const out = Buffer.alloc(count);
    let at = 0;
    while (at < count) {
      const position = offset + at;
      if (position < head.length) {
        at += head.copy(out, at, position, Math.min(head.length, position + count - at));
      } else if (position >= bodyEnd) {
        at += trailer.copy(out, at, position - bodyEnd, Math.min(trailer.length, position - bodyEnd + count - at));
      } else {
        const inBody = position - head.length;
        const frame = Math.floor(inBody / unit);
        let within = inBody % unit;
        if (encapsulated && within < 8) {
          at += fragmentHeader.copy(out, at, within, Math.min(8, within + count - at));
          continue;
        }
        if (encapsulated) within -= 8;
        const end = Math.min(count, at + FRAME_BYTES - within);
        out.fill(frame % 251, at, end);
        at = end;
      }
    }
    return out;
  };
  return { key, size, bytes };
}
