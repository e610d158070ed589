import dictionary from '@iwharris/dicom-data-dictionary';

/**
 * The PS3.6 data dictionary: VR and keyword by tag. Needed to read implicit VR data sets (which
 * carry no VRs) and to name attributes. Repeating-group tags such as (60xx,3000) are matched too.
 */
export interface DictionaryEntry {
  readonly keyword: string;
  /** The VR; for "OB or OW"-style entries the first, which callers refine by context. */
  readonly vr: string;
  readonly vrs: readonly string[];
}

const exact = new Map<string, DictionaryEntry>();
const masked: { pattern: RegExp; entry: DictionaryEntry }[] = [];

for (const element of Object.values(dictionary.elements)) {
  const hex = element.tag.replace(/[(),]/g, '').toUpperCase();
  const vrs = element.vr
    .split(/\s+or\s+/)
    .map((vr) => vr.trim())
    .filter((vr) => /^[A-Z]{2}$/.test(vr));
  const entry: DictionaryEntry = { keyword: element.keyword, vr: vrs[0] ?? 'UN', vrs };
  if (hex.includes('X')) masked.push({ pattern: new RegExp(`^${hex.replace(/X/g, '[0-9A-F]')}$`), entry });
  else exact.set(hex, entry);
}

/** The dictionary entry of an eight-hex-digit tag (any case). */
export function dictionaryEntry(tag: string): DictionaryEntry | undefined {
  const upper = tag.toUpperCase();
  const found = exact.get(upper);
  if (found) return found;
  const group = Number.parseInt(upper.slice(0, 4), 16);
  if (upper.endsWith('0000')) return { keyword: 'GenericGroupLength', vr: 'UL', vrs: ['UL'] };
  if (group % 2 === 1) {
    // Private: creator elements (gggg,0010-00FF) are LO; everything else is unknown.
    const element = Number.parseInt(upper.slice(4), 16);
    return element >= 0x10 && element <= 0xff ? { keyword: 'PrivateCreator', vr: 'LO', vrs: ['LO'] } : undefined;
  }
  return masked.find(({ pattern }) => pattern.test(upper))?.entry;
}

/** The VR of a tag for implicit VR data sets; UN when the dictionary does not know it. */
export function vrOf(tag: string): string {
  return dictionaryEntry(tag)?.vr ?? 'UN';
}

const byKeyword = new Map<string, string>([...exact.entries()].map(([tag, entry]) => [entry.keyword, tag]));

/** The tag (eight uppercase hex digits) of a PS3.6 keyword, case-sensitive. */
export function tagOfKeyword(keyword: string): string | undefined {
  return byKeyword.get(keyword);
}
