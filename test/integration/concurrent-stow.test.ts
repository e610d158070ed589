/**
 * A series uploaded as concurrent batches (how the CLI, dicomweb-client and PACS send one): every
 * request's index transaction is conditional on the same study and series rows. Within one
 * process the writers take turns from the rows the last one committed (StudyRowMemory), so none
 * fails on an ETag: no failed transaction, no re-read, and the counts come out exact.
 */
import { expect, it } from 'vitest';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { useMeteredServer } from '../helpers/server.js';

const server = useMeteredServer();

it('stores 4 concurrent batches into one new series without a lost ETag race', async () => {
  const study = testUid();
  const series = testUid();
  const batches = [0, 1, 2, 3].map((batch) =>
    Array.from({ length: 10 }, (_, i) =>
      buildInstance({
        ...newInstanceUids(study, series),
        sopInstanceUid: `${series}.${batch * 10 + i + 1}`,
        pixelBytes: 8,
      }),
    ),
  );
  const results = await Promise.all(batches.map((files) => server().call('/v2/studies', stowRequestInit(files))));
  expect(results.map((result) => result.status)).toEqual([200, 200, 200, 200]);
  const total = (kind: string) => results.reduce((sum, result) => sum + (result.storage.byKind[kind] ?? 0), 0);
  // One query each (the rows read before writing); a lost race would add a re-read.
  expect(total('table.query')).toBe(4);
  // At most 5 transactions each (notes, SOP pointers, index, feed, notes' removal; feed appends
  // of concurrent requests may share one); a lost race would add a failed index transaction.
  expect(total('table.batch')).toBeLessThanOrEqual(20);
  // The study row counts all 40, as each transaction added its 10 to the one before.
  const found = await server().call(`/v2/studies?StudyInstanceUID=${study}&includefield=00201208`, {
    headers: { accept: 'application/dicom+json' },
  });
  const [match] = JSON.parse(found.body.toString()) as { '00201208'?: { Value?: number[] } }[];
  expect(match?.['00201208']?.Value).toEqual([40]);
  expect(await server().storage.index.listInstances(study, series)).toHaveLength(40);
});
