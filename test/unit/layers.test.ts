import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkImports,
  documented,
  findCycles,
  importSpecifiers,
  layerOf,
  readImports,
  type ImportEdge,
} from '../../tools/layers.js';

const root = resolve(import.meta.dirname, '../..');

function edge(from: string, to: string, typeOnly = false): ImportEdge {
  return { from, to, line: 1, typeOnly };
}

describe('the layer rules (tools/layers.ts)', () => {
  it('hold for every import in the repository, and no import closes a cycle', () => {
    const { files, edges } = readImports(root);
    expect(files).toContain('src/app.ts');
    expect(edges.length).toBeGreaterThan(300);
    expect(checkImports(files, edges)).toEqual([]);
  });

  it('are the table in docs/development.md', async () => {
    const docPath = join(root, 'docs/development.md');
    const current = readFileSync(docPath, 'utf8');
    expect(await documented(docPath, current)).toBe(current);
  });

  it('refuse an import that runs the wrong way, naming the file, line and rule', () => {
    const files = ['src/dicom/uid.ts', 'src/http/routes.ts'];
    expect(
      checkImports(files, [{ from: 'src/dicom/uid.ts', to: 'src/http/routes.ts', line: 7, typeOnly: true }]),
    ).toEqual([
      'src/dicom/uid.ts:7 a type-only import of src/http/routes.ts: dicom may not import http (dicom may import: `util`)',
    ]);
    expect(
      checkImports(['bench/qido.ts', 'test/helpers/server.ts'], [edge('bench/qido.ts', 'test/helpers/server.ts')]),
    ).toHaveLength(1);
    expect(checkImports([], [edge('src/http/store-handler.ts', 'src/storage/azure-storage.ts', true)])).toHaveLength(1);
  });

  it('allow a types-only layer types, not values', () => {
    const types = edge('src/security/security-options.ts', 'src/http/cors.ts', true);
    expect(checkImports([], [types])).toEqual([]);
    expect(checkImports([], [{ ...types, typeOnly: false }])).toEqual([
      'src/security/security-options.ts:1 imports src/http/cors.ts: security may import only types from http (use `import type`)',
    ]);
  });

  it('give each file the layer of its longest path, and fail a file no layer owns', () => {
    expect(layerOf('src/storage/ports.ts')?.name).toBe('storage ports');
    expect(layerOf('src/storage/memory-storage.ts')?.name).toBe('storage adapters');
    expect(layerOf('src/host/node-host.ts')?.name).toBe('host adapters');
    expect(layerOf('src/host/start.ts')?.name).toBe('composition');
    expect(checkImports(['src/stray.ts'], [])).toEqual(['src/stray.ts: no layer owns it (tools/layers.ts)']);
  });

  it('find cycles inside a layer and through type-only imports', () => {
    expect(
      findCycles([edge('a.ts', 'b.ts'), edge('b.ts', 'c.ts', true), edge('c.ts', 'a.ts'), edge('c.ts', 'd.ts')]),
    ).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
    expect(findCycles([edge('a.ts', 'a.ts')])).toEqual([['a.ts', 'a.ts']]);
    expect(findCycles([edge('a.ts', 'b.ts'), edge('b.ts', 'c.ts')])).toEqual([]);
    expect(
      checkImports([], [edge('src/dicom/a.ts', 'src/dicom/b.ts', true), edge('src/dicom/b.ts', 'src/dicom/a.ts')]),
    ).toEqual(['import cycle: src/dicom/a.ts → src/dicom/b.ts → src/dicom/a.ts']);
  });

  it('read every kind of relative import, and which are erased', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from './b.js';",
      "import { type C } from './c.js';",
      "export { d } from './d.js';",
      "export type { E } from './e.js';",
      "import 'node:fs';",
      "const f = await import('./f.js');",
      "type G = import('./g.js').G;",
    ].join('\n');
    expect(importSpecifiers('x.ts', text)).toEqual([
      { specifier: './a.js', line: 1, typeOnly: false },
      { specifier: './b.js', line: 2, typeOnly: true },
      // verbatimModuleSyntax keeps `import { type C }` as `import {} from './c.js'`: it loads c.
      { specifier: './c.js', line: 3, typeOnly: false },
      { specifier: './d.js', line: 4, typeOnly: false },
      { specifier: './e.js', line: 5, typeOnly: true },
      { specifier: './f.js', line: 7, typeOnly: false },
      { specifier: './g.js', line: 8, typeOnly: true },
    ]);
  });
});
