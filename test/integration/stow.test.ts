import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sidecarBlobName } from '../../src/storage/keys.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { dicomParts, multipartBody } from '../../support/multipart.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const SAMPLES = join(import.meta.dirname, '..', 'fixtures', 'azure-samples');
const sample = (name: string) => readFileSync(join(SAMPLES, `${name}.dcm`));
const SAMPLE_STUDY = '1.2.826.0.1.3680043.8.498.13230779778012324449356534479549187420';

type Json = Record<string, { vr: string; Value?: unknown[] }>;

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

async function stow(path: string, body: Uint8Array, contentType: string, accept = 'application/dicom+json') {
  const response = await fetch(`${server.baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType, accept },
    body: body as Uint8Array<ArrayBuffer>,
  });
  const text = await response.text();
  const json = response.headers.get('content-type')?.includes('json') && text ? (JSON.parse(text) as Json) : undefined;
  return { status: response.status, json, text, headers: response.headers };
}

function multipart(files: Uint8Array[], boundary = 'b0undary') {
  return {
    body: multipartBody(dicomParts(files), boundary),
    type: `multipart/related; type="application/dicom"; boundary=${boundary}`,
  };
}

function items(json: Json | undefined, tag: string): Json[] {
  return (json?.[tag]?.Value ?? []) as Json[];
}

describe('STOW-RS against Azurite', () => {
  it('stores the tutorial samples: 200, 200, then 409 for the duplicate', async () => {
    const first = await stow('/v2/studies', multipart([sample('blue-circle')]).body, multipart([]).type);
    expect(first.status).toBe(200);
    const referenced = items(first.json, '00081199');
    expect(referenced).toHaveLength(1);
    expect(referenced[0]?.['00081150']?.Value).toEqual(['1.2.840.10008.5.1.4.1.1.7']);
    expect(referenced[0]?.['00081155']?.Value).toEqual([
      '1.2.826.0.1.3680043.8.498.13273713909719068980354078852867170114',
    ]);
    expect(referenced[0]?.['00081190']?.Value).toEqual([
      `${server.baseUrl}/v2/studies/${SAMPLE_STUDY}/series/1.2.826.0.1.3680043.8.498.77033797676425927098669402985243398207/instances/1.2.826.0.1.3680043.8.498.13273713909719068980354078852867170114`,
    ]);
    expect(referenced[0]?.['00741048']).toEqual({ vr: 'SQ' });
    expect(first.json?.['00081190']).toBeUndefined();

    const second = await stow(
      '/v2/studies',
      multipart([sample('red-triangle'), sample('green-square')]).body,
      multipart([]).type,
    );
    expect(second.status).toBe(200);
    expect(items(second.json, '00081199').map((item) => item['00081155']?.Value?.[0])).toEqual([
      '1.2.826.0.1.3680043.8.498.47359123102728459884412887463296905395',
      '1.2.826.0.1.3680043.8.498.12714725698140337137334606354172323212',
    ]);

    const third = await stow('/v2/studies', sample('blue-circle'), 'application/dicom');
    expect(third.status).toBe(409);
    const failed = items(third.json, '00081198');
    expect(failed[0]?.['00081197']?.Value).toEqual([45070]);
    expect(third.json?.['00081199']).toBeUndefined();

    const study = await server.storage.index.getStudy(SAMPLE_STUDY);
    expect(study).toMatchObject({ numberOfSeries: 2, numberOfInstances: 3, modalities: ['OT'] });
    expect(study?.attributes['PatientName']).toBe('Anony Mous');
    const series = await server.storage.index.getSeries(
      SAMPLE_STUDY,
      '1.2.826.0.1.3680043.8.498.45787841905473114233124723359129632652',
    );
    expect(series?.numberOfInstances).toBe(2);
  });

  it('stores under /studies/{study} with the study RetrieveURL, and fails another study with 43265', async () => {
    const uids = newInstanceUids();
    const other = newInstanceUids();
    const { body, type } = multipart([
      buildInstance({ ...uids, pixelBytes: 64 }),
      buildInstance({ ...other, pixelBytes: 64 }),
    ]);
    const result = await stow(`/v1/studies/${uids.studyInstanceUid}`, body, type);
    expect(result.status).toBe(202);
    expect(result.json?.['00081190']?.Value).toEqual([`${server.baseUrl}/v1/studies/${uids.studyInstanceUid}`]);
    expect(items(result.json, '00081199')).toHaveLength(1);
    expect(items(result.json, '00081199')[0]?.['00741048']).toBeUndefined(); // v1 has no FailedAttributesSequence
    const failed = items(result.json, '00081198');
    expect(failed[0]?.['00081197']?.Value).toEqual([43265]);
    expect(failed[0]?.['00081155']?.Value).toEqual([other.sopInstanceUid]);
    expect(await server.storage.index.getInstance(other)).toBeUndefined();
  });

  it('accepts the shapes real clients send: preamble CRLF, unquoted boundary, no type, no part Content-Type, chunked', async () => {
    const boundary = 'urllib3boundary0123456789';
    const files = [
      buildInstance({ ...newInstanceUids(), pixelBytes: 1000 }),
      buildInstance({ ...newInstanceUids(), pixelBytes: 1000 }),
    ];
    const body = multipartBody(
      [
        {
          body: files[0] ?? Buffer.alloc(0),
          headers: {
            'Content-Disposition': 'form-data; name="file"; filename="dicomfile"',
            'Content-Type': 'application/dicom',
          },
        },
        { body: files[1] ?? Buffer.alloc(0), headers: {} },
      ],
      boundary,
      { preamble: '\r\n' },
    );
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < body.length; i += 777) controller.enqueue(body.subarray(i, i + 777));
        controller.close();
      },
    });
    const response = await fetch(`${server.baseUrl}/v2/studies`, {
      method: 'POST',
      headers: { 'content-type': `multipart/related; boundary=${boundary}`, accept: '*/*' },
      body: chunked,
      duplex: 'half',
    } as RequestInit);
    expect(response.status).toBe(200);
    const json = (await response.json()) as Json;
    expect(items(json, '00081199')).toHaveLength(2);
  });

  it('answers request-level errors with the right status and a message', async () => {
    const dicom = buildInstance({ ...newInstanceUids(), pixelBytes: 16 });
    const cases: [string, Uint8Array, string, string, number, RegExp][] = [
      ['/v2/studies', dicom, 'application/dicom', 'application/dicom', 406, /application\/dicom\+json/],
      ['/v2/studies', dicom, 'multipart/form-data; boundary=x', 'application/dicom+json', 415, /not supported/],
      ['/v2/studies', dicom, 'multipart/related; type="application/dicom"', 'application/dicom+json', 415, /boundary/],
      [
        '/v2/studies',
        dicom,
        'multipart/related; type="application/dicom+json"; boundary=x',
        'application/dicom+json',
        415,
        /type/,
      ],
      ['/v2/studies', dicom, 'multipart/related; boundary=x; start="<a>"', 'application/dicom+json', 400, /start/],
      ['/v2/studies', dicom, 'multipart/related; boundary=nothere', 'application/dicom+json', 400, /boundary/],
      ['/v2/studies', new Uint8Array(0), 'multipart/related; boundary=x', 'application/dicom+json', 400, /empty/],
      ['/v2/studies/1.2..3', dicom, 'application/dicom', 'application/dicom+json', 400, /not a valid UID/],
      [`/v2/studies/${'1'.repeat(65)}`, dicom, 'application/dicom', 'application/dicom+json', 400, /not a valid UID/],
      ['/v2/studies/..%2F..%2Fetc', dicom, 'application/dicom', 'application/dicom+json', 400, /not a valid UID/],
      ['/v3/studies', dicom, 'application/dicom', 'application/dicom+json', 400, /v3 is not supported/],
      ['/v2/nothing', dicom, 'application/dicom', 'application/dicom+json', 404, /no DICOMweb resource/],
    ];
    for (const [path, body, type, accept, status, message] of cases) {
      const result = await stow(path, body, type, accept);
      expect({ path, type, status: result.status }).toEqual({ path, type, status });
      expect(result.text).toMatch(message);
    }
  });

  it('fails bad parts without touching what is stored, and keeps storing the good ones', async () => {
    const good = newInstanceUids();
    const boundary = 'bb';
    const truncatedHeader = buildInstance({ ...newInstanceUids(), pixelBytes: 10 }).subarray(0, 300);
    const notDicom = Buffer.from('this is not a DICOM file at all, just some text that is long enough '.repeat(5));
    const badUid = buildInstance({ ...newInstanceUids(), sopInstanceUid: '1.2.abc' });
    const missingSeries = buildInstance({ ...newInstanceUids(), attributes: { '0020000E': null } });
    const body = multipartBody(
      dicomParts([
        Buffer.alloc(0),
        truncatedHeader,
        notDicom,
        badUid,
        missingSeries,
        buildInstance({ ...good, pixelBytes: 32 }),
      ]),
      boundary,
    );
    const result = await stow('/v2/studies', body, `multipart/related; type="application/dicom"; boundary=${boundary}`);
    expect(result.status).toBe(202);
    const failed = items(result.json, '00081198');
    expect(failed.map((item) => item['00081197']?.Value?.[0])).toEqual([43264, 43264, 43264, 43264, 43264]);
    const comments = failed.map((item) => JSON.stringify(item['00741048']));
    expect(comments[0]).toMatch(/empty/);
    expect(comments[2]).toMatch(/DICM/);
    expect(comments[3]).toMatch(/\(0008,0018\).*not a valid UID/);
    expect(comments[4]).toMatch(/\(0020,000e\).*SeriesInstanceUID is missing/);
    expect(items(result.json, '00081199')[0]?.['00081155']?.Value).toEqual([good.sopInstanceUid]);
    expect(await server.storage.index.getInstance(good)).toBeDefined();
  });

  it('rejects a body that ends mid-part and leaves no instance visible', async () => {
    const uids = newInstanceUids();
    const full = multipartBody(dicomParts([buildInstance({ ...uids, pixelBytes: 5 * 1024 * 1024 })]), 'cut');
    const result = await stow('/v2/studies', full.subarray(0, full.length - 1000), 'multipart/related; boundary=cut');
    expect(result.status).toBe(400);
    expect(result.text).toMatch(/ends in the middle of a part/);
    expect(await server.storage.index.getInstance(uids)).toBeUndefined();
    const blobs = [];
    for await (const blob of server.storage.blobs.list(`${uids.studyInstanceUid}/`)) blobs.push(blob);
    expect(blobs).toEqual([]);
  });

  it('stores exactly one of two concurrent uploads of the same new instance', async () => {
    const uids = newInstanceUids();
    const file = buildInstance({ ...uids, pixelBytes: 2 * 1024 * 1024 });
    const results = await Promise.all([0, 1, 2].map(() => stow('/v2/studies', file, 'application/dicom')));
    expect(results.map((result) => result.status).sort()).toEqual([200, 409, 409]);
    const blobs = [];
    for await (const blob of server.storage.blobs.list(`${uids.studyInstanceUid}/`)) blobs.push(blob);
    // Only the winner's blob: its sidecar is in its index row, and the losers' were never committed.
    const record = await server.storage.index.getInstance(uids);
    expect(blobs.map((blob) => blob.name)).toEqual([record?.blobName]);
    expect(record?.inlineSidecar).toBeDefined();
    expect(record?.size).toBe(file.length);
  });

  it('v2 stores an instance with an invalid searchable attribute with warning 1; v1 fails it', async () => {
    const attributes = { '00080020': { vr: 'DA', value: 'NotADate' } };
    const v2 = newInstanceUids();
    const stored = await stow('/v2/studies', buildInstance({ ...v2, attributes }), 'application/dicom');
    expect(stored.status).toBe(202);
    const item = items(stored.json, '00081199')[0];
    expect(item?.['00081196']?.Value).toEqual([1]);
    expect(JSON.stringify(item?.['00741048'])).toMatch(/DICOM100: \(0008,0020\) - StudyDate value \\"NotADate\\"/);
    expect((await server.storage.index.getStudy(v2.studyInstanceUid))?.attributes['StudyDate']).toBeUndefined();

    const v1 = newInstanceUids();
    const failed = await stow('/v1/studies', buildInstance({ ...v1, attributes }), 'application/dicom');
    expect(failed.status).toBe(409);
    expect(items(failed.json, '00081198')[0]?.['00081197']?.Value).toEqual([43264]);
  });

  it('stores implicit VR with warning 45063: 202 in v2, 200 in v1', async () => {
    for (const [version, status] of [
      ['v2', 202],
      ['v1', 200],
    ] as const) {
      const uids = newInstanceUids();
      const result = await stow(
        `/${version}/studies`,
        buildInstance({ ...uids, transferSyntax: '1.2.840.10008.1.2', pixelBytes: 8 }),
        'application/dicom',
      );
      expect(result.status).toBe(status);
      expect(items(result.json, '00081199')[0]?.['00081196']?.Value).toEqual([45063]);
    }
  });

  it('answers 204 for a multipart body with no parts', async () => {
    const result = await stow('/v2/studies', Buffer.from('--x--\r\n'), 'multipart/related; boundary=x');
    expect(result.status).toBe(204);
  });

  it('fails a second copy of an instance within one request with 45070', async () => {
    const file = buildInstance({ ...newInstanceUids(), pixelBytes: 8 });
    const { body, type } = multipart([file, file]);
    const result = await stow('/v2/studies', body, type);
    expect(result.status).toBe(202);
    expect(items(result.json, '00081198')[0]?.['00081197']?.Value).toEqual([45070]);
  });

  it('stores every instance when 8 clients send single-instance requests into one study at once', async () => {
    // Every request's transaction is conditional on the same study row: the losers must back
    // off, read again and win later, never answer 503.
    const { studyInstanceUid, seriesInstanceUid } = newInstanceUids();
    const files = Array.from({ length: 96 }, () =>
      buildInstance({ ...newInstanceUids(studyInstanceUid, seriesInstanceUid), pixelBytes: 64 }),
    );
    const statuses: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4, 5, 6, 7].map(async (client) => {
        for (let i = client; i < files.length; i += 8) {
          statuses.push((await stow('/v2/studies', files[i] as Buffer, 'application/dicom')).status);
        }
      }),
    );
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect((await server.storage.index.getStudy(studyInstanceUid))?.numberOfInstances).toBe(96);
  });

  it('keeps a sidecar too large for the index row as a blob, and serves metadata and frames from it', async () => {
    const uids = newInstanceUids();
    // 4,000 private LT elements of random text: a header whose compressed metadata is over 192 KB.
    const attributes: Record<string, { vr: string; value: string | Buffer }> = {
      '00090010': { vr: 'LO', value: 'BENCH' },
      '00280010': { vr: 'US', value: Buffer.from([2, 0]) },
      '00280011': { vr: 'US', value: Buffer.from([2, 0]) },
      '00280100': { vr: 'US', value: Buffer.from([16, 0]) },
    };
    for (let element = 0x1000; element < 0x1000 + 4000; element++) {
      const tag = `0009${element.toString(16).padStart(4, '0')}`;
      attributes[tag] = { vr: 'LT', value: randomBytes(60).toString('base64') };
    }
    const file = buildInstance({ ...uids, attributes, pixelBytes: 2 * 2 * 2 });
    expect((await stow('/v2/studies', file, 'application/dicom')).status).toBe(200);
    const record = await server.storage.index.getInstance(uids);
    expect(record?.inlineSidecar).toBeUndefined();
    expect(await server.storage.blobs.readSmall(sidecarBlobName(record?.blobName ?? ''))).toBeDefined();
    const path = `/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;
    const metadata = await fetch(`${server.baseUrl}${path}/metadata`, {
      headers: { accept: 'application/dicom+json' },
    });
    expect(metadata.status).toBe(200);
    const [item] = (await metadata.json()) as Json[];
    expect(item?.['00091234']?.Value).toEqual([attributes['00091234']?.value]);
    const frame = await fetch(`${server.baseUrl}${path}/frames/1`, {
      headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' },
    });
    expect(frame.status).toBe(200);
  });

  it('reads big endian, deflated and encapsulated instances', async () => {
    for (const transferSyntax of ['1.2.840.10008.1.2.2', '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.4.50']) {
      const uids = newInstanceUids();
      const file = buildInstance({
        ...uids,
        transferSyntax,
        ...(transferSyntax.endsWith('.50')
          ? { fragments: [Buffer.alloc(100, 1), Buffer.alloc(50, 2)] }
          : { pixelBytes: 512 }),
      });
      const result = await stow('/v2/studies', file, 'application/dicom');
      expect({ transferSyntax, status: result.status }).toEqual({ transferSyntax, status: 200 });
      const record = await server.storage.index.getInstance(uids);
      expect(record?.transferSyntaxUid).toBe(transferSyntax);
      expect(record?.study['PatientID']).toBe('PID-0001');
    }
  });

  it('uses the configured public base URL for RetrieveURLs, not the Host header', async () => {
    const proxied = await startTestServer({ publicBaseUrl: 'https://dicom.example.org/' });
    try {
      const uids = newInstanceUids();
      const response = await fetch(`${proxied.baseUrl}/v2/studies`, {
        method: 'POST',
        headers: { 'content-type': 'application/dicom', accept: 'application/dicom+json', host: 'evil.example' },
        body: buildInstance({ ...uids }) as Uint8Array<ArrayBuffer>,
      });
      const json = (await response.json()) as Json;
      expect(items(json, '00081199')[0]?.['00081190']?.Value?.[0]).toBe(
        `https://dicom.example.org/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`,
      );
    } finally {
      await proxied.close();
    }
  });

  it('keeps UIDs unchanged when a 64-character UID is stored', async () => {
    const long = `1.${'2'.repeat(62)}`;
    expect(long).toHaveLength(64);
    const uids = { ...newInstanceUids(), sopInstanceUid: long };
    const result = await stow('/v2/studies', buildInstance(uids), 'application/dicom');
    expect(result.status).toBe(200);
    // The answer, the index and a retrieve all carry the 64 characters, not a cut or padded form.
    const item = result.json?.['00081199']?.Value?.[0] as Json | undefined;
    expect(item?.['00081155']?.Value?.[0]).toBe(long);
    expect(item?.['00081190']?.Value?.[0]).toMatch(new RegExp(`/instances/${long}$`));
    expect((await server.storage.index.getInstance(uids))?.sopInstanceUid).toBe(long);
    const search = await fetch(`${server.baseUrl}/v2/instances?SOPInstanceUID=${long}`, {
      headers: { accept: 'application/dicom+json' },
    });
    const found = (await search.json()) as Record<string, { Value: string[] }>[];
    expect(found.map((item) => item['00080018']?.Value[0])).toEqual([long]);
  });
});
