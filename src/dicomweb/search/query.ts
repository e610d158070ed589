import { lookupTag, type TagDef } from '../../dicom/tags.js';
import { DicomwebError } from '../errors.js';
import { buildFilter, type Filter } from './matching.js';
import { ALL_RETURN, levelsOf, SEARCHABLE, type SearchResource } from './searchable.js';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 200;

export interface SearchQuery {
  readonly resource: SearchResource;
  readonly filters: readonly Filter[];
  /** Attributes asked for with includefield or named with an empty (universal) value. */
  readonly include: readonly TagDef[];
  readonly includeAll: boolean;
  readonly fuzzy: boolean;
  readonly limit: number;
  readonly offset: number;
}

/** `accept` is the HTTP layer's (PS3.18 §8.3.3.1); it is no attribute filter. */
const RESERVED = new Set(['limit', 'offset', 'fuzzymatching', 'includefield', 'accept']);

function bad(message: string): DicomwebError {
  return new DicomwebError('BadRequest', message);
}

function integer(name: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
    throw bad(`The query parameter '${name}' must be a whole number from ${min} to ${max}, not "${raw.slice(0, 40)}".`);
  }
  return value;
}

/**
 * Parses a QIDO-RS query string (PS3.18 §8.3.4). Attributes by keyword (case-sensitive) or tag;
 * anything the resource cannot filter on, and any unknown parameter, is a 400 naming it.
 */
export function parseSearchQuery(params: URLSearchParams, resource: SearchResource): SearchQuery {
  const levels = levelsOf(resource);
  let limit = DEFAULT_LIMIT;
  let offset = 0;
  let fuzzy = false;
  let includeAll = false;
  const includeIds: string[] = [];
  const values: [string, string][] = [];
  for (const [key, value] of params) {
    const name = key.trim();
    switch (RESERVED.has(name.toLowerCase()) ? name.toLowerCase() : '') {
      case 'limit':
        limit = integer('limit', value, 1, MAX_LIMIT);
        break;
      case 'offset':
        offset = integer('offset', value, 0, Number.MAX_SAFE_INTEGER);
        break;
      case 'fuzzymatching':
        if (!/^(true|false)$/i.test(value.trim()))
          throw bad(`The query parameter 'fuzzymatching' must be true or false, not "${value.slice(0, 40)}".`);
        fuzzy = value.trim().toLowerCase() === 'true';
        break;
      case 'accept':
        break;
      case 'includefield':
        includeIds.push(
          ...value
            .split(',')
            .map((id) => id.trim())
            .filter((id) => id !== ''),
        );
        break;
      default:
        values.push([name, value.trim()]);
    }
  }
  const include: TagDef[] = [];
  for (const id of includeIds) {
    if (id.toLowerCase() === 'all') {
      includeAll = true;
      continue;
    }
    const tag = lookupTag(id);
    if (tag) include.push(tag);
    else if (!/^[0-9A-Fa-f]{8}$/.test(id)) {
      throw bad(
        `includefield names an unknown attribute "${id.slice(0, 64)}"; use a DICOM keyword (case-sensitive) or an eight-digit tag.`,
      );
    }
    // A valid tag this index does not hold is returned when present, which is never: ignore it.
  }
  const seen = new Set<string>();
  const filters: Filter[] = [];
  for (const [name, value] of values) {
    const tag = lookupTag(name);
    const attribute = tag && SEARCHABLE.find((candidate) => candidate.tag === tag);
    if (!tag || !attribute) {
      throw bad(
        `Unknown query parameter '${name.slice(0, 64)}'. Filter on a searchable attribute by keyword (case-sensitive) or tag; see docs/conformance.md.`,
      );
    }
    if (!levels.includes(attribute.level)) {
      throw bad(`The attribute ${tag.keyword} cannot be searched on this resource.`);
    }
    if (seen.has(tag.keyword)) throw bad(`The attribute ${tag.keyword} is given more than once; each may appear once.`);
    seen.add(tag.keyword);
    if (
      (tag.keyword === 'StudyInstanceUID' && resource.studyInstanceUid) ||
      (tag.keyword === 'SeriesInstanceUID' && resource.seriesInstanceUid)
    ) {
      throw bad(`The attribute ${tag.keyword} is already given in the URL path.`);
    }
    if (value === '')
      include.push(tag); // universal matching: no filter, but return the attribute
    else filters.push(buildFilter(attribute, value, fuzzy));
  }
  return { resource, filters, include, includeAll, fuzzy, limit, offset };
}

export { ALL_RETURN };
