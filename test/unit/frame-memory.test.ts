import { describe, expect, it } from 'vitest';
import { FrameTableMemory } from '../../src/dicomweb/frame-table-memory.js';
import type { FrameRanges } from '../../src/dicom/frame-table.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';
import type { InstanceRecord } from '../../src/storage/ports.js';
import { newInstanceUids } from '../../support/dicom-builder.js';
import { describeFrameStaleness } from '../helpers/frame-staleness.js';

describeFrameStaleness('in-memory storage', () => Promise.resolve(createMemoryStorage()));

const record = (frames: number): { instance: InstanceRecord; table: FrameRanges[] } => {
  const key = newInstanceUids();
  const instance: InstanceRecord = {
    ...key,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.7',
    version: 'v1',
    blobName: `${key.studyInstanceUid}/${key.seriesInstanceUid}/${key.sopInstanceUid}/v1.dcm`,
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    size: 1000,
    storedAt: new Date().toISOString(),
    study: { PatientName: 'Not^Kept' },
    series: {},
    instance: { BitsAllocated: '16', Rows: '512' },
  };
  return { instance, table: Array.from({ length: frames }, (_, i) => [[1000 + i * 8192, 8192] as const]) };
};

describe('FrameTableMemory', () => {
  it('keeps what the frame path needs of a version, and forgets it on request', () => {
    const memory = new FrameTableMemory();
    const { instance, table } = record(3);
    memory.remember(instance, table);
    expect(memory.get(instance)).toEqual({
      version: 'v1',
      blobName: instance.blobName,
      transferSyntaxUid: instance.transferSyntaxUid,
      instance: { BitsAllocated: '16' },
      frames: table,
    });
    memory.forget(instance);
    expect(memory.get(instance)).toBeUndefined();
  });

  it('does not keep a frame table too large to share its 8 MiB with others (a whole-slide level)', () => {
    const memory = new FrameTableMemory();
    const huge = record(20_000);
    const small = record(1);
    memory.remember(huge.instance, huge.table);
    memory.remember(small.instance, small.table);
    expect(memory.get(huge.instance)).toBeUndefined();
    expect(memory.get(small.instance)?.frames).toEqual(small.table);
  });
});
