import { describe, expect, it } from 'vitest';
import { sweepExpiredStudies } from '../../src/dicomweb/expire-studies.js';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { StorageMeter, withStorageMeter } from '../../src/util/storage-meter.js';
import { useTestServer } from '../helpers/server.js';

const server = useTestServer();

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

async function stow(
  files: Buffer[],
  headers: Record<string, string> = {},
  version = 'v2',
  method: 'POST' | 'PUT' = 'POST',
): Promise<number> {
  const init = stowRequestInit(files);
  const response = await fetch(`${server().baseUrl}/${version}/studies`, {
    ...init,
    method,
    headers: { ...(init.headers as Record<string, string>), ...headers },
  });
  await response.arrayBuffer();
  return response.status;
}

const expiry = (milliseconds: number | string) => ({
  'msdicom-expiry-time-milliseconds': String(milliseconds),
  'msdicom-expiry-option': 'RelativeToNow',
  'msdicom-expiry-level': 'Study',
});

/** Whether the study is visible: its study-level QIDO match. */
async function exists(studyInstanceUid: string): Promise<boolean> {
  const response = await fetch(`${server().baseUrl}/v2/studies?StudyInstanceUID=${studyInstanceUid}`);
  const body = response.status === 204 ? [] : ((await response.json()) as unknown[]);
  return body.length > 0;
}

const at = (offset: number) => new Date(Date.now() + offset);

describe('study expiry (msdicom-expiry headers)', () => {
  it('a study is deleted by the sweep once its expiry has passed, never before, with delete entries', async () => {
    const expiring = newInstanceUids();
    const second = newInstanceUids(expiring.studyInstanceUid, expiring.seriesInstanceUid);
    const lasting = newInstanceUids();
    expect(await stow([buildInstance(expiring), buildInstance(second)], expiry(10 * MINUTE))).toBe(200);
    expect(await stow([buildInstance(lasting)], expiry(5 * HOUR))).toBe(200);

    const early = await sweepExpiredStudies(server().storage, at(9 * MINUTE));
    expect(early.deletedStudies).toBe(0);
    expect(await exists(expiring.studyInstanceUid)).toBe(true);

    const due = await sweepExpiredStudies(server().storage, at(11 * MINUTE));
    expect(due.deletedStudies).toBe(1);
    expect(await exists(expiring.studyInstanceUid)).toBe(false);
    expect(await exists(lasting.studyInstanceUid)).toBe(true);
    const wado = await fetch(
      `${server().baseUrl}/v2/studies/${expiring.studyInstanceUid}/series/${expiring.seriesInstanceUid}/instances/${expiring.sopInstanceUid}`,
      { headers: { accept: 'application/dicom; transfer-syntax=*' } },
    );
    expect(wado.status).toBe(404);
    const feed = (await (await fetch(`${server().baseUrl}/v2/changefeed?includemetadata=false&limit=200`)).json()) as {
      SopInstanceUid: string;
      Action: string;
      State: string;
    }[];
    const entries = feed.filter((entry) =>
      [expiring.sopInstanceUid, second.sopInstanceUid].includes(entry.SopInstanceUid),
    );
    expect(entries.map((entry) => entry.Action).sort()).toEqual(['create', 'create', 'delete', 'delete']);
    expect(entries.every((entry) => entry.State === 'deleted')).toBe(true);

    // Handled rows are gone: the next sweep at the same time finds nothing due.
    expect(await sweepExpiredStudies(server().storage, at(11 * MINUTE))).toEqual({
      deletedStudies: 0,
      clearedRows: 0,
    });
  });

  it('the last store decides: one without expiry headers cancels, one with a later expiry postpones', async () => {
    const cancelled = newInstanceUids();
    const postponed = newInstanceUids();
    expect(await stow([buildInstance(cancelled)], expiry(20 * MINUTE))).toBe(200);
    expect(await stow([buildInstance(newInstanceUids(cancelled.studyInstanceUid))])).toBe(200);
    expect(await stow([buildInstance(postponed)], expiry(20 * MINUTE))).toBe(200);
    expect(
      await stow([buildInstance(newInstanceUids(postponed.studyInstanceUid))], expiry(2 * HOUR), 'v2', 'PUT'),
    ).toBe(200);

    const sweep = await sweepExpiredStudies(server().storage, at(30 * MINUTE));
    expect(sweep.deletedStudies).toBe(0);
    expect(await exists(cancelled.studyInstanceUid)).toBe(true);
    expect(await exists(postponed.studyInstanceUid)).toBe(true);
    expect((await sweepExpiredStudies(server().storage, at(3 * HOUR))).deletedStudies).toBeGreaterThanOrEqual(1);
    expect(await exists(postponed.studyInstanceUid)).toBe(false);
    expect(await exists(cancelled.studyInstanceUid)).toBe(true);
  });

  it.each([
    ['a time that is not a number', expiry('soon')],
    ['a time of 0', expiry(0)],
    ['a negative time', expiry(-5)],
    ['a fractional time', expiry('1.5')],
    ['a time past the last representable date', expiry('9999999999999999')],
    ['another option', { ...expiry(60_000), 'msdicom-expiry-option': 'Absolute' }],
    ['another level', { ...expiry(60_000), 'msdicom-expiry-level': 'Series' }],
    ['an option without a time', { 'msdicom-expiry-option': 'RelativeToNow' }],
  ])('answers 400 for %s, and stores nothing', async (_what, headers) => {
    const uids = newInstanceUids();
    expect(await stow([buildInstance(uids)], headers)).toBe(400);
    expect(await exists(uids.studyInstanceUid)).toBe(false);
  });

  it('accepts the time header alone (RelativeToNow and Study are the defaults)', async () => {
    const uids = newInstanceUids();
    expect(await stow([buildInstance(uids)], { 'msdicom-expiry-time-milliseconds': String(7 * HOUR) })).toBe(200);
    await sweepExpiredStudies(server().storage, at(6 * HOUR)); // (deletes the 5-hour study of the first test)
    expect(await exists(uids.studyInstanceUid)).toBe(true);
    expect((await sweepExpiredStudies(server().storage, at(8 * HOUR))).deletedStudies).toBeGreaterThanOrEqual(1);
    expect(await exists(uids.studyInstanceUid)).toBe(false);
  });

  it('the sweep reads only the index rows that are due, not the studies that expire later', async () => {
    const later = Array.from({ length: 5 }, () => newInstanceUids());
    for (const uids of later) expect(await stow([buildInstance(uids)], expiry(10 * HOUR))).toBe(200);
    const meter = new StorageMeter();
    const idle = await withStorageMeter(meter, () => sweepExpiredStudies(server().storage, at(MINUTE)));
    expect(idle).toEqual({ deletedStudies: 0, clearedRows: 0 });
    expect(meter.counts()).toMatchObject({ byKind: { 'table.query': 1 }, entitiesRead: 0 });
    const due = await sweepExpiredStudies(server().storage, at(11 * HOUR));
    expect(due.deletedStudies).toBeGreaterThanOrEqual(5);
    for (const uids of later) expect(await exists(uids.studyInstanceUid)).toBe(false);
  });

  it('v1 has no expiry: the headers are ignored', async () => {
    const study = testUid();
    expect(await stow([buildInstance(newInstanceUids(study))], expiry(1), 'v1')).toBe(200);
    await sweepExpiredStudies(server().storage, at(24 * HOUR));
    expect(await exists(study)).toBe(true);
  });
});
