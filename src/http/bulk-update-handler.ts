import { percentComplete, startBulkUpdate } from '../dicomweb/bulk-update.js';
import { parseBulkUpdateRequest } from '../dicomweb/bulk-update-request.js';
import { DicomwebError } from '../dicomweb/errors.js';
import type { OperationRecord } from '../storage/ports.js';
import type { Handler, RequestContext } from './context.js';
import { parseContentType } from './media-type.js';
import { versionBaseUrl } from './urls.js';

/** The largest bulk update body read: 50 UIDs and a change data set fit many times over. */
const MAX_BODY_BYTES = 256 * 1024;

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  });
}

function operationUrl(request: Request, context: RequestContext, id: string): string {
  return `${versionBaseUrl(new URL(request.url), context.apiVersion, context.config.publicBaseUrl)}/operations/${id}`;
}

/** The body as text, refused past MAX_BODY_BYTES without reading the rest. */
async function bodyText(request: Request): Promise<string> {
  const type = parseContentType(request.headers.get('content-type'))?.type;
  if (type !== undefined && type !== 'application/json') {
    throw new DicomwebError('UnsupportedMediaType', 'Send the bulk update request as application/json.');
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body ?? []) {
    size += chunk.byteLength;
    if (size > MAX_BODY_BYTES) {
      throw new DicomwebError('PayloadTooLarge', `A bulk update request is at most ${MAX_BODY_BYTES} bytes of JSON.`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `POST {base}/studies/$bulkUpdate`: checks the request, records the operation, answers 202 with its reference. */
export const handleBulkUpdate: Handler = async (request, context) => {
  const parsed = parseBulkUpdateRequest(await bodyText(request));
  const operation = await startBulkUpdate(context.storage, parsed, context.log);
  const href = operationUrl(request, context, operation.id);
  return json(202, { id: operation.id, href }, { location: href });
};

/** The operation status as the Azure service shows it. */
function statusJson(operation: OperationRecord) {
  const studyFailed = operation.studiesDone - operation.studiesUpdated;
  return {
    operationId: operation.id,
    type: operation.type,
    createdTime: operation.createdTime,
    lastUpdatedTime: operation.lastUpdatedTime,
    status: operation.status,
    percentComplete: percentComplete(operation),
    results: {
      studyUpdated: operation.studiesUpdated,
      studyFailed,
      instanceUpdated: operation.instancesUpdated,
      ...(operation.errors.length > 0 ? { errors: operation.errors } : {}),
    },
  };
}

/** `GET {base}/operations/{id}`: 404 for an id no operation has. */
export const handleOperationStatus: Handler = async (_request, context) => {
  const id = context.params['operation'] ?? '';
  const operation = /^[0-9a-f]{32}$/i.test(id) ? await context.storage.operations?.get(id.toLowerCase()) : undefined;
  if (!operation) throw new DicomwebError('NotFound', `There is no operation ${id}.`);
  return json(200, statusJson(operation));
};
