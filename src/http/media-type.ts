import contentType from 'content-type';
import { DicomwebError } from '../dicomweb/errors.js';

export interface MediaType {
  /** Lower-case type/subtype. */
  readonly type: string;
  readonly parameters: Readonly<Record<string, string>>;
}

/** Parses a Content-Type header value; undefined when absent, 415 when unparseable. */
export function parseContentType(value: string | null | undefined): MediaType | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  try {
    const parsed = contentType.parse(value);
    return { type: parsed.type.toLowerCase(), parameters: parsed.parameters };
  } catch {
    throw new DicomwebError('UnsupportedMediaType', `The Content-Type "${value.slice(0, 200)}" cannot be parsed.`);
  }
}

export interface MediaRange {
  readonly type: string;
  readonly subtype: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly q: number;
}

/**
 * Parses an Accept header into media ranges (RFC 9110 §12.5.1), quoted parameters included.
 * An absent header accepts anything.
 */
export function parseAccept(value: string | null | undefined): MediaRange[] {
  if (value === null || value === undefined || value.trim() === '')
    return [{ type: '*', subtype: '*', parameters: {}, q: 1 }];
  const ranges: MediaRange[] = [];
  for (const item of splitOutsideQuotes(value, ',')) {
    if (item.trim() === '') continue;
    const [range = '', ...params] = splitOutsideQuotes(item, ';').map((part) => part.trim());
    const slash = range.indexOf('/');
    if (slash <= 0 || slash === range.length - 1) {
      throw new DicomwebError('BadRequest', `The Accept header has a malformed media range "${range.slice(0, 100)}".`);
    }
    const parameters: Record<string, string> = {};
    let q = 1;
    for (const param of params) {
      const eq = param.indexOf('=');
      if (eq <= 0) continue;
      const name = param.slice(0, eq).trim().toLowerCase();
      const raw = param.slice(eq + 1).trim();
      const unquoted = raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, '$1') : raw;
      if (name === 'q') q = Number.isFinite(Number(unquoted)) ? Number(unquoted) : 1;
      else parameters[name] = unquoted;
    }
    ranges.push({
      type: range.slice(0, slash).toLowerCase(),
      subtype: range.slice(slash + 1).toLowerCase(),
      parameters,
      q,
    });
  }
  return ranges;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i] ?? '';
    if (char === '\\' && quoted) {
      current += char + (text[i + 1] ?? '');
      i += 1;
      continue;
    }
    if (char === '"') quoted = !quoted;
    if (char === separator && !quoted) {
      parts.push(current);
      current = '';
    } else current += char;
  }
  parts.push(current);
  return parts;
}

/** True when some range with q > 0 admits the JSON response of a STOW or QIDO (dicom+json). */
export function acceptsDicomJson(ranges: readonly MediaRange[]): boolean {
  return ranges.some(
    (range) =>
      range.q > 0 &&
      ((range.type === '*' && range.subtype === '*') ||
        (range.type === 'application' &&
          (range.subtype === '*' || range.subtype === 'dicom+json' || range.subtype === 'json'))),
  );
}
