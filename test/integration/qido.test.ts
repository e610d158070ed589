import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildInstance, newInstanceUids, testUid } from '../../support/dicom-builder.js';
import { dicomParts, multipartBody } from '../../support/multipart.js';
import { useTestServer } from '../helpers/server.js';

type Attr = { vr: string; Value?: unknown[] };
type Result = Record<string, Attr>;

const SAMPLES = join(import.meta.dirname, '..', 'fixtures', 'azure-samples');
const STUDY = '1.2.826.0.1.3680043.8.498.13230779778012324449356534479549187420';
const BLUE_SERIES = '1.2.826.0.1.3680043.8.498.77033797676425927098669402985243398207';
const BLUE_SOP = '1.2.826.0.1.3680043.8.498.13273713909719068980354078852867170114';
const GREEN_SERIES = '1.2.826.0.1.3680043.8.498.45787841905473114233124723359129632652';

const server = useTestServer();

async function qido(path: string, accept = 'application/dicom+json') {
  const response = await fetch(`${server().baseUrl}/v2${path}`, { headers: { accept } });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    text,
    results: text.startsWith('[') ? (JSON.parse(text) as Result[]) : [],
  };
}

async function store(files: Buffer[]) {
  const body = multipartBody(dicomParts(files), 'q');
  const response = await fetch(`${server().baseUrl}/v2/studies`, {
    method: 'POST',
    headers: {
      'content-type': 'multipart/related; type="application/dicom"; boundary=q',
      accept: 'application/dicom+json',
    },
    body: body as Uint8Array<ArrayBuffer>,
  });
  expect(response.status).toBe(200);
}

const value = (result: Result | undefined, tag: string) => result?.[tag]?.Value;

describe('QIDO-RS against Azurite', () => {
  beforeAll(async () => {
    await store(
      ['blue-circle', 'green-square', 'red-triangle'].map((name) => readFileSync(join(SAMPLES, `${name}.dcm`))),
    );
  });

  it('finds exactly one match for each UID search of the Azure tutorials', async () => {
    const searches = [
      `/studies?StudyInstanceUID=${STUDY}`,
      `/series?SeriesInstanceUID=${BLUE_SERIES}`,
      `/studies/${STUDY}/series?SeriesInstanceUID=${BLUE_SERIES}`,
      `/instances?SOPInstanceUID=${BLUE_SOP}`,
      `/studies/${STUDY}/instances?SOPInstanceUID=${BLUE_SOP}`,
      `/studies/${STUDY}/series/${BLUE_SERIES}/instances?SOPInstanceUID=${BLUE_SOP}`,
    ];
    for (const search of searches) {
      const { status, results } = await qido(search);
      expect({ search, status, count: results.length }).toEqual({ search, status: 200, count: 1 });
    }
  });

  it('returns the PS3.18 study attributes with computed counts and a RetrieveURL', async () => {
    const { results, headers } = await qido(`/studies?StudyInstanceUID=${STUDY}`);
    expect(headers.get('content-type')).toBe('application/dicom+json');
    const study = results[0];
    expect(value(study, '0020000D')).toEqual([STUDY]);
    expect(value(study, '00100010')).toEqual([{ Alphabetic: 'Anony Mous' }]);
    expect(value(study, '00100020')).toEqual(['ID1']);
    expect(value(study, '00080020')).toEqual(['20200922']);
    expect(value(study, '00080061')).toEqual(['OT']);
    expect(value(study, '00201206')).toEqual([2]);
    expect(value(study, '00201208')).toEqual([3]);
    expect(value(study, '00080056')).toEqual(['ONLINE']);
    expect(value(study, '00081190')).toEqual([`${server().baseUrl}/v2/studies/${STUDY}`]);
    expect(study?.['00080050']).toEqual({ vr: 'SH' }); // AccessionNumber is empty in the samples
    expect(Object.keys(study ?? {})).toEqual(Object.keys(study ?? {}).sort());
  });

  it('lists a study series and instances with their counts', async () => {
    const series = await qido(`/studies/${STUDY}/series`);
    expect(series.results.map((result) => value(result, '0020000E')?.[0]).sort()).toEqual(
      [GREEN_SERIES, BLUE_SERIES].sort(),
    );
    const green = series.results.find((result) => value(result, '0020000E')?.[0] === GREEN_SERIES);
    expect(value(green, '00201209')).toEqual([2]);
    expect(value(green, '00080060')).toEqual(['OT']);
    const instances = await qido(`/studies/${STUDY}/series/${GREEN_SERIES}/instances`);
    expect(instances.results).toHaveLength(2);
    expect(value(instances.results[0], '00080016')).toEqual(['1.2.840.10008.5.1.4.1.1.7']);
    expect(value(instances.results[0], '00280010')).toEqual([979]);
  });

  it('answers 200 with [] when nothing matches', async () => {
    const { status, text } = await qido(`/studies?PatientID=${testUid()}`);
    expect(status).toBe(200);
    expect(text).toBe('[]');
  });
});

describe('QIDO-RS matching', () => {
  const patient = `PID-${testUid()}`;
  const study = (attributes: Record<string, { vr: string; value: string }>, uids = newInstanceUids()) =>
    buildInstance({ ...uids, attributes: { '00100020': { vr: 'LO', value: patient }, ...attributes } });
  const uids = {
    mueller: newInstanceUids(),
    yamada: newInstanceUids(),
    smith: newInstanceUids(),
  };
  beforeAll(async () => {
    // One request per study, a few milliseconds apart: results come newest first by the study's
    // createdAt, then by Study UID, and three studies of one request can share a millisecond.
    const files = [
      study(
        {
          '00100010': { vr: 'PN', value: 'Müller^Hans Peter' },
          '00080020': { vr: 'DA', value: '20230115' },
          '00080050': { vr: 'SH', value: 'ACC-M-1' },
          '00080060': { vr: 'CS', value: 'MR' },
        },
        uids.mueller,
      ),
      study(
        {
          '00100010': { vr: 'PN', value: 'Yamada^Tarou=山田^太郎=やまだ^たろう' },
          '00080020': { vr: 'DA', value: '20230620' },
          '00080050': { vr: 'SH', value: 'ACC-Y-1' },
        },
        uids.yamada,
      ),
      study({ '00100010': { vr: 'PN', value: 'Smith^John' }, '00080020': { vr: 'DA', value: '20221231' } }, uids.smith),
    ];
    for (const file of files) {
      await store([file]);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  });
  const studies = async (query: string) => {
    const { status, results, text } = await qido(`/studies?PatientID=${patient}&${query}`);
    expect(status, text).toBe(200);
    return results.map((result) => value(result, '0020000D')?.[0]).sort();
  };
  const uidsOf = (...names: (keyof typeof uids)[]) => names.map((name) => uids[name].studyInstanceUid).sort();

  it('matches PN case- and accent-insensitively, whole value or any group', async () => {
    expect(await studies('PatientName=mueller^hans peter')).toEqual([]);
    expect(await studies('PatientName=MULLER^HANS PETER')).toEqual(uidsOf('mueller'));
    expect(await studies(`PatientName=${encodeURIComponent('山田^太郎')}`)).toEqual(uidsOf('yamada'));
    expect(await studies('PatientName=Smith')).toEqual([]);
  });

  it('matches a prefix of any name word with fuzzymatching, Japanese included', async () => {
    expect(await studies('PatientName=hans&fuzzymatching=true')).toEqual(uidsOf('mueller'));
    expect(await studies('PatientName=mul pet&fuzzymatching=true')).toEqual(uidsOf('mueller'));
    expect(await studies(`PatientName=${encodeURIComponent('太')}&fuzzymatching=true`)).toEqual(uidsOf('yamada'));
    expect(await studies(`PatientName=${encodeURIComponent('やま')}&fuzzymatching=true`)).toEqual(uidsOf('yamada'));
    expect(await studies('PatientName=ohn&fuzzymatching=true')).toEqual([]);
  });

  it('matches wildcards * and ?', async () => {
    expect(await studies('PatientName=sm*')).toEqual(uidsOf('smith'));
    expect(await studies('PatientName=*tarou*')).toEqual(uidsOf('yamada'));
    expect(await studies('AccessionNumber=ACC-?-1')).toEqual(uidsOf('mueller', 'yamada'));
  });

  it('matches date ranges a-b, a- and -b', async () => {
    expect(await studies('StudyDate=20230101-20231231')).toEqual(uidsOf('mueller', 'yamada'));
    expect(await studies('StudyDate=20230201-')).toEqual(uidsOf('yamada'));
    expect(await studies('StudyDate=-20230115')).toEqual(uidsOf('mueller', 'smith'));
    expect(await studies('StudyDate=20221231')).toEqual(uidsOf('smith'));
  });

  it('matches UID lists and ModalitiesInStudy', async () => {
    const list = [uids.smith.studyInstanceUid, uids.yamada.studyInstanceUid].join(',');
    expect(await studies(`StudyInstanceUID=${list}`)).toEqual(uidsOf('smith', 'yamada'));
    expect(await studies('ModalitiesInStudy=MR')).toEqual(uidsOf('mueller'));
    expect(await studies('00080061=CT,MR')).toEqual(uidsOf('mueller', 'smith', 'yamada'));
  });

  it('searches lower levels by upper-level attributes', async () => {
    const { results } = await qido(`/instances?PatientID=${patient}&AccessionNumber=ACC-Y-1`);
    expect(results.map((result) => value(result, '00080018')?.[0])).toEqual([uids.yamada.sopInstanceUid]);
    const series = await qido(`/series?PatientID=${patient}&Modality=MR`);
    expect(series.results.map((result) => value(result, '0020000E')?.[0])).toEqual([uids.mueller.seriesInstanceUid]);
  });

  it('pages with limit and offset, newest first, with a Warning when cut', async () => {
    const first = await qido(`/studies?PatientID=${patient}&limit=2`);
    expect(first.results).toHaveLength(2);
    expect(first.headers.get('warning')).toMatch(/^299 .*offset=2/);
    const rest = await qido(`/studies?PatientID=${patient}&limit=2&offset=2`);
    expect(rest.results).toHaveLength(1);
    expect(rest.headers.get('warning')).toBeNull();
    const all = [...first.results, ...rest.results].map((result) => value(result, '0020000D')?.[0]);
    expect(all).toEqual([uids.smith, uids.yamada, uids.mueller].map((u) => u.studyInstanceUid));
  });

  it('applies includefield by keyword, tag, list and all', async () => {
    const { results } = await qido(
      `/studies?PatientID=${patient}&StudyDate=20221231&includefield=00100010,StudyTime&includefield=all`,
    );
    expect(results[0]?.['00080030']).toBeDefined();
    expect(results[0]?.['00201208']).toBeDefined();
  });

  it('answers 400 naming the parameter for bad queries', async () => {
    const cases: [string, RegExp][] = [
      ['/studies?Foo=bar', /Foo/],
      ['/studies?patientname=x', /patientname/],
      ['/studies?Modality=CT', /Modality cannot be searched/],
      ['/studies?StudyDate=2023-01-01', /StudyDate/],
      ['/studies?StudyDate=20231301', /StudyDate/],
      ['/studies?StudyDate=20230201-20230101', /ends before it starts/],
      ['/studies?limit=0', /limit/],
      ['/studies?limit=201', /limit/],
      ['/studies?offset=-1', /offset/],
      ['/studies?fuzzymatching=yes', /fuzzymatching/],
      ['/studies?includefield=NotAKeyword', /NotAKeyword/],
      ['/studies?StudyInstanceUID=1.2.abc', /not a valid UID/],
      ['/studies?PatientID=a&PatientID=b', /more than once/],
      [`/studies/${STUDY}/series?PatientID=x`, /PatientID cannot be searched/],
      ['/studies/1..2/series', /not a valid UID/],
    ];
    for (const [path, message] of cases) {
      const { status, text } = await qido(path);
      expect({ path, status }).toEqual({ path, status: 400 });
      expect(text).toMatch(message);
    }
  });

  it('negotiates Accept: dicom+json, json, */* or none; anything else 406', async () => {
    for (const accept of ['application/dicom+json', 'application/json', '*/*', '']) {
      expect((await qido(`/studies?PatientID=${patient}`, accept)).status, accept).toBe(200);
    }
    expect((await qido(`/studies?PatientID=${patient}`, 'application/dicom+xml')).status).toBe(406);
  });
});
