import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanPaths } from '../../src/client/index.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'dicomweb-scan-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const dicom = (path: string): void => {
  writeFileSync(path, buildInstance({ ...newInstanceUids(), pixelBytes: 16 }));
};

describe('scanPaths', () => {
  it('reports every file depth first in name order, folders walked once, whatever it reads ahead', async () => {
    const top = join(root, 'tree');
    mkdirSync(join(top, 'c', 'e'), { recursive: true });
    dicom(join(top, 'a.dcm'));
    writeFileSync(join(top, 'b.txt'), 'not DICOM');
    dicom(join(top, 'c', 'd.dcm'));
    dicom(join(top, 'c', 'e', 'f.dcm'));
    symlinkSync(join(top, 'c'), join(top, 'c', 'e', 'loop')); // back up to c: walked once
    dicom(join(top, 'g.dcm'));
    // More entries than are read ahead at once, so that the order is not that of one batch.
    const many = Array.from({ length: 40 }, (_, i) => `m${String(i).padStart(3, '0')}.dcm`);
    for (const name of [...many].reverse()) dicom(join(top, name));
    symlinkSync(join(top, 'nowhere'), join(top, 'zz-dangling'));

    const seen: { path: string; kind: string }[] = [];
    for await (const file of scanPaths([top])) seen.push({ path: file.path.slice(top.length + 1), kind: file.kind });

    expect(seen).toEqual([
      { path: 'a.dcm', kind: 'dicom' },
      { path: 'b.txt', kind: 'skipped' },
      { path: 'c/d.dcm', kind: 'dicom' },
      { path: 'c/e/f.dcm', kind: 'dicom' },
      { path: 'g.dcm', kind: 'dicom' },
      ...many.map((name) => ({ path: name, kind: 'dicom' })),
      { path: 'zz-dangling', kind: 'skipped' },
    ]);
  });

  it('reports a path that does not exist as skipped, with the reason', async () => {
    const missing = join(root, 'missing');
    const files = [];
    for await (const file of scanPaths([missing])) files.push(file);
    expect(files).toEqual([{ kind: 'skipped', path: missing, reason: expect.stringContaining('ENOENT') as string }]);
  });
});
