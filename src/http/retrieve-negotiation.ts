import { DicomwebError } from '../dicomweb/errors.js';
import { transferSyntaxInfo } from '../dicom/transfer-syntax.js';
import type { MediaRange } from './media-type.js';

export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
const ANY = '*';

/** Can an instance stored in `stored` be delivered in `requested` (a UID or "*")? */
export type Deliverable = (stored: string, requested: string) => boolean;

export interface InstanceChoice {
  readonly multipart: boolean;
  /** A transfer syntax UID, or "*" for each instance as stored. */
  readonly transferSyntax: string;
}

function byQuality(ranges: readonly MediaRange[]): MediaRange[] {
  return ranges.filter((range) => range.q > 0).sort((a, b) => b.q - a.q);
}

function unquote(value: string | undefined): string | undefined {
  return value?.replace(/^"|"$/g, '');
}

/** The media type a multipart range asks for in its `type` parameter (PS3.18 §8.7.3.5). */
function partType(range: MediaRange): string | undefined {
  return unquote(range.parameters['type'])?.toLowerCase();
}

const isAny = (range: MediaRange) => range.type === '*' || (range.type === 'application' && range.subtype === '*');

/**
 * Negotiates the representation of DICOM instances (PS3.18 §8.7.3, Table 8.7.3-2): multipart
 * application/dicom, or single-part application/dicom where one instance is asked for. The
 * transfer syntax defaults to explicit VR little endian; `*` (or any range) means as stored.
 */
export function negotiateInstances(
  accept: readonly MediaRange[],
  stored: readonly string[],
  singlePartAllowed: boolean,
  deliverable: Deliverable,
  explain: (stored: string, requested: string) => string | undefined = () => undefined,
): InstanceChoice {
  const tried: InstanceChoice[] = [];
  for (const range of byQuality(accept)) {
    let choice: InstanceChoice | undefined;
    const syntax = unquote(range.parameters['transfer-syntax']);
    if (range.type === 'multipart' && (range.subtype === 'related' || range.subtype === '*')) {
      const type = partType(range) ?? 'application/dicom';
      if (type === 'application/dicom')
        choice = { multipart: true, transferSyntax: syntax ?? EXPLICIT_VR_LITTLE_ENDIAN };
      else if (type === '*/*') choice = { multipart: true, transferSyntax: syntax ?? ANY };
    } else if (range.type === 'application' && range.subtype === 'dicom') {
      if (singlePartAllowed) choice = { multipart: false, transferSyntax: syntax ?? EXPLICIT_VR_LITTLE_ENDIAN };
    } else if (isAny(range)) {
      choice = { multipart: true, transferSyntax: ANY };
    }
    if (choice && stored.every((uid) => deliverable(uid, choice.transferSyntax))) return choice;
    if (choice) tried.push(choice);
  }
  const syntaxes = [...new Set(stored)].join(', ');
  const reasons = [...new Set(tried.flatMap((choice) => stored.map((uid) => explain(uid, choice.transferSyntax))))]
    .filter((reason): reason is string => reason !== undefined)
    .slice(0, 3);
  throw new DicomwebError(
    'NotAcceptable',
    `None of the accepted media types can be served${reasons.length > 0 ? ` (${reasons.join(' ')})` : ''}. Ask for multipart/related; type="application/dicom"${
      singlePartAllowed ? ' (or application/dicom)' : ''
    } with transfer-syntax=* to get the instances as stored (${syntaxes}); uncompressed and decodable instances can also be had in 1.2.840.10008.1.2.1, 1.2.840.10008.1.2, 1.2.840.10008.1.2.2 or 1.2.840.10008.1.2.1.99, and those not lossy-compressed in JPEG 2000, HTJ2K, JPEG-LS or RLE lossless (docs/conformance.md lists every pair).`,
  );
}

/** PS3.18 Table 8.7.3-5: the image media type of each compressed transfer syntax. */
export function compressedMediaType(transferSyntax: string): string | undefined {
  if (/^1\.2\.840\.10008\.1\.2\.4\.(50|51|57|70)$/.test(transferSyntax)) return 'image/jpeg';
  if (/^1\.2\.840\.10008\.1\.2\.4\.(80|81)$/.test(transferSyntax)) return 'image/jls';
  if (/^1\.2\.840\.10008\.1\.2\.4\.(90|91)$/.test(transferSyntax)) return 'image/jp2';
  if (/^1\.2\.840\.10008\.1\.2\.4\.(92|93)$/.test(transferSyntax)) return 'image/jpx';
  if (/^1\.2\.840\.10008\.1\.2\.4\.(201|202|203)$/.test(transferSyntax)) return 'image/jphc';
  if (transferSyntax === '1.2.840.10008.1.2.5') return 'image/dicom-rle';
  return undefined;
}

/** PS3.18 Table 8.7.3-5: the transfer syntax an image media type means when none is named. */
const DEFAULT_SYNTAX: Readonly<Record<string, string>> = {
  'image/jpeg': '1.2.840.10008.1.2.4.50',
  'image/jls': '1.2.840.10008.1.2.4.80',
  'image/jp2': '1.2.840.10008.1.2.4.90',
  'image/jpx': '1.2.840.10008.1.2.4.92',
  'image/jphc': '1.2.840.10008.1.2.4.201',
  'image/dicom-rle': '1.2.840.10008.1.2.5',
};

export interface FrameChoice {
  readonly multipart: boolean;
  readonly mediaType: string;
  /** What the parts are labelled with: the stored syntax for "*", else the one asked for. */
  readonly transferSyntax: string;
}

/** Can frames stored in `stored` be re-coded as `target`? (`from` === `to` is not a re-coding.) */
export type FrameRecoding = (stored: string, target: string) => boolean;

/**
 * Negotiates frames and bulk data (PS3.18 Tables 8.7.3-4 and -5): application/octet-stream
 * (uncompressed, explicit VR little endian by default, or `*` as stored), or an image media type
 * (its default syntax unless one is named). Frames are sent as stored, or re-coded where
 * `recodable` says so. Single-part answers only for a single frame.
 */
export function negotiateFrames(
  accept: readonly MediaRange[],
  stored: string,
  frameCount: number,
  recodable: FrameRecoding = () => false,
): FrameChoice {
  const info = transferSyntaxInfo(stored);
  const native = info !== undefined && !info.encapsulated && !info.deflated;
  const compressedType = compressedMediaType(stored);
  let singlePartRefused = false;
  for (const range of byQuality(accept)) {
    const multipart = range.type === 'multipart';
    const mediaType = multipart
      ? (partType(range) ?? 'application/octet-stream')
      : isAny(range)
        ? '*/*'
        : `${range.type}/${range.subtype}`;
    const requested = unquote(range.parameters['transfer-syntax']);
    if (!multipart && !isAny(range) && frameCount > 1) {
      singlePartRefused = true;
      continue;
    }
    const asMultipart = multipart || isAny(range);
    const answer = (type: string, transferSyntax: string) => ({
      multipart: asMultipart,
      mediaType: type,
      transferSyntax,
    });
    if (mediaType === 'application/octet-stream' || mediaType === '*/*') {
      const syntax = requested ?? (mediaType === '*/*' ? ANY : EXPLICIT_VR_LITTLE_ENDIAN);
      if (syntax === ANY) return answer('application/octet-stream', stored);
      if (syntax === EXPLICIT_VR_LITTLE_ENDIAN && (native || recodable(stored, syntax))) {
        return answer('application/octet-stream', syntax);
      }
      if (syntax === stored && !info?.deflated) return answer('application/octet-stream', stored);
      continue;
    }
    const defaultSyntax = DEFAULT_SYNTAX[mediaType];
    if (defaultSyntax === undefined) continue;
    // As stored when the stored syntax is of this media type and no other is named.
    const syntax =
      requested === undefined || requested === ANY
        ? compressedType === mediaType
          ? stored
          : defaultSyntax
        : requested;
    if (compressedMediaType(syntax) !== mediaType) continue;
    if (syntax === stored || recodable(stored, syntax)) return answer(mediaType, syntax);
  }
  if (singlePartRefused) {
    throw new DicomwebError(
      'BadRequest',
      'A single-part media type can carry one frame only; ask for multipart/related to get several.',
    );
  }
  const offers = info?.deflated
    ? 'nothing frame by frame for a deflated instance; retrieve the whole instance instead'
    : `application/octet-stream with transfer-syntax=* (the frames as stored in ${stored})${
        compressedType ? ` or ${compressedType}` : ''
      }${native || recodable(stored, EXPLICIT_VR_LITTLE_ENDIAN) ? ', or 1.2.840.10008.1.2.1 (uncompressed)' : ''}${
        recodable(stored, '1.2.840.10008.1.2.4.90')
          ? ', image/jp2, image/jphc, image/jls or image/dicom-rle (lossless)'
          : ''
      }; docs/conformance.md lists which stored syntax can be re-coded to which`;
  throw new DicomwebError(
    'NotAcceptable',
    `None of the accepted media types can be served for these frames. Available: ${offers}.`,
  );
}
