/**
 * The worklist (studies newest first, no filter: the recency path) reads about a page of
 * pointers whatever the archive holds, not 16 shards × the page (docs/storage.md "QIDO at scale").
 * Counted over the production Table adapters on the in-memory table, as the qs bench does.
 */
import { describe, expect, it } from 'vitest';
import { loadScaleStudies, scaleArchive } from '../helpers/scale-archive.js';

describe('the worklist over 600 studies', () => {
  it('reads about one page of pointers and the page of study rows, with the right studies', async () => {
    const archive = scaleArchive();
    const root = `1.2.826.0.1.3680043.10.1234.78.${Date.now()}`;
    await loadScaleStudies(archive.storage, root, 0, 600);
    const answer = await archive.search('/v2/studies?limit=20&offset=0');
    expect(answer.uids).toHaveLength(20);
    // 16 shards × (⌈21/16⌉ + 4) = 96 pointers at most in the first pages, 20 study rows, a few refills.
    expect(answer.entitiesRead).toBeLessThan(160);
    // The newest 20 by creation: the last 20 studies stored (one request of 50 at a time, in order).
    expect(answer.uids.every((uid) => Number(uid.split('.').at(-1)) > 550)).toBe(true);
  }, 120_000);
});
