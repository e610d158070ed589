/**
 * The Azurite preload's blob garbage collection (src/host/azurite-preload.cjs, patch 4), in this
 * process: the preload patches Azurite's and LokiJS's classes wherever it is loaded, so here the
 * collector runs over in-memory stores built directly, with no server.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
require('../../src/host/azurite-preload.cjs');
const azurite = join(dirname(require.resolve('azurite/package.json')), 'dist', 'src');
/** A module's default export, typed by the caller (Azurite ships JavaScript). */
const load = (path: string): unknown => (require(join(azurite, path)) as { default: unknown }).default;

interface Collection {
  binaryIndices: Record<string, unknown>;
  insert(doc: object): object;
  find(query?: object): Record<string, unknown>[];
}
interface Chunk {
  readonly id: string;
  readonly offset: number;
  readonly count: number;
}
interface BlobStore {
  init(): Promise<void>;
  db: { getCollection(name: string): Collection };
  BLOBS_COLLECTION: string;
  listAllBlobs(max?: number, marker?: string, snapshots?: boolean, uncommitted?: boolean): Promise<[Blob[], string?]>;
}
interface Blob {
  readonly name: string;
  readonly snapshot: string;
}
interface ExtentMetadata {
  db: { getCollection(name: string): Collection };
  EXTENTS_COLLECTION: string;
  listExtents(id?: string, max?: number, marker?: number, at?: Date, protectMs?: number): Promise<[Chunk[], number?]>;
}
interface ExtentStore {
  init(): Promise<void>;
  appendExtent(data: Buffer): Promise<Chunk>;
  readExtent(chunk: Chunk): Promise<NodeJS.ReadableStream>;
}
interface GcManager {
  start(): Promise<void>;
  close(): Promise<void>;
  markSweep(): Promise<void>;
}

type Constructor<T> = new (...args: unknown[]) => T;
const LokiBlobMetadataStore = load('blob/persistence/LokiBlobMetadataStore.js') as Constructor<BlobStore>;
const LokiExtentMetadataStore = load('common/persistence/LokiExtentMetadataStore.js') as Constructor<ExtentMetadata>;
const MemoryExtentStore = load('common/persistence/MemoryExtentStore.js') as Constructor<ExtentStore>;
const BlobGCManager = load('blob/gc/BlobGCManager.js') as Constructor<GcManager>;
const { MemoryExtentChunkStore } = require(join(azurite, 'common/persistence/MemoryExtentStore.js')) as {
  MemoryExtentChunkStore: new (limit: number) => unknown;
};
const logger = load('common/Logger.js');

let stores = 0;
async function memoryStores() {
  stores += 1;
  const blobs = new LokiBlobMetadataStore(`gc-test-blobs-${stores}`, true);
  await blobs.init();
  const metadata = new LokiExtentMetadataStore(`gc-test-extents-${stores}`, true);
  const extents = new MemoryExtentStore(
    'blob',
    new MemoryExtentChunkStore(1 << 30),
    metadata,
    logger,
    (status: number, code: string) => new Error(`${status} ${code}`),
  );
  await extents.init();
  return { blobs, metadata, extents, blobDocs: blobs.db.getCollection(blobs.BLOBS_COLLECTION) };
}

function blobDoc(name: string, persistency: Chunk, options: { snapshot?: string; committed?: boolean } = {}) {
  return {
    accountName: 'devstoreaccount1',
    containerName: 'c',
    name,
    snapshot: options.snapshot ?? '',
    isCommitted: options.committed ?? true,
    properties: {},
    persistency,
  };
}

/** Whether a macrotask (a request's turn) ran while `work` was pending. */
async function yieldsDuring(work: () => Promise<unknown>): Promise<boolean> {
  let turned = false;
  setImmediate(() => (turned = true));
  await work();
  return turned;
}

describe('the Azurite preload: blob garbage collection', () => {
  it('keeps only the name index of the blob collection, and point lookups still find blobs', async () => {
    const { blobDocs, extents } = await memoryStores();
    expect(Object.keys(blobDocs.binaryIndices)).toEqual(['name']);
    const chunk = await extents.appendExtent(Buffer.from('x'));
    for (const name of ['a', 'b', 'c']) blobDocs.insert(blobDoc(name, chunk));
    blobDocs.insert(blobDoc('b', chunk, { snapshot: 's1' }));
    expect(
      blobDocs.find({ name: 'b', accountName: 'devstoreaccount1', containerName: 'c', snapshot: '' }),
    ).toHaveLength(1);
    expect(blobDocs.find({ accountName: 'devstoreaccount1', containerName: 'c' })).toHaveLength(4);
  });

  it('lists every blob once across pages, in name order, numeric names included, and yields each page', async () => {
    const { blobs, extents, blobDocs } = await memoryStores();
    const chunk = await extents.appendExtent(Buffer.from('x'));
    // LokiJS sorts names that read as numbers by value ("9" before "10"); the marker compares as a string.
    const names = [
      '10',
      '9',
      '0.5',
      'a',
      'b/1',
      'b/2',
      'b/10',
      'c',
      'zz',
      ...Array.from({ length: 40 }, (_, i) => `s/${i}`),
    ];
    for (const name of names) blobDocs.insert(blobDoc(name, chunk));
    blobDocs.insert(blobDoc('a', chunk, { snapshot: '2026-01-01T00:00:00.0000000Z' }));
    blobDocs.insert(blobDoc('u', chunk, { committed: false }));
    for (const [page, snapshots, uncommitted] of [
      [7, true, true],
      [5000, false, false],
      [1, false, true],
    ] as const) {
      const listed: string[] = [];
      let marker: string | undefined = '';
      do {
        let result: [Blob[], string?] = [[]];
        expect(
          await yieldsDuring(async () => (result = await blobs.listAllBlobs(page, marker, snapshots, uncommitted))),
        ).toBe(true);
        expect(result[0].length).toBeLessThanOrEqual(page);
        listed.push(...result[0].map((blob) => `${blob.name}${blob.snapshot ? '@snapshot' : ''}`));
        marker = result[1];
      } while (marker !== undefined);
      const expected = [...names, ...(snapshots ? ['a@snapshot'] : []), ...(uncommitted ? ['u'] : [])];
      expect([...listed].sort(), `pages of ${page}`).toEqual([...expected].sort());
      // String order throughout, numeric names too (each page starts after the last one's marker).
      const inOrder = listed.map((name) => name.replace('@snapshot', ''));
      expect(inOrder).toEqual([...inOrder].sort());
    }
  });

  it('lists extents past the marker older than the protection time, page by page, yielding each page', async () => {
    const { metadata, extents } = await memoryStores();
    const chunks: Chunk[] = [];
    for (let i = 0; i < 30; i++) chunks.push(await extents.appendExtent(Buffer.from(`e${i}`)));
    const docs = metadata.db.getCollection(metadata.EXTENTS_COLLECTION).find();
    // Every third extent is recent (protected); the rest are old.
    docs.forEach((doc, i) => (doc['LastModifyInMS'] = i % 3 === 0 ? Date.now() : 1000));
    const listed: string[] = [];
    let marker: number | undefined;
    let first = true;
    while (first || marker !== undefined) {
      first = false;
      // LokiJS builds the $loki lookup the listing walks lazily: none exists here yet.
      let result: [Chunk[], number?] = [[]];
      const from = marker;
      expect(
        await yieldsDuring(async () => (result = await metadata.listExtents(undefined, 4, from, new Date(), 60_000))),
      ).toBe(true);
      const [page, next] = result;
      expect(page.length).toBeLessThanOrEqual(4);
      listed.push(...page.map((extent) => extent.id));
      marker = next;
    }
    expect(listed).toEqual(chunks.filter((_, i) => i % 3 !== 0).map((chunk) => chunk.id));
  });

  it('a collection deletes exactly the unreferenced extents and yields to requests meanwhile', async () => {
    const { blobs, metadata, extents, blobDocs } = await memoryStores();
    const kept: Chunk[] = [];
    const orphans: Chunk[] = [];
    for (let i = 0; i < 120; i++) {
      const chunk = await extents.appendExtent(Buffer.from(`blob ${i}`));
      if (i % 2 === 0) orphans.push(chunk);
      else {
        kept.push(chunk);
        blobDocs.insert(blobDoc(i % 8 === 1 ? String(1000 - i) : `study/${i}`, chunk));
      }
    }
    // Old enough to be collected (Azurite protects extents written in the last 10 minutes).
    for (const doc of metadata.db.getCollection(metadata.EXTENTS_COLLECTION).find()) doc['LastModifyInMS'] = 1000;
    const gc = new BlobGCManager(
      blobs,
      metadata,
      extents,
      (error: Error) => {
        throw error;
      },
      logger,
    );
    const swept = new Promise<void>((resolve) => {
      const markSweep = gc.markSweep.bind(gc);
      gc.markSweep = async () => {
        await markSweep();
        resolve();
      };
    });
    let turns = 0;
    const tick = (): void => {
      turns += 1;
      if (turns < 10_000) setImmediate(tick);
    };
    setImmediate(tick);
    await gc.start();
    await swept;
    await gc.close();
    // Turns before listing pages and between deletions; Azurite as published gives at most one,
    // the whole collection running in one stretch.
    expect(turns).toBeGreaterThanOrEqual(4);
    const left = metadata.db
      .getCollection(metadata.EXTENTS_COLLECTION)
      .find()
      .map((doc) => doc['id']);
    expect([...left].sort()).toEqual(kept.map((chunk) => chunk.id).sort());
    for (const chunk of kept) await expect(extents.readExtent(chunk)).resolves.toBeDefined();
    for (const chunk of orphans) await expect(extents.readExtent(chunk)).rejects.toThrow();
  });
});
