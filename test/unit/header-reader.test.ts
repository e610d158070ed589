import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DicomAttributes } from '../../src/dicom/attributes.js';
import { DicomHeaderReader, InvalidDicomError } from '../../src/dicom/header-reader.js';
import { Tag } from '../../src/dicom/tags.js';
import { buildInstance, DEFLATED, EXPLICIT_BE, IMPLICIT_LE, newInstanceUids } from '../../support/dicom-builder.js';

function feed(bytes: Uint8Array, chunkSize: number, maxHeaderBytes = 1 << 20) {
  const reader = new DicomHeaderReader(maxHeaderBytes);
  let consumed = 0;
  for (let i = 0; i < bytes.length; i += chunkSize) {
    consumed = i + chunkSize;
    const header = reader.push(bytes.subarray(i, i + chunkSize));
    if (header) return { header, consumed, reader };
  }
  return { header: reader.finish(), consumed, reader };
}

describe('DicomHeaderReader', () => {
  const blue = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'azure-samples', 'blue-circle.dcm'));

  it('finds the header of a tutorial sample long before the end of its pixel data', () => {
    const { header, consumed } = feed(blue, 4096);
    expect(consumed).toBeLessThan(64 * 1024);
    const attributes = new DicomAttributes(header.dataSet);
    expect(attributes.string(Tag.PatientName)).toBe('Anony Mous');
    expect(attributes.string(Tag.SOPClassUID)).toBe('1.2.840.10008.5.1.4.1.1.7');
    expect(header.transferSyntax.uid).toBe('1.2.840.10008.1.2.1');
    expect(header.pixelDataOffset).toBe(1074);
    expect(header.pixelDataLength).toBe(979 * 985 * 3 + 1);
  });

  it('reads implicit VR, big endian and deflated headers', () => {
    for (const transferSyntax of [IMPLICIT_LE, EXPLICIT_BE, DEFLATED]) {
      const uids = newInstanceUids();
      const { header } = feed(buildInstance({ ...uids, transferSyntax, pixelBytes: 100_000 }), 1000);
      const attributes = new DicomAttributes(header.dataSet);
      expect(attributes.string(Tag.SOPInstanceUID)).toBe(uids.sopInstanceUid);
      expect(attributes.number(Tag.Rows)).toBe(512);
      expect(attributes.string(Tag.PatientName)).toBe('Test^Patient');
    }
  });

  it('decodes text in the Specific Character Set', () => {
    const file = buildInstance({
      ...newInstanceUids(),
      attributes: { '00100010': { vr: 'PN', value: 'Müller^Jürgen=山田^太郎' } },
    });
    const { header } = feed(file, 100);
    expect(new DicomAttributes(header.dataSet).string(Tag.PatientName)).toBe('Müller^Jürgen=山田^太郎');
  });

  it('bounds the bytes it holds: a header larger than the budget is read as far as it goes', () => {
    const file = buildInstance({
      ...newInstanceUids(),
      attributes: { '00291010': { vr: 'OB', value: Buffer.alloc(300_000, 1) } },
      pixelBytes: 10,
    });
    const { header, reader } = feed(file, 8192, 64 * 1024);
    expect(header.truncated).toBe(true);
    expect(reader.bytesHeld).toBeLessThanOrEqual(64 * 1024 + 8192);
    expect(new DicomAttributes(header.dataSet).string(Tag.StudyInstanceUID)).toBeDefined();
  });

  it('says why a part is not DICOM', () => {
    expect(() => feed(Buffer.alloc(0), 10)).toThrow(/empty/);
    expect(() => feed(Buffer.alloc(200, 0x41), 50)).toThrow(/DICM/);
    expect(() => feed(blue.subarray(0, 600), 100)).toThrow(InvalidDicomError);
    const unknownSyntax = buildInstance({ ...newInstanceUids(), transferSyntax: '1.2.3.4' });
    expect(() => feed(unknownSyntax, 10_000)).toThrow(/transfer syntax 1\.2\.3\.4 is not supported/);
  });
});
