/** The pixel layout of a stored instance, read from its DICOM JSON metadata (the sidecar). */
import { describePixels, type PixelAttributes } from '../dicom/codecs/describe-pixels.js';
import type { PixelDescription } from '../dicom/codecs/pixel-description.js';
import { DicomwebError } from './errors.js';

function jsonAttributes(metadata: Record<string, unknown>): PixelAttributes {
  const first = (tag: number): unknown => {
    const key = tag.toString(16).toUpperCase().padStart(8, '0');
    const element = metadata[key] as { Value?: unknown[] } | undefined;
    return element?.Value?.[0];
  };
  return {
    number: (tag) => {
      const value = first(tag);
      return typeof value === 'number' ? value : typeof value === 'string' && value !== '' ? Number(value) : undefined;
    },
    text: (tag) => {
      const value = first(tag);
      return typeof value === 'string' ? value.trim() : undefined;
    },
  };
}

/** The instance's PixelDescription; 406 when its image attributes do not allow re-coding. */
export function pixelDescriptionOf(metadata: Record<string, unknown>): PixelDescription {
  const description = describePixels(jsonAttributes(metadata));
  if (typeof description === 'string') {
    throw new DicomwebError(
      'NotAcceptable',
      `${description} Its frames can only be had as stored (transfer-syntax=*).`,
    );
  }
  return description;
}
