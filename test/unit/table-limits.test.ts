import { describe, expect, it } from 'vitest';
import { checkBatch, checkEntity, entityBytes, TableLimitError } from '../../src/storage/table-limits.js';

describe('Azure Table limits', () => {
  const base = { partitionKey: '1.2.3', rowKey: 'study' };

  it('computes the entity size with Azure formula', () => {
    // 4 + 2*len(PK) + 2*len(RK) + (8 + 2*len(name) + 4 + 2*len(value)) + (8 + 2*len(name) + 8)
    expect(entityBytes({ ...base, Name: 'abc', count: 3 })).toBe(4 + 10 + 10 + (8 + 8 + 4 + 6) + (8 + 10 + 8));
  });

  it('rejects more than 252 properties', () => {
    const many: Record<string, string | number> = { ...base };
    for (let i = 0; i < 253; i += 1) many[`p${i}`] = i;
    expect(() => checkEntity(many)).toThrow(TableLimitError);
    delete many['p252'];
    expect(() => checkEntity(many)).not.toThrow();
  });

  it('rejects a string property over 64 KiB and an entity over 1 MiB', () => {
    expect(() => checkEntity({ ...base, Big: 'x'.repeat(32 * 1024 + 1) })).toThrow(/64 KiB/);
    expect(() => checkEntity({ ...base, Big: 'x'.repeat(32 * 1024) })).not.toThrow();
    const large: Record<string, string> = { ...base };
    for (let i = 0; i < 20; i += 1) large[`p${i}`] = 'x'.repeat(30_000);
    expect(() => checkEntity(large)).toThrow(/1 MiB/);
  });

  it('rejects keys over 1 KiB and transactions over 100 operations', () => {
    expect(() => checkEntity({ partitionKey: 'k'.repeat(513), rowKey: 'r' })).toThrow(/1 KiB/);
    expect(() => {
      checkBatch(Array.from({ length: 101 }, () => base));
    }).toThrow(/100 operations/);
    expect(() => {
      checkBatch(Array.from({ length: 100 }, () => base));
    }).not.toThrow();
  });
});
