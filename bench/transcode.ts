/**
 * Transcoding (tc): a series of 512×512 16-bit CT instances stored as JPEG 2000 lossless,
 * retrieved through the server as explicit VR little endian (decoded frame by frame), beside the
 * raw blob read of the same stored bytes and the server's `transfer-syntax=*` retrieve of them,
 * in the same run. Codec choice (cc): per-frame decode and encode speed, first-use time and
 * install size of each candidate codec on the same CT frame, in this process (docs/codecs.md).
 * BENCH_TRANSCODE_INSTANCES (100) sets the series size.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Decoder } from 'jpeg-lossless-decoder-js';
import { decodeFrame } from '../src/dicom/codecs/decode-frame.js';
import { encodeFrame } from '../src/dicom/codecs/encode-frame.js';
import { construct, lazyModule, wasmDecode, type WasmDecoder } from '../src/dicom/codecs/wasm-module.js';
import { transcode } from '../src/dicom/transcode/transcode.js';
import { isInstanceBlobName } from '../src/storage/keys.js';
import { compressed, describeImage, hasTool, imagePixels, nativeImage, parse } from '../support/codec-corpus.js';
import { newInstanceUids } from '../support/dicom-builder.js';
import { freshStorage, stowAll, withServer, type BenchContext } from './context.js';
import { watchOtherLoad } from './machine-load.js';
import { mapPool, median, MiB, takingTurns, timed } from './measure.js';
import { emptySection, type SectionResult, type TargetCheck } from './report.js';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const J2K_LOSSLESS = '1.2.840.10008.1.2.4.90';

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield await Promise.resolve(bytes);
}

/** Reads a response to its end, counting bytes without keeping them. */
async function drain(response: Response): Promise<number> {
  if (response.status !== 200 || !response.body) throw new Error(`retrieve answered ${response.status}`);
  let bytes = 0;
  for await (const chunk of response.body) bytes += (chunk as Uint8Array).byteLength;
  return bytes;
}

export async function transcodeSection(context: BenchContext): Promise<SectionResult> {
  const count = Number(process.env['BENCH_TRANSCODE_INSTANCES'] ?? 100);
  const { studyInstanceUid, seriesInstanceUid } = newInstanceUids();
  const files: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const { file } = nativeImage({ kind: 'ct', seed: i + 1 }, newInstanceUids(studyInstanceUid, seriesInstanceUid));
    files.push(await collect(transcode(once(file), EXPLICIT_LE, J2K_LOSSLESS)));
    if (i % 25 === 24) context.progress(`tc: encoded ${i + 1}/${count} CT instances as JPEG 2000 lossless`);
  }
  const storedBytes = files.reduce((sum, file) => sum + file.length, 0);
  const nativeBytes = count * 512 * 512 * 2;
  const repeats = context.settings.readRepeats;
  const storage = freshStorage(context.target, 'tc');
  const concurrency = 1;
  const seconds = { decoded: [] as number[], stored: [] as number[], raw: [] as number[] };
  let decodedBytes = 0;
  const otherLoad = watchOtherLoad();
  let peakRss = 0;
  await withServer(storage, 4, async (server, agent) => {
    await stowAll(agent, server.baseUrl, files, 10, 2);
    const series = `${server.baseUrl}/v2/studies/${studyInstanceUid}/series/${seriesInstanceUid}`;
    const container = context.target.blobs.getContainerClient(storage.container);
    const blobs: string[] = [];
    for await (const blob of container.listBlobsFlat()) if (isInstanceBlobName(blob.name)) blobs.push(blob.name);
    const get = (syntax: string) => async () => {
      const { ms, value } = await timed(() =>
        fetch(series, {
          headers: { accept: `multipart/related; type="application/dicom"; transfer-syntax=${syntax}` },
        }).then(drain),
      );
      if (syntax === EXPLICIT_LE) decodedBytes = value;
      seconds[syntax === '*' ? 'stored' : 'decoded'].push(ms / 1000);
    };
    const raw = async () => {
      const { ms } = await timed(() =>
        mapPool(blobs, concurrency, async (name) => {
          await container.getBlobClient(name).downloadToBuffer();
        }),
      );
      seconds.raw.push(ms / 1000);
    };
    await server.resetPeak();
    for (let run = 0; run < repeats; run++) {
      await takingTurns(run, get(EXPLICIT_LE), raw);
      await get('*')();
      context.progress(
        `tc run ${run + 1}/${repeats}: decode ${seconds.decoded.at(-1)?.toFixed(2)} s, as stored ${seconds.stored.at(-1)?.toFixed(2)} s, raw ${seconds.raw.at(-1)?.toFixed(2)} s`,
      );
    }
    peakRss = (await server.memory()).peakRssBytes;
  });
  const share = otherLoad();
  const rate = (bytes: number, list: number[]) => bytes / MiB / median(list);
  const decodedRate = rate(storedBytes, seconds.decoded);
  const rawRate = rate(storedBytes, seconds.raw);
  const checks: TargetCheck[] = [
    {
      name: `tc: ${count}-instance JPEG 2000 lossless CT series (512×512×16) retrieved as explicit VR LE vs raw blob read`,
      value: `${decodedRate.toFixed(1)} MiB/s of stored J2K (${rate(nativeBytes, seconds.decoded).toFixed(1)} MiB/s of decoded pixels, ${(count / median(seconds.decoded)).toFixed(1)} inst/s) vs raw ${rawRate.toFixed(1)} MiB/s = ${(decodedRate / rawRate).toFixed(3)}; as stored (*) through the server ${rate(storedBytes, seconds.stored).toFixed(1)} MiB/s; server peak RSS ${(peakRss / MiB).toFixed(0)} MiB; ${(storedBytes / MiB).toFixed(1)} MiB stored, ${(decodedBytes / MiB).toFixed(1)} MiB sent (medians of ${repeats}, other load ${share === undefined ? '?' : `${(share * 100).toFixed(0)} %`})`,
      target: 'reported (no target in #14)',
      met: undefined,
    },
  ];
  return {
    ...emptySection(),
    checks,
    notes: [
      'tc: one series GET at a time (multipart, all instances), decoded by the server one frame at a time on one core; raw downloads the same instance blobs one at a time with the SDK. Both read the same stored bytes; MiB/s is stored (compressed) bytes per second unless said.',
    ],
  };
}

const CT = describeImage({ kind: 'ct' });

function packageSize(name: string): number {
  const walk = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce(
      (sum, entry) => sum + (entry.isDirectory() ? walk(join(dir, entry.name)) : statSync(join(dir, entry.name)).size),
      0,
    );
  return walk(join(import.meta.dirname, '..', 'node_modules', name));
}

/** Median ms of `runs` calls after one warm-up call. */
async function perCall(runs: number, work: () => unknown): Promise<number> {
  await work();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await work();
    samples.push(performance.now() - started);
  }
  return median(samples);
}

/** The first fragment of a Part 10 file's encapsulated Pixel Data. */
function firstFragment(file: Buffer): Buffer {
  const fragment = parse(file).elements['x7fe00010']?.fragments?.[0];
  if (!fragment) throw new Error('no fragment');
  return file.subarray(fragment.position, fragment.position + fragment.length);
}

export async function codecChoiceSection(context: BenchContext): Promise<SectionResult> {
  const pixels = imagePixels({ kind: 'ct' });
  const frameMiB = pixels.length / MiB;
  const runs = 10;
  const rows: string[] = [];
  const checks: TargetCheck[] = [];
  const j2k = (await encodeFrame(J2K_LOSSLESS, pixels, CT)).bytes;
  const htj2k = (await encodeFrame('1.2.840.10008.1.2.4.201', pixels, CT)).bytes;
  const jls = (await encodeFrame('1.2.840.10008.1.2.4.80', pixels, CT)).bytes;
  const rle = (await encodeFrame('1.2.840.10008.1.2.5', pixels, CT)).bytes;
  const native = nativeImage({ kind: 'ct' }).file;
  const jpegLossless = hasTool('dcmcjpeg')
    ? firstFragment(compressed(native, '1.2.840.10008.1.2.4.70') ?? native)
    : undefined;
  const wasm = async (label: string, specifier: string, className: string, encoded: Uint8Array, size: string) => {
    const { ms: initMs, value: module } = await timed(lazyModule(specifier));
    const ms = await perCall(runs, () => wasmDecode(construct(module, className) as WasmDecoder, encoded));
    rows.push(
      `${label}: decode ${(frameMiB / (ms / 1000)).toFixed(1)} MiB/s (${ms.toFixed(1)} ms/frame), first use ${initMs.toFixed(0)} ms, package ${size}`,
    );
  };
  const size = (name: string) => `${(packageSize(name) / MiB).toFixed(1)} MiB`;
  await wasm(
    'J2K (4.90) OpenJPEG decode-only build',
    '@cornerstonejs/codec-openjpeg/decodewasmjs',
    'J2KDecoder',
    j2k,
    size('@cornerstonejs/codec-openjpeg'),
  );
  await wasm(
    'J2K (4.90) OpenJPEG full build',
    '@cornerstonejs/codec-openjpeg/wasmjs',
    'J2KDecoder',
    j2k,
    size('@cornerstonejs/codec-openjpeg'),
  );
  await wasm(
    'HTJ2K (4.201) OpenJPH',
    '@cornerstonejs/codec-openjph/wasmjs',
    'HTJ2KDecoder',
    htj2k,
    size('@cornerstonejs/codec-openjph'),
  );
  await wasm(
    'HTJ2K (4.201) OpenJPEG full build',
    '@cornerstonejs/codec-openjpeg/wasmjs',
    'J2KDecoder',
    htj2k,
    size('@cornerstonejs/codec-openjpeg'),
  );
  await wasm(
    'JPEG-LS (4.80) CharLS decode-only build',
    '@cornerstonejs/codec-charls/decodewasmjs',
    'JpegLSDecoder',
    jls,
    size('@cornerstonejs/codec-charls'),
  );
  await wasm(
    'JPEG-LS (4.80) CharLS full build',
    '@cornerstonejs/codec-charls/wasmjs',
    'JpegLSDecoder',
    jls,
    size('@cornerstonejs/codec-charls'),
  );
  if (jpegLossless) {
    const buffer = jpegLossless.buffer.slice(
      jpegLossless.byteOffset,
      jpegLossless.byteOffset + jpegLossless.byteLength,
    );
    const ms = await perCall(runs, () => new Decoder().decode(buffer as ArrayBuffer, 0, buffer.byteLength, 2));
    rows.push(
      `JPEG lossless SV1 (4.70, dcmcjpeg) jpeg-lossless-decoder-js: decode ${(frameMiB / (ms / 1000)).toFixed(1)} MiB/s (${ms.toFixed(1)} ms/frame), package ${size('jpeg-lossless-decoder-js')}`,
    );
  }
  const jpeg12 = hasTool('dcmcjpeg')
    ? firstFragment(compressed(native, '1.2.840.10008.1.2.4.51') ?? native)
    : undefined;
  if (jpeg12) {
    const decode12 = () => decodeFrame('1.2.840.10008.1.2.4.51', jpeg12, CT);
    const { ms: initMs } = await timed(decode12);
    const ms = await perCall(runs, decode12);
    rows.push(
      `JPEG extended 12-bit (4.51, dcmcjpeg) dcmjs-codecs: decode ${(frameMiB / (ms / 1000)).toFixed(1)} MiB/s (${ms.toFixed(1)} ms/frame), first use ${initMs.toFixed(0)} ms, package ${size('dcmjs-codecs')} + dcmjs ${size('dcmjs')}`,
    );
  }
  const ours = async (label: string, uid: string, encoded: Uint8Array) => {
    const ms = await perCall(runs, () => decodeFrame(uid, encoded, CT));
    rows.push(`${label}: decode ${(frameMiB / (ms / 1000)).toFixed(1)} MiB/s (${ms.toFixed(1)} ms/frame)`);
  };
  await ours('RLE (1.2.5) TypeScript', '1.2.840.10008.1.2.5', rle);
  for (const [label, uid] of [
    ['J2K lossless (OpenJPEG)', J2K_LOSSLESS],
    ['HTJ2K lossless (OpenJPH)', '1.2.840.10008.1.2.4.201'],
    ['JPEG-LS lossless (CharLS)', '1.2.840.10008.1.2.4.80'],
    ['RLE (TypeScript)', '1.2.840.10008.1.2.5'],
  ] as const) {
    let bytes = 0;
    const ms = await perCall(runs, async () => {
      bytes = (await encodeFrame(uid, pixels, CT)).bytes.length;
    });
    rows.push(
      `encode ${label}: ${(frameMiB / (ms / 1000)).toFixed(1)} MiB/s (${ms.toFixed(1)} ms/frame), ratio ${(pixels.length / bytes).toFixed(2)}:1`,
    );
  }
  context.progress(`cc: ${rows.length} codec figures`);
  for (const row of rows)
    checks.push({
      name: `cc ${row.split(':')[0]}`,
      value: row.slice(row.indexOf(':') + 2),
      target: 'reported',
      met: undefined,
    });
  return {
    ...emptySection(),
    checks,
    notes: [
      `cc: one 512×512 16-bit (12 stored) CT-like frame (${frameMiB.toFixed(2)} MiB), median of ${runs} calls after a warm-up, in the bench process on this machine; "first use" is loading and instantiating the WebAssembly module.`,
    ],
  };
}
