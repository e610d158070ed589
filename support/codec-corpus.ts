/**
 * A regenerable corpus of compressed instances: synthetic uncompressed images (a CT-like 16-bit
 * phantom, 8-bit grey and RGB, multi-frame) written in code, then compressed with the Debian tools
 * (dcmtk's dcmcjpeg/dcmcjpls/dcmcrle, gdcm's gdcmconv) in a temporary folder. Nothing is committed;
 * a tool that is missing yields undefined so its tests skip and say why.
 */
import dicomParser from 'dicom-parser';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInstance, newInstanceUids } from './dicom-builder.js';

export interface ImageSpec {
  readonly rows?: number;
  readonly columns?: number;
  readonly frames?: number;
  /** 16-bit CT (12 bits stored, or 16 signed), 8-bit grey, or 8-bit RGB. */
  readonly kind?: 'ct' | 'signed-ct' | 'grey8' | 'rgb';
  readonly seed?: number;
}

/** A small deterministic pseudo-random generator, so every run makes the same pixels. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
}

/** The native pixel bytes of an image: smooth anatomy-like shapes with noise, as CT and photos have. */
export function imagePixels(spec: ImageSpec = {}): Buffer {
  const { rows = 512, columns = 512, frames = 1, kind = 'ct', seed = 1 } = spec;
  const next = random(seed);
  const samples = kind === 'rgb' ? 3 : 1;
  const bytes = kind === 'ct' || kind === 'signed-ct' ? 2 : 1;
  const out = Buffer.alloc(rows * columns * samples * bytes * frames);
  let o = 0;
  for (let f = 0; f < frames; f++) {
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < columns; x++) {
        const dx = (x - columns / 2) / columns;
        const dy = (y - rows / 2) / rows;
        const body = dx * dx + dy * dy < 0.16 ? 1 : 0;
        const organ = Math.sin((x + f * 7) / 23) * Math.cos(y / 31);
        for (let s = 0; s < samples; s++) {
          const noise = next() - 0.5;
          if (kind === 'ct') out.writeUInt16LE(Math.round(body * (1000 + 300 * organ) + 24 + 20 * noise), o);
          else if (kind === 'signed-ct')
            out.writeInt16LE(Math.round(body * (1024 + 300 * organ) - 1024 + 20 * noise), o);
          else out[o] = Math.max(0, Math.min(255, Math.round(body * 140 + 60 * organ + 60 + s * 30 + 8 * noise)));
          o += bytes;
        }
      }
    }
  }
  return out;
}

/** The Image Pixel attributes `nativeImage` writes for `spec` (the shape of the codecs' PixelDescription). */
export function describeImage(spec: ImageSpec = {}) {
  const kind = spec.kind ?? 'ct';
  const sixteen = kind === 'ct' || kind === 'signed-ct';
  return {
    rows: spec.rows ?? 512,
    columns: spec.columns ?? 512,
    samplesPerPixel: kind === 'rgb' ? 3 : 1,
    bitsAllocated: sixteen ? 16 : 8,
    bitsStored: kind === 'ct' ? 12 : sixteen ? 16 : 8,
    highBit: kind === 'ct' ? 11 : sixteen ? 15 : 7,
    pixelRepresentation: kind === 'signed-ct' ? (1 as const) : (0 as const),
    photometricInterpretation: kind === 'rgb' ? 'RGB' : 'MONOCHROME2',
    planarConfiguration: 0 as const,
  };
}

const us = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return { vr: 'US', value: b };
};

/** An explicit VR little endian Part 10 image of `spec`, with its pixel bytes. */
export function nativeImage(spec: ImageSpec = {}, uids = newInstanceUids()): { file: Buffer; pixels: Buffer } {
  const { frames = 1 } = spec;
  const pixels = imagePixels(spec);
  const d = describeImage(spec);
  const file = buildInstance({
    ...uids,
    sopClassUid: frames > 1 ? '1.2.840.10008.5.1.4.1.1.7.3' : undefined,
    attributes: {
      '00280002': us(d.samplesPerPixel),
      '00280004': { vr: 'CS', value: d.photometricInterpretation },
      ...(d.samplesPerPixel > 1 ? { '00280006': us(0) } : {}),
      ...(frames > 1 ? { '00280008': { vr: 'IS', value: String(frames) } } : {}),
      '00280010': us(d.rows),
      '00280011': us(d.columns),
      '00280100': us(d.bitsAllocated),
      '00280101': us(d.bitsStored),
      '00280102': us(d.highBit),
      '00280103': us(d.pixelRepresentation),
      '7FE00010': { vr: d.bitsAllocated > 8 ? 'OW' : 'OB', value: pixels },
    },
  });
  return { file, pixels };
}

/** Is a command on the PATH? */
export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}

/** Runs `tool args… in out` on a copy of `input` in a temporary folder; the output file's bytes. */
export function convert(tool: string, args: readonly string[], input: Uint8Array): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'dicomweb-codec-'));
  try {
    const source = join(dir, 'in.dcm');
    const target = join(dir, 'out.dcm');
    writeFileSync(source, input);
    const run = spawnSync(tool, [...args, source, target], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed: ${run.stderr || run.stdout}`);
    return readFileSync(target);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** How the Debian tools make each compressed syntax from an explicit VR little endian file (lossy ones keep the SOP Instance UID, +un, so tests find them). */
export const MAKERS: Readonly<Record<string, { tool: string; args: readonly string[] }>> = {
  '1.2.840.10008.1.2.4.50': { tool: 'dcmcjpeg', args: ['+eb', '+un'] },
  '1.2.840.10008.1.2.4.51': { tool: 'dcmcjpeg', args: ['+ee', '+un'] },
  '1.2.840.10008.1.2.4.57': { tool: 'dcmcjpeg', args: ['+el'] },
  '1.2.840.10008.1.2.4.70': { tool: 'dcmcjpeg', args: ['+e1'] },
  '1.2.840.10008.1.2.4.80': { tool: 'dcmcjpls', args: ['+el'] },
  '1.2.840.10008.1.2.4.81': { tool: 'dcmcjpls', args: ['+en', '+un'] },
  '1.2.840.10008.1.2.4.90': { tool: 'gdcmconv', args: ['--j2k'] },
  '1.2.840.10008.1.2.4.91': { tool: 'gdcmconv', args: ['--j2k', '--lossy', '-q', '40'] },
  '1.2.840.10008.1.2.5': { tool: 'dcmcrle', args: [] },
};

/** `file` compressed into `transferSyntax` by its Debian tool, or undefined when the tool is missing. */
export function compressed(file: Uint8Array, transferSyntax: string): Buffer | undefined {
  const maker = MAKERS[transferSyntax];
  if (!maker) throw new Error(`no tool makes ${transferSyntax}`);
  return hasTool(maker.tool) ? convert(maker.tool, maker.args, file) : undefined;
}

/** The parsed data set of a Part 10 file (to the end of Pixel Data). */
export function parse(file: Uint8Array): dicomParser.DataSet {
  return dicomParser.parseDicom(new Uint8Array(file));
}

/** A native file's Pixel Data value, without its padding byte. */
export function nativePixelData(file: Uint8Array, expectedLength: number): Buffer {
  const dataSet = parse(file);
  const element = dataSet.elements['x7fe00010'];
  if (!element) throw new Error('no Pixel Data');
  return Buffer.from(file.buffer, file.byteOffset + element.dataOffset, expectedLength);
}

/** The largest absolute difference between two sample arrays (unsigned 8-bit samples). */
export function maxDifference(a: Uint8Array, b: Uint8Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return max;
}

/** The largest absolute difference between two arrays of unsigned 16-bit little-endian samples. */
export function maxDifference16(a: Uint8Array, b: Uint8Array): number {
  const view = (x: Uint8Array) => new DataView(x.buffer, x.byteOffset, x.byteLength);
  const [va, vb] = [view(a), view(b)];
  let max = 0;
  for (let i = 0; i + 1 < Math.min(a.length, b.length); i += 2) {
    max = Math.max(max, Math.abs(va.getUint16(i, true) - vb.getUint16(i, true)));
  }
  return max;
}
