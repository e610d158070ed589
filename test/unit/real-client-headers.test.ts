/**
 * Each real DICOMweb client's exact header strings and body framing, as their sources build them
 * (read in their repositories; cited per case). The server must take every one of them.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { memoryApp } from '../helpers/memory-app.js';

interface Framing {
  /** The bytes before the first boundary line. */
  readonly lead: string;
  /** Headers of each part (Content-Length filled in when true). */
  readonly partHeaders: (body: Uint8Array) => string;
  /** The bytes after the close delimiter. */
  readonly tail: string;
}

function frame(files: readonly Uint8Array[], boundary: string, framing: Framing): Buffer {
  const chunks: Buffer[] = [Buffer.from(framing.lead, 'latin1')];
  for (const [i, file] of files.entries()) {
    chunks.push(Buffer.from(`${i === 0 ? '' : '\r\n'}--${boundary}\r\n${framing.partHeaders(file)}\r\n`, 'latin1'));
    chunks.push(Buffer.from(file));
  }
  chunks.push(Buffer.from(`\r\n--${boundary}--${framing.tail}`, 'latin1'));
  return Buffer.concat(chunks);
}

const contentTypeOnly = () => 'Content-Type: application/dicom\r\n';
const withLength = (body: Uint8Array) => `Content-Type: application/dicom\r\nContent-Length: ${body.byteLength}\r\n`;
const uuid = randomUUID();
const hex32 = randomUUID().replace(/-/g, '');

const STOW_CLIENTS: readonly {
  client: string;
  contentType: string;
  boundary: string;
  accept: string;
  framing: Framing;
}[] = [
  {
    // orthanc-dicomweb Plugin/DicomWebClient.cpp StowClientJob: the same UUID twice, 73 characters.
    client: 'Orthanc DICOMweb plugin 1.7',
    contentType: `multipart/related; type="application/dicom"; boundary=${uuid}-${uuid}`,
    boundary: `${uuid}-${uuid}`,
    accept: 'application/dicom+json',
    framing: { lead: '', partHeaders: withLength, tail: '' },
  },
  {
    // dcm4che-tool-stowrs StowRS.java requestProperties / writePartHeaders (its default Accept).
    client: 'dcm4che stowrs',
    contentType: 'multipart/related; type="application/dicom"; boundary=myboundary',
    boundary: 'myboundary',
    accept: 'application/dicom+xml',
    framing: { lead: '\r\n', partHeaders: contentTypeOnly, tail: '\r\n' },
  },
  {
    // dicomweb-client (Python) web.py _http_post_multipart_application_dicom; requests' default Accept.
    client: 'dicomweb-client Python',
    contentType: 'multipart/related; type="application/dicom"; boundary="0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1"',
    boundary: '0f3cf5c0-70e0-41ef-baef-c6f9f65ec3e1',
    accept: '*/*',
    framing: { lead: '\r\n', partHeaders: contentTypeOnly, tail: '' },
  },
  {
    // dicomweb-client (JS) api.js storeInstances, message.js multipartEncode; XHR's default Accept.
    client: 'dicomweb-client JS',
    contentType: `multipart/related; type="application/dicom"; boundary="${uuid}"`,
    boundary: uuid,
    accept: '*/*',
    framing: { lead: '\r\n', partHeaders: contentTypeOnly, tail: '' },
  },
  {
    // Microsoft.Health.Dicom.Client DicomContent.CreateMultipart on .NET MultipartContent: boundary first, quoted.
    client: 'Microsoft.Health.Dicom.Client (C# tutorial)',
    contentType: `multipart/related; boundary="${uuid}"; type="application/dicom"`,
    boundary: uuid,
    accept: 'application/dicom+json',
    framing: { lead: '', partHeaders: contentTypeOnly, tail: '\r\n' },
  },
  {
    // Azure "DICOMweb Standard APIs with Python": urllib3 form-data framing, no type parameter.
    client: 'Azure Python tutorial (urllib3)',
    contentType: `multipart/related; boundary=${hex32}`,
    boundary: hex32,
    accept: 'application/dicom+json',
    framing: {
      lead: '',
      partHeaders: () =>
        'Content-Disposition: form-data; name="file"; filename="dicomfile"\r\nContent-Type: application/dicom\r\n',
      tail: '\r\n',
    },
  },
  {
    // weasis-dicom-tools ContentType.toMultipartContentType (current) and MultipartPart.generateHeader.
    client: 'Weasis (current)',
    contentType: 'multipart/related; type="application/dicom";boundary=weasisDicomBoundary',
    boundary: 'weasisDicomBoundary',
    accept: 'application/dicom+xml',
    framing: { lead: '\r\n', partHeaders: withLength, tail: '\r\n' },
  },
  {
    // weasis-dicom-tools DicomStowRS.buildConnection (up to October 2025): no spaces at all.
    client: 'Weasis (2025 and before)',
    contentType: 'multipart/related;type="application/dicom";boundary=mimeTypeBoundary',
    boundary: 'mimeTypeBoundary',
    accept: 'application/dicom+json',
    framing: { lead: '\r\n', partHeaders: withLength, tail: '\r\n' },
  },
  {
    // Google Cloud Healthcare API "Using the DICOMweb standard": unquoted type with a slash.
    client: 'Google Healthcare API docs (curl)',
    contentType: 'multipart/related; type=application/dicom; boundary=DICOMwebBoundary',
    boundary: 'DICOMwebBoundary',
    accept: 'application/dicom+json',
    framing: { lead: '', partHeaders: contentTypeOnly, tail: '\r\n' },
  },
];

describe('STOW-RS as each real client sends it', () => {
  for (const stow of STOW_CLIENTS) {
    it(`${stow.client}: ${stow.contentType}`, async () => {
      const { app, storage } = memoryApp();
      const study = newInstanceUids().studyInstanceUid;
      const files = [0, 1].map(() => buildInstance({ ...newInstanceUids(study), pixelBytes: 512 }));
      const response = await app.handle(
        new Request('http://localhost/v2/studies', {
          method: 'POST',
          headers: { 'content-type': stow.contentType, accept: stow.accept },
          body: new Uint8Array(frame(files, stow.boundary, stow.framing)),
        }),
      );
      const text = await response.text();
      expect(response.status, text).toBe(200);
      expect(await storage.index.listInstances(study)).toHaveLength(2);
      if (stow.accept === 'application/dicom+xml') {
        expect(response.headers.get('content-type')).toBe('application/dicom+xml');
        expect(wellFormedXml(text)).toBe(true);
        expect(text).toContain(
          '<DicomAttribute tag="00081199" vr="SQ" keyword="ReferencedSOPSequence"><Item number="1">',
        );
      } else expect(response.headers.get('content-type')).toBe('application/dicom+json');
    });
  }
});

/** Python's XML parser (always on the machine) as an independent judge of well-formedness. */
function wellFormedXml(text: string): boolean {
  const parsed = spawnSync(
    'python3',
    ['-c', 'import sys, xml.dom.minidom; xml.dom.minidom.parseString(sys.stdin.buffer.read())'],
    {
      input: text,
    },
  );
  return parsed.status === 0;
}

describe('the STOW-RS answer in XML (PS3.19 Native DICOM Model)', () => {
  it('carries the same data as the JSON answer, failures and warnings included', async () => {
    const { app } = memoryApp();
    const stored = newInstanceUids();
    const body = frame(
      [buildInstance({ ...stored }), buildInstance({ ...newInstanceUids(), attributes: { '00100020': null } })],
      'b',
      { lead: '', partHeaders: contentTypeOnly, tail: '' },
    );
    const response = await app.handle(
      new Request('http://localhost/v1/studies', {
        method: 'POST',
        headers: { 'content-type': 'multipart/related; boundary=b', accept: 'application/dicom+xml' },
        body: new Uint8Array(body),
      }),
    );
    expect(response.status).toBe(202);
    const text = await response.text();
    expect(wellFormedXml(text)).toBe(true);
    expect(text).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<NativeDicomModel xmlns="http:\/\/dicom.nema.org\/PS3.19\/models\/NativeDICOM">/,
    );
    expect(text).toContain(
      '<DicomAttribute tag="00081197" vr="US" keyword="FailureReason"><Value number="1">43264</Value></DicomAttribute>',
    );
    expect(text).toContain(
      `<DicomAttribute tag="00081155" vr="UI" keyword="ReferencedSOPInstanceUID"><Value number="1">${stored.sopInstanceUid}</Value>`,
    );
  });

  it.each([
    ['application/dicom+xml, application/dicom+json', 'application/dicom+json'],
    ['application/dicom+json;q=0.5, application/dicom+xml', 'application/dicom+xml'],
    ['*/*', 'application/dicom+json'],
  ])('Accept %s answers %s', async (accept, type) => {
    const { app } = memoryApp();
    const response = await app.handle(
      new Request('http://localhost/v2/studies', {
        method: 'POST',
        headers: { 'content-type': 'application/dicom', accept },
        body: new Uint8Array(buildInstance({ ...newInstanceUids() })),
      }),
    );
    expect(response.headers.get('content-type')).toBe(type);
  });
});

describe("retrieve and search with each real client's Accept", () => {
  async function stored() {
    const { app } = memoryApp();
    const uids = newInstanceUids();
    const u16 = (n: number) => Uint8Array.of(n & 0xff, n >> 8);
    const file = buildInstance({
      ...uids,
      pixelBytes: 64 * 64 * 2,
      attributes: {
        '00280002': { vr: 'US', value: u16(1) },
        '00280010': { vr: 'US', value: u16(64) },
        '00280011': { vr: 'US', value: u16(64) },
        '00280100': { vr: 'US', value: u16(16) },
      },
    });
    const answer = await app.handle(
      new Request('http://localhost/v2/studies', {
        method: 'POST',
        headers: { 'content-type': 'application/dicom' },
        body: new Uint8Array(file),
      }),
    );
    expect(answer.status).toBe(200);
    const base = `http://localhost/v2/studies/${uids.studyInstanceUid}`;
    const instance = `${base}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`;
    const get = (url: string, accept?: string) =>
      app.handle(new Request(url, { headers: accept === undefined ? {} : { accept } }));
    return { base, instance, get };
  }

  const JAVA_DEFAULT = 'text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2';

  it.each([
    ['Orthanc WadoRetrieveJob', 'multipart/related; type="application/dicom"; transfer-syntax=*'],
    ['dicomweb-client Python/JS', 'multipart/related; type="application/dicom"'],
    ['Microsoft.Health.Dicom.Client', 'multipart/related; type="application/dicom";transfer-syntax="*"'],
    ['Azure tutorial', 'multipart/related; type="application/dicom"; transfer-syntax=*'],
    ['Google docs', 'multipart/related; type=application/dicom; transfer-syntax=*'],
    ['dcm4che wadors --header (bare *)', '*'],
    ['Java HttpURLConnection default (JDK ≤ 18)', JAVA_DEFAULT],
  ])('study retrieve, %s: %s', async (_client, accept) => {
    const { base, get } = await stored();
    const response = await get(base, accept);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^multipart\/related; type="application\/dicom"/);
  });

  it('dcm4che wadors puts the Accept in the query string (PS3.18 §8.3.3.1)', async () => {
    const { base, get } = await stored();
    for (const query of ['accept=*', 'accept=multipart/related;type=application/dicom;transfer-syntax=*']) {
      const response = await get(`${base}?${query}`, JAVA_DEFAULT);
      expect(response.status, query).toBe(200);
      expect(response.headers.get('content-type'), query).toMatch(/^multipart\/related; type="application\/dicom"/);
    }
    // The query parameter wins over the header: only JSON is acceptable here, and a study is no JSON.
    expect((await get(`${base}?accept=application/dicom%2Bjson`, '*/*')).status).toBe(406);
  });

  it.each([
    ['Azure tutorial', 'application/dicom; transfer-syntax=*'],
    ['Microsoft.Health.Dicom.Client', 'application/dicom;transfer-syntax="*"'],
  ])('single instance, %s: %s', async (_client, accept) => {
    const { instance, get } = await stored();
    const response = await get(instance, accept);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/dicom; transfer-syntax=/);
  });

  it.each([
    ['dicomweb-client JS', 'multipart/related; type="application/octet-stream"'],
    ['dicomweb-client Python (default)', 'multipart/related; type="*/*"'],
    ['Microsoft.Health.Dicom.Client', 'multipart/related; type="application/octet-stream";transfer-syntax="*"'],
    ['Azure tutorial', 'multipart/related; type="application/octet-stream"; transfer-syntax=*'],
    ['Azure tutorial (trailing semicolon)', 'multipart/related; type="application/octet-stream";'],
    ['cornerstone / OHIF (omitQuotation)', 'multipart/related; type=application/octet-stream; transfer-syntax=*'],
    ['OHIF (quoted)', 'multipart/related; type="application/octet-stream"; transfer-syntax="*"'],
    [
      'OHIF (a transfer syntax asked for, then *)',
      'multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.80; transfer-syntax=*',
    ],
  ])('frames, %s: %s', async (_client, accept) => {
    const { instance, get } = await stored();
    const response = await get(`${instance}/frames/1`, accept);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^multipart\/related; type="application\/octet-stream"/);
  });

  it('a single frame as Microsoft.Health.Dicom.Client asks for it', async () => {
    const { instance, get } = await stored();
    const response = await get(`${instance}/frames/1`, 'application/octet-stream;transfer-syntax="*"');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/octet-stream/);
  });

  it.each([
    ['dicomweb-client Python', 'application/dicom+json, application/json'],
    ['dicomweb-client JS, .NET, tutorials', 'application/dicom+json'],
    ['Orthanc /get (curl default)', '*/*'],
    ['Google Node sample', 'application/dicom+json,multipart/related'],
    ['Java HttpURLConnection default', JAVA_DEFAULT],
  ])('metadata and search, %s: %s', async (_client, accept) => {
    const { base, get } = await stored();
    for (const url of [`${base}/metadata`, `${base}/series`, 'http://localhost/v2/studies?PatientID=PID']) {
      const response = await get(url, accept);
      expect(response.status, url).toBe(200);
      expect(response.headers.get('content-type'), url).toBe('application/dicom+json');
    }
  });
});

describe('what stays refused', () => {
  it.each([
    ['an unclosed quote', 'multipart/related; type="application/dicom; boundary=x', 415],
    ['a parameter without a value', 'multipart/related; type="application/dicom"; boundary', 415],
    ['an empty boundary', 'multipart/related; type="application/dicom"; boundary=', 415],
    ['two different boundaries', 'multipart/related; boundary=a; boundary=b', 415],
    ['no subtype', 'multipart; boundary=a', 415],
    ['a boundary of 201 characters', `multipart/related; boundary=${'b'.repeat(201)}`, 400],
  ])('STOW Content-Type with %s', async (_what, contentType, status) => {
    const { app } = memoryApp();
    const response = await app.handle(
      new Request('http://localhost/v2/studies', {
        method: 'POST',
        headers: { 'content-type': contentType },
        body: 'x',
      }),
    );
    expect(response.status).toBe(status);
  });

  it.each([
    ['two different types in one range', 'multipart/related; type="application/dicom"; type="image/jpeg"'],
    ['a q-value above 1', 'application/dicom+json; q=2'],
    ['a range that is not type/subtype', 'application'],
  ])('Accept with %s: 400', async (_what, accept) => {
    const { app } = memoryApp();
    const response = await app.handle(new Request('http://localhost/v2/studies', { headers: { accept } }));
    expect(response.status).toBe(400);
  });
});
