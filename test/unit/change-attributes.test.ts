import { inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { changeAttributes, type ChangedElement } from '../../src/dicom/transcode/change-attributes.js';
import { TranscodeError } from '../../src/dicom/transcode/transcode-error.js';
import {
  buildInstance,
  DEFLATED,
  EXPLICIT_BE,
  EXPLICIT_LE,
  IMPLICIT_LE,
  JPEG_BASELINE,
  newInstanceUids,
  type InstanceSpec,
} from '../../support/dicom-builder.js';

async function rewrite(file: Buffer, syntax: string, changes: readonly ChangedElement[], chunk = 7): Promise<Buffer> {
  async function* pieces(): AsyncGenerator<Uint8Array> {
    await Promise.resolve();
    for (let at = 0; at < file.length; at += chunk) yield file.subarray(at, at + chunk);
  }
  const out: Uint8Array[] = [];
  for await (const piece of changeAttributes(pieces(), syntax, changes)) out.push(piece);
  return Buffer.concat(out);
}

const text = (tag: number, vr: string, value: string): ChangedElement => ({
  tag,
  vr,
  value: Buffer.from(value.length % 2 ? `${value} ` : value, 'latin1'),
});

/** The data set bytes after the meta group, inflated when deflated (compressed bytes may differ). */
function dataSetOf(file: Buffer, syntax: string): Buffer {
  const metaEnd = 132 + 12 + file.readUInt32LE(140);
  const rest = file.subarray(metaEnd);
  return syntax === DEFLATED ? inflateRawSync(rest) : rest;
}

describe('changeAttributes (bulk update rewrite)', () => {
  const cases: [string, Partial<InstanceSpec>][] = [
    ['implicit LE', { transferSyntax: IMPLICIT_LE, pixelBytes: 200_000 }],
    ['explicit LE', { transferSyntax: EXPLICIT_LE, pixelBytes: 64 }],
    ['explicit BE', { transferSyntax: EXPLICIT_BE, pixelBytes: 64 }],
    ['deflated', { transferSyntax: DEFLATED, pixelBytes: 64 }],
    ['encapsulated', { transferSyntax: JPEG_BASELINE, fragments: [Buffer.alloc(70_000, 1), Buffer.alloc(9, 2)] }],
  ];
  for (const [name, spec] of cases) {
    it(`replaces and inserts top-level attributes, the rest byte for byte (${name})`, async () => {
      const uids = newInstanceUids();
      const syntax = spec.transferSyntax ?? EXPLICIT_LE;
      const before = buildInstance({ ...uids, ...spec });
      const expected = buildInstance({
        ...uids,
        ...spec,
        attributes: {
          '00100010': { vr: 'PN', value: 'New^Name' },
          '00101010': { vr: 'AS', value: '042Y' },
          '00081030': { vr: 'LO', value: 'Updated' },
        },
      });
      const after = await rewrite(before, syntax, [
        text(0x00100010, 'PN', 'New^Name'),
        text(0x00101010, 'AS', '042Y'),
        text(0x00081030, 'LO', 'Updated'),
      ]);
      expect(after.subarray(0, 132 + 12 + after.readUInt32LE(140))).toEqual(
        expected.subarray(0, 132 + 12 + expected.readUInt32LE(140)),
      );
      expect(dataSetOf(after, syntax).equals(dataSetOf(expected, syntax))).toBe(true);
    });
  }

  it('adds an attribute after the last one when its tag is the greatest', async () => {
    const uids = newInstanceUids();
    const before = buildInstance({ ...uids });
    const expected = buildInstance({ ...uids, attributes: { '00104000': { vr: 'LT', value: 'merged record' } } });
    expect((await rewrite(before, EXPLICIT_LE, [text(0x00104000, 'LT', 'merged record')])).equals(expected)).toBe(true);
  });

  describe("non-ASCII values go in the file's own character set", () => {
    const name = 'Müller^Jürgen';
    const change = { ...text(0x00100010, 'PN', name), text: name };
    const pn = (bytes: Buffer) => ({
      vr: 'PN',
      value: bytes.length % 2 ? Buffer.concat([bytes, Buffer.from(' ')]) : bytes,
    });
    const charset = (value: string) => ({ vr: 'CS', value });

    it('UTF-8 in an ISO_IR 192 file', async () => {
      const uids = newInstanceUids();
      const before = buildInstance({ ...uids, attributes: { '00080005': charset('ISO_IR 192') } });
      const expected = buildInstance({
        ...uids,
        attributes: { '00080005': charset('ISO_IR 192'), '00100010': pn(Buffer.from(name, 'utf8')) },
      });
      expect((await rewrite(before, EXPLICIT_LE, [change])).equals(expected)).toBe(true);
    });

    it('Latin-1 in an ISO_IR 100 file', async () => {
      const uids = newInstanceUids();
      const before = buildInstance({ ...uids, attributes: { '00080005': charset('ISO_IR 100') } });
      const expected = buildInstance({
        ...uids,
        attributes: { '00080005': charset('ISO_IR 100'), '00100010': pn(Buffer.from(name, 'latin1')) },
      });
      expect((await rewrite(before, EXPLICIT_LE, [change])).equals(expected)).toBe(true);
    });

    it('a file of the default repertoire becomes ISO_IR 192 (its ASCII text unchanged)', async () => {
      const uids = newInstanceUids();
      for (const before of [
        buildInstance({ ...uids, attributes: { '00080005': null } }),
        buildInstance({ ...uids, attributes: { '00080005': charset('') } }),
      ]) {
        const expected = buildInstance({
          ...uids,
          attributes: { '00080005': charset('ISO_IR 192'), '00100010': pn(Buffer.from(name, 'utf8')) },
        });
        expect((await rewrite(before, EXPLICIT_LE, [change])).equals(expected)).toBe(true);
      }
    });

    it('refuses a file whose character set cannot hold the value', async () => {
      const before = buildInstance({ ...newInstanceUids(), attributes: { '00080005': charset('ISO 2022 IR 87') } });
      await expect(rewrite(before, EXPLICIT_LE, [change])).rejects.toThrow(/ISO 2022 IR 87\) cannot hold/);
      const greek = buildInstance({ ...newInstanceUids(), attributes: { '00080005': charset('ISO_IR 100') } });
      const yamada = { ...text(0x00100010, 'PN', '?'), text: '山田^太郎' };
      await expect(rewrite(greek, EXPLICIT_LE, [yamada])).rejects.toBeInstanceOf(TranscodeError);
    });
  });

  it('refuses a file whose meta information names another syntax', async () => {
    const before = buildInstance({ ...newInstanceUids(), transferSyntax: IMPLICIT_LE });
    await expect(rewrite(before, EXPLICIT_LE, [])).rejects.toBeInstanceOf(TranscodeError);
  });
});
