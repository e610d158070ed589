import type { TableClient } from '@azure/data-tables';
import type { BlobServiceClient } from '@azure/storage-blob';
import { currentStorageMeter, type StorageOperation } from '../util/storage-meter.js';

/** The SDKs' HTTP pipeline (@azure/core-rest-pipeline), named through a client that exposes it. */
type Pipeline = TableClient['pipeline'];
type PipelinePolicy = Parameters<Pipeline['addPolicy']>[0];
type PipelineRequest = Parameters<PipelinePolicy['sendRequest']>[0];
type PipelineResponse = Awaited<ReturnType<PipelinePolicy['sendRequest']>>;

const POLICY_NAME = 'dicomwebStorageMeter';

/**
 * Counts every HTTP round trip the SDK sends to the request's StorageMeter (util/storage-meter).
 * It sits after the retry policy, so a retried request counts each attempt, as Azure bills it;
 * without an active meter it costs one AsyncLocalStorage lookup.
 */
function meterPolicy(service: 'blob' | 'table'): PipelinePolicy {
  return {
    name: POLICY_NAME,
    async sendRequest(request, next) {
      const meter = currentStorageMeter();
      if (!meter) return next(request);
      let response: PipelineResponse | undefined;
      const end = meter.begin();
      try {
        response = await next(request);
        return response;
      } finally {
        end();
        meter.record(classify(service, request, response));
      }
    },
  };
}

/** Adds the meter to a TableClient's pipeline (every entity and transaction request). */
export function meterTable(table: TableClient): void {
  table.pipeline.addPolicy(meterPolicy('table'), { afterPhase: 'Retry' });
}

/**
 * Adds the meter to the pipeline every container and blob client of `service` shares. The Blob
 * SDK builds that pipeline once per PipelineLike and keeps it on its protected
 * `storageClientContext`, which public options cannot reach; a missing pipeline throws here,
 * at start-up, rather than silently counting nothing.
 */
export function meterBlobs(service: BlobServiceClient): void {
  const context = (service as unknown as { storageClientContext?: { pipeline?: Pipeline } }).storageClientContext;
  const pipeline = context?.pipeline;
  if (!pipeline || typeof pipeline.addPolicy !== 'function') {
    throw new Error('The Blob SDK no longer exposes its pipeline: the storage meter cannot be attached.');
  }
  pipeline.addPolicy(meterPolicy('blob'), { afterPhase: 'Retry' });
}

/** What one request is, from its method, URL and headers; what it moved, from bodies and lengths. */
export function classify(
  service: 'blob' | 'table',
  request: PipelineRequest,
  response: PipelineResponse | undefined,
): StorageOperation {
  const url = new URL(request.url);
  const method = request.method.toUpperCase();
  const bytesWritten = bodyBytes(request);
  const bytesRead = responseBytes(response);
  const ok = response !== undefined && response.status < 300;
  if (service === 'table') {
    const kind = tableKind(method, url, request);
    if (kind === 'table.batch') {
      const body = typeof request.body === 'string' ? request.body : '';
      return {
        kind,
        batchEntities: countMatches(body, /^(?:POST|PUT|PATCH|MERGE|DELETE|GET) https?:/gm),
        bytesRead,
        bytesWritten,
      };
    }
    const entitiesRead =
      !ok || method !== 'GET'
        ? 0
        : kind === 'table.get-entity'
          ? 1
          : countMatches(response.bodyAsText ?? '', /"odata\.etag":/g);
    return { kind, entitiesRead, bytesRead, bytesWritten };
  }
  const kind = blobKind(method, url, request);
  if (kind === 'blob.batch') {
    // One round trip (one billed transaction per sub-request on Azure); its deletes, as a
    // table.batch's entity operations, count in batchEntities.
    const body = typeof request.body === 'string' ? request.body : '';
    return { kind, batchEntities: countMatches(body, /^[A-Z]+ \S+ HTTP\/1\.1\r?$/gm), bytesRead, bytesWritten };
  }
  return { kind, bytesRead, bytesWritten };
}

function tableKind(method: string, url: URL, request: PipelineRequest): string {
  const path = decodeURIComponent(url.pathname);
  if (path.endsWith('/$batch')) return 'table.batch';
  if (/\/Tables(?:\(|$)/.test(path)) return `table.table-${method.toLowerCase()}`;
  const isEntity = /\(PartitionKey=.*,RowKey=.*\)$/.test(path);
  const conditional = request.headers.has('if-match');
  switch (method) {
    case 'GET':
      return isEntity ? 'table.get-entity' : 'table.query';
    case 'POST':
      return 'table.insert';
    case 'PUT':
      return conditional ? 'table.update' : 'table.upsert';
    case 'PATCH':
    case 'MERGE':
      return conditional ? 'table.merge' : 'table.upsert-merge';
    case 'DELETE':
      return 'table.delete';
    default:
      return `table.${method.toLowerCase()}`;
  }
}

function blobKind(method: string, url: URL, request: PipelineRequest): string {
  const comp = url.searchParams.get('comp');
  const restype = url.searchParams.get('restype');
  if (comp === 'batch') return 'blob.batch';
  if (restype === 'container') {
    if (comp === 'list') return 'blob.list';
    return `blob.container-${method.toLowerCase()}`;
  }
  switch (method) {
    case 'PUT':
      if (comp === 'block') return 'blob.put-block';
      if (comp === 'blocklist') return 'blob.put-block-list';
      if (comp === 'appendblock') return 'blob.append-block';
      if (comp === null) return 'blob.put-blob';
      return `blob.put-${comp}`;
    case 'GET':
      if (comp !== null) return `blob.get-${comp}`;
      return request.headers.has('x-ms-range') || request.headers.has('range') ? 'blob.get-range' : 'blob.get';
    case 'HEAD':
      return 'blob.get-properties';
    case 'DELETE':
      return 'blob.delete';
    default:
      return `blob.${method.toLowerCase()}${comp === null ? '' : `-${comp}`}`;
  }
}

function bodyBytes(request: PipelineRequest): number {
  const { body } = request;
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  if (body instanceof ArrayBuffer) return body.byteLength;
  return Number(request.headers.get('content-length') ?? 0) || 0;
}

/** Content-Length when the service sent one (blob downloads, read as a stream), else the text body's size. */
function responseBytes(response: PipelineResponse | undefined): number {
  if (!response) return 0;
  const length = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(length)) return length;
  return response.bodyAsText ? Buffer.byteLength(response.bodyAsText) : 0;
}

function countMatches(text: string, pattern: RegExp): number {
  return text.match(pattern)?.length ?? 0;
}
