import { DicomAttributes } from '../dicom/attributes.js';
import { toDicomJson } from '../dicom/dicom-json-model.js';
import { encapsulatedFrames, nativeFrames, type FrameRanges } from '../dicom/frame-table.js';
import type { EncapsulatedLayout } from '../dicom/fragments.js';
import type { DicomHeader } from '../dicom/header-reader.js';
import { Tag, type TagDef } from '../dicom/tags.js';
import { INSTANCE_URL, type InstanceSidecar } from './instance-sidecar.js';

/** Read only for the frame size here; not in Tag, which lists what search can include. */
const PHOTOMETRIC_INTERPRETATION: TagDef = { keyword: 'PhotometricInterpretation', tag: '00280004', vr: 'CS' };

/** Binary values up to this size are inlined in metadata; larger ones get a BulkDataURI. */
const INLINE_BINARY_MAX = 1024;

/** Where each frame lies in the stored file, or null when the instance has no locatable frames. */
function frameTable(header: DicomHeader, layout: EncapsulatedLayout | undefined): FrameRanges[] | null {
  const { pixelDataOffset, pixelDataLength } = header;
  if (pixelDataOffset === undefined || pixelDataLength === undefined) return null;
  const attributes = new DicomAttributes(header.dataSet);
  const numberOfFrames = attributes.number(Tag.NumberOfFrames) ?? 1;
  if (pixelDataLength === -1) return (layout && encapsulatedFrames(layout, numberOfFrames)) ?? null;
  return (
    nativeFrames(pixelDataOffset, pixelDataLength, {
      rows: attributes.number(Tag.Rows) ?? 0,
      columns: attributes.number(Tag.Columns) ?? 0,
      samplesPerPixel: attributes.number(Tag.SamplesPerPixel) ?? 1,
      bitsAllocated: attributes.number(Tag.BitsAllocated) ?? 0,
      numberOfFrames,
      photometricInterpretation: attributes.string(PHOTOMETRIC_INTERPRETATION),
    }) ?? null
  );
}

/**
 * The sidecar of a stored instance: its DICOM JSON (binary values by reference, Pixel Data
 * pointing at the instance's pixeldata resource) and its frame table.
 */
export function buildSidecar(header: DicomHeader, layout: EncapsulatedLayout | undefined): InstanceSidecar {
  const deflated = header.transferSyntax.deflated;
  // Pixel Data is found by its offset in the parsed bytes (inflated ones for a deflated file).
  const pixelOffset = header.dataSet.elements['x7fe00010']?.dataOffset;
  const metadata = toDicomJson(header.dataSet, {
    // Offsets in a deflated file are not byte positions of the blob: inline what is reasonable.
    inlineBinaryMaxBytes: deflated ? 64 * 1024 : INLINE_BINARY_MAX,
    littleEndian: header.transferSyntax.littleEndian,
    bulkDataUri: (offset, length) =>
      offset === pixelOffset || length < 0
        ? `${INSTANCE_URL}/pixeldata`
        : `${INSTANCE_URL}/bulkdata/${offset}-${length}`,
  });
  return { metadata, frames: frameTable(header, layout) };
}
