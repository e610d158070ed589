import dicomParser, { type DataSet, type ParseDicomOptions } from 'dicom-parser';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  implicitVrCallback,
  toDicomJson,
  type DicomJson,
  type JsonModelOptions,
} from '../../src/dicom/dicom-json-model.js';
import { stringifyDicomJson } from '../../src/dicom/json-stringify.js';
import { DicomHeaderReader, type DicomHeader } from '../../src/dicom/header-reader.js';
import {
  buildInstance,
  EXPLICIT_BE,
  IMPLICIT_LE,
  JPEG_BASELINE,
  newInstanceUids,
  type InstanceSpec,
} from '../../support/dicom-builder.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const UNTIL_PIXEL_DATA = { untilTag: 'x7fe00010' };

function options(overrides: Partial<JsonModelOptions> = {}): JsonModelOptions {
  return {
    inlineBinaryMaxBytes: 16,
    littleEndian: true,
    bulkDataUri: (offset, length) => `bulk:${offset}:${length}`,
    ...overrides,
  };
}

function parse(bytes: Uint8Array, parseOptions: ParseDicomOptions = UNTIL_PIXEL_DATA): DataSet {
  return dicomParser.parseDicom(bytes, parseOptions);
}

function charsetFile(name: string): Buffer {
  return readFileSync(join(FIXTURES, 'charsets', `${name}.dcm`));
}

function built(attributes: InstanceSpec['attributes'], extra: Partial<InstanceSpec> = {}): Buffer {
  return buildInstance({ ...newInstanceUids(), attributes, ...extra });
}

const SIZES: Record<string, number> = { US: 2, SS: 2, UL: 4, SL: 4, FL: 4, FD: 8, SV: 8, UV: 8 };

/** Binary values of a numeric VR in either byte order. */
function binary(vr: string, values: readonly (number | bigint)[], littleEndian = true): Buffer {
  const size = SIZES[vr] ?? 0;
  const view = new DataView(new ArrayBuffer(size * values.length));
  values.forEach((value, i) => {
    const at = i * size;
    const le = littleEndian;
    if (typeof value === 'bigint') {
      if (vr === 'SV') view.setBigInt64(at, value, le);
      else view.setBigUint64(at, value, le);
    } else if (vr === 'US') view.setUint16(at, value, le);
    else if (vr === 'SS') view.setInt16(at, value, le);
    else if (vr === 'UL') view.setUint32(at, value, le);
    else if (vr === 'SL') view.setInt32(at, value, le);
    else if (vr === 'FL') view.setFloat32(at, value, le);
    else view.setFloat64(at, value, le);
  });
  return Buffer.from(view.buffer);
}

/** Implicit VR little endian element; `undefined` length ends with a sequence delimiter. */
function implicitElement(tag: string, value: Uint8Array, undefinedLength = false): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(parseInt(tag.slice(0, 4), 16), 0);
  header.writeUInt16LE(parseInt(tag.slice(4), 16), 2);
  header.writeUInt32LE(undefinedLength ? 0xffffffff : value.length, 4);
  return Buffer.concat([header, value, undefinedLength ? delimiter(0xe0dd) : Buffer.alloc(0)]);
}

function item(content: Uint8Array, undefinedLength = false): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(0xfffe, 0);
  header.writeUInt16LE(0xe000, 2);
  header.writeUInt32LE(undefinedLength ? 0xffffffff : content.length, 4);
  return Buffer.concat([header, content, undefinedLength ? delimiter(0xe00d) : Buffer.alloc(0)]);
}

function delimiter(element: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeUInt16LE(0xfffe, 0);
  bytes.writeUInt16LE(element, 2);
  return bytes;
}

const text = (value: string) => Buffer.from(value.length % 2 ? `${value} ` : value, 'latin1');
const uid = (value: string) => Buffer.from(value.length % 2 ? `${value}\0` : value, 'latin1');

/** The tags of a flat (sequence-free) data set in the order its JSON text lists them. */
function tagsInText(json: string): string[] {
  return [...json.matchAll(/"([0-9A-F]{8})":/g)].map((match) => match[1] ?? '');
}

describe('toDicomJson: character sets (pydicom test files)', () => {
  // Expected names are pydicom's (tests/test_charset.py), split into PN component groups.
  const names: [string, Record<string, string>][] = [
    ['chrArab', { Alphabetic: 'قباني^لنزار' }],
    ['chrFren', { Alphabetic: 'Buc^Jérôme' }],
    ['chrFrenMulti', { Alphabetic: 'Buc^Jérôme' }],
    ['chrGerm', { Alphabetic: 'Äneas^Rüdiger' }],
    ['chrGreek', { Alphabetic: 'Διονυσιος' }],
    ['chrH31', { Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }],
    ['chrH32', { Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }],
    ['chrHbrw', { Alphabetic: 'שרון^דבורה' }],
    ['chrI2', { Alphabetic: 'Hong^Gildong', Ideographic: '洪^吉洞', Phonetic: '홍^길동' }],
    ['chrJapMulti', { Alphabetic: 'やまだ^たろう' }],
    ['chrJapMultiExplicitIR6', { Alphabetic: 'やまだ^たろう' }],
    ['chrKoreanMulti', { Alphabetic: '김희중' }],
    ['chrRuss', { Alphabetic: 'Люкceмбypг' }], // sic: the file mixes Latin c, e, y, p into the Cyrillic
    ['chrX1', { Alphabetic: 'Wang^XiaoDong', Ideographic: '王^小東' }],
    ['chrX2', { Alphabetic: 'Wang^XiaoDong', Ideographic: '王^小东' }],
  ];

  it.each(names)('decodes the Patient Name of %s', (name, expected) => {
    const json = toDicomJson(parse(charsetFile(name)), options());
    expect(json['00100010']).toEqual({ vr: 'PN', Value: [expected] });
  });

  it('keeps multi-valued PN and LO values apart (chrFrenMulti)', () => {
    const json = toDicomJson(parse(charsetFile('chrFrenMulti')), options());
    expect(json['00101000']).toEqual({ vr: 'LO', Value: ['eggs', 'spam'] });
    expect(json['00101001']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Buc^Jérôme' }, { Alphabetic: 'Buc^Jérôme' }] });
  });

  it('decodes LT in ISO 2022 and types the other attributes (chrJapMulti)', () => {
    const json = toDicomJson(parse(charsetFile('chrJapMulti')), options());
    expect(json['001021B0']).toEqual({ vr: 'LT', Value: ['たろう'] });
    expect(json['00080005']).toEqual({ vr: 'CS', Value: [null, 'ISO 2022 IR 87'] }); // empty first value
    expect(json['00080008']).toEqual({ vr: 'CS', Value: ['DERIVED', 'PRIMARY'] });
    expect(json['00181164']).toEqual({ vr: 'DS', Value: [0.15, 0.15] });
    expect(json['00280100']).toEqual({ vr: 'US', Value: [16] });
    expect(json['00200013']).toEqual({ vr: 'IS', Value: [1] });
    expect(json['00080090']).toEqual({ vr: 'PN' });
    expect(json['00104000']).toEqual({ vr: 'LT' });
    expect(json['00191013']).toEqual({ vr: 'UN', InlineBinary: Buffer.from('E25 ').toString('base64') });
  });

  it('decodes a sequence item in its own character set (chrSQEncoding)', () => {
    const json = toDicomJson(parse(charsetFile('chrSQEncoding')), options());
    expect(json['00321032']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Doctor^Who^^MD' }] });
    expect(json['00321064']).toEqual({
      vr: 'SQ',
      Value: [
        {
          '00080005': { vr: 'CS', Value: ['ISO 2022 IR 13', 'ISO 2022 IR 87'] },
          '00080100': { vr: 'SH', Value: ['CodeValue'] },
          '00100010': {
            vr: 'PN',
            Value: [{ Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }],
          },
        },
      ],
    });
  });

  it("decodes a sequence item in its parent's character set (chrSQEncoding1)", () => {
    const json = toDicomJson(parse(charsetFile('chrSQEncoding1')), options());
    const items = json['00321064']?.Value as DicomJson[];
    expect(items[0]?.['00100010']?.Value).toEqual([
      { Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' },
    ]);
  });
});

describe('toDicomJson: structure', () => {
  it('lists data elements only, in ascending tag order', () => {
    const file = built({ '00080000': { vr: 'UL', value: binary('UL', [100]) } });
    const json = toDicomJson(parse(file), options());
    const keys = Object.keys(json);
    expect(keys).toEqual([...keys].sort());
    expect(keys.every((key) => /^[0-9A-F]{8}$/.test(key))).toBe(true);
    expect(keys.some((key) => key.startsWith('0002') || key.endsWith('0000'))).toBe(false);
    expect(keys).toContain('0020000D');
  });

  it('serialises integer-like tags in order too, which plain JSON.stringify cannot', () => {
    const file = built({
      '20200020': { vr: 'CS', value: 'NORMAL' },
      '60000010': { vr: 'US', value: binary('US', [32]) },
    });
    const json = toDicomJson(parse(file), options());
    expect(tagsInText(JSON.stringify(json))[0]).toBe('20200020'); // what stringifyDicomJson is for
    const serialised = stringifyDicomJson(json);
    const order = tagsInText(serialised);
    expect(order).toEqual([...order].sort());
    expect(order.slice(-2)).toEqual(['20200020', '60000010']);
    expect(JSON.parse(serialised)).toEqual(json);
    expect(JSON.parse(stringifyDicomJson([json, json]))).toEqual([json, json]);
  });

  it('serialises sequences with ordered items (chrSQEncoding)', () => {
    const json = toDicomJson(parse(charsetFile('chrSQEncoding')), options());
    expect(JSON.parse(stringifyDicomJson(json))).toEqual(json);
    expect(tagsInText(stringifyDicomJson(json))).toEqual([
      '00080005',
      '00080100',
      '00321032',
      '00321064',
      '00080005',
      '00080100',
      '00100010',
    ]);
  });

  it('omits an element whose value lies beyond a truncated header', () => {
    const file = built({ '00291010': { vr: 'OB', value: Buffer.alloc(300_000, 1) } }, { pixelBytes: 10 });
    const reader = new DicomHeaderReader(64 * 1024);
    let header: DicomHeader | undefined;
    for (let i = 0; !header && i < file.length; i += 8192) header = reader.push(file.subarray(i, i + 8192));
    if (!header) throw new Error('no header');
    expect(header.truncated).toBe(true);
    const json = toDicomJson(header.dataSet, options());
    expect(json['00291010']).toBeUndefined();
    expect(json['0020000D']).toBeDefined();
  });
});

describe('toDicomJson: values', () => {
  const numbers = (littleEndian: boolean) => ({
    // US values are given little-endian: buildInstance swaps them for big endian.
    '00181310': { vr: 'US', value: binary('US', [0, 256, 256, 0]) },
    '0072007E': { vr: 'SS', value: binary('SS', [-2, 3], littleEndian) },
    '00720078': { vr: 'UL', value: binary('UL', [4_000_000_000], littleEndian) },
    '0072007C': { vr: 'SL', value: binary('SL', [-100_000], littleEndian) },
    '00720076': { vr: 'FL', value: binary('FL', [1.5, NaN, -Infinity], littleEndian) },
    '00720074': { vr: 'FD', value: binary('FD', [Math.PI, 1e300], littleEndian) },
    '00280009': { vr: 'AT', value: Buffer.from(littleEndian ? '1800631018006510' : '0018106300181065', 'hex') },
  });
  const expectedNumbers = {
    '00181310': { vr: 'US', Value: [0, 256, 256, 0] },
    '0072007E': { vr: 'SS', Value: [-2, 3] },
    '00720078': { vr: 'UL', Value: [4_000_000_000] },
    '0072007C': { vr: 'SL', Value: [-100_000] },
    '00720076': { vr: 'FL', Value: [1.5, 'NaN', '-Infinity'] },
    '00720074': { vr: 'FD', Value: [Math.PI, 1e300] },
    '00280009': { vr: 'AT', Value: ['00181063', '00181065'] },
  };

  it('types binary numbers per VR (little endian)', () => {
    const json = toDicomJson(parse(built(numbers(true))), options());
    expect(json).toMatchObject(expectedNumbers);
    expect(json['00280010']).toEqual({ vr: 'US', Value: [512] });
  });

  it('reads big endian numbers in big endian', () => {
    const file = built(numbers(false), { transferSyntax: EXPLICIT_BE });
    const json = toDicomJson(parse(file), options({ littleEndian: false }));
    expect(json).toMatchObject(expectedNumbers);
    expect(json['00280010']).toEqual({ vr: 'US', Value: [512] });
    expect(json['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Test^Patient' }] });
  });

  it('gives SV and UV as numbers when safe, else as decimal strings', () => {
    // buildInstance (like dicom-parser 1.8.21) encodes SV/UV with a 2-byte length.
    const file = built({
      '00291001': { vr: 'SV', value: binary('SV', [-5n, -(2n ** 60n)]) },
      '00291002': { vr: 'UV', value: binary('UV', [7n, 2n ** 64n - 1n]) },
    });
    const json = toDicomJson(parse(file), options());
    expect(json['00291001']).toEqual({ vr: 'SV', Value: [-5, '-1152921504606846976'] });
    expect(json['00291002']).toEqual({ vr: 'UV', Value: [7, '18446744073709551615'] });
  });

  it('gives IS and DS as numbers and drops the Value of an invalid one', () => {
    const file = built({
      '00280030': { vr: 'DS', value: ' 0.5\\-1.25e2 ' },
      '00181164': { vr: 'DS', value: '1\\\\2' },
      '00180050': { vr: 'DS', value: 'abc' },
      '00200012': { vr: 'IS', value: '0x10' },
      '00200013': { vr: 'IS', value: '+7' },
    });
    const json = toDicomJson(parse(file), options());
    expect(json['00280030']).toEqual({ vr: 'DS', Value: [0.5, -125] });
    expect(json['00181164']).toEqual({ vr: 'DS', Value: [1, null, 2] });
    expect(json['00180050']).toEqual({ vr: 'DS' });
    expect(json['00200012']).toEqual({ vr: 'IS' });
    expect(json['00200013']).toEqual({ vr: 'IS', Value: [7] });
  });

  it('splits and trims strings per VR', () => {
    const file = built({
      '00080008': { vr: 'CS', value: 'ORIGINAL\\PRIMARY\\AXIAL' },
      '00081030': { vr: 'LO', value: '  CT CHEST  ' },
      '00204000': { vr: 'LT', value: '  indented\\not split  ' },
      '00180015': { vr: 'CS', value: '' },
      '00101001': { vr: 'PN', value: 'A^B\\\\C^D' },
      '00081190': { vr: 'UR', value: 'https://example.org/a b ' },
      '00080018': { vr: 'UI', value: uid('1.2.3') },
    });
    const json = toDicomJson(parse(file), options());
    expect(json['00080008']).toEqual({ vr: 'CS', Value: ['ORIGINAL', 'PRIMARY', 'AXIAL'] });
    expect(json['00081030']).toEqual({ vr: 'LO', Value: ['CT CHEST'] });
    expect(json['00204000']).toEqual({ vr: 'LT', Value: ['  indented\\not split'] });
    expect(json['00180015']).toEqual({ vr: 'CS' });
    expect(json['00101001']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'A^B' }, {}, { Alphabetic: 'C^D' }] });
    expect(json['00081190']).toEqual({ vr: 'UR', Value: ['https://example.org/a b'] });
    expect(json['00080018']).toEqual({ vr: 'UI', Value: ['1.2.3'] });
  });

  it('inlines binary values up to the threshold and refers to larger ones', () => {
    const small = Buffer.alloc(16, 7);
    const large = Buffer.alloc(18, 9);
    const file = built({ '00291010': { vr: 'OB', value: small }, '00291011': { vr: 'OB', value: large } });
    const dataSet = parse(file);
    const json = toDicomJson(dataSet, options({ inlineBinaryMaxBytes: 16 }));
    expect(json['00291010']).toEqual({ vr: 'OB', InlineBinary: small.toString('base64') });
    const offset = dataSet.elements['x00291011']?.dataOffset ?? -1;
    expect(json['00291011']).toEqual({ vr: 'OB', BulkDataURI: `bulk:${offset}:18` });
    expect(file.subarray(offset, offset + 18)).toEqual(large);
  });
});

describe('toDicomJson: Pixel Data', () => {
  const blue = readFileSync(join(FIXTURES, 'azure-samples', 'blue-circle.dcm'));

  it('refers to the pixel data of the tutorial sample, read or not', () => {
    const expected = { vr: 'OB', BulkDataURI: 'bulk:1074:2892946' };
    expect(toDicomJson(parse(blue), options())['7FE00010']).toEqual(expected);
    expect(toDicomJson(parse(blue, {}), options({ inlineBinaryMaxBytes: 1e9 }))['7FE00010']).toEqual(expected);
  });

  it('refers to encapsulated pixel data with length -1 until its end is known', () => {
    const file = built({}, { transferSyntax: JPEG_BASELINE, fragments: [Buffer.alloc(10, 1), Buffer.alloc(6, 2)] });
    const header = toDicomJson(parse(file), options())['7FE00010'];
    const whole = parse(file, {});
    const offset = whole.elements['x7fe00010']?.dataOffset ?? -1;
    expect(header).toEqual({ vr: 'OB', BulkDataURI: `bulk:${offset}:-1` });
    // Parsed to the end: the value runs from the first item tag to the end of the sequence delimiter.
    expect(toDicomJson(whole, options())['7FE00010']).toEqual({ vr: 'OB', BulkDataURI: `bulk:${offset}:48` });
    expect(file.subarray(offset, offset + 4)).toEqual(Buffer.from([0xfe, 0xff, 0x00, 0xe0]));
    expect(offset + 48).toBe(file.length);
  });
});

describe('toDicomJson: implicit VR', () => {
  const referencedImages = Buffer.concat([
    item(
      Buffer.concat([
        implicitElement('00081150', uid('1.2.840.10008.5.1.4.1.1.2')),
        implicitElement('00081155', uid('1.2.3.4')),
      ]),
    ),
    item(
      Buffer.concat([
        implicitElement('00081155', uid('1.2.3.5')),
        implicitElement(
          '0040A170',
          item(
            Buffer.concat([implicitElement('00080100', text('121311')), implicitElement('00080104', text('Loc'))]),
            true,
          ),
          true,
        ),
      ]),
      true,
    ),
  ]);
  const file = built(
    {
      '00081140': { vr: 'SQ', value: referencedImages },
      '00280100': { vr: 'US', value: binary('US', [16]) },
      '00280103': { vr: 'US', value: binary('US', [1]) },
      '00280106': { vr: 'US', value: binary('US', [-3 & 0xffff]) },
      '00280030': { vr: 'DS', value: '0.5\\0.5' },
      '00291010': { vr: 'OB', value: Buffer.from([1, 2]) },
      '00081110': { vr: 'SQ', value: Buffer.alloc(0) },
    },
    { transferSyntax: IMPLICIT_LE, pixelBytes: 8 },
  );

  it('takes VRs from the dictionary and the image attributes', () => {
    const json = toDicomJson(parse(file), options());
    expect(json['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Test^Patient' }] });
    expect(json['00280010']).toEqual({ vr: 'US', Value: [512] });
    expect(json['00200013']).toEqual({ vr: 'IS', Value: [1] });
    expect(json['00280030']).toEqual({ vr: 'DS', Value: [0.5, 0.5] });
    expect(json['00280106']).toEqual({ vr: 'SS', Value: [-3] }); // "US or SS", PixelRepresentation 1
    expect(json['00291010']).toEqual({ vr: 'UN', InlineBinary: 'AQI=' }); // private: unknown
    expect(json['00081110']).toEqual({ vr: 'SQ' }); // empty sequence
    expect(json['7FE00010']?.vr).toBe('OW'); // BitsAllocated 16
  });

  it('gives OB Pixel Data when BitsAllocated is 8, and US without PixelRepresentation 1', () => {
    const eight = built(
      { '00280100': { vr: 'US', value: binary('US', [8]) }, '00280106': { vr: 'US', value: binary('US', [65533]) } },
      { transferSyntax: IMPLICIT_LE, pixelBytes: 8 },
    );
    const json = toDicomJson(parse(eight), options());
    expect(json['7FE00010']?.vr).toBe('OB');
    expect(json['00280106']).toEqual({ vr: 'US', Value: [65533] });
  });

  it('reads nested sequences of defined and undefined length, with or without a vrCallback', () => {
    const expected = {
      vr: 'SQ',
      Value: [
        {
          '00081150': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2'] },
          '00081155': { vr: 'UI', Value: ['1.2.3.4'] },
        },
        {
          '00081155': { vr: 'UI', Value: ['1.2.3.5'] },
          '0040A170': {
            vr: 'SQ',
            Value: [{ '00080100': { vr: 'SH', Value: ['121311'] }, '00080104': { vr: 'LO', Value: ['Loc'] } }],
          },
        },
      ],
    };
    const plain = toDicomJson(parse(file), options());
    const withCallback = toDicomJson(parse(file, { ...UNTIL_PIXEL_DATA, vrCallback: implicitVrCallback }), options());
    expect(plain['00081140']).toEqual(expected);
    expect(withCallback).toEqual(plain);
  });

  it('has a vrCallback that answers only for unambiguous dictionary tags', () => {
    expect(implicitVrCallback('x00100010')).toBe('PN');
    expect(implicitVrCallback('x00081140')).toBe('SQ');
    expect(implicitVrCallback('x7fe00010')).toBeUndefined(); // OB or OW
    expect(implicitVrCallback('x00280106')).toBeUndefined(); // US or SS
    expect(implicitVrCallback('x00291010')).toBeUndefined(); // private
  });
});
