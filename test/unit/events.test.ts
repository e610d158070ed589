import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { DicomEventType, eventId, eventTypeOf, toCloudEvent } from '../../src/events/cloud-event.js';
import { readEventsConfig } from '../../src/events/events-config.js';
import { eventGridUrl, httpSink, packBatches } from '../../src/events/sinks.js';
import { eventIdentity } from '../../src/host/events.js';
import { readConfig } from '../../src/config.js';
import type { ChangeEntry } from '../../src/storage/ports.js';

const entry: ChangeEntry = {
  sequence: 7,
  action: 'create',
  key: { studyInstanceUid: '1.2.3', seriesInstanceUid: '1.2.3.4', sopInstanceUid: '1.2.3.4.5' },
  version: '00abcdef0123456789ab',
  timestamp: '2026-01-02T03:04:05.678Z',
};
const identity = {
  source: '/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/a',
  serviceHostName: 'a.example.org',
};

describe('the CloudEvents form of a change feed entry', () => {
  it('carries the Azure DICOM event type, subject and data fields', () => {
    expect(toCloudEvent(entry, identity)).toEqual({
      specversion: '1.0',
      id: eventId(entry),
      source: identity.source,
      type: 'Microsoft.HealthcareApis.DicomImageCreated',
      subject: 'a.example.org/v1/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5',
      time: '2026-01-02T03:04:05.678Z',
      data: {
        partitionName: 'Microsoft.Default',
        imageStudyInstanceUid: '1.2.3',
        imageSeriesInstanceUid: '1.2.3.4',
        imageSopInstanceUid: '1.2.3.4.5',
        serviceHostName: 'a.example.org',
        sequenceNumber: 7,
      },
    });
  });

  it('names the partition in the subject of Updated events, as the Azure service does', () => {
    const updated = toCloudEvent({ ...entry, action: 'Updated' as ChangeEntry['action'] }, identity);
    expect(updated?.type).toBe(DicomEventType.updated);
    expect(updated?.subject).toBe(
      'a.example.org/v1/partitions/Microsoft.Default/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5',
    );
  });

  it('maps change feed actions in either spelling, and nothing else', () => {
    expect(['create', 'Created', 'update', 'Updated', 'delete', 'Deleted', 'rename', ''].map(eventTypeOf)).toEqual([
      DicomEventType.created,
      DicomEventType.created,
      DicomEventType.updated,
      DicomEventType.updated,
      DicomEventType.deleted,
      DicomEventType.deleted,
      undefined,
      undefined,
    ]);
  });

  it('has an id that is the same for the same change and differs between changes', () => {
    expect(eventId(entry)).toBe(eventId({ ...entry }));
    expect(eventId(entry)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const others = [
      { ...entry, sequence: 8 },
      { ...entry, action: 'delete' as const },
      { ...entry, version: '00abcdef0123456789ac' },
    ];
    expect(new Set([entry, ...others].map(eventId)).size).toBe(4);
  });
});

describe('event settings', () => {
  it('reads the sinks and refuses bad values with the setting named', () => {
    expect(readEventsConfig({})).toMatchObject({ enabled: true, queue: undefined, intervalMs: 1000 });
    expect(readEventsConfig({ DICOMWEB_EVENTS_QUEUE: 'my-events', DICOMWEB_EVENTS: 'off' })).toMatchObject({
      enabled: false,
      queue: 'my-events',
    });
    expect(() => readEventsConfig({ DICOMWEB_EVENTS: 'yes' })).toThrow(/DICOMWEB_EVENTS must be on or off/);
    expect(() => readEventsConfig({ DICOMWEB_EVENTS_QUEUE: 'Bad_Name' })).toThrow(/DICOMWEB_EVENTS_QUEUE/);
    expect(() => readEventsConfig({ DICOMWEB_EVENTS_WEBHOOK_URL: 'example.org/hook' })).toThrow(
      /DICOMWEB_EVENTS_WEBHOOK_URL/,
    );
    expect(() =>
      readEventsConfig({ DICOMWEB_EVENTS_EVENTGRID_ENDPOINT: 'http://t.westeurope-1.eventgrid.azure.net/api/events' }),
    ).toThrow(/DICOMWEB_EVENTS_EVENTGRID_ENDPOINT/);
    expect(() => readEventsConfig({ DICOMWEB_EVENTS_INTERVAL_MS: '0' })).toThrow(/DICOMWEB_EVENTS_INTERVAL_MS/);
    const identityStorage = {
      DICOMWEB_BLOB_ENDPOINT: 'https://a.blob.core.windows.net',
      DICOMWEB_TABLE_ENDPOINT: 'https://a.table.core.windows.net',
      DICOMWEB_EVENTS_QUEUE: 'events',
    };
    expect(() => readConfig(identityStorage)).toThrow(/DICOMWEB_QUEUE_ENDPOINT/);
    expect(
      readConfig({ ...identityStorage, DICOMWEB_QUEUE_ENDPOINT: 'https://a.queue.core.windows.net' }).events,
    ).toMatchObject({ queue: 'events', queueEndpoint: 'https://a.queue.core.windows.net' });
  });

  it('adds the Event Grid API version to the topic endpoint', () => {
    expect(eventGridUrl('https://t.westeurope-1.eventgrid.azure.net/api/events')).toBe(
      'https://t.westeurope-1.eventgrid.azure.net/api/events?api-version=2018-01-01',
    );
  });

  it('names the service by the setting, else the public base URL, else the Function App host, else the listener', () => {
    const storage = {
      target: { kind: 'connection-string', connectionString: 'x' },
      container: 'c',
      table: 't',
    } as const;
    const host = (env: Record<string, string>, platform: Record<string, string> = {}) =>
      eventIdentity({ ...readConfig(env), storage }, platform).serviceHostName;
    expect(
      host({ DICOMWEB_EVENTS_SERVICE_HOST: 'dicom.example.org', DICOMWEB_PUBLIC_BASE_URL: 'https://b.example.org' }),
    ).toBe('dicom.example.org');
    expect(host({ DICOMWEB_PUBLIC_BASE_URL: 'https://b.example.org/dicom' })).toBe('b.example.org');
    expect(host({}, { WEBSITE_HOSTNAME: 'app.azurewebsites.net' })).toBe('app.azurewebsites.net');
    expect(host({ PORT: '8042' })).toBe('127.0.0.1:8042');
    expect(eventIdentity({ ...readConfig({}), storage }, {}).source).toBe('/dicomweb/127.0.0.1:7071');
  });
});

describe('queue messages', () => {
  it('pack events in order into CloudEvents batches that each fit the limit', () => {
    const events = Array.from({ length: 120 }, (_, i) => toCloudEvent({ ...entry, sequence: i + 1 }, identity));
    const one = JSON.stringify(events[0]).length;
    const messages = packBatches(
      events.filter((event) => event !== undefined),
      10 * one,
    );
    expect(messages.length).toBeGreaterThan(10);
    for (const message of messages) expect(Buffer.byteLength(message)).toBeLessThanOrEqual(10 * one);
    const unpacked = messages.flatMap((message) => JSON.parse(message) as { data: { sequenceNumber: number } }[]);
    expect(unpacked.map((event) => event.data.sequenceNumber)).toEqual(events.map((_, i) => i + 1));
    expect(packBatches([])).toEqual([]);
  });
});

describe('the Event Grid sink', () => {
  it('POSTs the CloudEvents batch with a bearer token to the topic endpoint with the API version', async () => {
    const seen: { url: string | undefined; auth: string | undefined; type: string | undefined; body: string }[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        seen.push({
          url: request.url,
          auth: request.headers.authorization,
          type: request.headers['content-type'],
          body: Buffer.concat(chunks).toString('utf8'),
        });
        response.statusCode = seen.length === 1 ? 401 : 200;
        response.end('{"error":{"code":"Unauthorized"}}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const event = toCloudEvent(entry, identity);
      const sink = httpSink({
        name: 'eventgrid',
        url: eventGridUrl(`http://127.0.0.1:${port}/api/events`),
        token: () => Promise.resolve('token-1'),
      });
      await expect(sink.send(event ? [event] : [], AbortSignal.timeout(5000))).rejects.toThrow(
        /eventgrid sink answered 401: .*Unauthorized/,
      );
      await sink.send(event ? [event] : [], AbortSignal.timeout(5000));
      expect(seen[1]).toEqual({
        url: '/api/events?api-version=2018-01-01',
        auth: 'Bearer token-1',
        type: 'application/cloudevents-batch+json; charset=utf-8',
        body: JSON.stringify([event]),
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
