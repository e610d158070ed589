import dicomParser from 'dicom-parser';
import { expect } from 'vitest';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { boundaryOf, decodeMultipart } from './multipart-decode.js';
import { dicomParts, multipartBody } from '../../support/multipart.js';

/**
 * Rounds of DELETE and STOW racing on one study, and the checks that they stay linearizable:
 * no 5xx, only documented statuses, and afterwards QIDO, metadata, WADO and the change feed
 * describe exactly the same instances (docs/storage.md "Deletes"). `send` is one HTTP exchange
 * with the server under test, given a path from `/v2`.
 */
export type Send = (path: string, init?: RequestInit) => Promise<Response>;

type Uids = ReturnType<typeof newInstanceUids>;
type DicomJson = Record<string, { Value?: unknown[] }>;

interface Answer {
  readonly what: string;
  readonly status: number;
  readonly body: string;
}

export interface RaceSummary {
  /** Answers outside the documented statuses (a 5xx among them). */
  readonly unexpected: Answer[];
  /** How often each request answered each status, e.g. "DELETE study 204" → 9. */
  readonly outcomes: Map<string, number>;
}

const STOW_STATUSES = [200, 202, 409];
const DELETE_STATUSES = [204, 404];
const READ_STATUSES = [200, 204, 404];

async function stow(send: Send, what: string, instances: readonly Uids[]): Promise<Answer> {
  const response = await send('/studies', {
    method: 'POST',
    headers: {
      'content-type': 'multipart/related; type="application/dicom"; boundary=r',
      accept: 'application/dicom+json',
    },
    body: multipartBody(
      dicomParts(instances.map((uids) => buildInstance({ ...uids, pixelBytes: 8 }))),
      'r',
    ) as Uint8Array<ArrayBuffer>,
  });
  return { what, status: response.status, body: await response.text() };
}

async function del(send: Send, what: string, path: string): Promise<Answer> {
  const response = await send(path, { method: 'DELETE' });
  return { what, status: response.status, body: await response.text() };
}

const get = (send: Send, path: string, accept = 'application/dicom+json') => send(path, { headers: { accept } });

/** A reader racing the writers: it may see before or after, but never fail. */
async function read(send: Send, what: string, path: string): Promise<Answer> {
  const response = await get(send, path, what.includes('change feed') ? 'application/json' : 'application/dicom+json');
  return { what, status: response.status, body: await response.text() };
}

const sopOf = (item: DicomJson) => String(item['00080018']?.Value?.[0]);

async function jsonList(response: Response): Promise<DicomJson[]> {
  expect([200, 204, 404]).toContain(response.status);
  return response.status === 200 ? ((await response.json()) as DicomJson[]) : [];
}

/** Each view's set of the study's SOP Instance UIDs (and the study's instance count in QIDO). */
async function views(send: Send, study: string, attempted: readonly Uids[], feed: Map<string, string>) {
  const studyRows = await jsonList(await get(send, `/studies?StudyInstanceUID=${study}`));
  const qido = (await jsonList(await get(send, `/studies/${study}/instances`))).map(sopOf);
  const metadata = (await jsonList(await get(send, `/studies/${study}/metadata`))).map(sopOf);
  const wado = await get(send, `/studies/${study}`, 'multipart/related; type="application/dicom"; transfer-syntax=*');
  expect([200, 404]).toContain(wado.status);
  const body = Buffer.from(await wado.arrayBuffer());
  const parts = wado.status === 200 ? decodeMultipart(body, boundaryOf(wado.headers.get('content-type'))) : [];
  const wadoSops = parts.map((part) => String(dicomParser.parseDicom(new Uint8Array(part.body)).string('x00080018')));
  const one: string[] = [];
  for (const uids of attempted) {
    const response = await get(
      send,
      `/studies/${study}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`,
      'application/dicom; transfer-syntax=*',
    );
    await response.arrayBuffer();
    expect([200, 404]).toContain(response.status);
    if (response.status === 200) one.push(uids.sopInstanceUid);
  }
  const created = attempted.map((uids) => uids.sopInstanceUid).filter((sop) => feed.get(sop) === 'create');
  const count = studyRows[0]?.['00201208']?.Value?.[0];
  return {
    qidoStudy: studyRows.length === 0 ? [] : [`${String(count)} instances`],
    qido: new Set(qido),
    metadata: new Set(metadata),
    wado: new Set(wadoSops),
    wadoInstances: new Set(one),
    changeFeed: new Set(created),
  };
}

/** Reads the change feed from `offset` on (gapless), keeping each SOP instance's last action. */
async function readFeed(send: Send, offset: number, last: Map<string, string>): Promise<number> {
  for (;;) {
    const response = await get(
      send,
      `/changefeed?offset=${offset}&limit=200&includemetadata=false`,
      'application/json',
    );
    expect(response.status).toBe(200);
    const entries = (await response.json()) as { Sequence: number; SopInstanceUid: string; Action: string }[];
    for (const entry of entries) {
      expect(entry.Sequence).toBe(offset + 1);
      offset = entry.Sequence;
      last.set(entry.SopInstanceUid, entry.Action);
    }
    if (entries.length < 200) return offset;
  }
}

/**
 * Each round: a study of two series (A, B) is stored, then eleven clients start within
 * `jitterMs`: STOWs into A, into a new series C, into B and a new series D; DELETEs of the study,
 * of series B, of one instance of A, and of the study again; and readers of study and series
 * metadata, the study's instances and the change feed with metadata. Once all have answered, every view
 * must list the same instances; the study must then be deletable and storable again.
 */
export async function raceRounds(send: Send, rounds: number, jitterMs: (round: number) => number) {
  const feed = new Map<string, string>();
  let offset = await readFeed(send, 0, new Map());
  const unexpected: Answer[] = [];
  const outcomes = new Map<string, number>();
  for (let round = 0; round < rounds; round++) {
    const study = testUid();
    const [seriesA, seriesB, seriesC, seriesD] = [testUid(), testUid(), testUid(), testUid()];
    const seeded = [
      newInstanceUids(study, seriesA),
      newInstanceUids(study, seriesA),
      newInstanceUids(study, seriesB),
      newInstanceUids(study, seriesB),
    ];
    expect((await stow(send, 'seed', seeded)).status).toBe(200);
    const [a1] = seeded as [Uids];
    const intoA = newInstanceUids(study, seriesA);
    const intoC = newInstanceUids(study, seriesC);
    const intoBD = [newInstanceUids(study, seriesB), newInstanceUids(study, seriesD)];
    const attempted = [...seeded, intoA, intoC, ...intoBD];
    const racers: (() => Promise<Answer>)[] = [
      () => stow(send, 'STOW into an existing series', [intoA]),
      () => stow(send, 'STOW into a new series', [intoC]),
      () => stow(send, 'STOW into an existing and a new series', intoBD),
      () => del(send, 'DELETE study', `/studies/${study}`),
      () => del(send, 'DELETE series', `/studies/${study}/series/${seriesB}`),
      () => del(send, 'DELETE instance', `/studies/${study}/series/${seriesA}/instances/${a1.sopInstanceUid}`),
      () => del(send, 'second DELETE study', `/studies/${study}`),
      () => read(send, 'GET study metadata', `/studies/${study}/metadata`),
      () => read(send, 'GET series metadata', `/studies/${study}/series/${seriesA}/metadata`),
      () => read(send, 'GET instances', `/studies/${study}/instances`),
      () => read(send, 'GET change feed', `/changefeed?offset=${Math.max(0, offset - 20)}&includemetadata=true`),
    ];
    const spread = jitterMs(round);
    const answers = await Promise.all(
      racers.map(async (race) => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * spread));
        return race();
      }),
    );
    for (const answer of answers) {
      // A STOW loses a race only to a delete: each failed instance says so, with 272.
      if (answer.what.startsWith('STOW') && (answer.status === 202 || answer.status === 409)) {
        const failed = ((JSON.parse(answer.body) as DicomJson)['00081198']?.Value ?? []) as DicomJson[];
        for (const item of failed) {
          expect.soft(item['00081197']?.Value, answer.body).toEqual([272]);
          expect.soft(JSON.stringify(item['00741048']), answer.body).toContain('is being deleted');
        }
        expect.soft(failed.length, answer.body).toBeGreaterThan(0);
      }
      const allowed = answer.what.startsWith('STOW')
        ? STOW_STATUSES
        : answer.what.startsWith('GET')
          ? READ_STATUSES
          : DELETE_STATUSES;
      if (!allowed.includes(answer.status)) unexpected.push(answer);
      const key = `${answer.what} ${answer.status}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    const label = `round ${round}: ${answers
      .filter((answer) => !answer.what.startsWith('GET'))
      .map((answer) => `${answer.what} ${answer.status}`)
      .join(', ')}`;
    // The study is visible until the first study DELETE marks it, so that one answers 204.
    expect
      .soft(answers.filter((answer) => answer.what.endsWith('DELETE study') && answer.status === 204).length, label)
      .toBeGreaterThan(0);
    offset = await readFeed(send, offset, feed);
    const seen = await views(send, study, attempted, feed);
    const expected = seen.wadoInstances;
    expect.soft({ label, ...seen }).toEqual({
      label,
      qidoStudy: expected.size === 0 ? [] : [`${expected.size} instances`],
      qido: expected,
      metadata: expected,
      wado: expected,
      wadoInstances: expected,
      changeFeed: expected,
    });
    // Nothing is left blocked: the study can be deleted (if anything is left) and stored into again.
    expect.soft((await del(send, 'cleanup', `/studies/${study}`)).status, label).toBe(expected.size === 0 ? 404 : 204);
    const again = newInstanceUids(study, seriesB);
    expect.soft((await stow(send, 'store again', [again])).status, label).toBe(200);
    const stored = await get(send, `/studies/${study}/series/${seriesB}/instances/${again.sopInstanceUid}`, '*/*');
    expect.soft(stored.status, label).toBe(200);
    await stored.arrayBuffer();
    offset = await readFeed(send, offset, feed);
  }
  return { unexpected, outcomes } satisfies RaceSummary;
}
