import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/config.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { serveStorage, startTestServer, type TestServer } from '../helpers/server.js';

type Dataset = Record<string, { vr: string; Value?: unknown[] }>;

/** Two servers over one Azurite container and table: the default policy, and accept-identical. */
let strict: TestServer;
let lenient: { baseUrl: string; close(): Promise<void> };
beforeAll(async () => {
  strict = await startTestServer();
  lenient = await serveStorage(strict.storage, { duplicatePolicy: 'accept-identical' });
});
afterAll(async () => {
  await lenient.close();
  await strict.close();
});

async function post(baseUrl: string, files: Buffer[]) {
  const response = await fetch(`${baseUrl}/v2/studies`, stowRequestInit(files));
  return { status: response.status, body: (await response.json()) as Dataset };
}

const items = (body: Dataset, tag: '00081198' | '00081199') => (body[tag]?.Value ?? []) as Dataset[];
const reasons = (body: Dataset, tag: '00081198' | '00081199', reason: '00081197' | '00081196') =>
  items(body, tag).map((item) => item[reason]?.Value?.[0]);

async function feedCount(sopInstanceUid: string): Promise<number> {
  const response = await fetch(`${strict.baseUrl}/v2/changefeed?includemetadata=false&limit=200`);
  const entries = (await response.json()) as { SopInstanceUid: string }[];
  return entries.filter((entry) => entry.SopInstanceUid === sopInstanceUid).length;
}

async function dcmBlobs(uids: ReturnType<typeof newInstanceUids>): Promise<number> {
  let count = 0;
  const prefix = `${uids.studyInstanceUid}/${uids.seriesInstanceUid}/${uids.sopInstanceUid}/`;
  for await (const blob of strict.storage.blobs.list(prefix)) if (blob.name.endsWith('.dcm')) count += 1;
  return count;
}

/** Stores an instance through one server and sends the same bytes again through another: 409, 45070. */
async function expectResendRefused(first: string, second: string): Promise<void> {
  const file = buildInstance({ ...newInstanceUids(), pixelBytes: 8 });
  expect((await post(first, [file])).status).toBe(200);
  const again = await post(second, [file]);
  expect(again.status).toBe(409);
  expect(reasons(again.body, '00081198', '00081197')).toEqual([45070]);
}

describe('duplicate policy', () => {
  it('is read from DICOMWEB_DUPLICATE_POLICY (default reject); a bad value stops the start', () => {
    expect(readConfig({}).app.duplicatePolicy).toBe('reject');
    expect(readConfig({ DICOMWEB_DUPLICATE_POLICY: 'accept-identical' }).app.duplicatePolicy).toBe('accept-identical');
    expect(() => readConfig({ DICOMWEB_DUPLICATE_POLICY: 'accept' })).toThrow(/DICOMWEB_DUPLICATE_POLICY/);
  });

  it('reject (the default): a byte-identical re-send is 45070, 409, as on the Azure service', async () => {
    await expectResendRefused(strict.baseUrl, strict.baseUrl);
  });

  it('accept-identical: an identical re-send answers 200 with WarningReason 45062 and writes nothing', async () => {
    const uids = newInstanceUids();
    const file = buildInstance({ ...uids, pixelBytes: 8 });
    expect((await post(lenient.baseUrl, [file])).status).toBe(200);
    const again = await post(lenient.baseUrl, [file]);
    expect(again.status).toBe(200);
    expect(again.body['00081198']).toBeUndefined();
    expect(reasons(again.body, '00081199', '00081196')).toEqual([45062]);
    expect(items(again.body, '00081199')[0]?.['00081155']?.Value).toEqual([uids.sopInstanceUid]);
    expect(await feedCount(uids.sopInstanceUid)).toBe(1);
    expect(await dcmBlobs(uids)).toBe(1);
  });

  it('accept-identical: other bytes under the same UIDs are still 45070', async () => {
    const uids = newInstanceUids();
    expect((await post(lenient.baseUrl, [buildInstance({ ...uids, pixelBytes: 8 })])).status).toBe(200);
    const changed = await post(lenient.baseUrl, [buildInstance({ ...uids, pixelBytes: 10 })]);
    expect(changed.status).toBe(409);
    expect(reasons(changed.body, '00081198', '00081197')).toEqual([45070]);
  });

  it('accept-identical: a whole study retried after a partial failure completes', async () => {
    const study = newInstanceUids();
    const stored = buildInstance({ ...study, pixelBytes: 8 });
    const missing = buildInstance({
      ...newInstanceUids(study.studyInstanceUid, study.seriesInstanceUid),
      pixelBytes: 8,
    });
    expect((await post(lenient.baseUrl, [stored])).status).toBe(200);
    const retry = await post(lenient.baseUrl, [stored, missing]);
    expect(retry.status).toBe(200);
    expect(reasons(retry.body, '00081199', '00081196')).toEqual([45062, undefined]);
  });

  it('accept-identical: an instance stored without a hash (under reject) is still 45070', async () => {
    await expectResendRefused(strict.baseUrl, lenient.baseUrl);
  });
});
