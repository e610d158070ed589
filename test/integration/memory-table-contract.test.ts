/**
 * The in-memory TableClient (support/memory-table-client.ts) counts like the real one: the same
 * STOWs and searches, through the app, over Azurite (the storage meter's SDK pipeline policy) and
 * over the production adapters on the in-memory table, make the same Table operations by kind
 * and read the same entities. This is what lets the QIDO scale bench (bench/qido-scale.ts) give
 * Azure's counts at sizes Azurite cannot hold. Blobs are left out: the bench keeps them in
 * memory unmetered, and no search reads one.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dicomParts, multipartBody } from '../../support/multipart.js';
import { azureAdaptersInMemory } from '../../bench/memory-azure-storage.js';
import { scaleInstances, scaleStudy } from '../../bench/qido-scale-data.js';
import { scaleQueries } from '../../bench/qido-scale-queries.js';
import { createApp } from '../../src/app.js';
import type { AuditRecord } from '../../src/http/audit.js';
import type { StorageCounts } from '../../src/util/storage-meter.js';
import { defaultAppConfig, startMeteredServer, type MeteredServer } from '../helpers/server.js';

const STUDIES = 12;
const uidRoot = `1.2.826.0.1.3680043.10.1234.77.${Date.now()}`;

interface Caller {
  call(path: string, init?: RequestInit): Promise<{ status: number; body: Buffer; storage: StorageCounts }>;
}

/** The app over the Azure adapters on the in-memory table, each request's counts from its audit record. */
function memoryCaller(): Caller {
  const { storage } = azureAdaptersInMemory();
  const records = new Map<string, AuditRecord>();
  const app = createApp({
    storage,
    config: defaultAppConfig,
    log: () => undefined,
    audit: (record) => {
      records.set(record.correlationId, record);
    },
  });
  return {
    async call(path, init = {}) {
      const correlationId = `meter-${randomBytes(8).toString('hex')}`;
      const headers = new Headers(init.headers);
      headers.set('x-correlation-id', correlationId);
      const response = await app.handle(new Request(`http://127.0.0.1${path}`, { ...init, headers }));
      const body = Buffer.from(await response.arrayBuffer());
      const record = records.get(correlationId);
      if (!record) throw new Error(`no audit record for ${path}`);
      return { status: response.status, body, storage: record.storage };
    },
  };
}

/** The Table part of a request's counts (the in-memory blobs are not metered). */
function tableCounts(counts: StorageCounts) {
  return {
    byKind: Object.fromEntries(Object.entries(counts.byKind).filter(([kind]) => kind.startsWith('table.'))),
    batchEntities: counts.batchEntities,
    entitiesRead: counts.entitiesRead,
  };
}

let azurite: MeteredServer;
const memory = memoryCaller();
beforeAll(async () => {
  azurite = await startMeteredServer();
});
afterAll(async () => {
  await azurite.close();
});

describe('the in-memory TableClient counts as Azurite does', () => {
  it('for every STOW (one instance each: no note partitions shared by chance)', async () => {
    for (let i = 0; i < STUDIES; i++) {
      for (const file of scaleInstances(scaleStudy(i, uidRoot), i)) {
        const init = {
          method: 'POST',
          headers: {
            'content-type': 'multipart/related; type="application/dicom"; boundary=m',
            accept: 'application/dicom+json',
          },
          body: multipartBody(dicomParts([file]), 'm') as Uint8Array<ArrayBuffer>,
        };
        const [real, fake] = await Promise.all([azurite.call('/v2/studies', init), memory.call('/v2/studies', init)]);
        expect([real.status, fake.status]).toEqual([200, 200]);
        expect(tableCounts(fake.storage), `STOW of study ${i}`).toEqual(tableCounts(real.storage));
      }
    }
  });

  it('for every QIDO shape of the scale bench, and the same answers', async () => {
    for (const query of scaleQueries(STUDIES, uidRoot)) {
      const init = { headers: { accept: 'application/dicom+json' } };
      const real = await azurite.call(query.path, init);
      const fake = await memory.call(query.path, init);
      expect([real.status, fake.status], query.path).toEqual([200, 200]);
      expect(fake.storage.byKind, query.id).toEqual(real.storage.byKind);
      expect(fake.storage.entitiesRead, query.id).toBe(real.storage.entitiesRead);
      const uids = (body: Buffer) =>
        (JSON.parse(body.toString('utf8')) as Record<string, { Value?: unknown[] }>[]).map((item) =>
          JSON.stringify(item['0020000D']?.Value),
        );
      expect(uids(fake.body), query.id).toEqual(uids(real.body));
    }
  });
});
