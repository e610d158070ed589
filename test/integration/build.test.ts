import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

describe('the deployable build', () => {
  it('compiles with tsconfig.build.json and loads under plain Node, as the Functions host loads it, codecs included', () => {
    const out = mkdtempSync(join(tmpdir(), 'dicomweb-build-'));
    try {
      const tsc = spawnSync(
        join(root, 'node_modules', '.bin', 'tsc'),
        ['-p', join(root, 'tsconfig.build.json'), '--outDir', out],
        {
          encoding: 'utf8',
        },
      );
      expect(tsc.stdout + tsc.stderr).toBe('');
      copyFileSync(join(root, 'package.json'), join(out, 'package.json'));
      symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'));
      // No tsx, no vite: Node's own ESM loader, where CommonJS packages expose only a default export.
      const load = spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          [
            "await import('./functions/index.js'); await import('./src/host/node-host.js');",
            // The WebAssembly codecs resolve their glue and .wasm files from the compiled output too.
            "const { decodeFrame } = await import('./src/dicom/codecs/decode-frame.js');",
            "const { encodeFrame } = await import('./src/dicom/codecs/encode-frame.js');",
            "const d = { rows: 8, columns: 8, samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 16, highBit: 15, pixelRepresentation: 0, photometricInterpretation: 'MONOCHROME2', planarConfiguration: 0 };",
            'const pixels = new Uint8Array(128).map((_, i) => i);',
            "for (const ts of ['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.80']) {",
            '  const back = await decodeFrame(ts, (await encodeFrame(ts, pixels, d)).bytes, d);',
            '  if (Buffer.compare(back.pixels, pixels) !== 0) throw new Error(ts);',
            '}',
            "const jpeg = await decodeFrame('1.2.840.10008.1.2.4.50', new Uint8Array(8), { ...d, bitsAllocated: 8, bitsStored: 8 }).catch((e) => e);",
            "if (jpeg.name !== 'CodecError' || /could not be loaded/.test(jpeg.message)) throw jpeg;",
            // 12-bit JPEG: dcmjs-codecs' bundle finds its .wasm from the build too (the frame itself is bad).
            "const jpeg12 = await decodeFrame('1.2.840.10008.1.2.4.51', new Uint8Array(8), { ...d, bitsStored: 12 }).catch((e) => e);",
            "if (jpeg12.name !== 'CodecError' || /could not be loaded/.test(jpeg12.message)) throw jpeg12;",
            "console.log('loaded');",
          ].join('\n'),
        ],
        {
          cwd: out,
          encoding: 'utf8',
          // What the Bicep sets: without storage endpoints and Entra settings the entry point refuses to load.
          env: {
            ...process.env,
            DICOMWEB_BLOB_ENDPOINT: 'https://account.blob.core.windows.net',
            DICOMWEB_TABLE_ENDPOINT: 'https://account.table.core.windows.net',
            DICOMWEB_AUTH_TENANT_ID: '00000000-0000-0000-0000-000000000000',
            DICOMWEB_AUTH_AUDIENCE: 'api://dicomweb',
          },
        },
      );
      // Outside the Functions host the library only warns that it runs in test mode.
      const errors = load.stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('WARNING:'));
      expect(errors).toEqual([]);
      expect(load.stdout.trim().split('\n').at(-1)).toBe('loaded');
      // The package's bin: the CLI runs from the build under plain Node, and the client has its types.
      const cli = spawnSync(process.execPath, ['src/cli/main.js', 'upload', '--help'], { cwd: out, encoding: 'utf8' });
      expect(cli.stderr).toBe('');
      expect(cli.stdout).toContain('Usage: dicomweb upload [options] <paths...>');
      expect(existsSync(join(out, 'src', 'client', 'index.d.ts'))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    // A whole tsc build with declarations takes 30 s or more on a busy 2-core machine.
  }, 180_000);
});
