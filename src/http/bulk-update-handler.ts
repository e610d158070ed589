import { percentComplete, startBulkUpdate } from '../dicomweb/bulk-update.js';
import { ChangeDatasetError, parseBulkUpdateRequest } from '../dicomweb/bulk-update-request.js';
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

/** The tag of a change data set key as fo-dicom prints it, `(0010,0010)`, or the key as written. */
function tagText(key: string): string {
  return /^[0-9a-f]{8}$/i.test(key) ? `(${key.slice(0, 4)},${key.slice(4)})`.toLowerCase() : key;
}

/**
 * The Azure service's 400 for a change data set it refuses: a DICOM JSON data set whose Failed
 * Attributes Sequence (0074,1048) has one item per attribute, its Error Comment (0000,0902)
 * `DICOM100: (gggg,eeee) - why` (UpdateRequestValidator; DicomCoreResource.ErrorMessageFormat).
 */
function changeDatasetFailure(error: ChangeDatasetError): Response {
  const items = error.failures.map((failure) => ({
    '00000902': { vr: 'LO', Value: [`DICOM100: ${tagText(failure.tag)} - ${failure.message}`] },
  }));
  return new Response(JSON.stringify({ '00741048': { vr: 'SQ', Value: items } }), {
    status: 400,
    headers: { 'content-type': 'application/dicom+json; charset=utf-8', 'cache-control': 'no-store' },
  });
}

/**
 * `POST {base}/studies/$bulkUpdate`: checks the request, records the operation, answers 202 with
 * its reference. API version 2 only, as on the Azure service (404 on v1).
 */
export const handleBulkUpdate: Handler = async (request, context) => {
  if (context.apiVersion === 'v1') {
    throw new DicomwebError('NotFound', 'Bulk update needs API version 2: POST /v2/studies/$bulkUpdate.');
  }
  let parsed;
  try {
    parsed = parseBulkUpdateRequest(await bodyText(request));
  } catch (error) {
    if (error instanceof ChangeDatasetError) return changeDatasetFailure(error);
    throw error;
  }
  const operation = await startBulkUpdate(context.storage, parsed, context.log);
  const href = operationUrl(request, context, operation.id);
  return json(202, { id: operation.id, href }, { location: href });
};

function isFinished(operation: OperationRecord): boolean {
  return operation.status === 'completed' || operation.status === 'failed';
}

/**
 * The operation state as the Azure service writes it (Microsoft.Health.Operations
 * OperationState with dicom-server's UpdateResult, camelCase): a finished operation without
 * errors is `succeeded` on v2 and `completed` on v1 (OperationsController.UpdateOperationState).
 */
function statusJson(operation: OperationRecord, apiVersion: string) {
  const status = operation.status === 'completed' && apiVersion !== 'v1' ? 'succeeded' : operation.status;
  return {
    operationId: operation.id,
    type: operation.type,
    createdTime: operation.createdTime,
    lastUpdatedTime: operation.lastUpdatedTime,
    status,
    percentComplete: percentComplete(operation),
    results: {
      studyProcessed: operation.studiesDone,
      studyUpdated: operation.studiesUpdated,
      studyFailed: operation.studiesDone - operation.studiesUpdated,
      instanceUpdated: operation.instancesUpdated,
      ...(operation.errors.length > 0 ? { errors: operation.errors } : {}),
    },
  };
}

/**
 * `GET {base}/operations/{id}`: 200 once the operation has finished; 202 with `Location` (this
 * URL) while it has not, as the Azure service answers; 404 for an id no operation has.
 */
export const handleOperationStatus: Handler = async (request, context) => {
  const id = context.params['operation'] ?? '';
  const operation = /^[0-9a-f]{32}$/i.test(id) ? await context.storage.operations?.get(id.toLowerCase()) : undefined;
  if (!operation) throw new DicomwebError('NotFound', `There is no operation ${id}.`);
  const body = statusJson(operation, context.apiVersion);
  if (isFinished(operation)) return json(200, body);
  return json(202, body, { location: operationUrl(request, context, operation.id) });
};
