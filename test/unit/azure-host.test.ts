import { HttpRequest } from '@azure/functions';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { handleAzureRequest } from '../../src/host/azure-host.js';
import { createMemoryStorage } from '../../src/storage/memory-storage.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';

describe('Azure Functions host adapter', () => {
  it('passes a streamed HttpRequest to the core and returns its answer', async () => {
    const storage = createMemoryStorage();
    const app = createApp({
      storage,
      config: { publicBaseUrl: undefined, maxHeaderBytes: 1 << 20, emptySearchStatus: 200 },
    });
    const uids = newInstanceUids();
    const file = buildInstance({ ...uids, pixelBytes: 4096 });
    const request = new HttpRequest({
      method: 'POST',
      url: 'https://dicom.example.org/v2/studies',
      headers: { 'content-type': 'application/dicom', accept: 'application/dicom+json' },
      body: { bytes: file },
    });
    const response = await handleAzureRequest(app, request);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/dicom+json');
    const json = (await response.json()) as Record<string, { Value: Record<string, { Value: string[] }>[] }>;
    expect(json['00081199']?.Value[0]?.['00081190']?.Value[0]).toBe(
      `https://dicom.example.org/v2/studies/${uids.studyInstanceUid}/series/${uids.seriesInstanceUid}/instances/${uids.sopInstanceUid}`,
    );
    const stored = [...storage.blobs.blobs.entries()].filter(([name]) => name.endsWith('.dcm'));
    expect(stored).toHaveLength(1);
    expect(stored[0]?.[1].bytes.equals(file)).toBe(true);
  });
});

describe('Azure Functions host adapter: requests a web Request cannot carry', () => {
  it("answers TRACE on a resource with the app's 405 and Allow, not a 500", async () => {
    const app = createApp({
      storage: createMemoryStorage(),
      config: { publicBaseUrl: undefined, maxHeaderBytes: 1 << 20, emptySearchStatus: 200 },
      log: () => undefined,
    });
    const request = { method: 'TRACE', url: 'https://dicom.example.org/v2/studies/1.2.3' } as unknown as HttpRequest;
    const response = await handleAzureRequest(app, request);
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('POST, PUT, GET, DELETE, OPTIONS');
  });
});
