import type { DataSet, Element } from 'dicom-parser';
import { compareText } from '../util/compare.js';
import { dictionaryEntry } from './dictionary.js';
import { attributeTagValues, base64, NUMBER_SIZES, numberValues } from './json-binary.js';
import { latin1, numericStringValues, personName, TEXT_VRS, textValues } from './json-text.js';

/**
 * The DICOM JSON model (PS3.18 Annex F) of a parsed data set, precomputed at store time for
 * WADO-RS metadata.
 */
export interface JsonModelOptions {
  /** Values of binary VRs (OB OD OF OL OV OW UN) up to this many bytes are InlineBinary (base64); larger ones, and Pixel Data always, become BulkDataURI. */
  readonly inlineBinaryMaxBytes: number;
  /** Builds the BulkDataURI for a value at [offset, offset+length) of the file (offsets as in dataSet.byteArray). */
  readonly bulkDataUri: (offset: number, length: number) => string;
  /** Transfer syntax is little endian? (false for 1.2.840.10008.1.2.2) */
  readonly littleEndian: boolean;
}

export type DicomJson = Record<string, { vr: string; Value?: unknown[]; InlineBinary?: string; BulkDataURI?: string }>;
type Attribute = DicomJson[string];

/** What an item inherits from its enclosing data sets (PS3.5 7.5.3 for the character set). */
interface Context {
  readonly charset: string | undefined;
  readonly bitsAllocated: number | undefined;
  readonly pixelRepresentation: number | undefined;
}

const PIXEL_DATA = '7FE00010';
const UNDEFINED_LENGTH = 0xffffffff;

/**
 * Attributes are inserted in ascending tag order, but JavaScript lists integer-like keys such as
 * "60003000" first; serialise with stringifyDicomJson to keep the order in the JSON text.
 */
export function toDicomJson(dataSet: DataSet, options: JsonModelOptions): DicomJson {
  const root: Context = { charset: undefined, bitsAllocated: undefined, pixelRepresentation: undefined };
  return convert(dataSet, options, root);
}

/**
 * A `vrCallback` for dicomParser.parseDicom on implicit VR data sets. Not required: without it
 * dicom-parser recognises sequences by peeking for an item tag, and toDicomJson looks VRs up itself.
 * With it, an element the dictionary knows is never mistaken for a sequence because its value starts
 * with the bytes of an item tag. Ambiguous and unknown tags give undefined, leaving them to
 * dicom-parser's peek and toDicomJson's context rules ("US or SS", Pixel Data OB/OW).
 */
export function implicitVrCallback(tag: string): string | undefined {
  const entry = dictionaryEntry(tag.replace(/^x/, ''));
  return entry?.vrs.length === 1 && entry.vr !== 'UN' ? entry.vr : undefined;
}

function convert(dataSet: DataSet, options: JsonModelOptions, inherited: Context): DicomJson {
  const context = contextOf(dataSet, options, inherited);
  const entries = Object.entries(dataSet.elements)
    .map(([key, element]) => [key.slice(1).toUpperCase(), element] as const)
    .filter(([tag]) => isDataElement(tag))
    .sort(([a], [b]) => compareText(a, b)); // fixed-width hex: string order is tag order
  const json: DicomJson = {};
  for (const [tag, element] of entries) {
    const attribute = toAttribute(tag, element, dataSet, options, context);
    if (attribute) json[tag] = attribute;
  }
  return json;
}

/** Skips File Meta (0002), group lengths (gggg,0000) and items/delimiters (FFFE). */
function isDataElement(tag: string): boolean {
  return /^[0-9A-F]{8}$/.test(tag) && !tag.startsWith('0002') && !tag.startsWith('FFFE') && !tag.endsWith('0000');
}

function contextOf(dataSet: DataSet, options: JsonModelOptions, inherited: Context): Context {
  const bytes = (key: string) => valueBytes(dataSet, dataSet.elements[key]);
  const us = (key: string) => {
    const value = bytes(key);
    return value ? numberValues(value, 'US', options.littleEndian).find((n) => typeof n === 'number') : undefined;
  };
  const charsetBytes = bytes('x00080005');
  const charset = charsetBytes && latin1(charsetBytes).replace(/[ \0]+$/, '');
  return {
    charset: charset ?? inherited.charset,
    bitsAllocated: us('x00280100') ?? inherited.bitsAllocated,
    pixelRepresentation: us('x00280103') ?? inherited.pixelRepresentation,
  };
}

/** The value bytes, or undefined when the element is absent or its value lies beyond the buffer. */
function valueBytes(dataSet: DataSet, element: Element | undefined): Uint8Array | undefined {
  if (!element || element.length === UNDEFINED_LENGTH) return undefined;
  const end = element.dataOffset + element.length;
  if (end > dataSet.byteArray.length) return undefined;
  return dataSet.byteArray.subarray(element.dataOffset, end);
}

/** The element's VR; implicit VR data sets carry none, so the dictionary and context decide. */
function vrOfElement(tag: string, element: Element, context: Context): string {
  // dicom-parser reads an undefined-length UN (or, in implicit VR, any item-led value) as a sequence.
  if (element.items && (element.vr === undefined || element.vr === 'UN')) return 'SQ';
  if (element.vr) return element.vr;
  if (tag === PIXEL_DATA) return (context.bitsAllocated ?? 0) > 8 ? 'OW' : 'OB';
  const entry = dictionaryEntry(tag);
  if (!entry) return 'UN';
  if (entry.vrs.includes('US') && entry.vrs.includes('SS')) return context.pixelRepresentation === 1 ? 'SS' : 'US';
  return entry.vr;
}

function toAttribute(
  tag: string,
  element: Element,
  dataSet: DataSet,
  options: JsonModelOptions,
  context: Context,
): Attribute | undefined {
  const vr = vrOfElement(tag, element, context);
  if (tag === PIXEL_DATA) return pixelData(vr, element, options);
  if (vr === 'SQ') return sequence(element, dataSet, options, context);
  const bytes = valueBytes(dataSet, element);
  if (!bytes) return undefined; // truncated header: the value never arrived
  if (bytes.length === 0) return { vr };
  if (NUMBER_SIZES[vr] !== undefined) return withValue(vr, numberValues(bytes, vr, options.littleEndian));
  if (vr === 'AT') return withValue(vr, attributeTagValues(bytes, options.littleEndian));
  if (TEXT_VRS.has(vr)) return text(vr, bytes, context);
  if (bytes.length <= options.inlineBinaryMaxBytes) return { vr, InlineBinary: base64(bytes) };
  return { vr, BulkDataURI: options.bulkDataUri(element.dataOffset, element.length) };
}

function withValue(vr: string, values: unknown[] | undefined): Attribute {
  return values && values.length > 0 ? { vr, Value: values } : { vr };
}

function text(vr: string, bytes: Uint8Array, context: Context): Attribute {
  const values = textValues(bytes, vr, context.charset);
  if (!values) return { vr };
  if (vr === 'PN') return withValue(vr, values.map(personName));
  if (vr === 'IS' || vr === 'DS') return withValue(vr, numericStringValues(values, vr));
  return withValue(vr, values);
}

function sequence(
  element: Element,
  dataSet: DataSet,
  options: JsonModelOptions,
  context: Context,
): Attribute | undefined {
  if (!valueBytes(dataSet, element)) return undefined; // truncated header: the items never arrived
  const items = (element.items ?? []).map((item) => (item.dataSet ? convert(item.dataSet, options, context) : {}));
  return withValue('SQ', items);
}

/**
 * Pixel Data is always bulk data, even when its value was not read (the header stops before it).
 * An encapsulated value whose end dicom-parser found has its full length (fragment items and
 * delimiter included); one whose end is unknown (header parsed until Pixel Data) gets length -1.
 */
function pixelData(vr: string, element: Element, options: JsonModelOptions): Attribute {
  if (element.length === 0) return { vr };
  const length = element.length === UNDEFINED_LENGTH ? -1 : element.length;
  return { vr, BulkDataURI: options.bulkDataUri(element.dataOffset, length) };
}
