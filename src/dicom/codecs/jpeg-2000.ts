/**
 * JPEG 2000 (ISO 15444-1), decoded and encoded (reversible 5/3 wavelet, lossless) by OpenJPEG
 * (cornerstone's WebAssembly build). The decoder undoes a multi-component transform, so
 * YBR_RCT and YBR_ICT frames come out as RGB.
 */
import { checkGeometry, checkLength, encodingPrecision } from './frame-layout.js';
import type { DecodedFrame, PixelDescription } from './pixel-description.js';
import { construct, lazyModule, wasmDecode, wasmEncode, type WasmDecoder, type WasmEncoder } from './wasm-module.js';

// Decoding uses the decode-only build (measured 15–25 % faster, a smaller module); the full
// build, which also encodes, loads only when something is encoded.
const openjpegDecoder = lazyModule('@cornerstonejs/codec-openjpeg/decodewasmjs');
const openjpeg = lazyModule('@cornerstonejs/codec-openjpeg/wasmjs');

interface J2kEncoder extends WasmEncoder {
  setQuality(lossless: boolean, quantizationStep: number): void;
  setDecompositions(levels: number): void;
}

/** Photometric interpretation of samples a JPEG 2000 decoder has returned (the MCT undone). */
export function afterWavelet(photometric: string): string {
  return photometric === 'YBR_RCT' || photometric === 'YBR_ICT' ? 'RGB' : photometric;
}

/** Decodes one JPEG 2000 or HTJ2K codestream with OpenJPEG or OpenJPH (`codec` names the class). */
export async function decodeWith(
  load: () => Promise<Record<string, unknown>>,
  decoderClass: string,
  name: string,
  encoded: Uint8Array,
  description: PixelDescription,
): Promise<DecodedFrame> {
  const module = await load();
  const { info, pixels } = wasmDecode(construct(module, decoderClass) as WasmDecoder, encoded);
  checkGeometry(info, description, name);
  const decoded: PixelDescription = {
    ...description,
    photometricInterpretation: afterWavelet(description.photometricInterpretation),
    planarConfiguration: 0,
  };
  checkLength(pixels, decoded, name);
  return { pixels, description: decoded };
}

export function decodeJpeg2000(encoded: Uint8Array, description: PixelDescription): Promise<DecodedFrame> {
  return decodeWith(openjpegDecoder, 'J2KDecoder', 'JPEG 2000', encoded, description);
}

/** The frame geometry an encoder takes. */
export function encoderInfo(pixels: Uint8Array, description: PixelDescription) {
  return {
    width: description.columns,
    height: description.rows,
    bitsPerSample: encodingPrecision(pixels, description),
    componentCount: description.samplesPerPixel,
    isSigned: description.pixelRepresentation === 1,
    isUsingColorTransform: false,
  };
}

/** Decomposition levels for a frame: five (the usual), fewer for small images. */
export function decompositions(description: PixelDescription): number {
  const side = Math.min(description.rows, description.columns);
  return Math.max(0, Math.min(5, Math.floor(Math.log2(Math.max(1, side))) - 2));
}

/** A lossless JPEG 2000 codestream (J2K, no JP2 wrapper, as PS3.5 A.4.4 wants) of a colour-by-pixel frame. */
export async function encodeJpeg2000(pixels: Uint8Array, description: PixelDescription): Promise<Uint8Array> {
  const module = await openjpeg();
  return wasmEncode(
    construct(module, 'J2KEncoder') as J2kEncoder,
    encoderInfo(pixels, description),
    pixels,
    (encoder) => {
      encoder.setQuality(true, 0);
      encoder.setDecompositions(decompositions(description));
    },
  );
}

const SOC = 0xff4f;
const COD = 0xff52;

/**
 * Whether a JPEG 2000 codestream applies a multi-component transform (its COD segment's MCT
 * byte), which makes RGB samples YBR_RCT (reversible) as PS3.5 §8.2.4 names them.
 */
export function usesMct(codestream: Uint8Array): boolean {
  const view = new DataView(codestream.buffer, codestream.byteOffset, codestream.byteLength);
  if (codestream.byteLength < 4 || view.getUint16(0) !== SOC) return false;
  for (let at = 2; at + 4 <= codestream.byteLength;) {
    const marker = view.getUint16(at);
    if (marker === COD) return at + 8 < codestream.byteLength && codestream[at + 8] === 1;
    // Main header markers all carry a length; a tile-part (SOT) before COD means none was found.
    if (marker === 0xff90) return false;
    at += 2 + view.getUint16(at + 2);
  }
  return false;
}
