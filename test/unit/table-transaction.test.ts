import { AzureNamedKeyCredential, TableClient, type TransactionAction } from '@azure/data-tables';
import { createHttpHeaders, type PipelineRequest, type PipelineResponse } from '@azure/core-rest-pipeline';
import { describe, expect, it } from 'vitest';
import {
  entityJson,
  parseTransactionResponse,
  transactionBody,
  transactionUrls,
} from '../../src/storage/table-transaction.js';

const ACCOUNT = 'http://127.0.0.1:10002/devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/**
 * What the SDK's own submitTransaction puts on the wire for `actions` (caught before it leaves),
 * from a client of `account`: with the account key, or by the SAS the URL carries.
 */
async function sdkRequest(actions: TransactionAction[], account = ACCOUNT): Promise<PipelineRequest> {
  let caught: PipelineRequest | undefined;
  const httpClient = {
    sendRequest: (request: PipelineRequest): Promise<PipelineResponse> => {
      caught = request;
      return Promise.resolve({ request, status: 202, headers: createHttpHeaders(), bodyAsText: '' });
    },
  };
  const options = { httpClient, allowInsecureConnection: true };
  const client = account.includes('?')
    ? new TableClient(account, 'indextable', options)
    : new TableClient(account, 'indextable', new AzureNamedKeyCredential('devstoreaccount1', KEY), options);
  await client.submitTransaction(actions);
  if (!caught) throw new Error('the SDK sent nothing');
  return caught;
}

/** Ours and the SDK's request for the same actions, with the SDK's boundaries: URL and body alike. */
async function expectSdkRequest(actions: TransactionAction[], account = ACCOUNT): Promise<void> {
  const sdk = await sdkRequest(actions, account);
  const body = sdk.body as string;
  const batch = /^--batch_([0-9a-f-]+)\r\n/.exec(body)?.[1] ?? '';
  const changeset = /boundary=changeset_([0-9a-f-]+)/.exec(body)?.[1] ?? '';
  expect(batch).not.toBe('');
  const { tableUrl, batchUrl } = transactionUrls(account, 'indextable');
  expect(batchUrl).toBe(sdk.url);
  expect(transactionBody(tableUrl, actions, batch, changeset)).toBe(body);
}

// The key and value shapes our adapters write: UIDs, `|` separated keys, words folded from names
// (non-ASCII), quotes and characters URLs escape; numbers, deflated bytes, flags, dates.
const PK = "study|1.2.840.113619.2.55.3.604688119|O'Brien^Jürgen 山田";
const ACTIONS: TransactionAction[] = [
  [
    'create',
    {
      partitionKey: PK,
      rowKey: 'i|1.2.3.4.5',
      version: 'v1',
      size: 524_288,
      ratio: 0.5,
      sidecar: new Uint8Array([120, 156, 0, 255]),
      current: true,
    },
  ],
  [
    'create',
    {
      partitionKey: PK,
      rowKey: 'at',
      when: new Date('2026-12-06T04:00:00.123Z'),
      big: { value: '9007199254740993', type: 'Int64' },
    },
  ],
  [
    'update',
    { partitionKey: PK, rowKey: 'study', numberOfInstances: 40 },
    'Replace',
    { etag: `W/"datetime'2026-12-06T04%3A00%3A00.1234567Z'"` },
  ],
  ['update', { partitionKey: PK, rowKey: 'series|1.2.3', numberOfInstances: 4 }, 'Merge'],
  ['upsert', { partitionKey: PK, rowKey: 'a b/c?d#e%f&g=h+i', pointer: 'x' }, 'Replace'],
  ['upsert', { partitionKey: PK, rowKey: "it's", pointer: 'y' }],
  ['delete', { partitionKey: PK, rowKey: 'n|2026-12-06|é' }],
];

describe('entity-group transactions written directly', () => {
  it('puts on the wire the bytes the SDK puts, for every kind of action and the values we store', async () => {
    await expectSdkRequest(ACTIONS);
  });

  it('sends to the URL the SDK uses, a SAS after $batch and left out of the actions, the URL normalized as the SDK does', async () => {
    for (const account of [
      `${ACCOUNT}/`,
      'http://LOCALHOST:80/devstoreaccount1',
      `${ACCOUNT}?sv=2021-08-06&ss=t&sig=abc%2Bdef`,
    ]) {
      await expectSdkRequest(ACTIONS.slice(0, 3), account);
    }
  });

  it('serializes entities as the SDK does, and refuses a type the service has no name for', () => {
    expect(JSON.parse(entityJson({ partitionKey: 'p', rowKey: 'r', etag: 'e', n: 1, b: new Uint8Array([1]) }))).toEqual(
      {
        PartitionKey: 'p',
        RowKey: 'r',
        'odata.etag': 'e',
        n: 1,
        b: 'AQ==',
        'b@odata.type': 'Edm.Binary',
      },
    );
    expect(() => entityJson({ partitionKey: 'p', rowKey: 'r', bad: { value: 1, type: 'Decimal' } })).toThrow(/EDM/);
  });

  it('reads each sub-response and throws a failing one as the SDK does (status, code, message)', () => {
    const request = {} as PipelineRequest;
    const ok = [
      '--batchresponse_1',
      'Content-Type: multipart/mixed; boundary=changesetresponse_2',
      '',
      '--changesetresponse_2',
      'Content-Type: application/http',
      '',
      'HTTP/1.1 204 No Content',
      "Location: http://x/t(PartitionKey='p',RowKey='r1')",
      'ETag: W/"datetime\'1\'"',
      '',
      '--changesetresponse_2',
      'Content-Type: application/http',
      '',
      'HTTP/1.1 204 No Content',
      'ETag: W/"datetime\'2\'"',
      '',
      '--changesetresponse_2--',
      '--batchresponse_1--',
    ].join('\r\n');
    const parsed = parseTransactionResponse({ request, status: 202, headers: createHttpHeaders(), bodyAsText: ok });
    expect(parsed.subResponses.map((sub) => [sub.status, sub.etag?.trim(), sub.rowKey])).toEqual([
      [204, `W/"datetime'1'"`, 'r1'],
      [204, `W/"datetime'2'"`, undefined],
    ]);
    expect(parsed.getResponseForEntity('r1')?.etag?.trim()).toBe(`W/"datetime'1'"`);
    const failed = ok.replace(
      'HTTP/1.1 204 No Content\r\nETag: W/"datetime\'2\'"\r\n',
      'HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/json\r\n\r\n{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US","value":"1:The update condition specified in the request was not satisfied."}}}\r\n',
    );
    expect(() =>
      parseTransactionResponse({ request, status: 202, headers: createHttpHeaders(), bodyAsText: failed }),
    ).toThrow(expect.objectContaining({ statusCode: 412, code: 'UpdateConditionNotSatisfied' }) as Error);
    expect(() =>
      parseTransactionResponse({ request, status: 400, headers: createHttpHeaders(), bodyAsText: '' }),
    ).toThrow(expect.objectContaining({ statusCode: 400 }) as Error);
  });
});
