/**
 * What may import what, and its check. docs/development.md's "Layers" table is generated from
 * LAYERS below, so the doc and the check cannot disagree.
 *
 *   npm run layers              check every import between our files and the doc's table
 *   npm run layers -- --write   regenerate the doc's table from LAYERS
 *
 * `npm run lint` runs the check (so `.ci/run` does). It fails on an import that one layer may not
 * make, on an import cycle between files (type-only imports count: a cycle of types is a design
 * knot too), on a file no layer owns, and on a doc table that differs from LAYERS.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import ts from 'typescript';

export interface Allow {
  /** A layer name, or `src` for every layer under src/. */
  readonly layer: string;
  /** Only `import type` / `export type` (erased at run time). */
  readonly typesOnly?: boolean;
  /** Why an import that runs against the architecture's direction is still the design. */
  readonly why?: string;
}

export interface Layer {
  readonly name: string;
  /** Folders end in `/`; the longest path that holds a file decides its layer. */
  readonly paths: readonly string[];
  readonly holds: string;
  /** Besides its own files. `anything`: no limit. */
  readonly mayImport: readonly Allow[] | 'anything';
}

export const LAYERS: readonly Layer[] = [
  {
    name: 'util',
    paths: ['src/util/', 'src/types.d.ts'],
    holds:
      'stream helpers, the one string comparator, the per-request storage meter (`storage-meter.ts`); `types.d.ts` declares the untyped packages',
    mayImport: [],
  },
  {
    name: 'dicom',
    paths: ['src/dicom/'],
    holds:
      'bytes and tags: the Part 10 header reader (dicom-parser, stops at Pixel Data), the whole-stream structure walk (`structure/`), transcoding (`transcode/`), tags, UIDs, VR checks, character sets, the DICOM JSON model',
    mayImport: [{ layer: 'util' }],
  },
  {
    name: 'storage ports',
    paths: ['src/storage/ports.ts'],
    holds:
      'the interfaces the transactions need (`Storage`: blobs, index, pending notes, change feed), `StorageUnavailableError`, their limits',
    mayImport: [],
  },
  {
    name: 'storage keys',
    paths: ['src/storage/keys.ts'],
    holds: 'the only place that knows blob names and table keys (pure functions)',
    mayImport: [{ layer: 'storage ports' }],
  },
  {
    name: 'dicomweb',
    paths: ['src/dicomweb/'],
    holds:
      'the transactions (store, retrieve, search, delete, change feed, orphan sweep), validation, failure and warning codes, `DicomwebError`, `ApiVersion`',
    mayImport: [
      { layer: 'dicom' },
      { layer: 'util' },
      { layer: 'storage ports' },
      {
        layer: 'storage keys',
        why: 'the transactions own the write order (blob under a fresh version → index rows → change feed, docs/storage.md), so they name the blobs they write; `keys.ts` is pure and imports only the ports, and a naming method on every adapter and fake would only call it',
      },
    ],
  },
  {
    name: 'storage adapters',
    paths: ['src/storage/'],
    holds: 'Azure adapters (Blob, Table), in-memory fakes, search pointers, Table limits, `StorageConfig`',
    mayImport: [{ layer: 'storage ports' }, { layer: 'storage keys' }, { layer: 'dicom' }, { layer: 'util' }],
  },
  {
    name: 'events',
    paths: ['src/events/'],
    holds:
      'change events: the CloudEvents form of a change feed entry, the sinks (HTTP webhook and Event Grid, storage queue), the publisher that follows the change feed from a checkpoint, their settings',
    mayImport: [{ layer: 'storage ports', typesOnly: true }, { layer: 'util' }],
  },
  {
    name: 'http',
    paths: ['src/http/'],
    holds:
      'the route table, routing, content negotiation, the streaming multipart reader and writer, DICOM JSON and XML responses, CORS, the one error-to-response function',
    mayImport: [
      { layer: 'dicomweb' },
      { layer: 'dicom' },
      { layer: 'util' },
      {
        layer: 'storage ports',
        why: 'the request context carries the `Storage` port: the health check asks it, WADO streams instance and frame bytes straight from it, and `error-response.ts` turns its `StorageUnavailableError` into 503; never an adapter or `keys.ts`',
      },
    ],
  },
  {
    name: 'security',
    paths: ['src/security/'],
    holds: 'bearer-token checks (Entra ID, local keys), roles, `SecurityOptions`',
    mayImport: [{ layer: 'dicomweb' }, { layer: 'http', typesOnly: true }],
  },
  {
    name: 'app',
    paths: ['src/app.ts'],
    holds:
      '`createApp({ storage, config, security })` → `{ handle(Request): Promise<Response>, refuse, routes }`: authorization, CORS and the error rule around the route table',
    mayImport: [
      { layer: 'http' },
      { layer: 'security' },
      { layer: 'dicomweb' },
      { layer: 'storage ports', typesOnly: true },
      {
        layer: 'util',
        why: "the app opens each request's storage meter scope (`util/storage-meter.ts`, AsyncLocalStorage), which the Azure adapters' pipeline policy counts into; it lives in `util` because both the app and the adapters need it and neither may import the other",
      },
    ],
  },
  {
    name: 'config',
    paths: ['src/config.ts'],
    holds: 'reads the environment once into the settings each layer defines',
    mayImport: [
      { layer: 'http', typesOnly: true },
      { layer: 'storage adapters', typesOnly: true },
      { layer: 'security' },
      { layer: 'events' },
    ],
  },
  {
    name: 'host adapters',
    paths: ['src/host/node-host.ts', 'src/host/azure-host.ts', 'src/host/azure-functions-routes.ts'],
    holds:
      'node:http ↔ `Request`/`Response` (piped, so backpressure holds); Azure `HttpRequest` ↔ `Request`; one Functions registration per route template',
    mayImport: [{ layer: 'app', typesOnly: true }, { layer: 'http' }],
  },
  {
    name: 'composition',
    paths: ['src/host/'],
    holds:
      '`compose.ts` (configuration → storage → security → `createApp`, for every host), event publishing for both hosts (`events.ts`), `npm start` (`start.ts`), the Azurite starter, `npm run token`, `npm run migrate`',
    mayImport: [{ layer: 'src' }],
  },
  {
    name: 'functions',
    paths: ['functions/'],
    holds:
      'Azure Functions registrations: one `app.http` per route template, a catch-all fallback, the orphan-sweep and event-publishing timers',
    mayImport: [
      { layer: 'composition' },
      { layer: 'host adapters' },
      { layer: 'http' },
      { layer: 'config' },
      {
        layer: 'dicomweb',
        why: 'the orphan-sweep timer runs `sweepOrphans` itself: a timer is no HTTP request, so there is no `app.handle` to go through',
      },
    ],
  },
  {
    name: 'client',
    paths: ['src/client/'],
    holds:
      'the typed DICOMweb client (`DicomwebClient`): STOW, WADO, QIDO, DELETE, change feed, retries, tokens; usable on its own, so it imports no server code',
    mayImport: [],
  },
  {
    name: 'cli',
    paths: ['src/cli/'],
    holds: 'the `dicomweb` command line (commander, cli-progress) over the client',
    mayImport: [{ layer: 'client' }],
  },
  {
    name: 'support',
    paths: ['support/'],
    holds:
      'the DICOM and multipart builders and the metered in-memory TableClient (`memory-table-client.ts`) that tests and the bench share',
    mayImport: [],
  },
  {
    name: 'bench',
    paths: ['bench/'],
    holds: '`npm run bench`',
    mayImport: [{ layer: 'src' }, { layer: 'support' }],
  },
  { name: 'test', paths: ['test/'], holds: 'unit, integration and fuzz tests, their helpers', mayImport: 'anything' },
  { name: 'tools', paths: ['tools/'], holds: 'this layer check', mayImport: [] },
  { name: 'root', paths: ['eslint.config.js', 'vitest.config.ts'], holds: 'tool configuration', mayImport: [] },
];

/** Where the check looks for our files (relative to the repository root). */
const ROOTS = ['src', 'functions', 'test', 'bench', 'support', 'tools'];
const ROOT_FILES = ['eslint.config.js', 'vitest.config.ts'];
const CODE = /\.(c|m)?(t|j)s$/;
const SKIPPED = new Set(['node_modules', 'fixtures']);

export interface ImportEdge {
  readonly from: string;
  /** Repository-relative path of the imported file, or undefined when it is none of ours. */
  readonly to: string;
  readonly line: number;
  readonly typeOnly: boolean;
}

/** The relative imports of one file: static, re-exports, `import()` calls and `import('…')` types. */
export function importSpecifiers(
  fileName: string,
  text: string,
): { specifier: string; line: number; typeOnly: boolean }[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true);
  const found: { specifier: string; line: number; typeOnly: boolean }[] = [];
  const add = (node: ts.Node, specifier: ts.Node | undefined, typeOnly: boolean): void => {
    if (specifier && ts.isStringLiteralLike(specifier) && specifier.text.startsWith('.')) {
      const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
      found.push({ specifier: specifier.text, line, typeOnly });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node))
      add(node, node.moduleSpecifier, node.importClause?.phaseModifier === ts.SyntaxKind.TypeKeyword);
    else if (ts.isExportDeclaration(node)) add(node, node.moduleSpecifier, node.isTypeOnly);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal, true);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function listFiles(root: string): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = dir === '' ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!SKIPPED.has(entry.name)) walk(path);
      } else if (CODE.test(entry.name)) files.push(path);
    }
  };
  for (const dir of ROOTS) if (existsSync(join(root, dir))) walk(dir);
  return [...files, ...ROOT_FILES.filter((file) => existsSync(join(root, file)))].sort();
}

/** `./x.js` names `x.ts` under NodeNext; anything that is not one of our code files is skipped. */
function resolveImport(root: string, from: string, specifier: string, known: ReadonlySet<string>): string | undefined {
  const target = relative(root, resolve(root, dirname(from), specifier))
    .split('\\')
    .join('/');
  const candidates = [target, target.replace(/\.(m|c)?js$/, '.$1ts'), `${target}.ts`, `${target}/index.ts`];
  return candidates.find((candidate) => known.has(candidate));
}

export function readImports(root: string): { files: string[]; edges: ImportEdge[] } {
  const files = listFiles(root);
  const known = new Set(files);
  const edges: ImportEdge[] = [];
  for (const from of files) {
    for (const { specifier, line, typeOnly } of importSpecifiers(from, readFileSync(join(root, from), 'utf8'))) {
      const to = resolveImport(root, from, specifier, known);
      if (to !== undefined) edges.push({ from, to, line, typeOnly });
    }
  }
  return { files, edges };
}

export function layerOf(file: string, layers: readonly Layer[] = LAYERS): Layer | undefined {
  let best: { layer: Layer; length: number } | undefined;
  for (const layer of layers) {
    for (const path of layer.paths) {
      const holds = path.endsWith('/') ? file.startsWith(path) : file === path;
      if (holds && (!best || path.length > best.length)) best = { layer, length: path.length };
    }
  }
  return best?.layer;
}

/** The layers an allowance names: `src` is every layer that lives under src/. */
function expand(allow: Allow, layers: readonly Layer[]): string[] {
  if (allow.layer !== 'src') return [allow.layer];
  return layers.filter((layer) => layer.paths.every((path) => path.startsWith('src/'))).map((layer) => layer.name);
}

function allowance(from: Layer, to: Layer, layers: readonly Layer[]): Allow | undefined {
  if (from.mayImport === 'anything') return { layer: to.name };
  return from.mayImport.find((allow) => expand(allow, layers).includes(to.name));
}

/** Cycles among files (Tarjan's strongly connected components), each as one closed path. */
export function findCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    const targets = next.get(from) ?? new Set<string>();
    targets.add(to);
    next.set(from, targets);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const connect = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node) ?? 0);
    stack.push(node);
    onStack.add(node);
    for (const target of next.get(node) ?? []) {
      if (!index.has(target)) {
        connect(target);
        low.set(node, Math.min(low.get(node) ?? 0, low.get(target) ?? 0));
      } else if (onStack.has(target)) low.set(node, Math.min(low.get(node) ?? 0, index.get(target) ?? 0));
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop();
      if (member === undefined) break;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || next.get(node)?.has(node)) components.push(component);
  };
  for (const node of [...next.keys()].sort()) if (!index.has(node)) connect(node);
  return components.map((component) => closedPath(component, next));
}

/** The shortest path from the component's first file (by name) back to itself, within the component. */
function closedPath(component: readonly string[], next: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const members = new Set(component);
  const start = [...component].sort()[0] ?? '';
  const previous = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i] ?? '';
    for (const target of next.get(node) ?? []) {
      if (target === start) {
        const path = [start];
        for (let at: string | undefined = node; at !== undefined && at !== start; at = previous.get(at)) {
          path.splice(1, 0, at);
        }
        return [...path, start];
      }
      if (members.has(target) && !previous.has(target)) {
        previous.set(target, node);
        queue.push(target);
      }
    }
  }
  return [start, start];
}

/** Every problem: files no layer owns, imports no rule allows, cycles, and rules that are no layering. */
export function checkImports(
  files: readonly string[],
  edges: readonly ImportEdge[],
  layers: readonly Layer[] = LAYERS,
): string[] {
  const problems: string[] = [];
  const names = new Set(layers.map((layer) => layer.name));
  for (const layer of layers) {
    if (layer.mayImport === 'anything') continue;
    for (const allow of layer.mayImport) {
      if (allow.layer !== 'src' && !names.has(allow.layer)) problems.push(`${layer.name}: no layer "${allow.layer}"`);
    }
  }
  for (const file of files) if (!layerOf(file, layers)) problems.push(`${file}: no layer owns it (tools/layers.ts)`);
  for (const edge of edges) {
    const from = layerOf(edge.from, layers);
    const to = layerOf(edge.to, layers);
    if (!from || !to || from === to) continue;
    const allow = allowance(from, to, layers);
    const kind = edge.typeOnly ? 'a type-only import of' : 'imports';
    if (!allow) {
      problems.push(
        `${edge.from}:${edge.line} ${kind} ${edge.to}: ${from.name} may not import ${to.name} (${from.name} may import: ${mayImportText(from, false)})`,
      );
    } else if (allow.typesOnly && !edge.typeOnly) {
      problems.push(
        `${edge.from}:${edge.line} imports ${edge.to}: ${from.name} may import only types from ${to.name} (use \`import type\`)`,
      );
    }
  }
  for (const cycle of findCycles(edges)) problems.push(`import cycle: ${cycle.join(' → ')}`);
  const layerEdges = layers.flatMap((from) =>
    from.mayImport === 'anything'
      ? []
      : from.mayImport.flatMap((allow) =>
          expand(allow, layers)
            .filter((to) => to !== from.name)
            .map((to) => ({ from: from.name, to, line: 0, typeOnly: false })),
        ),
  );
  for (const cycle of findCycles(layerEdges))
    problems.push(`the rules let layers import in a circle: ${cycle.join(' → ')}`);
  return problems;
}

function mayImportText(layer: Layer, withNotes: boolean, notes: string[] = []): string {
  if (layer.mayImport === 'anything') return 'anything';
  if (layer.mayImport.length === 0) return 'nothing of ours';
  return layer.mayImport
    .map((allow) => {
      let text = allow.layer === 'src' ? 'all of `src/`' : `\`${allow.layer}\``;
      if (allow.typesOnly) text += ' (types)';
      if (withNotes && allow.why) {
        notes.push(`\`${layer.name}\` → \`${allow.layer}\`: ${allow.why}.`);
        text += ` (${notes.length})`;
      }
      return text;
    })
    .join(', ');
}

const BEGIN = '<!-- layers:begin: generated from tools/layers.ts by `npm run layers -- --write`; edit there -->';
const END = '<!-- layers:end -->';

/** The doc's table and, under it, why each allowance against the architecture's direction stands. */
export function layerTable(layers: readonly Layer[] = LAYERS): string {
  const notes: string[] = [];
  const rows = layers.map(
    (layer) =>
      `| ${layer.name} | ${layer.paths.map((path) => `\`${path}\``).join(', ')} | ${layer.holds} | ${mayImportText(layer, true, notes)} |`,
  );
  return [
    '| layer | files | holds | may import |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    'Imports that run against the architecture note on purpose:',
    '',
    ...notes.map((note, i) => `${i + 1}. ${note}`),
  ].join('\n');
}

export async function documented(docPath: string, current: string): Promise<string> {
  const begin = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${docPath} has no "${BEGIN}" … "${END}" section`);
  const text = `${current.slice(0, begin + BEGIN.length)}\n\n${layerTable()}\n\n${current.slice(end)}`;
  return format(text, { ...(await resolveConfig(docPath)), filepath: docPath });
}

async function main(): Promise<void> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const docPath = join(root, 'docs/development.md');
  const current = readFileSync(docPath, 'utf8');
  const expected = await documented(docPath, current);
  if (process.argv.includes('--write')) {
    writeFileSync(docPath, expected);
    console.log('docs/development.md: layer table written from tools/layers.ts');
  }
  const { files, edges } = readImports(root);
  const problems = checkImports(files, edges);
  if (!process.argv.includes('--write') && expected !== current) {
    problems.push('docs/development.md: the layer table differs from tools/layers.ts (npm run layers -- --write)');
  }
  if (problems.length > 0) {
    console.error(`Layer check: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}`);
    process.exitCode = 1;
  } else {
    console.log(`Layer check: ${files.length} files, ${edges.length} imports, no problems.`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
