/**
 * SOP pointers are grouped by what a series' SOP Instance UIDs share, so one STOW request writes
 * its instances' pointers in one entity-group transaction (docs/storage.md "Access paths for
 * search"); UIDs that share nothing useful spread over hash buckets rather than one partition.
 */
import { describe, expect, it } from 'vitest';
import { SopPointerKeys } from '../../src/storage/keys.js';

describe('SopPointerKeys', () => {
  it('puts the instances of a series in one partition when their UIDs share the series prefix', () => {
    const series = '1.2.840.113619.2.55.3.604688119.868.1249343483.504';
    const partitions = new Set(Array.from({ length: 300 }, (_, i) => SopPointerKeys.partition(`${series}.${i + 1}`)));
    expect([...partitions]).toEqual([`sop2|${series}`]);
    expect(SopPointerKeys.partition('1.3.12.2.1107.5.1.4.73513.30000019073006383244200004870')).toBe(
      'sop2|1.3.12.2.1107.5.1.4.73513',
    );
  });

  it('spreads UUID-derived and short UIDs over 256 buckets, the same UID always in the same one', () => {
    const uuids = Array.from({ length: 2000 }, (_, i) => `2.25.${(BigInt(i) * 7919n + 10n ** 30n).toString()}`);
    const partitions = new Set(uuids.map((uid) => SopPointerKeys.partition(uid)));
    expect(partitions.size).toBeGreaterThan(200);
    expect(partitions.size).toBeLessThanOrEqual(256);
    for (const partition of partitions) expect(partition).toMatch(/^sop2\|~[0-9a-f]{2}$/);
    expect(SopPointerKeys.partition(uuids[5] ?? '')).toBe(SopPointerKeys.partition(uuids[5] ?? ''));
    expect(SopPointerKeys.partition('1.2.3.4')).toMatch(/^sop2\|~[0-9a-f]{2}$/);
    expect(SopPointerKeys.partition('12345')).toMatch(/^sop2\|~[0-9a-f]{2}$/);
  });

  it('finds exactly the rows of one UID by a RowKey range, not those of a UID it is a prefix of', () => {
    const { from, to } = SopPointerKeys.rows('1.2.3.4.5.1');
    const inRange = (rowKey: string) => rowKey >= from && rowKey < to;
    expect(inRange(SopPointerKeys.row('1.2.3.4.5.1', '1.9', '1.9.1'))).toBe(true);
    expect(inRange(SopPointerKeys.row('1.2.3.4.5.10', '1.9', '1.9.1'))).toBe(false);
    expect(inRange(SopPointerKeys.row('1.2.3.4.5.1.7', '1.9', '1.9.1'))).toBe(false);
  });
});
