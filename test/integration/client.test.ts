import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesSource, DicomwebClient, streamSource } from '../../src/client/index.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let client: DicomwebClient;
beforeAll(async () => {
  server = await startTestServer();
  client = new DicomwebClient({ baseUrl: `${server.baseUrl}/v2` });
});
afterAll(async () => {
  await server.close();
});

const FRAME = 16 * 16 * 2;

function series(count: number) {
  const { studyInstanceUid, seriesInstanceUid } = newInstanceUids();
  return Array.from({ length: count }, (_, i) => {
    const uids = newInstanceUids(studyInstanceUid, seriesInstanceUid);
    const bytes = buildInstance({
      ...uids,
      attributes: {
        '00200013': { vr: 'IS', value: String(i + 1) },
        '00280008': { vr: 'IS', value: '2' },
        '00280010': { vr: 'US', value: Buffer.from([16, 0]) },
        '00280011': { vr: 'US', value: Buffer.from([16, 0]) },
        '00280100': { vr: 'US', value: Buffer.from([16, 0]) },
        '00280101': { vr: 'US', value: Buffer.from([16, 0]) },
        '00280102': { vr: 'US', value: Buffer.from([15, 0]) },
        '00280103': { vr: 'US', value: Buffer.from([0, 0]) },
        '00280002': { vr: 'US', value: Buffer.from([1, 0]) },
        '00280004': { vr: 'CS', value: 'MONOCHROME2' },
      },
      pixelBytes: 2 * FRAME,
    });
    return { ...uids, bytes };
  });
}

describe('DicomwebClient against the server on Azurite', () => {
  it('stores from bytes and a stream, retrieves the instance, its frames and metadata, and searches with typed results', async () => {
    const [first, second] = series(2);
    if (!first || !second) throw new Error('no instances');
    const stored = await client.store([
      bytesSource(first.bytes),
      streamSource(Readable.from([second.bytes.subarray(0, 100), second.bytes.subarray(100)]), 'stream'),
    ]);
    expect(stored.httpStatus).toBe(200);
    expect(stored.instances.map((instance) => [instance.status, instance.sopInstanceUid])).toEqual([
      ['stored', first.sopInstanceUid],
      ['stored', second.sopInstanceUid],
    ]);
    expect(stored.instances[0]?.retrieveUrl).toContain(`/instances/${first.sopInstanceUid}`);

    const ref = { study: first.studyInstanceUid, series: first.seriesInstanceUid, instance: first.sopInstanceUid };
    const instance = Buffer.from(await new Response(await client.retrieveInstance(ref)).arrayBuffer());
    expect(instance.equals(first.bytes)).toBe(true);

    const frames: Buffer[] = [];
    for await (const part of client.retrieveFrames(ref, [2, 1]))
      frames.push(Buffer.from(await new Response(part.body).arrayBuffer()));
    expect(frames).toEqual([Buffer.alloc(FRAME, 0x5a), Buffer.alloc(FRAME, 0x5a)]);

    const metadata = await client.retrieveMetadata({ study: first.studyInstanceUid });
    expect(metadata).toHaveLength(2);

    const studies = await client.search('studies', { filters: { StudyInstanceUID: first.studyInstanceUid } });
    expect(studies.results).toEqual([
      expect.objectContaining({
        studyInstanceUid: first.studyInstanceUid,
        patientName: 'Test^Patient',
        patientId: 'PID-0001',
        studyDate: '20240131',
        modalitiesInStudy: ['CT'],
        numberOfStudyRelatedSeries: 1,
        numberOfStudyRelatedInstances: 2,
      }),
    ]);
    const instances = await client.search('instances', {
      study: first.studyInstanceUid,
      series: first.seriesInstanceUid,
    });
    expect(
      instances.results
        .map((result) => [result.sopInstanceUid, result.instanceNumber, result.numberOfFrames, result.rows])
        .sort(),
    ).toEqual([
      [first.sopInstanceUid, 1, 2, 16],
      [second.sopInstanceUid, 2, 2, 16],
    ]);

    // Into another study's path: the instance fails with 43265, typed.
    const [third] = series(1);
    const mismatch = await client.store(bytesSource(third?.bytes ?? Buffer.alloc(0)), {
      study: first.studyInstanceUid,
    });
    expect(mismatch.httpStatus).toBe(409);
    expect(mismatch.instances).toEqual([expect.objectContaining({ status: 'failed', failureReason: 43265 })]);
  });

  it('pages through every search result and the change feed, follows it, and deletes', async () => {
    const files = series(7);
    const before = (await client.latestChange())?.sequence ?? 0;
    const controller = new AbortController();
    const followed: string[] = [];
    const following = (async () => {
      try {
        for await (const entry of client.changes({
          after: before,
          limit: 3,
          follow: true,
          pollIntervalMs: 50,
          signal: controller.signal,
        })) {
          followed.push(`${entry.action} ${entry.sopInstanceUid}`);
          if (followed.length === files.length + 1) controller.abort(new Error('enough'));
        }
      } catch (error) {
        if (!controller.signal.aborted) throw error;
      }
    })();
    await client.store(files.map((file) => bytesSource(file.bytes)));
    const study = files[0]?.studyInstanceUid ?? '';
    const all = [];
    for await (const result of client.searchAll('instances', { study, limit: 3 })) all.push(result.sopInstanceUid);
    expect(all.sort()).toEqual(files.map((file) => file.sopInstanceUid).sort());

    const last = files.at(-1);
    if (!last) throw new Error('no instance');
    expect(await client.delete({ study, series: last.seriesInstanceUid, instance: last.sopInstanceUid })).toBe(true);
    expect(await client.delete({ study, series: last.seriesInstanceUid, instance: last.sopInstanceUid })).toBe(false);
    await following;
    expect(followed.slice(0, -1).sort()).toEqual(files.map((file) => `create ${file.sopInstanceUid}`).sort());
    expect(followed.at(-1)).toBe(`delete ${last.sopInstanceUid}`);

    const page = await client.readChangeFeed({ after: before, limit: 2, includeMetadata: true });
    expect(page.map((entry) => entry.sequence)).toEqual([before + 1, before + 2]);
    expect(page[0]?.metadata?.['00080018']?.Value?.[0]).toBe(followed[0]?.slice('create '.length));
  });
});
