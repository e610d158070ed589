/**
 * JPEG-LS lossless and near-lossless (ISO 14495-1), decoded and encoded (lossless) by CharLS
 * (cornerstone's WebAssembly build). Frames whose components are not interleaved (ILV none)
 * decode colour-by-plane and are reordered to colour-by-pixel.
 */
import { checkGeometry, checkLength, colourByPixel, encodingPrecision } from './frame-layout.js';
import type { DecodedFrame, PixelDescription } from './pixel-description.js';
import { construct, lazyModule, wasmDecode, wasmEncode, type WasmDecoder, type WasmEncoder } from './wasm-module.js';

const charls = lazyModule('@cornerstonejs/codec-charls/wasmjs');

interface JpegLsDecoder extends WasmDecoder {
  getInterleaveMode(): number;
}

interface JpegLsEncoder extends WasmEncoder {
  setNearLossless(near: number): void;
  setInterleaveMode(mode: number): void;
}

const INTERLEAVE_NONE = 0;
const INTERLEAVE_SAMPLE = 2;

export async function decodeJpegLs(encoded: Uint8Array, description: PixelDescription): Promise<DecodedFrame> {
  const module = await charls();
  const decoder = construct(module, 'JpegLSDecoder') as JpegLsDecoder;
  const { info, pixels, extra } = wasmDecode(decoder, encoded, (codec) => codec.getInterleaveMode());
  checkGeometry(info, description, 'JPEG-LS');
  const planes = info.componentCount > 1 && extra === INTERLEAVE_NONE;
  const decoded: PixelDescription = { ...description, planarConfiguration: 0 };
  checkLength(pixels, decoded, 'JPEG-LS');
  return {
    pixels: planes ? colourByPixel(pixels, { ...decoded, planarConfiguration: 1 }) : pixels,
    description: decoded,
  };
}

/** A lossless JPEG-LS codestream of a colour-by-pixel native frame. */
export async function encodeJpegLs(pixels: Uint8Array, description: PixelDescription): Promise<Uint8Array> {
  const module = await charls();
  const info = {
    width: description.columns,
    height: description.rows,
    // JPEG-LS has no signed samples: two's complement values are coded as their unsigned bit patterns.
    bitsPerSample: encodingPrecision(pixels, { ...description, pixelRepresentation: 0 }),
    componentCount: description.samplesPerPixel,
    isSigned: false,
  };
  return wasmEncode(construct(module, 'JpegLSEncoder') as JpegLsEncoder, info, pixels, (encoder) => {
    encoder.setNearLossless(0);
    if (description.samplesPerPixel > 1) encoder.setInterleaveMode(INTERLEAVE_SAMPLE);
  });
}
