import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FailureReason, WarningReason } from '../../src/dicomweb/failure-codes.js';

const doc = readFileSync(new URL('../../docs/conformance.md', import.meta.url), 'utf8');

function tableRows(heading: string): string[] {
  const start = doc.indexOf(heading);
  expect(start, `docs/conformance.md has a "${heading}" section`).toBeGreaterThan(-1);
  const section = doc.slice(start).split('\n### ')[0] ?? '';
  return section.split('\n').filter((line) => /^\|\s*\d+\s*\|/.test(line));
}

describe('docs/conformance.md', () => {
  it('lists every failure reason the code can return, and no other', () => {
    const documented = tableRows('### Failure reasons').map((row) => Number(/^\|\s*(\d+)\s*\|/.exec(row)?.[1]));
    expect(documented.sort()).toEqual(Object.values(FailureReason).sort());
  });

  it('lists every warning reason the code can return, and no other', () => {
    const documented = tableRows('### Warning reasons').map((row) => Number(/^\|\s*(\d+)\s*\|/.exec(row)?.[1]));
    expect(documented.sort()).toEqual(Object.values(WarningReason).sort());
  });

  it('gives each code its hex value', () => {
    for (const row of [...tableRows('### Failure reasons'), ...tableRows('### Warning reasons')]) {
      const [, decimal, hex] = /^\|\s*(\d+)\s*\|\s*0x([0-9A-F]{4})\s*\|/.exec(row) ?? [];
      expect(Number.parseInt(hex ?? 'x', 16), row).toBe(Number(decimal));
    }
  });
});
