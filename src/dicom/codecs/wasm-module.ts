/**
 * The WebAssembly codecs (cornerstone's Emscripten builds of libjpeg-turbo, CharLS, OpenJPEG and
 * OpenJPH): each is compiled and instantiated on first use and that instance serves every later
 * frame. Their decoder and encoder objects live in the WebAssembly heap and are freed after each
 * frame, so the heap holds one frame's buffers at a time.
 */
import { createRequire } from 'node:module';
import { CodecError } from './codec-error.js';

/** What the codecs report about a frame (`getFrameInfo`) and take to encode one. */
export interface WasmFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned: boolean;
  /** OpenJPH's encoder needs it; false keeps RGB samples as they are (no colour transform). */
  isUsingColorTransform?: boolean;
}

export interface WasmDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getFrameInfo(): WasmFrameInfo;
  getDecodedBuffer(): Uint8Array;
  delete(): void;
}

export interface WasmEncoder {
  getDecodedBuffer(info: WasmFrameInfo): Uint8Array;
  encode(): void;
  getEncodedBuffer(): Uint8Array;
  delete(): void;
}

type Factory = (options: {
  print: (text: string) => void;
  printErr: (text: string) => void;
}) => Promise<Record<string, unknown>>;

// The Emscripten glue is CommonJS that finds its .wasm beside itself, so it is required, not imported.
const require = createRequire(import.meta.url);

/** A loader that instantiates the module once; a failed load is retried by the next call. */
export function lazyModule(specifier: string): () => Promise<Record<string, unknown>> {
  let loading: Promise<Record<string, unknown>> | undefined;
  return () => {
    loading ??= (async () => {
      const factory = require(specifier) as Factory;
      // OpenJPEG logs every header it reads; the codecs' own messages reach us as exceptions.
      const quiet = () => undefined;
      return factory({ print: quiet, printErr: quiet });
    })().catch((error: unknown) => {
      loading = undefined;
      throw new CodecError(`The codec ${specifier} could not be loaded: ${String(error)}`);
    });
    return loading;
  };
}

/** A new codec object of the module's class `name`. */
export function construct(module: Record<string, unknown>, name: string): unknown {
  const Class = module[name] as (new () => unknown) | undefined;
  if (typeof Class !== 'function') throw new CodecError(`The codec has no ${name}.`);
  return new Class();
}

/** Runs `use` on a fresh codec object and frees it whatever happens. */
export function withObject<T extends { delete(): void }, R>(object: T, use: (object: T) => R): R {
  try {
    return use(object);
  } catch (error) {
    if (error instanceof CodecError) throw error;
    // Emscripten throws numbers (exception pointers) or strings: say what failed instead.
    const detail =
      error instanceof Error
        ? error.message
        : typeof error === 'string'
          ? error
          : 'the codec failed inside WebAssembly';
    throw new CodecError(`The frame could not be decoded or encoded: ${detail}`);
  } finally {
    object.delete();
  }
}

/** Decodes one codestream; the samples are copied out of the WebAssembly heap before it is freed. */
export function wasmDecode<D extends WasmDecoder, E = undefined>(
  decoder: D,
  encoded: Uint8Array,
  extra?: (decoder: D) => E,
): { info: WasmFrameInfo; pixels: Uint8Array; extra: E | undefined } {
  return withObject(decoder, (codec) => {
    codec.getEncodedBuffer(encoded.byteLength).set(encoded);
    codec.decode();
    const info = codec.getFrameInfo();
    return { info, pixels: copied(codec.getDecodedBuffer()), extra: extra?.(codec) };
  });
}

/** Encodes one frame of native samples with an encoder already configured by `configure`. */
export function wasmEncode<T extends WasmEncoder>(
  encoder: T,
  info: WasmFrameInfo,
  pixels: Uint8Array,
  configure: (encoder: T) => void,
): Uint8Array {
  return withObject(encoder, (codec) => {
    const input = codec.getDecodedBuffer(info);
    if (input.byteLength !== pixels.byteLength) {
      throw new CodecError(`The encoder expected ${input.byteLength} bytes for the frame, not ${pixels.byteLength}.`);
    }
    input.set(pixels);
    configure(codec);
    codec.encode();
    return copied(codec.getEncodedBuffer());
  });
}

/** A copy out of the WebAssembly heap, as a plain Uint8Array (some codecs hand out Uint8ClampedArray). */
function copied(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}
