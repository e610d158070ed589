import { describe, expect, it } from 'vitest';
import { classify } from '../../src/storage/azure-storage-meter.js';
import { currentStorageMeter, StorageMeter, withStorageMeter } from '../../src/util/storage-meter.js';

type Request = Parameters<typeof classify>[1];
type Response = NonNullable<Parameters<typeof classify>[2]>;

const headers = (values: Record<string, string> = {}) => {
  const map = new Map(Object.entries(values).map(([name, value]) => [name.toLowerCase(), value]));
  return { get: (name: string) => map.get(name.toLowerCase()), has: (name: string) => map.has(name.toLowerCase()) };
};
const request = (method: string, url: string, init: { headers?: Record<string, string>; body?: unknown } = {}) =>
  ({ method, url, headers: headers(init.headers), body: init.body }) as unknown as Request;
const response = (status: number, init: { headers?: Record<string, string>; bodyAsText?: string } = {}) =>
  ({ status, headers: headers(init.headers), bodyAsText: init.bodyAsText }) as unknown as Response;

const BLOB = 'http://127.0.0.1:10000/devstoreaccount1/dicomweb/1.2/3.4/5.6/v.dcm';
const TABLE = 'http://127.0.0.1:10002/devstoreaccount1';

describe('the storage meter', () => {
  it('names blob requests from their method, comp and range', () => {
    const kind = (method: string, url: string, extra: Record<string, string> = {}) =>
      classify('blob', request(method, url, { headers: extra }), response(201)).kind;
    expect(kind('PUT', `${BLOB}?comp=block&blockid=MDAwMDAw`)).toBe('blob.put-block');
    expect(kind('PUT', `${BLOB}?comp=blocklist`)).toBe('blob.put-block-list');
    expect(kind('PUT', `${BLOB}?comp=appendblock`)).toBe('blob.append-block');
    expect(kind('PUT', BLOB, { 'x-ms-blob-type': 'BlockBlob' })).toBe('blob.put-blob');
    expect(kind('GET', BLOB)).toBe('blob.get');
    expect(kind('GET', BLOB, { 'x-ms-range': 'bytes=10-19' })).toBe('blob.get-range');
    expect(kind('HEAD', BLOB)).toBe('blob.get-properties');
    expect(kind('DELETE', BLOB)).toBe('blob.delete');
    expect(
      kind('GET', `http://127.0.0.1:10000/devstoreaccount1/dicomweb?restype=container&comp=list&prefix=1.2%2F`),
    ).toBe('blob.list');
  });

  it('names table requests and counts what they carried', () => {
    const entity = `${TABLE}/index(PartitionKey='1.2',RowKey='study')`;
    expect(classify('table', request('GET', entity), response(200, { bodyAsText: '{"odata.etag":"W/1"}' }))).toEqual({
      kind: 'table.get-entity',
      entitiesRead: 1,
      bytesRead: 20,
      bytesWritten: 0,
    });
    expect(classify('table', request('GET', entity), response(404)).entitiesRead).toBe(0);
    const page = '{"value":[{"odata.etag":"W/1","PartitionKey":"a"},{"odata.etag":"W/2","PartitionKey":"b"}]}';
    expect(
      classify(
        'table',
        request('GET', `${TABLE}/index()?$filter=PartitionKey%20eq%20'a'`),
        response(200, { bodyAsText: page }),
      ),
    ).toMatchObject({ kind: 'table.query', entitiesRead: 2 });
    expect(classify('table', request('POST', `${TABLE}/index`, { body: '{"a":1}' }), response(201))).toMatchObject({
      kind: 'table.insert',
      bytesWritten: 7,
    });
    expect(classify('table', request('PUT', entity), response(204)).kind).toBe('table.upsert');
    expect(classify('table', request('PUT', entity, { headers: { 'if-match': 'W/1' } }), response(204)).kind).toBe(
      'table.update',
    );
    expect(classify('table', request('PATCH', entity, { headers: { 'if-match': 'W/1' } }), response(204)).kind).toBe(
      'table.merge',
    );
    expect(classify('table', request('DELETE', entity), response(204)).kind).toBe('table.delete');
  });

  it('counts the entity operations inside an entity-group transaction', () => {
    const body = [
      '--batch_1',
      'Content-Type: multipart/mixed; boundary=changeset_1',
      '',
      '--changeset_1',
      'Content-Type: application/http',
      '',
      `POST ${TABLE}/index HTTP/1.1`,
      '',
      '{"PartitionKey":"a","RowKey":"POST http://x"}',
      '--changeset_1',
      `PUT ${TABLE}/index(PartitionKey='a',RowKey='b') HTTP/1.1`,
      '--changeset_1',
      `DELETE ${TABLE}/index(PartitionKey='a',RowKey='c') HTTP/1.1`,
      '--changeset_1--',
      '--batch_1--',
    ].join('\r\n');
    expect(classify('table', request('POST', `${TABLE}/$batch`, { body }), response(202))).toMatchObject({
      kind: 'table.batch',
      batchEntities: 3,
    });
  });

  it('counts a Blob Batch as one operation, its sub-requests in batchEntities', () => {
    const sub = (name: string) =>
      [
        '--batch_1',
        'Content-Type: application/http',
        'Content-Transfer-Encoding: binary',
        'Content-ID: 0',
        '',
        `DELETE /devstoreaccount1/dicomweb/${name} HTTP/1.1`,
        'x-ms-delete-snapshots: include',
        '',
      ].join('\r\n');
    const body = `${sub('1.2/3.4/5.6/v.dcm')}${sub('1.2/3.4/5.6/v.json')}--batch_1--\r\n`;
    const url = 'http://127.0.0.1:10000/devstoreaccount1/dicomweb?restype=container&comp=batch';
    expect(classify('blob', request('POST', url, { body }), response(202))).toMatchObject({
      kind: 'blob.batch',
      batchEntities: 2,
    });
  });

  it('counts only inside a scope, per scope, kinds in order', async () => {
    expect(currentStorageMeter()).toBeUndefined();
    const one = new StorageMeter();
    const two = new StorageMeter();
    await Promise.all([
      withStorageMeter(one, async () => {
        await Promise.resolve();
        currentStorageMeter()?.record({ kind: 'table.query', entitiesRead: 2, bytesRead: 10 });
        currentStorageMeter()?.record({ kind: 'blob.get', bytesRead: 5 });
      }),
      withStorageMeter(two, async () => {
        await Promise.resolve();
        currentStorageMeter()?.record({ kind: 'table.batch', batchEntities: 4, bytesWritten: 3 });
      }),
    ]);
    expect(one.counts()).toEqual({
      operations: 2,
      byKind: { 'blob.get': 1, 'table.query': 1 },
      batchEntities: 0,
      entitiesRead: 2,
      bytesRead: 15,
      bytesWritten: 0,
      inSequence: 0,
    });
    expect(two.counts()).toMatchObject({ operations: 1, batchEntities: 4, bytesWritten: 3 });
  });

  it('counts round trips in sequence: operations started while another is in flight count once', () => {
    const meter = new StorageMeter();
    // Two started together, a third while the second is still out: one wait.
    const a = meter.begin();
    const b = meter.begin();
    a();
    const c = meter.begin();
    b();
    c();
    expect(meter.counts().inSequence).toBe(1);
    // Then one after another: two more waits; ending an operation twice changes nothing.
    const d = meter.begin();
    d();
    d();
    meter.begin()();
    expect(meter.counts().inSequence).toBe(3);
  });
});
