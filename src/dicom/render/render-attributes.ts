import type { DicomJson } from '../dicom-json-model.js';
import type { PixelDescription } from '../codecs/pixel-description.js';

/**
 * What rendering needs from an instance's DICOM JSON (the sidecar metadata kept at store time),
 * so a rendered frame costs no extra read of the instance's header.
 */

/** A lookup table (PS3.3 C.11.1.1.1, C.7.6.3.1.5): `data[i]` is the output for input `first + i`. */
export interface Lut {
  readonly first: number;
  /** Bits of each output entry (8 or 16, up to 16). */
  readonly bits: number;
  readonly data: Uint16Array;
}

export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

export interface WindowSetting {
  readonly center: number;
  readonly width: number;
  readonly function: VoiFunction;
}

export interface RenderAttributes {
  readonly description: PixelDescription;
  readonly numberOfFrames: number;
  /** Modality LUT as rescale (identity when absent) or as a LUT (Modality LUT Sequence). */
  readonly rescale: { readonly slope: number; readonly intercept: number };
  readonly modalityLut?: Lut | undefined;
  /** The data set's first Window Center/Width, with its VOI LUT Function. */
  readonly window?: WindowSetting | undefined;
  /** The first item of the VOI LUT Sequence. */
  readonly voiLut?: Lut | undefined;
  /** PALETTE COLOR lookup tables. */
  readonly palette?: { readonly red: Lut; readonly green: Lut; readonly blue: Lut } | undefined;
}

/** Why an instance cannot be rendered (no image, an attribute missing or out of range): 406 at the edge. */
export class NotRenderable extends Error {
  override readonly name = 'NotRenderable';
}

type Attribute = DicomJson[string];

function numbers(attribute: Attribute | undefined): number[] {
  return (attribute?.Value ?? []).filter((value): value is number => typeof value === 'number');
}

function first(json: DicomJson, tag: string): number | undefined {
  return numbers(json[tag])[0];
}

function text(json: DicomJson, tag: string): string | undefined {
  const value = json[tag]?.Value?.[0];
  return typeof value === 'string' ? value.trim() : undefined;
}

function items(json: DicomJson, tag: string): DicomJson[] {
  return (json[tag]?.Value ?? []) as DicomJson[];
}

/** The BulkDataURIs of the LUT data rendering may need, to be read before renderAttributes is called. */
export function lutBulkDataUris(json: DicomJson): string[] {
  const lutData = [
    json['00281201'],
    json['00281202'],
    json['00281203'],
    items(json, '00283000')[0]?.['00283006'],
    items(json, '00283010')[0]?.['00283006'],
  ];
  return lutData.flatMap((attribute) => (attribute?.BulkDataURI ? [attribute.BulkDataURI] : []));
}

function required(json: DicomJson, tag: string, keyword: string): number {
  const value = first(json, tag);
  if (value === undefined)
    throw new NotRenderable(`the instance has no ${keyword} (${tag.slice(0, 4)},${tag.slice(4)})`);
  return value;
}

/** Image Pixel Module attributes of an instance. */
export function pixelDescription(json: DicomJson): PixelDescription {
  const samplesPerPixel = first(json, '00280002') ?? 1;
  const bitsAllocated = required(json, '00280100', 'Bits Allocated');
  const bitsStored = first(json, '00280101') ?? bitsAllocated;
  const description: PixelDescription = {
    rows: required(json, '00280010', 'Rows'),
    columns: required(json, '00280011', 'Columns'),
    samplesPerPixel,
    bitsAllocated,
    bitsStored,
    highBit: first(json, '00280102') ?? bitsStored - 1,
    pixelRepresentation: first(json, '00280103') === 1 ? 1 : 0,
    photometricInterpretation: text(json, '00280004') ?? (samplesPerPixel === 3 ? 'RGB' : 'MONOCHROME2'),
    planarConfiguration: first(json, '00280006') === 1 ? 1 : 0,
  };
  checkDescription(description);
  return description;
}

/** Rejects layouts the pipeline cannot read, with the reason a person can act on. */
export function checkDescription(d: PixelDescription): void {
  if (d.rows < 1 || d.columns < 1) throw new NotRenderable('the image has no rows or columns');
  if (![1, 8, 16].includes(d.bitsAllocated))
    throw new NotRenderable(`Bits Allocated ${d.bitsAllocated} is not rendered (1, 8 and 16 are)`);
  if (
    d.bitsStored < 1 ||
    d.bitsStored > d.bitsAllocated ||
    d.highBit < d.bitsStored - 1 ||
    d.highBit >= d.bitsAllocated
  )
    throw new NotRenderable(
      `Bits Stored ${d.bitsStored} and High Bit ${d.highBit} do not fit Bits Allocated ${d.bitsAllocated}`,
    );
  if (d.samplesPerPixel !== 1 && d.samplesPerPixel !== 3)
    throw new NotRenderable(`Samples per Pixel ${d.samplesPerPixel} is not rendered (1 and 3 are)`);
}

/** 16-bit words of an OW value (or the numbers of a US value), in the file's byte order. */
function words(attribute: Attribute | undefined, bulk: ReadonlyMap<string, Uint8Array>, littleEndian: boolean) {
  if (!attribute) return undefined;
  if (attribute.Value) return { words: Uint16Array.from(numbers(attribute)), bytes: undefined };
  const raw = attribute.InlineBinary
    ? Buffer.from(attribute.InlineBinary, 'base64')
    : attribute.BulkDataURI
      ? bulk.get(attribute.BulkDataURI)
      : undefined;
  if (!raw) return undefined;
  const bytes = Buffer.from(raw);
  const even = Buffer.from(bytes.subarray(0, bytes.length - (bytes.length % 2)));
  if (!littleEndian) even.swap16();
  return { words: new Uint16Array(even.buffer, even.byteOffset, even.length / 2), bytes };
}

/**
 * A LUT from its descriptor (entries, first mapped value, bits: 0 entries means 65536) and data.
 * 8-bit palette data may come packed two entries per word; then each byte is an entry.
 */
function lut(
  descriptor: Attribute | undefined,
  data: Attribute | undefined,
  bulk: ReadonlyMap<string, Uint8Array>,
  littleEndian: boolean,
  signedInput: boolean,
): Lut | undefined {
  const [rawEntries, rawFirst, bits = 16] = numbers(descriptor);
  const read = words(data, bulk, littleEndian);
  if (rawEntries === undefined || rawFirst === undefined || !read) return undefined;
  const entries = (rawEntries & 0xffff) === 0 ? 65536 : rawEntries & 0xffff;
  const firstMapped = signedInput ? ((rawFirst & 0xffff) << 16) >> 16 : rawFirst & 0xffff;
  let values = read.words;
  if (bits <= 8 && read.bytes && read.bytes.length >= entries && values.length < entries) {
    values = Uint16Array.from(read.bytes.subarray(0, entries));
  }
  if (values.length < entries) throw new NotRenderable(`a lookup table has fewer than its ${entries} entries`);
  return { first: firstMapped, bits: Math.min(Math.max(bits, 1), 16), data: values.subarray(0, entries) };
}

const FUNCTIONS: readonly VoiFunction[] = ['LINEAR', 'LINEAR_EXACT', 'SIGMOID'];

function dataSetWindow(json: DicomJson): WindowSetting | undefined {
  const center = first(json, '00281050');
  const width = first(json, '00281051');
  if (center === undefined || width === undefined) return undefined;
  const fn = (text(json, '00281056') ?? 'LINEAR').toUpperCase() as VoiFunction;
  const chosen = FUNCTIONS.includes(fn) ? fn : 'LINEAR';
  // A width the function cannot use (LINEAR needs at least 1) falls back to the pixel range.
  if (chosen === 'LINEAR' ? width < 1 : width <= 0) return undefined;
  return { center, width, function: chosen };
}

/**
 * Where an enhanced multi-frame image keeps a frame's rescale and window (PS3.3 C.7.6.16): the
 * frame's item of the Per-Frame Functional Groups Sequence, else the Shared one; each macro's
 * first item (Pixel Value Transformation, Frame VOI LUT). Classic images keep them at the top.
 */
function functionalGroup(json: DicomJson, frameIndex: number, macro: string): DicomJson | undefined {
  const perFrame = items(json, '52009230')[frameIndex]?.[macro];
  const shared = items(json, '52009229')[0]?.[macro];
  return ((perFrame ?? shared)?.Value as DicomJson[] | undefined)?.[0];
}

/**
 * The rendering attributes of an instance's frame (`frameIndex` from 0). `bulk` holds the bytes
 * of the BulkDataURIs that lutBulkDataUris named; `littleEndian` is the stored transfer syntax's
 * byte order.
 */
export function renderAttributes(
  json: DicomJson,
  bulk: ReadonlyMap<string, Uint8Array>,
  littleEndian: boolean,
  frameIndex = 0,
): RenderAttributes {
  const description = pixelDescription(json);
  const signed = description.pixelRepresentation === 1;
  const transformation = functionalGroup(json, frameIndex, '00289145') ?? json;
  const voi = functionalGroup(json, frameIndex, '00289132') ?? json;
  const rescale = {
    slope: first(transformation, '00281053') ?? 1,
    intercept: first(transformation, '00281052') ?? 0,
  };
  const modalityItem = items(json, '00283000')[0];
  const voiItem = items(json, '00283010')[0];
  const photometric = description.photometricInterpretation;
  let palette: RenderAttributes['palette'];
  if (photometric === 'PALETTE COLOR') {
    const channel = (descriptor: string, data: string) => lut(json[descriptor], json[data], bulk, littleEndian, signed);
    const red = channel('00281101', '00281201');
    const green = channel('00281102', '00281202');
    const blue = channel('00281103', '00281203');
    if (!red || !green || !blue)
      throw new NotRenderable(
        'the PALETTE COLOR image has no usable Red, Green and Blue Palette Color Lookup Table Descriptor and Data (segmented palettes are not rendered)',
      );
    palette = { red, green, blue };
  }
  return {
    description,
    numberOfFrames: Math.max(1, first(json, '00280008') ?? 1),
    rescale,
    modalityLut: modalityItem && lut(modalityItem['00283002'], modalityItem['00283006'], bulk, littleEndian, signed),
    window: dataSetWindow(voi),
    // The VOI LUT's input is the Modality LUT's output: signed when rescaling can make it so.
    voiLut:
      voiItem && lut(voiItem['00283002'], voiItem['00283006'], bulk, littleEndian, signed || rescale.intercept < 0),
    palette,
  };
}
