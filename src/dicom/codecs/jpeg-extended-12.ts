/**
 * JPEG extended (process 2 and 4) with 12-bit samples, decoded by the 12-bit IJG/libjpeg decoder
 * in dcmjs-codecs' WebAssembly build (cornerstone's libjpeg-turbo build is 8-bit only). Used only
 * for frames with more than 8 bits stored; 8-bit JPEG stays with libjpeg-turbo.
 */
import { createRequire } from 'node:module';
import { CodecError } from './codec-error.js';
import { checkLength } from './frame-layout.js';
import type { DecodedFrame, PixelDescription } from './pixel-description.js';

interface ContextInit {
  width: number;
  height: number;
  bitsAllocated: number;
  bitsStored: number;
  samplesPerPixel: number;
  pixelRepresentation: number;
  planarConfiguration: number;
  photometricInterpretation: string;
  encodedBuffer: Uint8Array;
}

interface Context {
  getDecodedBuffer(): Uint8Array;
}

interface DcmjsCodecs {
  Context: new (init: ContextInit) => Context;
  NativeCodecs: {
    initializeAsync(options?: { logCodecsInfo?: boolean; logCodecsTrace?: boolean }): Promise<void>;
    isInitialized(): boolean;
    release(): void;
    decodeJpeg(context: Context, parameters?: { convertColorspaceToRgb?: boolean }): Context;
  };
}

// A CommonJS bundle that reads its .wasm from beside itself: required, not imported.
const require = createRequire(import.meta.url);
let loading: Promise<DcmjsCodecs> | undefined;

function codecs(): Promise<DcmjsCodecs> {
  loading ??= (async () => {
    const library = require('dcmjs-codecs') as DcmjsCodecs;
    if (!library.NativeCodecs.isInitialized()) await library.NativeCodecs.initializeAsync();
    return library;
  })().catch((error: unknown) => {
    loading = undefined;
    throw new CodecError(`The 12-bit JPEG codec (dcmjs-codecs) could not be loaded: ${String(error)}`);
  });
  return loading;
}

export async function decodeJpegExtended12(encoded: Uint8Array, description: PixelDescription): Promise<DecodedFrame> {
  if (description.bitsAllocated !== 16 || description.bitsStored > 12) {
    throw new CodecError(
      `JPEG extended frames of ${description.bitsStored} bits stored in ${description.bitsAllocated} allocated cannot be decoded; 12-bit JPEG needs Bits Allocated 16 and at most 12 bits stored.`,
    );
  }
  const { Context, NativeCodecs } = await codecs();
  const colour = description.samplesPerPixel === 3;
  let result: Context;
  try {
    result = NativeCodecs.decodeJpeg(
      new Context({
        width: description.columns,
        height: description.rows,
        bitsAllocated: 16,
        bitsStored: description.bitsStored,
        samplesPerPixel: description.samplesPerPixel,
        pixelRepresentation: description.pixelRepresentation,
        planarConfiguration: 0,
        photometricInterpretation: description.photometricInterpretation,
        encodedBuffer: encoded,
      }),
      { convertColorspaceToRgb: colour },
    );
  } catch (error) {
    // The codec reports errors by throwing through the WebAssembly stack, which leaves that
    // instance's stack and the frame's buffers behind: drop it, and the next call loads a fresh one.
    NativeCodecs.release();
    loading = undefined;
    throw new CodecError(`The 12-bit JPEG frame could not be decoded: ${String(error)}`);
  }
  const decoded: PixelDescription = {
    ...description,
    photometricInterpretation: colour ? 'RGB' : description.photometricInterpretation,
    planarConfiguration: 0,
  };
  // The context echoes the geometry it was given; the decoded length tells what the stream held.
  const pixels = result.getDecodedBuffer();
  checkLength(pixels, decoded, '12-bit JPEG');
  return { pixels, description: decoded };
}
