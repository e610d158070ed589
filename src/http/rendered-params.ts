import { RENDERED_MEDIA_TYPES, type RenderedMediaType, type Viewport } from '../dicom/render/image-encoder.js';
import type { VoiFunction, WindowSetting } from '../dicom/render/render-attributes.js';
import { DicomwebError } from '../dicomweb/errors.js';
import type { MediaRange } from './media-type.js';

/**
 * The rendered media type and query parameters of a rendered or thumbnail request (PS3.18
 * 8.3.3.1, 8.3.5.1): `accept`, `quality`, `viewport`, `window`. Bad values are 400; other
 * parameters (annotation, charset, iccprofile) are ignored, as PS3.18 lets an origin server do.
 */

/** JPEG quality when the request names none. */
export const DEFAULT_QUALITY = 90;
/** The largest viewport side: bounds the memory of one rendered image (4096² RGB is 48 MiB). */
export const MAX_VIEWPORT = 4096;
/** Thumbnail size when the request names no viewport (it fits in 128×128, aspect ratio kept). */
export const DEFAULT_THUMBNAIL_VIEWPORT: Viewport = { width: 128, height: 128 };

export interface RenderedChoice {
  readonly mediaType: RenderedMediaType;
  /** A multipart/related answer with one part, for clients that ask for it. */
  readonly multipart: boolean;
}

const SUPPORTED = RENDERED_MEDIA_TYPES.join(', ');

function imageType(type: string, subtype: string): RenderedMediaType | undefined {
  if (type === '*' || (type === 'image' && subtype === '*')) return 'image/jpeg';
  const named = `${type}/${subtype}` as RenderedMediaType;
  return RENDERED_MEDIA_TYPES.includes(named) ? named : undefined;
}

/**
 * The rendered media type the request accepts best (higher q first, then header order): JPEG
 * for `*` and `image/*`; multipart/related with an image `type` gives a one-part multipart. 406
 * when none is one of ours.
 */
export function negotiateRendered(accept: readonly MediaRange[]): RenderedChoice {
  const ranges = accept.filter((range) => range.q > 0).sort((a, b) => b.q - a.q);
  for (const range of ranges) {
    if (range.type === 'multipart' && (range.subtype === 'related' || range.subtype === '*')) {
      const [type = '', subtype = ''] = (range.parameters['type'] ?? '').toLowerCase().split('/');
      const mediaType = imageType(type, subtype);
      if (mediaType) return { mediaType, multipart: true };
      continue;
    }
    const mediaType = imageType(range.type, range.subtype);
    if (mediaType) return { mediaType, multipart: false };
  }
  throw new DicomwebError(
    'NotAcceptable',
    `Rendered resources are served as ${SUPPORTED} (image/jpeg by default); the request accepts none of them.`,
  );
}

/** The one value of a query parameter; the same parameter twice is ambiguous. */
function single(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name);
  if (values.length > 1) throw new DicomwebError('BadRequest', `The query parameter ${name} is given more than once.`);
  return values[0];
}

const INTEGER = /^\d+$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

export function parseQuality(params: URLSearchParams): number {
  const text = single(params, 'quality');
  if (text === undefined) return DEFAULT_QUALITY;
  const quality = Number(text);
  if (!INTEGER.test(text.trim()) || quality < 1 || quality > 100) {
    throw new DicomwebError('BadRequest', `quality=${text.slice(0, 40)} is not an integer from 1 to 100.`);
  }
  return quality;
}

function viewportSide(text: string, name: string): number {
  const value = Number(text);
  if (!INTEGER.test(text.trim()) || value < 1 || value > MAX_VIEWPORT) {
    throw new DicomwebError(
      'BadRequest',
      `The viewport's ${name} "${text.slice(0, 40)}" is not an integer from 1 to ${MAX_VIEWPORT}.`,
    );
  }
  return value;
}

function optionalDecimal(text: string | undefined, name: string, check: (n: number) => boolean, rule: string) {
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  if (!DECIMAL.test(text.trim()) || !check(value)) {
    throw new DicomwebError('BadRequest', `The viewport's ${name} "${text.slice(0, 40)}" ${rule}.`);
  }
  return value;
}

/**
 * `viewport=vw,vh[,sx,sy,sw,sh]`: the output fits inside vw×vh with its aspect ratio kept; sx,sy
 * (default 0) and sw,sh (default the rest of the image; negative flips) select the source region.
 * Thumbnails take vw,vh only.
 */
export function parseViewport(params: URLSearchParams, allowRegion: boolean): Viewport | undefined {
  const text = single(params, 'viewport');
  if (text === undefined) return undefined;
  const fields = text.split(',');
  if (fields.length !== 2 && !(allowRegion && fields.length === 6)) {
    throw new DicomwebError(
      'BadRequest',
      `viewport=${text.slice(0, 80)} must be ${allowRegion ? 'vw,vh or vw,vh,sx,sy,sw,sh' : 'vw,vh'}.`,
    );
  }
  const [vw = '', vh = '', sx, sy, sw, sh] = fields;
  const viewport = { width: viewportSide(vw, 'width'), height: viewportSide(vh, 'height') };
  if (fields.length === 2) return viewport;
  const position = (n: number) => n >= 0;
  const size = (n: number) => n !== 0;
  const region = {
    x: optionalDecimal(sx, 'sx', position, 'is not a number of 0 or more') ?? 0,
    y: optionalDecimal(sy, 'sy', position, 'is not a number of 0 or more') ?? 0,
    width: optionalDecimal(sw, 'sw', size, 'is not a non-zero number'),
    height: optionalDecimal(sh, 'sh', size, 'is not a non-zero number'),
  };
  return { ...viewport, region };
}

const FUNCTIONS: Readonly<Record<string, VoiFunction>> = {
  linear: 'LINEAR',
  'linear-exact': 'LINEAR_EXACT',
  linear_exact: 'LINEAR_EXACT',
  sigmoid: 'SIGMOID',
};

/**
 * `window=center,width[,function]` (PS3.18 8.3.5.1.4): the VOI function is linear, linear-exact
 * or sigmoid (the Window Center/Width and VOI LUT Function of PS3.3 C.11.2.1.2); linear by default.
 */
export function parseWindow(params: URLSearchParams): WindowSetting | undefined {
  const text = single(params, 'window');
  if (text === undefined) return undefined;
  const [centerText = '', widthText = '', fn = 'linear', ...extra] = text.split(',').map((field) => field.trim());
  const chosen = FUNCTIONS[fn.toLowerCase()];
  if (extra.length > 0 || !DECIMAL.test(centerText) || !DECIMAL.test(widthText) || !chosen) {
    throw new DicomwebError(
      'BadRequest',
      `window=${text.slice(0, 80)} must be center,width,function with numbers and a function of linear, linear-exact or sigmoid.`,
    );
  }
  const width = Number(widthText);
  if (chosen === 'LINEAR' ? width < 1 : width <= 0) {
    throw new DicomwebError(
      'BadRequest',
      `The window width ${widthText} is too small: ${chosen === 'LINEAR' ? 'linear needs 1 or more' : 'it must be above 0'}.`,
    );
  }
  return { center: Number(centerText), width, function: chosen };
}
