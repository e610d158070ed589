/**
 * JPEG baseline (process 1) and extended (process 2 and 4) with 8-bit samples, decoded by
 * libjpeg-turbo (cornerstone's WebAssembly build; 12-bit samples: jpeg-extended-12.ts). Colour
 * frames come out as RGB: the decoder undoes the YCbCr transform and the chroma subsampling of
 * YBR_FULL_422.
 */
import { CodecError } from './codec-error.js';
import { checkGeometry, checkLength } from './frame-layout.js';
import type { DecodedFrame, PixelDescription } from './pixel-description.js';
import { construct, lazyModule, wasmDecode, type WasmDecoder } from './wasm-module.js';

const libjpegTurbo = lazyModule('@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs');

export async function decodeJpegBaseline(encoded: Uint8Array, description: PixelDescription): Promise<DecodedFrame> {
  if (description.bitsStored > 8) {
    throw new CodecError(
      `JPEG baseline (process 1) holds 8-bit samples; this image says ${description.bitsStored} bits stored.`,
    );
  }
  const module = await libjpegTurbo();
  const { info, pixels } = wasmDecode(construct(module, 'JPEGDecoder') as WasmDecoder, encoded);
  checkGeometry(info, description, 'JPEG');
  const colour = description.samplesPerPixel === 3;
  const decoded: PixelDescription = {
    ...description,
    bitsAllocated: 8,
    photometricInterpretation: colour ? 'RGB' : description.photometricInterpretation,
    planarConfiguration: 0,
  };
  checkLength(pixels, decoded, 'JPEG');
  return { pixels, description: decoded };
}
