/**
 * The worklist (studies newest first, no filter: the recency path) reads about a page of
 * pointers whatever the archive holds, not 16 shards × the page (docs/storage.md "QIDO at scale").
 * Counted over the production Table adapters on the in-memory table, as the qs bench does.
 */
import { describe, expect, it } from 'vitest';
import { azureAdaptersInMemory } from '../../bench/memory-azure-storage.js';
import { storeAll } from '../../bench/qido.js';
import { scaleInstances, scaleStudy } from '../../bench/qido-scale-data.js';
import { createApp } from '../../src/app.js';
import type { AuditRecord } from '../../src/http/audit.js';
import { defaultAppConfig } from '../helpers/server.js';

describe('the worklist over 600 studies', () => {
  it('reads about one page of pointers and the page of study rows, with the right studies', async () => {
    const { storage } = azureAdaptersInMemory();
    const root = `1.2.826.0.1.3680043.10.1234.78.${Date.now()}`;
    for (let batch = 0; batch < 12; batch++) {
      const files = [];
      for (let i = batch * 50; i < batch * 50 + 50; i++) files.push(...scaleInstances(scaleStudy(i, root), i));
      await storeAll(storage, files, 'loading');
    }
    const audits: AuditRecord[] = [];
    const app = createApp({ storage, config: defaultAppConfig, log: () => undefined, audit: (r) => audits.push(r) });
    const response = await app.handle(
      new Request('http://127.0.0.1/v2/studies?limit=20&offset=0', { headers: { accept: 'application/dicom+json' } }),
    );
    const body = (await response.json()) as unknown[];
    expect(body).toHaveLength(20);
    const counts = audits[0]?.storage;
    // 16 shards × (⌈21/16⌉ + 4) = 96 pointers at most in the first pages, 20 study rows, a few refills.
    expect(counts?.entitiesRead).toBeLessThan(160);
    // The newest 20 by creation: the last 20 studies stored (one request of 50 at a time, in order).
    const uids = body.map((item) => (item as Record<string, { Value?: string[] }>)['0020000D']?.Value?.[0]);
    expect(uids.every((uid) => Number(uid?.split('.').at(-1)) > 550)).toBe(true);
  }, 120_000);
});
