import { describe, expect, it } from 'vitest';
import { isValidUid, uidProblem } from '../../src/dicom/uid.js';
import { vrProblem } from '../../src/dicom/vr.js';
import { transferSyntaxInfo } from '../../src/dicom/transfer-syntax.js';

describe('UIDs', () => {
  it('accepts 1-64 digits-and-dots UIDs whose components have no leading zero (PS3.5 §9.1)', () => {
    for (const uid of ['0', '1', '1.2.840.10008.1.2.1', `1.${'2'.repeat(62)}`, '1.2.0.4', '2.25.0', '1.20.300'])
      expect(isValidUid(uid), uid).toBe(true);
  });
  it('rejects anything that could escape a key or a blob prefix', () => {
    for (const uid of [
      '',
      '.',
      '1.',
      '.1',
      '1..2',
      '../..',
      '1/2',
      '1\\2',
      '1.2#',
      '1.2?',
      'abc',
      '1.2-3',
      ` 1.2`,
      `1.${'2'.repeat(63)}`,
      undefined,
    ]) {
      expect(isValidUid(uid), String(uid)).toBe(false);
    }
  });
  it('rejects a component with a leading zero, and says why', () => {
    for (const uid of ['1.02.3', '01.2', '1.2.00', '1.2.03.4']) {
      expect(isValidUid(uid), uid).toBe(false);
      expect(uidProblem(uid)).toMatch(/leading zeros/);
    }
    expect(uidProblem('1..2')).toMatch(/empty component/);
    expect(uidProblem('1.2a')).toMatch(/only digits and dots/);
    expect(uidProblem(`1.${'2'.repeat(63)}`)).toMatch(/65 characters/);
  });
});

describe('VR checks', () => {
  it.each([
    ['DA', '20240229', undefined],
    ['DA', '20230229', /date/],
    ['DA', '2024-1-1', /date/],
    ['DA', '2024-01-01', /longer than 8/],
    ['TM', '235959.123456', undefined],
    ['TM', '12', undefined],
    ['TM', '2460', /time/],
    ['CS', 'CT', undefined],
    ['CS', 'ct', /code string/],
    ['CS', 'A'.repeat(17), /longer than 16/],
    ['IS', ' -12 ', undefined],
    ['IS', '1.5', /integer/],
    ['LO', 'x'.repeat(64), undefined],
    ['LO', 'x'.repeat(65), /longer than 64/],
    ['SH', 'x'.repeat(17), /longer than 16/],
    ['PN', 'Yamada^Tarou=山田^太郎=やまだ^たろう', undefined],
    ['PN', 'a=b=c=d', /three component groups/],
    ['PN', 'a^b^c^d^e^f', /five components/],
    ['PN', 'x'.repeat(65), /longer than 64/],
  ])('%s %j', (vr, value, expected) => {
    const problem = vrProblem(vr, value);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });
});

describe('transfer syntaxes', () => {
  it('knows the native syntaxes and every encapsulated one', () => {
    expect(transferSyntaxInfo('1.2.840.10008.1.2')?.explicitVr).toBe(false);
    expect(transferSyntaxInfo('1.2.840.10008.1.2.2')?.littleEndian).toBe(false);
    expect(transferSyntaxInfo('1.2.840.10008.1.2.1.99')?.deflated).toBe(true);
    for (const uid of [
      '1.2.840.10008.1.2.4.50',
      '1.2.840.10008.1.2.4.90',
      '1.2.840.10008.1.2.4.201',
      '1.2.840.10008.1.2.5',
    ]) {
      expect(transferSyntaxInfo(uid)?.encapsulated, uid).toBe(true);
    }
    expect(transferSyntaxInfo('1.2.840.10008.1.2.50')).toBeUndefined();
    expect(transferSyntaxInfo('1.2.3')).toBeUndefined();
  });
});
