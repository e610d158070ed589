import dicomParser from 'dicom-parser';
import jpeg from 'jpeg-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  findOrthanc,
  serveRecorded,
  startOrthanc,
  type OrthancProcess,
  type RecordedRequest,
} from '../helpers/orthanc.js';
import { openTestStorage } from '../helpers/server.js';

/**
 * A real PACS as client: Orthanc with its DICOMweb plugin pushes to this server (STOW-RS), searches
 * it (QIDO-RS), pulls studies back (WADO-RS) and deletes in it, all through Orthanc's REST API.
 */
const orthancInstall = findOrthanc();
const SAMPLES = join(import.meta.dirname, '..', 'fixtures', 'azure-samples');

interface Sample {
  readonly name: string;
  readonly file: Buffer;
  readonly pixelData: Buffer;
  readonly study: string;
  readonly series: string;
  readonly sop: string;
}

const samples: Sample[] = ['blue-circle', 'green-square', 'red-triangle'].map((name) => {
  const file = readFileSync(join(SAMPLES, `${name}.dcm`));
  const dataSet = dicomParser.parseDicom(new Uint8Array(file));
  return {
    name,
    file,
    pixelData: pixelDataOf(file),
    study: dataSet.string('x0020000d') ?? '',
    series: dataSet.string('x0020000e') ?? '',
    sop: dataSet.string('x00080018') ?? '',
  };
});
const sample = (name: string): Sample => {
  const found = samples.find((candidate) => candidate.name === name);
  if (!found) throw new Error(name);
  return found;
};
const blue = sample('blue-circle');
const green = sample('green-square');
const red = sample('red-triangle');
const STUDY = blue.study;

function pixelDataOf(file: Buffer): Buffer {
  const element = dicomParser.parseDicom(new Uint8Array(file)).elements['x7fe00010'];
  if (!element) throw new Error('no Pixel Data');
  return file.subarray(element.dataOffset, element.dataOffset + element.length);
}

type DicomJson = Record<string, { vr: string; Value?: unknown[] }>[];
const uidsOf = (items: DicomJson, tag: string): string[] => items.map((item) => String(item[tag]?.Value?.[0])).sort();
const sorted = (...uids: string[]): string[] => [...uids].sort();

const title = orthancInstall
  ? 'Orthanc (DICOMweb plugin) as a PACS client'
  : 'Orthanc as a PACS client: skipped, /usr/sbin/Orthanc or its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb; CI=true fails instead)';

describe.skipIf(orthancInstall === undefined)(title, () => {
  let ours: Awaited<ReturnType<typeof serveRecorded>> | undefined;
  let orthanc: OrthancProcess | undefined;
  /** Orthanc's own IDs of the three samples, by SOP Instance UID. */
  const orthancIds = new Map<string, string>();

  const server = () => {
    if (!ours) throw new Error('our server has not started');
    return ours;
  };
  const pacs = () => {
    if (!orthanc) throw new Error('Orthanc has not started');
    return orthanc;
  };
  const base = () => `${server().baseUrl}/v2`;

  /** Our own QIDO: the SOP Instance UIDs of the study, sorted. */
  async function ourInstances(): Promise<string[]> {
    const response = await fetch(`${base()}/studies/${STUDY}/instances`, {
      headers: { accept: 'application/dicom+json' },
    });
    expect(response.status).toBe(200);
    return uidsOf((await response.json()) as DicomJson, '00080018');
  }

  /** Requests that reached our server since `from`, with their recorded headers. */
  const requestsSince = (from: number): RecordedRequest[] => server().requests.slice(from);

  /** Uploads the three samples into Orthanc's own store (its REST `POST /instances`). */
  async function uploadSamplesToOrthanc(): Promise<void> {
    orthancIds.clear();
    for (const { file, sop } of samples) {
      const response = await fetch(`${pacs().url}/instances`, { method: 'POST', body: new Uint8Array(file) });
      const body = (await response.json()) as { ID: string; Status: string };
      expect(response.status).toBe(200);
      expect(['Success', 'AlreadyStored']).toContain(body.Status);
      orthancIds.set(sop, body.ID);
    }
  }

  async function orthancStudyId(): Promise<string> {
    const { body } = await pacs().rest('POST', '/tools/lookup', STUDY);
    const id = (body as { ID: string }[])[0]?.ID;
    if (!id) throw new Error('the study is not in Orthanc');
    return id;
  }

  /** SOP Instance UID → Orthanc ID of every instance Orthanc holds. */
  async function orthancInstances(): Promise<Map<string, string>> {
    const { status, body } = await pacs().rest('GET', '/instances?expand');
    expect(status).toBe(200);
    const instances = body as { ID: string; MainDicomTags: { SOPInstanceUID: string } }[];
    return new Map(instances.map((instance) => [instance.MainDicomTags.SOPInstanceUID, instance.ID]));
  }

  beforeAll(async () => {
    if (!orthancInstall) return;
    const { storage } = await openTestStorage();
    ours = await serveRecorded(storage);
    const peer = { Url: `${ours.baseUrl}/v2/`, HasDelete: true, Timeout: 30 };
    orthanc = await startOrthanc(orthancInstall, {
      ours: { ...peer, ChunkedTransfers: true },
      'ours-unchunked': { ...peer, ChunkedTransfers: false },
    });
  });

  afterEach((context) => {
    if (context.task.result?.state === 'fail' && orthanc) {
      console.error(`Orthanc's log (tail):\n${orthanc.log().slice(-8000)}`);
      console.error(
        'Requests our server received:\n' +
          server()
            .requests.map((r) => `${r.method} ${r.url} -> ${r.status ?? '?'} ${JSON.stringify(r.headers)}`)
            .join('\n'),
      );
    }
  });

  afterAll(async () => {
    await orthanc?.stop();
    await ours?.close();
  });

  it('takes the three samples into its own store (one study, two series)', async () => {
    await uploadSamplesToOrthanc();
    const studies = await pacs().rest('GET', '/studies');
    expect(studies.body).toHaveLength(1);
    const series = await pacs().rest('GET', `/studies/${await orthancStudyId()}/series`);
    expect(series.body).toHaveLength(2);
    expect([...(await orthancInstances()).keys()].sort()).toEqual(sorted(blue.sop, green.sop, red.sop));
  });

  describe.each([
    { peer: 'ours', chunked: true },
    { peer: 'ours-unchunked', chunked: false },
  ])('pushes with STOW-RS, ChunkedTransfers $chunked', ({ peer, chunked }) => {
    const pushes = [
      { level: 'one instance', resource: () => orthancIds.get(red.sop), expected: () => [red.sop] },
      {
        level: 'one series',
        resource: async () =>
          ((await pacs().rest('GET', `/instances/${orthancIds.get(green.sop) ?? ''}`)).body as { ParentSeries: string })
            .ParentSeries,
        expected: () => sorted(green.sop, red.sop),
      },
      { level: 'the whole study', resource: orthancStudyId, expected: () => sorted(blue.sop, green.sop, red.sop) },
    ];

    for (const push of pushes) {
      it(`${push.level}: Orthanc reports success and we hold exactly those instances`, async () => {
        // Start from an empty study on our side.
        const cleared = await fetch(`${base()}/studies/${STUDY}`, { method: 'DELETE' });
        expect([204, 404]).toContain(cleared.status);
        expect(await ourInstances()).toEqual([]);

        const from = server().requests.length;
        const resource = await push.resource();
        const result = await pacs().rest('POST', `/dicom-web/servers/${peer}/stow`, {
          Resources: [resource],
          Synchronous: true,
        });
        expect(result.status, JSON.stringify(result.body)).toBe(200);
        expect((result.body as { InstancesCount?: string }).InstancesCount).toBe(String(push.expected().length));
        expect(await ourInstances()).toEqual(push.expected());

        const stow = requestsSince(from).filter((request) => request.method === 'POST');
        expect(stow).toHaveLength(1);
        const [request] = stow;
        expect(request?.url).toBe('/v2/studies');
        expect(request?.status).toBe(200);
        expect(request?.headers.accept).toBe('application/dicom+json');
        expect(request?.headers['content-type']).toMatch(
          /^multipart\/related; type="application\/dicom"; boundary=[\w-]{73}$/,
        );
        if (chunked) {
          expect(request?.headers['transfer-encoding']).toBe('chunked');
          expect(request?.headers['content-length']).toBeUndefined();
        } else {
          expect(request?.headers['transfer-encoding']).toBeUndefined();
          expect(Number(request?.headers['content-length'])).toBeGreaterThan(push.expected().length * 2_800_000);
        }
      });
    }
  });

  describe('searches with QIDO-RS through Orthanc', () => {
    const get = async (Uri: string, Arguments?: Record<string, string>) => {
      const { status, body } = await pacs().rest('POST', '/dicom-web/servers/ours/get', {
        Uri,
        ...(Arguments ? { Arguments } : {}),
      });
      expect(status, JSON.stringify(body)).toBe(200);
      return body as DicomJson;
    };

    it('lists the study, its series and a series’ instances', async () => {
      expect(await ourInstances()).toEqual(sorted(blue.sop, green.sop, red.sop));
      expect(uidsOf(await get('/studies'), '0020000D')).toEqual([STUDY]);
      expect(uidsOf(await get(`/studies/${STUDY}/series`), '0020000E')).toEqual(sorted(blue.series, green.series));
      expect(uidsOf(await get(`/studies/${STUDY}/series/${green.series}/instances`), '00080018')).toEqual(
        sorted(green.sop, red.sop),
      );
      expect(uidsOf(await get(`/studies/${STUDY}/series/${blue.series}/instances`), '00080018')).toEqual([blue.sop]);
    });

    it('matches query parameters, which plugin 1.7 takes as "Arguments" (an explicit "?" in Uri is refused)', async () => {
      expect(uidsOf(await get('/studies', { PatientID: 'ID1' }), '0020000D')).toEqual([STUDY]);
      expect(await get('/studies', { PatientID: 'nobody' })).toEqual([]);
      expect(
        uidsOf(await get('/instances', { PatientID: 'ID1', SeriesInstanceUID: green.series }), '00080018'),
      ).toEqual(sorted(green.sop, red.sop));
      const from = server().requests.length;
      await get('/studies', { PatientID: 'ID1', limit: '1' });
      expect(requestsSince(from)[0]?.url).toBe('/v2/studies?PatientID=ID1&limit=1');
    });

    it('reads study metadata (WADO-RS) through /get', async () => {
      const metadata = await get(`/studies/${STUDY}/metadata`);
      expect(uidsOf(metadata, '00080018')).toEqual(sorted(blue.sop, green.sop, red.sop));
    });

    it('fetches a rendered preview of an instance through /get (the red triangle, as JPEG)', async () => {
      const response = await fetch(`${pacs().url}/dicom-web/servers/ours/get`, {
        method: 'POST',
        body: JSON.stringify({
          Uri: `/studies/${STUDY}/series/${red.series}/instances/${red.sop}/rendered`,
          HttpHeaders: { Accept: 'image/jpeg' },
        }),
      });
      expect(response.status).toBe(200);
      const image = jpeg.decode(Buffer.from(await response.arrayBuffer()), { useTArray: true });
      const at = (Math.floor(image.height * 0.7) * image.width + Math.floor(image.width / 2)) * 4;
      expect(image.data[at]).toBeGreaterThan(200); // red where the triangle is
      expect(image.data[at + 1]).toBeLessThan(60);
    });

    it('gives Orthanc’s own /qido format too', async () => {
      // Orthanc flattens each attribute to { Group, Element, Name, vr, Value: first value }.
      const result = await pacs().rest('POST', '/dicom-web/servers/ours/qido', { Uri: `/studies/${STUDY}/series` });
      expect(result.status).toBe(200);
      const body = result.body as Record<string, { Name?: string; Value?: unknown }>[];
      expect(body.map((item) => String(item['0020000E']?.Value)).sort()).toEqual(sorted(blue.series, green.series));
      expect(body[0]?.['0020000E']?.Name).toBe('SeriesInstanceUID');
    });
  });

  describe('pulls back with WADO-RS into Orthanc, byte-identical pixel data', () => {
    const levels = [
      { level: 'study', resource: { Study: STUDY }, expected: [blue, green, red] },
      { level: 'series', resource: { Study: STUDY, Series: green.series }, expected: [green, red] },
      {
        level: 'instance',
        resource: { Study: STUDY, Series: blue.series, Instance: blue.sop },
        expected: [blue],
      },
    ];

    for (const { level, resource, expected } of levels) {
      it(`retrieves the ${level} after Orthanc deleted its own copy`, async () => {
        const studies = (await pacs().rest('GET', '/studies')).body as string[];
        for (const id of studies) expect((await pacs().rest('DELETE', `/studies/${id}`)).status).toBe(200);
        expect((await orthancInstances()).size).toBe(0);

        const from = server().requests.length;
        const result = await pacs().rest('POST', '/dicom-web/servers/ours/retrieve', {
          Resources: [resource],
          Synchronous: true,
        });
        expect(result.status, JSON.stringify(result.body)).toBe(200);
        expect((result.body as { ReceivedInstancesCount?: string }).ReceivedInstancesCount).toBe(
          String(expected.length),
        );

        const held = await orthancInstances();
        expect([...held.keys()].sort()).toEqual(sorted(...expected.map((instance) => instance.sop)));
        for (const instance of expected) {
          const file = await pacs().bytes(`/instances/${held.get(instance.sop) ?? ''}/file`);
          expect(pixelDataOf(file).equals(instance.pixelData), `${instance.name} pixel data`).toBe(true);
          expect(file.equals(instance.file), `${instance.name} file`).toBe(true);
        }

        const wado = requestsSince(from);
        expect(wado).toHaveLength(1);
        expect(wado[0]?.method).toBe('GET');
        expect(wado[0]?.status).toBe(200);
        expect(wado[0]?.headers.accept).toBe('multipart/related; type="application/dicom"; transfer-syntax=*');
      });
    }
  });

  describe('deletes through Orthanc (plugin "HasDelete")', () => {
    const del = async (body: Record<string, string>) => {
      const from = server().requests.length;
      const result = await pacs().rest('POST', '/dicom-web/servers/ours/delete', body);
      expect(result.status, JSON.stringify(result.body)).toBe(200);
      const sent = requestsSince(from);
      expect(sent.map((request) => [request.method, request.status])).toEqual([['DELETE', 204]]);
      return sent[0];
    };

    it('an instance', async () => {
      const request = await del({
        Level: 'Instance',
        StudyInstanceUID: STUDY,
        SeriesInstanceUID: red.series,
        SOPInstanceUID: red.sop,
      });
      expect(request?.url).toBe(`/v2/studies/${STUDY}/series/${red.series}/instances/${red.sop}`);
      expect(await ourInstances()).toEqual(sorted(blue.sop, green.sop));
    });

    it('a series', async () => {
      const request = await del({ Level: 'Series', StudyInstanceUID: STUDY, SeriesInstanceUID: blue.series });
      expect(request?.url).toBe(`/v2/studies/${STUDY}/series/${blue.series}`);
      expect(await ourInstances()).toEqual([green.sop]);
      const series = await fetch(`${base()}/studies/${STUDY}/series`);
      expect(uidsOf((await series.json()) as DicomJson, '0020000E')).toEqual([green.series]);
    });

    it('the study', async () => {
      const request = await del({ Level: 'Study', StudyInstanceUID: STUDY });
      expect(request?.url).toBe(`/v2/studies/${STUDY}`);
      expect(await ourInstances()).toEqual([]);
      const studies = await fetch(`${base()}/studies?StudyInstanceUID=${STUDY}`);
      expect(await studies.json()).toEqual([]);
    });
  });
});
