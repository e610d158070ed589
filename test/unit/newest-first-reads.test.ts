/**
 * The name-word, StudyDate and modality paths stream newest first (docs/storage.md "Access paths
 * for search"): a page reads about a page of pointers and study rows, so the entities a search
 * reads stay under one bound whether the archive holds 600 or 3,000 studies, and its answer is
 * the one reading those paths whole gives. Counted over the production Table adapters on the
 * in-memory table, as the qs bench does.
 */
import { describe, expect, it } from 'vitest';
import { scaleQueries } from '../../bench/qido-scale-queries.js';
import { loadScaleStudies, scaleArchive, type MeteredAnswer } from '../helpers/scale-archive.js';

const LIMIT = 20;

/** Search shapes of the scale bench that follow these paths, with a page of LIMIT. */
function shapes(uidRoot: string): { id: string; path: string; bound: number }[] {
  const picked = new Map(scaleQueries(600, uidRoot).map((query) => [query.id, query.path]));
  const paged = (id: string) => `${picked.get(id) ?? ''}&limit=${LIMIT}`;
  return [
    // A common family name: its newest studies, until the page of its full name is found.
    { id: 'name exact', path: paged('name'), bound: 40 },
    { id: 'name exact, ideographic', path: paged('ideo'), bound: 40 },
    // 16 words begin "naka" (Nakayama, Nakada, …): one seek each, at most 8 rows of each, then the page.
    { id: 'name prefix, fuzzy', path: `/v2/studies?PatientName=naka&fuzzymatching=true&limit=${LIMIT}`, bound: 170 },
    { id: 'name prefix, wildcard', path: `/v2/studies?PatientName=yama*&limit=${LIMIT}`, bound: 170 },
    { id: 'one day', path: paged('day'), bound: 40 },
    { id: 'one year', path: paged('year'), bound: 100 },
    { id: 'ModalitiesInStudy', path: paged('mod'), bound: 160 },
    { id: 'two modalities', path: `/v2/studies?ModalitiesInStudy=CT%5CMR&limit=${LIMIT}`, bound: 160 },
    { id: 'series by Modality', path: `/v2/series?Modality=MR&limit=${LIMIT}`, bound: 160 },
  ];
}

describe('the newest-first search paths', () => {
  it('read entities under one bound at 600 and 3,000 studies, with the answers of a whole read', async () => {
    const archive = scaleArchive();
    const root = `1.2.826.0.1.3680043.10.1234.79.${Date.now()}`;
    const index = archive.storage.index;
    /** The same search with the paths read whole and sorted (what an archive not yet migrated does). */
    const whole = async (path: string): Promise<MeteredAnswer> => {
      index.newestFirstPaths = () => Promise.resolve(false);
      try {
        return await archive.search(path);
      } finally {
        delete (index as { newestFirstPaths?: unknown }).newestFirstPaths;
      }
    };
    const whole3000: Record<string, number> = {};
    for (const [from, to] of [
      [0, 600],
      [600, 3000],
    ] as const) {
      await loadScaleStudies(archive.storage, root, from, to);
      for (const shape of shapes(root)) {
        const fast = await archive.search(shape.path);
        const slow = await whole(shape.path);
        expect(fast.status, shape.id).toBe(200);
        expect(fast.uids, `${shape.id} at ${to}`).toEqual(slow.uids);
        expect(fast.entitiesRead, `${shape.id} at ${to}: entities read`).toBeLessThan(shape.bound);
        if (to === 3000) whole3000[shape.id] = slow.entitiesRead;
      }
    }
    // Reading these paths whole (as before) reads more, and past the bound where values are common.
    for (const id of ['ModalitiesInStudy', 'two modalities', 'series by Modality'])
      expect(whole3000[id], id).toBeGreaterThan(shapes(root).find((shape) => shape.id === id)?.bound ?? 0);
  }, 300_000);
});
