import { describe, expect, it } from 'vitest';
import { compositeKey, rowJson, rowLength, rowVersion, storedRow, TableRows } from '../../support/memory-table-rows.js';

const EVERY = { fromInclusive: true, toInclusive: true } as const;

/** A small deterministic generator, so a failure replays. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

describe('in-memory table rows (support/memory-table-rows.ts)', () => {
  it('gives back each row’s properties, version and length as text, whatever its characters', () => {
    for (const properties of [
      { PatientName: 'Smith^Hans', numberOfInstances: 3 },
      { PatientName: 'Müller^Anna' },
      { PatientName: 'Yamada^Tarou=山田^太郎=やまだ^たろう', note: '* 42 ' },
      { odd: '\ud800 alone', emoji: '🩻' },
    ]) {
      const row = storedRow(1234, properties);
      const json = JSON.stringify(properties);
      expect(JSON.parse(rowJson(row))).toEqual(properties);
      expect(rowJson(row)).toBe(json);
      expect(rowVersion(row)).toBe('1234');
      expect(rowLength(row)).toBe(`1234 ${json}`.length);
    }
  });

  it('keeps keys in order through inserts and deletes in any order, over many blocks', () => {
    const rows = new TableRows();
    const model = new Map<string, string>();
    const next = random(7);
    for (let step = 0; step < 30_000; step++) {
      const key = compositeKey(`p${Math.floor(next() * 40)}`, `r${Math.floor(next() * 2000)}`);
      if (next() < 0.25) {
        expect(rows.delete(key)).toBe(model.delete(key));
      } else {
        rows.set(key, `${step} {}`);
        model.set(key, `${step} {}`);
      }
    }
    const expected = [...model.keys()].sort();
    expect(rows.size).toBe(expected.length);
    expect([...rows.keys('', EVERY, EVERY)]).toEqual(expected);
    for (const key of expected.slice(0, 50)) expect(rows.get(key)).toBe(model.get(key));
  });

  it('reads one partition’s key range only, from a continuation', () => {
    const rows = new TableRows();
    for (let p = 0; p < 5; p++) for (let r = 0; r < 3000; r++) rows.set(compositeKey(`p${p}`, `r${r}`), '1 {}');
    const partition = { from: 'p2', fromInclusive: true, to: 'p2', toInclusive: true };
    const range = { from: 'r10', fromInclusive: true, to: 'r11', toInclusive: false };
    const keys = [...rows.keys('', partition, range)];
    // r10, r100–r109, r1000–r1099: the rows between r10 and r11 in text order.
    expect(keys).toHaveLength(1 + 10 + 100);
    expect(keys[0]).toBe(compositeKey('p2', 'r10'));
    expect(keys.at(-1)).toBe(compositeKey('p2', 'r1099'));
    const resumed = [...rows.keys(compositeKey('p2', 'r1050'), partition, range)];
    expect(resumed).toEqual(keys.slice(keys.indexOf(compositeKey('p2', 'r1050'))));
  });

  it('sees writes made between the steps of a walk', () => {
    const rows = new TableRows();
    for (let r = 0; r < 5000; r++) rows.set(compositeKey('p', `r${String(r).padStart(5, '0')}`), '1 {}');
    const seen: string[] = [];
    for (const key of rows.keys('', EVERY, EVERY)) {
      seen.push(key);
      if (seen.length === 10) {
        rows.delete(compositeKey('p', 'r00010'));
        rows.set(compositeKey('p', 'r00010a'), '2 {}');
        rows.set(compositeKey('p', 'r00000a'), '2 {}');
      }
    }
    expect(seen).toHaveLength(5000);
    expect(seen).not.toContain(compositeKey('p', 'r00010'));
    expect(seen).toContain(compositeKey('p', 'r00010a'));
    expect(seen).not.toContain(compositeKey('p', 'r00000a'));
  });
});
