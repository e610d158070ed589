import { DicomwebError } from '../dicomweb/errors.js';

export interface MediaType {
  /** Lower-case type/subtype. */
  readonly type: string;
  /** Parameter names in lower case; values unquoted, their case kept. */
  readonly parameters: Readonly<Record<string, string>>;
}

export interface MediaRange {
  readonly type: string;
  readonly subtype: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly q: number;
}

/** RFC 9110 token characters: what a type, a subtype and a parameter name are made of. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Why a media type cannot be read; the caller turns it into 415 (Content-Type) or 400 (Accept). */
class Unreadable extends Error {}

/**
 * Reads one media type with its parameters as real clients send it (RFC 9110 §8.3.1, bent the
 * way DICOMweb clients bend it): parameter names in any case, spaces around `;` and `=`, values
 * quoted or not — an unquoted value runs to the next `;`, so `type=application/dicom` is read
 * whole. What stays ambiguous is refused: an unclosed quote, a parameter without `=` or with an
 * empty value. Parameters come back in order, repeats included; the callers decide about those.
 */
function readMediaType(text: string): { type: string; subtype: string; parameters: [string, string][] } {
  const [range = '', ...params] = splitOutsideQuotes(text, ';');
  // A bare "*" (Java's default Accept, dcm4che's `?accept=*`) can only mean "*/*".
  const [type = '', subtype = '', extra] = (range.trim() === '*' ? '*/*' : range.trim()).split('/');
  if (extra !== undefined || !TOKEN.test(type) || !TOKEN.test(subtype)) {
    throw new Unreadable(`"${range.trim().slice(0, 100)}" is not a type/subtype`);
  }
  const parameters: [string, string][] = [];
  for (const param of params) {
    if (param.trim() === '') continue; // a stray or trailing ";" adds nothing
    const eq = param.indexOf('=');
    const name = param.slice(0, Math.max(eq, 0)).trim().toLowerCase();
    if (eq <= 0 || !TOKEN.test(name))
      throw new Unreadable(`the parameter "${param.trim().slice(0, 80)}" has no name=value form`);
    parameters.push([name, parameterValue(param.slice(eq + 1).trim(), name)]);
  }
  return { type: type.toLowerCase(), subtype: subtype.toLowerCase(), parameters };
}

function parameterValue(raw: string, name: string): string {
  if (raw.startsWith('"')) {
    if (raw.length < 2 || !raw.endsWith('"') || raw.endsWith('\\"')) {
      throw new Unreadable(`the quoted value of ${name} is not closed`);
    }
    return raw.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  if (raw === '') throw new Unreadable(`the parameter ${name} has an empty value`);
  if (/[\s"]/.test(raw)) throw new Unreadable(`the unquoted value of ${name} contains a space or a quote`);
  return raw;
}

/** Parses a Content-Type header value; undefined when absent, 415 when unparseable. */
export function parseContentType(value: string | null | undefined): MediaType | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  try {
    const { type, subtype, parameters } = readMediaType(value);
    return { type: `${type}/${subtype}`, parameters: once(parameters) };
  } catch (error) {
    if (!(error instanceof Unreadable)) throw error;
    throw new DicomwebError(
      'UnsupportedMediaType',
      `The Content-Type "${value.slice(0, 200)}" cannot be parsed: ${error.message}.`,
    );
  }
}

/**
 * Parses an Accept header into media ranges (RFC 9110 §12.5.1), with the same tolerance as
 * Content-Type. An absent header accepts anything.
 */
export function parseAccept(value: string | null | undefined): MediaRange[] {
  if (value === null || value === undefined || value.trim() === '')
    return [{ type: '*', subtype: '*', parameters: {}, q: 1 }];
  const ranges: MediaRange[] = [];
  for (const item of splitOutsideQuotes(value, ',')) {
    if (item.trim() === '') continue;
    let read;
    try {
      read = readMediaType(item);
    } catch (error) {
      if (!(error instanceof Unreadable)) throw error;
      throw new DicomwebError(
        'BadRequest',
        `The Accept header has a malformed media range "${item.trim().slice(0, 100)}": ${error.message}.`,
      );
    }
    // OHIF may name two transfer syntaxes in one range (the one it wants, then "*"): alternatives, in order.
    const syntaxes = read.parameters.filter(([name]) => name === 'transfer-syntax').map(([, value]) => value);
    let others: Record<string, string>;
    try {
      others = once(read.parameters.filter(([name]) => name !== 'transfer-syntax'));
    } catch (error) {
      if (!(error instanceof Unreadable)) throw error;
      throw new DicomwebError(
        'BadRequest',
        `The Accept header's media range "${item.trim().slice(0, 100)}": ${error.message}.`,
      );
    }
    const { q: rawQ, ...parameters } = others;
    const q = rawQ === undefined ? 1 : Number(rawQ);
    if (!Number.isFinite(q) || q < 0 || q > 1) {
      throw new DicomwebError('BadRequest', `The Accept header has a q-value "${rawQ}" outside 0 to 1.`);
    }
    for (const syntax of syntaxes.length > 0 ? syntaxes : [undefined]) {
      const withSyntax = syntax === undefined ? parameters : { ...parameters, 'transfer-syntax': syntax };
      ranges.push({ type: read.type, subtype: read.subtype, parameters: withSyntax, q });
    }
  }
  return ranges;
}

/** Parameters by name; the same name twice with different values is ambiguous. */
function once(parameters: readonly [string, string][]): Record<string, string> {
  const byName: Record<string, string> = {};
  for (const [name, value] of parameters) {
    const earlier = byName[name];
    if (earlier !== undefined && earlier !== value) throw new Unreadable(`the parameter ${name} is given twice`);
    byName[name] = value;
  }
  return byName;
}

/**
 * The media ranges a request accepts: the `accept` query parameter when present (PS3.18
 * §8.3.3.1; dcm4che's wadors and OHIF's thumbnails send it), else the Accept header.
 */
export function requestAccept(request: Request): MediaRange[] {
  const fromQuery = new URL(request.url).searchParams.getAll('accept');
  return parseAccept(fromQuery.length > 0 ? fromQuery.join(',') : request.headers.get('accept'));
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

/** A range that admits `type/subtype` (wildcards included). */
function admits(range: MediaRange, type: string, subtype: string): boolean {
  return (
    (range.type === '*' && range.subtype === '*') ||
    (range.type === type && (range.subtype === '*' || range.subtype === subtype))
  );
}

/** The JSON answer of a STOW, QIDO or metadata request: `application/dicom+json` (or plain JSON). */
function admitsDicomJson(range: MediaRange): boolean {
  return admits(range, 'application', 'dicom+json') || admits(range, 'application', 'json');
}

/**
 * The representation of a STOW-RS response (PS3.18 §10.5.3): DICOM JSON, or the Native DICOM
 * Model in XML for clients that accept only that; the higher q wins, JSON on a tie. Undefined
 * when the client accepts neither.
 */
export function storeResponseType(ranges: readonly MediaRange[]): 'json' | 'xml' | undefined {
  const best = (test: (range: MediaRange) => boolean) =>
    Math.max(0, ...ranges.filter((range) => range.q > 0 && test(range)).map((range) => range.q));
  const json = best(admitsDicomJson);
  const xml = best((range) => range.type === 'application' && range.subtype === 'dicom+xml');
  if (json === 0 && xml === 0) return undefined;
  return json >= xml ? 'json' : 'xml';
}

/** True when some range with q > 0 admits the JSON response of a STOW or QIDO (dicom+json). */
export function acceptsDicomJson(ranges: readonly MediaRange[]): boolean {
  return ranges.some((range) => range.q > 0 && admitsDicomJson(range));
}
