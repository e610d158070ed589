import { describe, expect, it } from 'vitest';
import { encapsulatedFrames, nativeFrames } from '../../src/dicom/frame-table.js';
import { FragmentScanner } from '../../src/dicom/fragments.js';

function item(bytes: Uint8Array): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(0xfffe, 0);
  header.writeUInt16LE(0xe000, 2);
  header.writeUInt32LE(bytes.length, 4);
  return Buffer.concat([header, bytes]);
}

function encapsulated(fragments: Uint8Array[], table: number[] = []): Buffer {
  const bot = Buffer.alloc(table.length * 4);
  table.forEach((value, i) => bot.writeUInt32LE(value, i * 4));
  const end = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
  return Buffer.concat([item(bot), ...fragments.map(item), end]);
}

function scan(bytes: Buffer, prefix: number, chunk: number) {
  const file = Buffer.concat([Buffer.alloc(prefix, 7), bytes, Buffer.alloc(20, 9)]);
  const scanner = new FragmentScanner(prefix);
  for (let at = 0; at < file.length; at += chunk) scanner.feed(file.subarray(at, at + chunk), at);
  return scanner.layout();
}

const jpeg = (n: number, size: number) =>
  Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(size - 4, n)]);

describe('encapsulated pixel data', () => {
  it('finds fragments and the offset table whatever the chunking', () => {
    const pixel = encapsulated([jpeg(1, 100), jpeg(2, 50)], [0, 108]);
    for (const chunk of [1, 3, 8, 64, 100_000]) {
      const layout = scan(pixel, 300, chunk);
      expect(layout.complete).toBe(true);
      expect(layout.basicOffsetTable).toEqual([0, 108]);
      expect(layout.fragments.map((f) => [f.offset, f.length, f.head])).toEqual([
        [300 + 16 + 8, 100, 'ffd8ffe0'],
        [300 + 16 + 108 + 8, 50, 'ffd8ffe0'],
      ]);
    }
  });

  it('groups fragments into frames with an offset table, one per frame, or by image start markers', () => {
    const a = jpeg(1, 40);
    const b = Buffer.alloc(30, 5); // continuation fragment of frame 1
    const c = jpeg(3, 20);
    const withTable = scan(encapsulated([a, b, c], [0, 40 + 8 + 30 + 8]), 0, 7);
    expect(encapsulatedFrames(withTable, 2)?.map((frame) => frame.length)).toEqual([2, 1]);
    const noTable = scan(encapsulated([a, b, c]), 0, 7);
    expect(encapsulatedFrames(noTable, 2)?.map((frame) => frame.map(([, length]) => length))).toEqual([[40, 30], [20]]);
    expect(encapsulatedFrames(noTable, 3)?.length).toBe(3);
    expect(encapsulatedFrames(noTable, 1)?.[0]?.length).toBe(3);
    expect(encapsulatedFrames(noTable, 5)).toBeUndefined();
  });

  it('computes native frame ranges, bit-packed ones included', () => {
    expect(
      nativeFrames(1000, 3 * 512 * 512 * 2, {
        rows: 512,
        columns: 512,
        samplesPerPixel: 1,
        bitsAllocated: 16,
        numberOfFrames: 3,
      }),
    ).toEqual([[[1000, 524288]], [[1000 + 524288, 524288]], [[1000 + 2 * 524288, 524288]]]);
    expect(
      nativeFrames(0, 2, { rows: 3, columns: 3, samplesPerPixel: 1, bitsAllocated: 1, numberOfFrames: 1 }),
    ).toEqual([[[0, 2]]]);
    // Native YBR_FULL_422: two samples per pixel, so a 4×2 8-bit frame is 16 bytes, not 24.
    const ybr422 = { rows: 2, columns: 4, samplesPerPixel: 3, bitsAllocated: 8, numberOfFrames: 2 };
    expect(nativeFrames(100, 32, { ...ybr422, photometricInterpretation: 'YBR_FULL_422' })).toEqual([
      [[100, 16]],
      [[116, 16]],
    ]);
    expect(nativeFrames(100, 32, { ...ybr422, photometricInterpretation: 'YBR_FULL' })).toEqual([[[100, 24]]]);
  });
});
