import { convertBytes } from 'dicom-character-set';

/** Text VRs, as PS3.5 Table 6.2-1 defines them. */
export const TEXT_VRS = new Set([
  'AE',
  'AS',
  'CS',
  'DA',
  'DS',
  'DT',
  'IS',
  'LO',
  'LT',
  'PN',
  'SH',
  'ST',
  'TM',
  'UC',
  'UI',
  'UR',
  'UT',
]);

/** VRs encoded in the Specific Character Set; all other text is the default repertoire (ASCII). */
const CHARSET_VRS = new Set(['PN', 'LO', 'SH', 'ST', 'LT', 'UT', 'UC']);
/** Single-valued VRs: a backslash in them is text, not a value delimiter. */
const SINGLE_VALUED_VRS = new Set(['ST', 'LT', 'UT', 'UR']);
/** VRs whose leading spaces are significant (PS3.5 6.2). */
const LEADING_SPACE_VRS = new Set(['ST', 'LT', 'UT']);

const PN_GROUPS = ['Alphabetic', 'Ideographic', 'Phonetic'] as const;
const IS_PATTERN = /^[+-]?\d+$/;
const DS_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export type PersonName = Partial<Record<(typeof PN_GROUPS)[number], string>>;

function decode(bytes: Uint8Array, vr: string, charset: string | undefined): string {
  if (CHARSET_VRS.has(vr)) {
    // Writers escape back to ASCII (ESC ( B) without declaring ISO 2022 IR 6; pydicom and dcmtk accept it.
    const attempts = charset?.includes('ISO 2022') ? [charset, `${charset}\\ISO 2022 IR 6`] : [charset];
    for (const attempt of attempts) {
      try {
        // Decode the whole value before splitting: in multi-byte sets 0x5C can be part of a character.
        return convertBytes(attempt, bytes, { vr });
      } catch {
        // An unknown or malformed character set must not fail the store: next attempt, then Latin-1.
      }
    }
  }
  return latin1(bytes);
}

export function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * The values of a text element: split at backslashes (multi-valued VRs), padding trimmed, an empty
 * value in a list as null (F.2.5). Undefined when the whole element is empty. Trailing NULs are
 * trimmed for every VR, not only UI: some writers pad all text with them.
 */
export function textValues(bytes: Uint8Array, vr: string, charset: string | undefined): (string | null)[] | undefined {
  const text = decode(bytes, vr, charset);
  const parts = SINGLE_VALUED_VRS.has(vr) ? [text] : text.split('\\');
  const values = parts.map((part) => {
    const trailing = part.replace(/[ \0]+$/, '');
    const trimmed = LEADING_SPACE_VRS.has(vr) ? trailing : trailing.replace(/^ +/, '');
    return trimmed === '' ? null : trimmed;
  });
  return values.every((value) => value === null) && values.length === 1 ? undefined : values;
}

/** A PN value as component groups (F.2.2); an empty value is {}. Carets are kept as stored. */
export function personName(value: string | null): PersonName {
  const name: PersonName = {};
  (value ?? '').split('=').forEach((group, i) => {
    const key = PN_GROUPS[i];
    if (key && group !== '') name[key] = group;
  });
  return name;
}

/**
 * IS and DS values as JSON numbers (F.2.3). Undefined when any value is not a valid number: F.2.3
 * allows no string fallback here, and dropping only the bad value would shift the others' positions,
 * so the attribute is emitted with its VR alone.
 */
export function numericStringValues(
  values: readonly (string | null)[],
  vr: 'IS' | 'DS',
): (number | null)[] | undefined {
  const pattern = vr === 'IS' ? IS_PATTERN : DS_PATTERN;
  const numbers: (number | null)[] = [];
  for (const value of values) {
    if (value === null) {
      numbers.push(null);
      continue;
    }
    const number = pattern.test(value) ? Number(value) : Number.NaN; // Number() alone would take "0x1F"
    if (!Number.isFinite(number)) return undefined;
    numbers.push(number);
  }
  return numbers;
}
