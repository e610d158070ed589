/**
 * Entity-group transactions without the SDK's per-action machinery. `TableClient.submitTransaction`
 * builds each action by running it through a fresh TableClient's whole operation pipeline
 * (serializers, URL templates, tracing spans, a request signature that is then discarded), and
 * that was about 9 % of a STOW's server CPU. Here the same batch body is written directly (the
 * SDK's bytes: test/unit/table-transaction.test.ts compares them) and sent once through the
 * client's own pipeline, so authentication, retries and the storage meter apply as before; the
 * answer is read the way the SDK reads it, and failures are the same RestErrors.
 */
import { randomUUID } from 'node:crypto';
import {
  createDefaultHttpClient,
  createHttpHeaders,
  createPipelineRequest,
  RestError,
  type HttpClient,
  type PipelineResponse,
} from '@azure/core-rest-pipeline';
import type { TableClient, TableTransactionResponse, TransactionAction } from '@azure/data-tables';

const CRLF = '\r\n';

/** Property names the service spells differently from the SDK's entity objects. */
const SERVICE_NAMES: Record<string, string> = {
  partitionKey: 'PartitionKey',
  rowKey: 'RowKey',
  etag: 'odata.etag',
  timestamp: 'Timestamp',
};

const EDM_TYPES = new Set(['Boolean', 'DateTime', 'Double', 'Guid', 'Int32', 'Int64', 'String', 'Binary']);

/** An entity as the service takes it: the SDK's serialization (typed values get `@odata.type`). */
export function entityJson(entity: Record<string, unknown>): string {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(entity)) {
    const key = SERVICE_NAMES[name] ?? name;
    if (typeof value === 'object' && value !== null && !(value instanceof Date) && !(value instanceof Uint8Array)) {
      const typed = value as { value?: unknown; type?: unknown };
      if (typed.value === undefined || typeof typed.type !== 'string' || !EDM_TYPES.has(typed.type)) {
        throw new Error(`Unknown EDM type ${typeof typed.value}`);
      }
      out[key] = typed.value;
      out[`${key}@odata.type`] = `Edm.${typed.type}`;
    } else if (typeof value === 'bigint') {
      out[key] = value.toString();
      out[`${key}@odata.type`] = 'Edm.Int64';
    } else if (value instanceof Date) {
      out[key] = value;
      out[`${key}@odata.type`] = 'Edm.DateTime';
    } else if (value instanceof Uint8Array) {
      out[key] = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
      out[`${key}@odata.type`] = 'Edm.Binary';
    } else if (value === undefined || value === null || ['boolean', 'string', 'number'].includes(typeof value)) {
      out[key] = value;
    } else {
      throw new Error(`Unknown EDM type ${typeof value}`);
    }
  }
  return JSON.stringify(out);
}

/** A key inside `(PartitionKey='…',RowKey='…')`: quotes doubled, then URL-encoded, as the SDK does. */
function keyInUrl(key: string): string {
  return encodeURIComponent(key.replace(/'/g, "''"));
}

/**
 * An entity's URL. `tableUrl` comes normalized from transactionUrls, and what encodeURIComponent
 * leaves (letters, digits, `-_.!~*'()`) a URL keeps as it is in a path, so the string is already
 * what the SDK's `new URL(…).toString()` of it gives: no parse per action.
 */
function entityUrl(tableUrl: string, entity: { partitionKey: string; rowKey: string }): string {
  return `${tableUrl}(PartitionKey='${keyInUrl(entity.partitionKey)}',RowKey='${keyInUrl(entity.rowKey)}')`;
}

/** One action as the changeset's sub-request: start line, headers, an empty line, the body. */
function subRequest(tableUrl: string, action: TransactionAction): string {
  const [kind, entity] = action;
  const lines: string[] = [];
  let body: string | undefined;
  if (kind === 'create') {
    lines.push(
      `POST ${tableUrl} HTTP/1.1`,
      'Content-Type: application/json;odata=nometadata',
      'Accept: application/json;odata=minimalmetadata',
      'DataServiceVersion: 3.0',
      'Prefer: return-no-content',
    );
    body = entityJson(entity);
  } else if (kind === 'delete') {
    lines.push(
      `DELETE ${entityUrl(tableUrl, entity)} HTTP/1.1`,
      'Accept: application/json;odata=minimalmetadata',
      'DataServiceVersion: 3.0',
      'If-Match: *',
    );
  } else {
    const mode = action[2] ?? 'Merge';
    lines.push(
      `${mode === 'Replace' ? 'PUT' : 'PATCH'} ${entityUrl(tableUrl, entity)} HTTP/1.1`,
      'Content-Type: application/json',
      'DataServiceVersion: 3.0',
      'Accept: application/json',
    );
    if (kind === 'update') lines.push(`If-Match: ${action[3]?.etag ?? '*'}`);
    body = entityJson(entity);
  }
  return [...lines, CRLF, ...(body === undefined ? [] : [body])].join(CRLF);
}

/** The whole request body of a transaction, in the SDK's bytes. */
export function transactionBody(
  tableUrl: string,
  actions: readonly TransactionAction[],
  batch: string,
  changeset: string,
): string {
  const parts = [
    `--batch_${batch}${CRLF}content-type: multipart/mixed; boundary=changeset_${changeset}${CRLF}${CRLF}`,
    ...actions.map(
      (action) =>
        `--changeset_${changeset}${CRLF}content-type: application/http${CRLF}content-transfer-encoding: binary${CRLF}${CRLF}${subRequest(tableUrl, action)}`,
    ),
  ];
  return `${parts.join(CRLF)}${CRLF}--changeset_${changeset}--${CRLF}--batch_${batch}--${CRLF}`;
}

/** Throws the SDK's RestError for an error body (the service's `odata.error`). */
function failure(bodyText: string, statusCode: number, response: PipelineResponse): never {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    parsed = {};
  }
  const error = (parsed as { 'odata.error'?: { code?: string; message?: { value?: string } } } | null)?.['odata.error'];
  throw new RestError(error?.message?.value ?? 'Transaction Failed', {
    code: error?.code,
    statusCode,
    request: response.request,
    response,
  });
}

/** The SDK's reading of a transaction's answer: each sub-response's status, ETag and row key. */
export function parseTransactionResponse(response: PipelineResponse): TableTransactionResponse {
  const text = response.bodyAsText ?? '';
  if (response.status < 200 || response.status >= 300) failure(text, response.status, response);
  const parts = text.split('--changesetresponse_');
  const subResponses = parts.slice(1, parts.length - 1).map((part) => {
    const status = Number.parseInt(/HTTP\/1.1 ([0-9]*)/.exec(part)?.[1] ?? '', 10);
    if (!Number.isInteger(status)) throw new Error(`Couldn't extract status from sub-response:\n ${part}`);
    const body = /\{(.*)\}/.exec(part);
    if (body) failure(body[0], status, response);
    const etag = /ETag: (.*)/.exec(part)?.[1];
    const rowKey = /RowKey='(.*)'/.exec(part)?.[1];
    return { status, ...(rowKey === undefined ? {} : { rowKey }), ...(etag === undefined ? {} : { etag }) };
  });
  return {
    status: response.status,
    subResponses,
    getResponseForEntity: (rowKey: string) => subResponses.find((sub) => sub.rowKey === rowKey),
  };
}

/**
 * Where a transaction goes, and the table URL its actions name, normalized once as the SDK
 * normalizes each action's URL. A SAS in the account URL (a SAS connection string) goes after
 * `$batch` and is left out of the actions, as the SDK does.
 */
export function transactionUrls(accountUrl: string, tableName: string): { tableUrl: string; batchUrl: string } {
  const [base = '', sas] = accountUrl.split('?');
  const root = base.replace(/\/+$/, '');
  return {
    tableUrl: new URL(`${root}/${tableName}`).toString(),
    batchUrl: `${root}/$batch${sas === undefined ? '' : `?${sas}`}`,
  };
}

let sharedHttpClient: HttpClient | undefined;

/**
 * Makes `table.submitTransaction` send the batch built here. The table's pipeline (credential,
 * retries, the storage meter's policy) is the one its other operations use.
 */
export function withDirectTransactions(table: TableClient, allowInsecureConnection = false): TableClient {
  const { tableUrl, batchUrl } = transactionUrls(table.url, table.tableName);
  table.submitTransaction = async (actions: TransactionAction[]): Promise<TableTransactionResponse> => {
    const partitionKey = actions[0]?.[1].partitionKey;
    if (actions.some((action) => action[1].partitionKey !== partitionKey)) {
      throw new Error('All operations in a transaction must target the same partitionKey');
    }
    const batch = randomUUID();
    const changeset = randomUUID();
    const request = createPipelineRequest({
      url: batchUrl,
      method: 'POST',
      body: transactionBody(tableUrl, actions, batch, changeset),
      headers: createHttpHeaders({
        accept: 'application/json',
        'x-ms-version': '2019-02-02',
        DataServiceVersion: '3.0;',
        MaxDataServiceVersion: '3.0;NetFx',
        'Content-Type': `multipart/mixed; boundary=batch_${batch}`,
        'Accept-Charset': 'UTF-8',
        Connection: 'Keep-Alive',
      }),
      allowInsecureConnection,
    });
    sharedHttpClient ??= createDefaultHttpClient();
    return parseTransactionResponse(await table.pipeline.sendRequest(sharedHttpClient, request));
  };
  return table;
}
