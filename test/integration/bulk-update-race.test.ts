import { describe, expect, it } from 'vitest';
import { newVersion } from '../../src/storage/keys.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { stowRequestInit } from '../../support/multipart.js';
import { useTestServer } from '../helpers/server.js';

const server = useTestServer();

/**
 * A bulk update reads an instance's row, then writes its new version. An instance DELETE that
 * lands between the two must win: the update's write is refused ('deleting') instead of adding
 * the instance back, as a PUT would (StudyAddOptions.replaceOnly).
 */
describe('a bulk update racing an instance delete', () => {
  it('does not bring back an instance deleted between its read and its write', async () => {
    const study = newInstanceUids().studyInstanceUid;
    const keep = newInstanceUids(study);
    const gone = newInstanceUids(study, keep.seriesInstanceUid);
    const stored = await fetch(
      `${server().baseUrl}/v2/studies`,
      stowRequestInit([buildInstance({ ...keep }), buildInstance({ ...gone })]),
    );
    expect(stored.status).toBe(200);
    const { storage } = server();
    const record = await storage.index.getInstance(gone);
    if (!record) throw new Error('the instance was not stored');

    // The update has read the rows...
    const write = await storage.index.prepareStudy(study, [gone]);
    expect(write.current(gone)?.version).toBe(record.version);
    // ...then the instance is deleted...
    const instanceUrl = `${server().baseUrl}/v2/studies/${study}/series/${gone.seriesInstanceUid}/instances/${gone.sopInstanceUid}`;
    expect((await fetch(instanceUrl, { method: 'DELETE' })).status).toBe(204);
    // ...and the update's write comes.
    const version = newVersion();
    const outcomes = await write.add([{ ...record, version, replaces: record.version, updatedBy: 'operation-1' }], {
      replace: true,
      replaceOnly: true,
    });
    expect(outcomes).toEqual(['deleting']);
    expect(await storage.index.getInstance(gone)).toBeUndefined();
    expect((await fetch(instanceUrl, { headers: { accept: 'application/dicom; transfer-syntax=*' } })).status).toBe(
      404,
    );
    expect(await storage.index.getInstance(keep)).toBeDefined();
  });
});
