import { foldName, nameTokens } from '../../dicom/person-name.js';
import { isValidUid, uidProblem } from '../../dicom/uid.js';
import { vrProblem } from '../../dicom/vr.js';
import { DicomwebError } from '../errors.js';
import type { SearchAttribute } from './searchable.js';

/** A parsed filter: the stored text value in, match or not out. */
export type Predicate = (stored: string | undefined) => boolean;

export interface Filter {
  readonly attribute: SearchAttribute;
  /** The query value as sent. */
  readonly value: string;
  readonly matches: Predicate;
  /** Values of a single-value or list match without wildcards, for choosing an access path. */
  readonly exactValues?: readonly string[] | undefined;
  /** Inclusive YYYYMMDD bounds of a date match. */
  readonly dateRange?: { readonly from: string; readonly to: string } | undefined;
}

const WILDCARD = /[*?]/;

function bad(message: string): DicomwebError {
  return new DicomwebError('BadRequest', message);
}

/** `*` any run, `?` one character; everything else literal. */
function wildcardRegExp(pattern: string, flags = ''): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`));
  return new RegExp(`^${body}$`, `${flags}su`);
}

function storedValues(stored: string | undefined): string[] {
  return stored === undefined ? [] : stored.split('\\');
}

function uidFilter(attribute: SearchAttribute, value: string): Filter {
  const uids = value.split(/[,\\]/).map((uid) => uid.trim());
  for (const uid of uids) {
    if (!isValidUid(uid))
      throw bad(`The ${attribute.tag.keyword} value "${uid.slice(0, 80)}" is not a valid UID: ${uidProblem(uid)}.`);
  }
  const set = new Set(uids);
  return { attribute, value, exactValues: uids, matches: (stored) => stored !== undefined && set.has(stored) };
}

function rangeBounds(
  attribute: SearchAttribute,
  value: string,
  vr: 'DA' | 'TM',
): [string | undefined, string | undefined] {
  const parts = value.split('-').map((part) => part.trim());
  if (parts.length > 2)
    throw bad(`The ${attribute.tag.keyword} value "${value}" is not a ${vr === 'DA' ? 'date' : 'time'} or a range.`);
  const [low, high] = parts.length === 2 ? parts : [parts[0], parts[0]];
  if (!low && !high) throw bad(`The ${attribute.tag.keyword} range "${value}" has neither a start nor an end.`);
  for (const bound of [low, high]) {
    const problem = bound ? vrProblem(vr, bound) : undefined;
    if (problem) {
      const format = vr === 'DA' ? 'YYYYMMDD' : 'HHMMSS.FFFFFF';
      throw bad(
        `The ${attribute.tag.keyword} value "${bound}" ${problem}; use ${format}, or a range such as a-b, a- or -b.`,
      );
    }
  }
  return [low || undefined, high || undefined];
}

function dateFilter(attribute: SearchAttribute, value: string): Filter {
  const [low, high] = rangeBounds(attribute, value, 'DA');
  if (low && high && low > high) throw bad(`The ${attribute.tag.keyword} range "${value}" ends before it starts.`);
  const from = low ?? '00000101';
  const to = high ?? '99991231';
  return {
    attribute,
    value,
    dateRange: { from, to },
    matches: (stored) => stored !== undefined && stored >= from && stored <= to,
  };
}

/** HHMMSS.FFFFFF with missing parts as zeros (low bound) or maximal (high bound). */
function timeKey(time: string, high: boolean): string {
  const [whole = '', fraction = ''] = time.split('.');
  const filler = high ? '995959' : '000000';
  return `${whole}${filler.slice(whole.length)}.${fraction.padEnd(6, high && fraction === '' ? '9' : '0')}`;
}

function timeFilter(attribute: SearchAttribute, value: string): Filter {
  const [low, high] = rangeBounds(attribute, value, 'TM');
  const from = low ? timeKey(low, false) : '000000.000000';
  const to = high ? timeKey(high, true) : '995959.999999';
  if (from > to) throw bad(`The ${attribute.tag.keyword} range "${value}" ends before it starts.`);
  return {
    attribute,
    value,
    matches: (stored) => stored !== undefined && timeKey(stored, false) >= from && timeKey(stored, false) <= to,
  };
}

/**
 * PN: case- and accent-insensitive. Exact (or wildcard) match against the whole value or any
 * component group; with fuzzymatching, every word of the query must begin some word of the name.
 */
function nameFilter(attribute: SearchAttribute, value: string, fuzzy: boolean): Filter {
  if (fuzzy) {
    const words = nameTokens(value.replace(/[*?]/g, ' '));
    if (words.length === 0) throw bad(`The ${attribute.tag.keyword} value "${value}" has no name to match.`);
    return {
      attribute,
      value,
      matches: (stored) => {
        const tokens = stored === undefined ? [] : nameTokens(stored);
        return words.every((word) => tokens.some((token) => token.startsWith(word)));
      },
    };
  }
  const pattern = wildcardRegExp(foldName(value));
  return {
    attribute,
    value,
    exactValues: WILDCARD.test(value) ? undefined : [value],
    matches: (stored) => {
      if (stored === undefined) return false;
      const candidates = [stored, ...stored.split('=')].map((text) => foldName(text.replace(/\^+$/, '')));
      return candidates.some((candidate) => pattern.test(candidate) || pattern.test(candidate.replace(/\^/g, ' ')));
    },
  };
}

/** Text and code strings: any of backslash-separated values, wildcards allowed; codes also split at commas. */
function valueFilter(attribute: SearchAttribute, value: string): Filter {
  const alternatives = value
    .split(attribute.match === 'code' ? /[\\,]/ : /\\/)
    .map((alternative) => alternative.trim());
  const caseInsensitive = attribute.match === 'text';
  const patterns = alternatives.map((alternative) => wildcardRegExp(alternative, caseInsensitive ? 'i' : ''));
  const exact = alternatives.every((alternative) => !WILDCARD.test(alternative));
  return {
    attribute,
    value,
    exactValues: exact ? alternatives : undefined,
    matches: (stored) => storedValues(stored).some((one) => patterns.some((pattern) => pattern.test(one))),
  };
}

export function buildFilter(attribute: SearchAttribute, value: string, fuzzy: boolean): Filter {
  switch (attribute.match) {
    case 'uid':
      return uidFilter(attribute, value);
    case 'date':
      return dateFilter(attribute, value);
    case 'time':
      return timeFilter(attribute, value);
    case 'name':
      return nameFilter(attribute, value, fuzzy);
    case 'code':
    case 'text':
      return valueFilter(attribute, value);
  }
}
