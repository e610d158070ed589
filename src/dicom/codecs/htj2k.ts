/**
 * High-Throughput JPEG 2000 (ISO 15444-15), decoded and encoded (reversible, lossless) by OpenJPH
 * (cornerstone's WebAssembly build). Encoded frames use RPCL progression with TLM markers and
 * tile-parts per resolution, which PS3.5 A.4.6 requires of 1.2.840.10008.1.2.4.202 and the other
 * HTJ2K syntaxes allow, so one codestream serves all three.
 */
import type { DecodedFrame, PixelDescription } from './pixel-description.js';
import { decodeWith, decompositions, encoderInfo } from './jpeg-2000.js';
import { construct, lazyModule, wasmEncode, type WasmEncoder } from './wasm-module.js';

const openjph = lazyModule('@cornerstonejs/codec-openjph/wasmjs');

interface HtEncoder extends WasmEncoder {
  setQuality(lossless: boolean, quantizationStep: number): void;
  setDecompositions(levels: number): void;
  setProgressionOrder(order: number): void;
  setTLMMarker(on: boolean): void;
  setTilePartDivisionsAtResolutions(on: boolean): void;
}

/** OpenJPH's progression orders: LRCP 0, RLCP 1, RPCL 2, PCRL 3, CPRL 4. */
const RPCL = 2;

export function decodeHtj2k(encoded: Uint8Array, description: PixelDescription): Promise<DecodedFrame> {
  return decodeWith(openjph, 'HTJ2KDecoder', 'HTJ2K', encoded, description);
}

export async function encodeHtj2k(pixels: Uint8Array, description: PixelDescription): Promise<Uint8Array> {
  const module = await openjph();
  return wasmEncode(
    construct(module, 'HTJ2KEncoder') as HtEncoder,
    encoderInfo(pixels, description),
    pixels,
    (encoder) => {
      encoder.setQuality(true, 0);
      encoder.setDecompositions(decompositions(description));
      encoder.setProgressionOrder(RPCL);
      encoder.setTLMMarker(true);
      encoder.setTilePartDivisionsAtResolutions(true);
    },
  );
}
