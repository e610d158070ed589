import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TableClient } from '@azure/data-tables';
import { ChangeFeedKeys, instanceBlobMetadata, instanceBlobName, newVersion } from '../../src/storage/keys.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';
import { INLINE_SIDECAR_LIMIT, type InstanceRecord, type PendingBlob, type Storage } from '../../src/storage/ports.js';
import { newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { StorageMeter, withStorageMeter } from '../../src/util/storage-meter.js';
import { openAzureStorage } from '../../src/storage/azure-storage.js';
import { openTestStorage } from '../helpers/server.js';

function record(
  uids: ReturnType<typeof newInstanceUids>,
  modality = 'CT',
  overrides: Partial<InstanceRecord> = {},
): InstanceRecord {
  const version = newVersion();
  return {
    ...uids,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    version,
    blobName: instanceBlobName(uids, version),
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    size: 3_000_000_000,
    storedAt: new Date().toISOString(),
    pixelDataOffset: 1074,
    pixelDataLength: 2_000_000,
    numberOfFrames: 1,
    study: { PatientID: 'P1', PatientName: 'Yamada^Tarou=山田^太郎' },
    series: { Modality: modality },
    instance: { InstanceNumber: '1' },
    ...overrides,
  };
}

/** One contract, two implementations: the fake unit tests rely on behaves as Azure does. */
const implementations: [string, () => Promise<Storage>][] = [
  ['memory', () => Promise.resolve(createMemoryStorage())],
  ['Azure (Azurite)', async () => (await openTestStorage()).storage],
];

describe.each(implementations)('storage contract: %s', (name, open) => {
  it('adds instances atomically with their study and series aggregates', async () => {
    const storage = await open();
    const study = testUid();
    const seriesA = testUid();
    const seriesB = testUid();
    const first = record(newInstanceUids(study, seriesA), 'CT');
    expect(await storage.index.addInstance(first)).toBe('added-series');
    expect(await storage.index.addInstance(record(newInstanceUids(study, seriesA), 'CT'))).toBe('added');
    expect(await storage.index.addInstance(record(newInstanceUids(study, seriesB), 'MR'))).toBe('added-series');
    expect(await storage.index.getStudy(study)).toMatchObject({
      numberOfSeries: 2,
      numberOfInstances: 3,
      modalities: ['CT', 'MR'],
      attributes: { PatientID: 'P1', PatientName: 'Yamada^Tarou=山田^太郎' },
    });
    expect((await storage.index.getSeries(study, seriesA))?.numberOfInstances).toBe(2);
    const read = await storage.index.getInstance(first);
    expect(read).toMatchObject({
      size: 3_000_000_000,
      pixelDataOffset: 1074,
      version: first.version,
      blobName: first.blobName,
    });
    expect(read?.study).toEqual(first.study);
    expect(await storage.index.isReferenced(first, first.version)).toBe(true);
    expect(await storage.index.isReferenced(first, newVersion())).toBe(false);
  });

  it('hides a series being deleted from instance listings of the study and of the series', async () => {
    const storage = await open();
    const study = testUid();
    const [kept, doomed] = [testUid(), testUid()];
    const keptInstance = record(newInstanceUids(study, kept));
    const doomedInstance = record(newInstanceUids(study, doomed));
    await storage.index.addInstance(keptInstance);
    await storage.index.addInstance(doomedInstance);
    await storage.index.addInstance(record(newInstanceUids(study, doomed)));
    expect(await storage.index.listInstances(study)).toHaveLength(3);
    expect(await storage.index.listForDeletion(study)).toEqual([]);
    expect(await storage.index.markDeleting(study, doomed)).toBe('marked');
    expect(await storage.index.markDeleting(study, doomed)).toBe('hidden');
    const listed = await storage.index.listInstances(study);
    expect(listed.map((instance) => instance.sopInstanceUid)).toEqual([keptInstance.sopInstanceUid]);
    expect(await storage.index.listInstances(study, doomed)).toEqual([]);
    expect(await storage.index.listInstances(study, kept)).toHaveLength(1);
    expect(await storage.index.getSeries(study, doomed)).toBeUndefined();
    expect(await storage.index.listSeries(study)).toHaveLength(1);
    expect(await storage.index.getInstance(doomedInstance)).toBeUndefined();
    expect(await storage.index.isReferenced(doomedInstance, doomedInstance.version)).toBe(true);
    expect(await storage.index.listForDeletion(study, doomed)).toHaveLength(2);
    expect(await storage.index.listForDeletion(study)).toHaveLength(2);
    expect(await storage.index.addInstance(record(newInstanceUids(study, doomed)))).toBe('deleting');
  });

  it('hides every instance of a marked study from every reader, and refuses stores into it', async () => {
    const storage = await open();
    const study = testUid();
    const [a, b] = [testUid(), testUid()];
    const first = record(newInstanceUids(study, a));
    await storage.index.addInstance(first);
    await storage.index.addInstance(record(newInstanceUids(study, b), 'MR'));
    expect(await storage.index.markDeleting(testUid())).toBe('missing');
    expect(await storage.index.markDeleting(study, testUid())).toBe('missing');
    expect(await storage.index.markDeleting(study)).toBe('marked');
    expect(await storage.index.markDeleting(study)).toBe('hidden');
    expect(await storage.index.markDeleting(study, a)).toBe('hidden');
    expect(await storage.index.getStudy(study)).toBeUndefined();
    expect(await storage.index.listSeries(study)).toEqual([]);
    expect(await storage.index.getSeries(study, a)).toBeUndefined();
    expect(await storage.index.listInstances(study)).toEqual([]);
    expect(await storage.index.listInstances(study, a)).toEqual([]);
    expect(await storage.index.getInstance(first)).toBeUndefined();
    for (const series of [a, b, testUid()]) {
      expect(await storage.index.addInstance(record(newInstanceUids(study, series)))).toBe('deleting');
    }
    const doomed = await storage.index.listForDeletion(study);
    expect(doomed).toHaveLength(2);
    // A removal of a version no longer stored removes nothing; the right versions go, once.
    expect(await storage.index.removeInstances(study, [{ ...first, version: newVersion() }])).toBe(0);
    expect(await storage.index.removeInstances(study, doomed, { hiddenOnly: true })).toBe(2);
    expect(await storage.index.removeInstances(study, doomed, { hiddenOnly: true })).toBe(0);
    await storage.index.dropEmpty(study);
    // The mark went with the rows: the study can be stored again, from scratch.
    expect(await storage.index.addInstance(record(newInstanceUids(study, a)))).toBe('added-series');
    expect(await storage.index.getStudy(study)).toMatchObject({ numberOfSeries: 1, numberOfInstances: 1 });
  });

  it('removes only hidden rows when asked to, and counts a series left at zero as new when it is reused', async () => {
    const storage = await open();
    const study = testUid();
    const [a, b] = [testUid(), testUid()];
    const visible = record(newInstanceUids(study, a));
    const other = record(newInstanceUids(study, b));
    await storage.index.addInstance(visible);
    await storage.index.addInstance(other);
    expect(await storage.index.removeInstances(study, [visible], { hiddenOnly: true })).toBe(0);
    expect(await storage.index.getInstance(visible)).toBeDefined();
    expect(await storage.index.removeInstances(study, [visible])).toBe(1);
    expect(await storage.index.getStudy(study)).toMatchObject({ numberOfSeries: 1, numberOfInstances: 1 });
    expect(await storage.index.addInstance(record(newInstanceUids(study, a)))).toBe('added-series');
    expect(await storage.index.getStudy(study)).toMatchObject({ numberOfSeries: 2, numberOfInstances: 2 });
  });

  it('follows the recency path newest first across pages, whatever the page hint', async () => {
    const storage = await open();
    const studies: string[] = [];
    for (let i = 0; i < 40; i++) {
      const uids = newInstanceUids();
      await storage.index.addInstance(record(uids));
      studies.push(uids.studyInstanceUid);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const mine = new Set(studies);
    for (const wanted of [1, 3, undefined]) {
      const seen: string[] = [];
      for await (const pointer of storage.index.follow({ kind: 'recent', wanted })) {
        if (mine.has(pointer.studyInstanceUid)) seen.push(pointer.studyInstanceUid);
      }
      expect(seen).toEqual([...studies].reverse());
    }
  });

  it('reports an existing instance and leaves the index unchanged', async () => {
    const storage = await open();
    const uids = newInstanceUids();
    const original = record(uids);
    await storage.index.addInstance(original);
    expect(await storage.index.addInstance(record(uids))).toBe('exists');
    expect((await storage.index.getInstance(uids))?.version).toBe(original.version);
    expect((await storage.index.getStudy(uids.studyInstanceUid))?.numberOfInstances).toBe(1);
  });

  it('keeps aggregates exact under concurrent writers of one study', async () => {
    const storage = await open();
    const study = testUid();
    const series = testUid();
    const records = Array.from({ length: 12 }, () => record(newInstanceUids(study, series)));
    const outcomes = await Promise.all(records.map((r) => storage.index.addInstance(r)));
    // Exactly one of them created the series row.
    expect(outcomes.filter((outcome) => outcome === 'added-series')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'added')).toHaveLength(11);
    expect(await storage.index.getStudy(study)).toMatchObject({ numberOfSeries: 1, numberOfInstances: 12 });
    expect((await storage.index.getSeries(study, series))?.numberOfInstances).toBe(12);
  });

  it('makes a blob visible only on commit, and never on abort', async () => {
    const storage = await open();
    const uids = newInstanceUids();
    const committed = storage.blobs.beginUpload(instanceBlobName(uids, 'v1'), 'application/dicom');
    await committed.write(Buffer.alloc(10, 1));
    const aborted = storage.blobs.beginUpload(instanceBlobName(uids, 'v2'), 'application/dicom');
    await aborted.write(Buffer.alloc(10, 2));
    const listed = async () => {
      const names: string[] = [];
      for await (const blob of storage.blobs.list(`${uids.studyInstanceUid}/`)) names.push(blob.name);
      return names;
    };
    expect(await listed()).toEqual([]);
    expect(await committed.commit(instanceBlobMetadata(uids, 'v1'))).toBe(10);
    await aborted.abort();
    expect(await listed()).toEqual([instanceBlobName(uids, 'v1')]);
    await storage.blobs.delete(instanceBlobName(uids, 'v1'));
    await storage.blobs.delete(instanceBlobName(uids, 'v1')); // deleting twice is fine
    expect(await listed()).toEqual([]);
  });

  it('commits a small blob written in several chunks byte for byte, and an empty one', async () => {
    const storage = await open();
    const uids = newInstanceUids();
    const chunks = [Buffer.alloc(70_000, 1), Buffer.from('middle'), Buffer.alloc(65_536, 3)];
    const upload = storage.blobs.beginUpload(instanceBlobName(uids, 'v1'), 'application/dicom');
    for (const chunk of chunks) await upload.write(chunk);
    expect(await upload.commit(instanceBlobMetadata(uids, 'v1'))).toBe(135_542);
    expect(Buffer.from((await storage.blobs.readSmall(instanceBlobName(uids, 'v1'))) ?? [])).toEqual(
      Buffer.concat(chunks),
    );
    const empty = storage.blobs.beginUpload(instanceBlobName(uids, 'v2'), 'application/dicom');
    expect(await empty.commit(instanceBlobMetadata(uids, 'v2'))).toBe(0);
    expect((await storage.blobs.readSmall(instanceBlobName(uids, 'v2')))?.byteLength).toBe(0);
  });

  it('deletes many blobs at once, past one batch, missing ones included', async () => {
    const storage = await open();
    const study = testUid();
    const names = Array.from({ length: 300 }, (_, i) => `${study}/${i % 2 ? 'a' : 'b'}/${i}.json`);
    const kept = `${study}/kept.json`;
    await Promise.all(
      [...names, kept].map((name) => storage.blobs.writeSmall(name, Buffer.from(name), 'text/plain', {})),
    );
    const meter = new StorageMeter();
    await withStorageMeter(meter, () => storage.blobs.deleteMany([...names, `${study}/missing.json`, names[0] ?? '']));
    // On Azurite too, two Blob Batch requests (256 + 45), not single deletes (the fakes are not metered).
    if (name !== 'memory') expect(meter.counts().byKind).toEqual({ 'blob.batch': 2 });
    await storage.blobs.deleteMany(names.slice(0, 3)); // all gone already
    await storage.blobs.deleteMany([]);
    const left: string[] = [];
    for await (const blob of storage.blobs.list(`${study}/`)) left.push(blob.name);
    expect(left).toEqual([kept]);
  });

  it('lists pending notes older than a cutoff, across hours', async () => {
    const storage = await open();
    const hour = 60 * 60 * 1000;
    const now = Date.now();
    const notes = [3 * hour, hour / 2, 60_000].map((age) => {
      const uids = newInstanceUids();
      const version = newVersion(now - age);
      return { key: uids, version, blobName: instanceBlobName(uids, version), createdAt: new Date(now - age) };
    });
    for (const note of notes) await storage.pending.add(note);
    const found: string[] = [];
    for await (const note of storage.pending.olderThan(new Date(now - 15 * 60 * 1000))) found.push(note.version);
    expect(found).toEqual(expect.arrayContaining([notes[0]?.version, notes[1]?.version]));
    expect(found).not.toContain(notes[2]?.version);
    for (const note of notes) await storage.pending.remove(note);
  });

  it("keeps a version's delete note apart from its store note, and writes it idempotently", async () => {
    const storage = await open();
    const uids = newInstanceUids();
    const createdAt = new Date(Date.now() - 60 * 60 * 1000);
    const version = newVersion(createdAt.getTime());
    const store = { key: uids, version, blobName: instanceBlobName(uids, version), createdAt };
    const del = { ...store, kind: 'delete' as const };
    await storage.pending.add(store);
    await storage.pending.add(del);
    await storage.pending.add(del); // a concurrent delete of the same instance
    const listed = async () => {
      const kinds: string[] = [];
      for await (const note of storage.pending.olderThan(new Date())) {
        if (note.version === version) kinds.push(note.kind ?? 'store');
      }
      return kinds.sort();
    };
    expect(await listed()).toEqual(['delete', 'store']);
    await storage.pending.remove(del);
    expect(await listed()).toEqual(['store']);
    await storage.pending.remove(store);
    expect(await listed()).toEqual([]);
  });

  it('prepares a study write that knows re-sends and deletion marks before anything is written', async () => {
    const storage = await open();
    const study = testUid();
    const [kept, doomed] = [testUid(), testUid()];
    const keptInstance = record(newInstanceUids(study, kept));
    const doomedInstance = record(newInstanceUids(study, doomed));
    const fresh = newInstanceUids(study, kept);
    expect((await storage.index.prepareStudy(study, [keptInstance])).exists(keptInstance)).toBe(false);
    await storage.index.addInstance(keptInstance);
    await storage.index.addInstance(doomedInstance);
    let write = await storage.index.prepareStudy(study, [keptInstance, doomedInstance, fresh]);
    expect([write.exists(keptInstance), write.exists(doomedInstance), write.exists(fresh)]).toEqual([
      true,
      true,
      false,
    ]);
    expect(await storage.index.markDeleting(study, doomed)).toBe('marked');
    write = await storage.index.prepareStudy(study, [keptInstance, doomedInstance]);
    expect([write.exists(doomedInstance), write.deleting(doomedInstance)]).toEqual([false, true]);
    expect([write.exists(keptInstance), write.deleting(keptInstance)]).toEqual([true, false]);
    expect(await storage.index.markDeleting(study)).toBe('marked');
    write = await storage.index.prepareStudy(study, [keptInstance]);
    expect([write.exists(keptInstance), write.deleting(keptInstance)]).toEqual([false, true]);
  });

  it('adds a request of 130 instances in 3 series at once, and settles one a concurrent store took', async () => {
    const storage = await open();
    const study = testUid();
    const series = [testUid(), testUid(), testUid()];
    const records = Array.from({ length: 130 }, (_, i) => record(newInstanceUids(study, series[i % 3])));
    const write = await storage.index.prepareStudy(study, records);
    const taken = records[70] as InstanceRecord;
    await storage.index.addInstance({ ...taken, version: newVersion() });
    const outcomes = await write.add(records);
    // The concurrent store created the second series first.
    expect(outcomes.slice(0, 3)).toEqual(['added-series', 'added', 'added-series']);
    expect(outcomes[70]).toBe('exists');
    expect(outcomes.filter((outcome) => outcome === 'added')).toHaveLength(127);
    const aggregate = await storage.index.getStudy(study);
    expect([aggregate?.numberOfInstances, aggregate?.numberOfSeries]).toEqual([130, 3]);
    expect(await storage.index.listInstances(study)).toHaveLength(130);
    expect((await storage.index.getSeries(study, series[1] as string))?.numberOfInstances).toBe(43);
  });

  it('splits a request whose index rows exceed the 4 MiB of one transaction, and reads inline sidecars back intact', async () => {
    const storage = await open();
    const study = testUid();
    const series = testUid();
    // Incompressible sidecars near the inline limit: about 16 rows fit a transaction's payload.
    const records = Array.from({ length: 40 }, () => ({
      ...record(newInstanceUids(study, series)),
      inlineSidecar: randomBytes(INLINE_SIDECAR_LIMIT - 1000),
    }));
    const write = await storage.index.prepareStudy(study, records);
    const outcomes = await write.add(records);
    expect(outcomes.filter((outcome) => outcome === 'added')).toHaveLength(39);
    expect((await storage.index.getStudy(study))?.numberOfInstances).toBe(40);
    const listed = await storage.index.listInstances(study);
    const bySop = new Map(listed.map((each) => [each.sopInstanceUid, each.inlineSidecar]));
    const same = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
      Buffer.from(a ?? []).equals(b ?? Buffer.alloc(0));
    expect(records.every((each) => same(bySop.get(each.sopInstanceUid), each.inlineSidecar))).toBe(true);
    const one = await storage.index.getInstance(records[7] as InstanceRecord);
    expect(same(one?.inlineSidecar, records[7]?.inlineSidecar)).toBe(true);
  });

  it('removes many pending notes at once, across partitions and past 100 in one, when some are gone already', async () => {
    const storage = await open();
    const hour = 60 * 60 * 1000;
    const createdAt = new Date(Date.now() - 2 * hour);
    const note = (at: Date, shard?: string) => {
      const uids = newInstanceUids();
      const fresh = newVersion(at.getTime());
      const version = shard === undefined ? fresh : `${fresh.slice(0, -1)}${shard}`;
      return { key: uids, version, blobName: instanceBlobName(uids, version), createdAt: at };
    };
    // 105 notes of one partition (one hour, one shard), others spread over shards and hours.
    const notes = [
      ...Array.from({ length: 105 }, () => note(createdAt, 'a')),
      ...Array.from({ length: 20 }, () => note(createdAt)),
      note(new Date(createdAt.getTime() - hour)),
    ];
    const gone = note(createdAt, 'a'); // never written: removing it is not an error
    const deletes = [notes[0], notes[110]].map((each) => ({ ...(each as (typeof notes)[0]), kind: 'delete' as const }));
    for (const each of [...notes, ...deletes]) await storage.pending.add(each);
    const versions = new Set(notes.map((each) => each.version));
    const listed = async () => {
      const found: string[] = [];
      for await (const each of storage.pending.olderThan(new Date())) {
        if (versions.has(each.version)) found.push(`${each.kind ?? 'store'} ${each.version}`);
      }
      return found;
    };
    expect(await listed()).toHaveLength(notes.length + deletes.length);
    await storage.pending.removeAll([...notes.slice(0, 60), gone, ...notes.slice(60), notes[3] as (typeof notes)[0]]);
    // Only the delete notes are left: a version's store note goes without its delete note.
    expect((await listed()).sort()).toEqual(deletes.map((each) => `delete ${each.version}`).sort());
    await storage.pending.removeAll(deletes);
    expect(await listed()).toEqual([]);
    await storage.pending.removeAll([]);
  });

  it('adds many pending notes at once, in shared groups, and removes each from the partition it went to', async () => {
    const storage = await open();
    const hour = 60 * 60 * 1000;
    const createdAt = new Date(Date.now() - 2 * hour);
    const note = (at: Date, group?: string) => {
      const uids = newInstanceUids();
      const version = newVersion(at.getTime());
      return { key: uids, version, blobName: instanceBlobName(uids, version), createdAt: at, group };
    };
    // 130 notes in one group (two transactions), a lone one in another, some without a group.
    const grouped = Array.from({ length: 130 }, () => note(createdAt, 'b'));
    const lone = note(createdAt, 'c');
    const plain = [...Array.from({ length: 10 }, () => note(createdAt)), note(new Date(createdAt.getTime() - hour))];
    const deletes = grouped.slice(0, 3).map((each) => ({ ...each, kind: 'delete' as const, group: '7' }));
    await storage.pending.addAll([...grouped, lone, ...plain, ...deletes]);
    await storage.pending.addAll(deletes); // concurrent deletes share their notes
    await storage.pending.addAll([]);
    const versions = new Set([...grouped, lone, ...plain].map((each) => each.version));
    const listed = async () => {
      const found: PendingBlob[] = [];
      for await (const each of storage.pending.olderThan(new Date())) {
        if (versions.has(each.version)) found.push(each);
      }
      return found;
    };
    const all = await listed();
    expect(all).toHaveLength(grouped.length + 1 + plain.length + deletes.length);
    const groupOf = new Map(all.map((each) => [`${each.kind ?? 'store'} ${each.version}`, each.group]));
    expect(groupOf.get(`store ${lone.version}`)).toBe('c');
    expect(groupOf.get(`delete ${grouped[0]?.version ?? ''}`)).toBe('7');
    expect(groupOf.get(`store ${plain[0]?.version ?? ''}`)).toBeUndefined();
    // A store note written twice is a bug, and says so.
    await expect(storage.pending.addAll(grouped.slice(0, 2))).rejects.toThrow();
    // Removed as listed (the group read back), or as written.
    await storage.pending.removeAll(all.filter((each) => each.kind === 'delete'));
    await storage.pending.remove(lone);
    await storage.pending.removeAll([...grouped, ...plain]);
    expect(await listed()).toEqual([]);
  });

  it('tells which versions the change feed has logged, many at once', async () => {
    const storage = await open();
    const changes = Array.from({ length: 30 }, () => ({ key: newInstanceUids(), version: newVersion() }));
    await storage.changeFeed.append(changes.map((change) => ({ ...change, action: 'create' as const })));
    await storage.changeFeed.append(changes.slice(0, 5).map((change) => ({ ...change, action: 'delete' as const })));
    const never = Array.from({ length: 10 }, () => newVersion());
    const asked = [...never.slice(0, 5), ...changes.map((change) => change.version), ...never.slice(5)];
    const created = await storage.changeFeed.logged('create', asked);
    expect([...created].sort()).toEqual(changes.map((change) => change.version).sort());
    const deleted = await storage.changeFeed.logged('delete', asked);
    expect([...deleted].sort()).toEqual(
      changes
        .slice(0, 5)
        .map((change) => change.version)
        .sort(),
    );
    expect(await storage.changeFeed.logged('create', [])).toEqual(new Set());
  });

  it('answers change feed time windows as a run of sequences, at any offset', async () => {
    const storage = await open();
    const change = () => ({ action: 'create' as const, key: newInstanceUids(), version: newVersion() });
    const pause = () => new Promise((resolve) => setTimeout(resolve, 3));
    // Appends of 3, 60 (more than one transaction) and 2 changes, each at a later millisecond.
    for (const size of [3, 60, 2]) {
      await storage.changeFeed.append(Array.from({ length: size }, change));
      await pause();
    }
    const all = await storage.changeFeed.after(0, 1000);
    expect(all.map((entry) => entry.sequence)).toEqual(Array.from({ length: 65 }, (_, i) => i + 1));
    const stamps = [...new Set(all.map((entry) => entry.timestamp))];
    expect(stamps.length).toBeGreaterThanOrEqual(3);
    const shifted = (stamp: string, ms: number) => new Date(Date.parse(stamp) + ms);
    const bounds = [
      ...stamps.map((stamp) => new Date(stamp)),
      ...stamps.map((stamp) => shifted(stamp, 1)),
      shifted(stamps[0] ?? '', -60_000),
      shifted(stamps.at(-1) ?? '', 60_000),
    ];
    for (const start of bounds) {
      for (const end of bounds.filter((bound) => bound > start)) {
        for (const [offset, limit] of [
          [0, 100],
          [1, 5],
          [50, 10],
          [64, 100],
          [70, 5],
        ] as const) {
          const expected = all
            .filter((entry) => entry.timestamp >= start.toISOString() && entry.timestamp < end.toISOString())
            .slice(offset, offset + limit);
          const window = await storage.changeFeed.window(start, end, offset, limit);
          expect(
            window.map((entry) => entry.sequence),
            `${start.toISOString()}–${end.toISOString()} +${offset}`,
          ).toEqual(expected.map((entry) => entry.sequence));
        }
      }
    }
  });

  it('appends to a log expected new without replacing one that exists', async () => {
    const storage = await open();
    const name = `${testUid()}/${testUid()}/metadata.log`;
    await storage.blobs.append(name, Buffer.from('a\n'), 'text/plain', { likelyNew: true });
    await storage.blobs.append(name, Buffer.from('b\n'), 'text/plain');
    await storage.blobs.append(name, Buffer.from('c\n'), 'text/plain', { likelyNew: true });
    const other = `${testUid()}/${testUid()}/metadata.log`;
    await storage.blobs.append(other, Buffer.from('d\n'), 'text/plain');
    expect(Buffer.from((await storage.blobs.readSmall(name)) ?? []).toString()).toBe('a\nb\nc\n');
    expect(Buffer.from((await storage.blobs.readSmall(other)) ?? []).toString()).toBe('d\n');
  });
});

describe('the change feed with two writers on one table (Azurite)', () => {
  it('stays gapless and in order when each writer remembers a counter the other has moved', async () => {
    const { storage: one, config } = await openTestStorage();
    const two = await openAzureStorage(config);
    const change = () => ({ action: 'create' as const, key: newInstanceUids(), version: newVersion() });
    // Alternating and overlapping appends: each writer's remembered counter is often stale.
    for (let round = 0; round < 5; round += 1) {
      await one.changeFeed.append([change()]);
      await Promise.all([two.changeFeed.append([change(), change()]), one.changeFeed.append([change()])]);
    }
    const entries = await two.changeFeed.after(0, 100);
    expect(entries.map((entry) => entry.sequence)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const timestamps = entries.map((entry) => entry.timestamp);
    expect(timestamps).toEqual([...timestamps].sort());
  });
});

describe('a change feed written with a time row per entry (before one per transaction)', () => {
  it('still answers time windows, and appends after it', async () => {
    const { storage, config } = await openTestStorage();
    if (config.target.kind !== 'connection-string') throw new Error('the tests use a connection string');
    const table = TableClient.fromConnectionString(config.target.connectionString, config.table, {
      allowInsecureConnection: true,
    });
    // Six entries in the earlier layout: two transactions of three, each entry with its own time row.
    const stamps = ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z'];
    for (let sequence = 1; sequence <= 6; sequence += 1) {
      const at = stamps[sequence <= 3 ? 0 : 1] ?? '';
      const key = newInstanceUids();
      const version = newVersion();
      const row = {
        partitionKey: ChangeFeedKeys.partition,
        sequence,
        action: 'create',
        study: key.studyInstanceUid,
        series: key.seriesInstanceUid,
        sop: key.sopInstanceUid,
        version,
        at,
      };
      await table.createEntity({ ...row, rowKey: ChangeFeedKeys.entry(sequence) });
      await table.createEntity({ ...row, rowKey: ChangeFeedKeys.time(at, sequence) });
      await table.createEntity({
        partitionKey: ChangeFeedKeys.partition,
        rowKey: ChangeFeedKeys.marker('create', version),
        sequence,
      });
    }
    await table.createEntity({
      partitionKey: ChangeFeedKeys.partition,
      rowKey: ChangeFeedKeys.counter,
      sequence: 6,
      at: stamps[1],
    });
    const sequences = async (start: string, end: string, offset: number, limit: number) =>
      (await storage.changeFeed.window(new Date(start), new Date(end), offset, limit)).map((entry) => entry.sequence);
    expect(await sequences('2025-12-31T00:00:00Z', '2026-01-03T00:00:00Z', 0, 10)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await sequences('2026-01-01T12:00:00Z', '2026-01-03T00:00:00Z', 1, 10)).toEqual([5, 6]);
    expect(await sequences('2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', 2, 10)).toEqual([3]);
    expect(await sequences('2026-01-01T00:00:01Z', '2026-01-02T00:00:00Z', 0, 10)).toEqual([]);
    await storage.changeFeed.append([{ action: 'create', key: newInstanceUids(), version: newVersion() }]);
    expect(await sequences('2026-01-01T12:00:00Z', '2100-01-01T00:00:00Z', 0, 10)).toEqual([4, 5, 6, 7]);
  });
});
