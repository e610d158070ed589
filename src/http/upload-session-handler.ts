import { DicomwebError } from '../dicomweb/errors.js';
import {
  abandonUploadSession,
  commitUploadSession,
  createUploadSession,
  describeUploadSession,
  MAX_BLOCKS,
  SUGGESTED_BLOCK_BYTES,
  type UploadSessionRequest,
} from '../dicomweb/upload-session.js';
import type { UploadSessionRecord } from '../storage/ports.js';
import { DEFAULT_UPLOAD_SESSION_MINUTES, type RequestContext } from './context.js';
import { parseContentType } from './media-type.js';
import { storeAnswer, stowResponseType } from './store-handler.js';
import { versionBaseUrl } from './urls.js';

/** A session request is a few fields; anything longer is not one. */
const MAX_REQUEST_JSON_BYTES = 16 * 1024;

function sessionMinutes(context: RequestContext): number {
  return context.config.uploadSessionMinutes ?? DEFAULT_UPLOAD_SESSION_MINUTES;
}

function sessionId(context: RequestContext): string {
  return context.params['session'] ?? '';
}

function sessionUrl(request: Request, context: RequestContext, id: string): string {
  return `${versionBaseUrl(new URL(request.url), context.apiVersion, context.config.publicBaseUrl)}/upload-sessions/${id}`;
}

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  });
}

/** The session's fields as the API shows them. */
function sessionJson(request: Request, context: RequestContext, session: UploadSessionRecord) {
  return {
    id: session.id,
    url: sessionUrl(request, context, session.id),
    expiresAt: session.expiresAt.toISOString(),
    ...(session.size === undefined ? {} : { size: session.size }),
    ...(session.sha256 === undefined ? {} : { sha256: session.sha256 }),
    ...(session.studyInstanceUid === undefined ? {} : { studyInstanceUid: session.studyInstanceUid }),
  };
}

async function requestJson(request: Request): Promise<Record<string, unknown>> {
  if (!request.body) return {};
  const type = parseContentType(request.headers.get('content-type'))?.type;
  const bytes = new Uint8Array(await request.arrayBuffer());
  if (bytes.byteLength === 0) return {};
  if (type !== 'application/json') {
    throw new DicomwebError('UnsupportedMediaType', 'Send the session request as application/json, or no body.');
  }
  if (bytes.byteLength > MAX_REQUEST_JSON_BYTES) {
    throw new DicomwebError('PayloadTooLarge', `A session request is at most ${MAX_REQUEST_JSON_BYTES} bytes of JSON.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new DicomwebError('BadRequest', 'The session request is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new DicomwebError('BadRequest', 'The session request must be a JSON object.');
  }
  return parsed as Record<string, unknown>;
}

const FIELDS: Record<keyof UploadSessionRequest, 'number' | 'string'> = {
  size: 'number',
  sha256: 'string',
  studyInstanceUid: 'string',
  expiresInMinutes: 'number',
};

function sessionRequest(json: Record<string, unknown>): UploadSessionRequest {
  for (const [field, value] of Object.entries(json)) {
    const expected = Object.hasOwn(FIELDS, field) ? FIELDS[field as keyof UploadSessionRequest] : undefined;
    if (expected === undefined) {
      throw new DicomwebError(
        'BadRequest',
        `Unknown field "${field}"; a session takes ${Object.keys(FIELDS).join(', ')}.`,
      );
    }
    if (typeof value !== expected) throw new DicomwebError('BadRequest', `"${field}" must be a ${expected}.`);
  }
  return json;
}

/** `POST {base}/upload-sessions`: opens a session; 201 with its upload URL. */
export async function handleCreateUploadSession(request: Request, context: RequestContext): Promise<Response> {
  const wanted = sessionRequest(await requestJson(request));
  const { session, uploadUrl } = await createUploadSession(context.storage, wanted, sessionMinutes(context));
  const body = {
    ...sessionJson(request, context, session),
    uploadUrl,
    blockSize: SUGGESTED_BLOCK_BYTES,
    maxBlocks: MAX_BLOCKS,
  };
  return jsonResponse(201, body, { location: body.url });
}

/** `GET {base}/upload-sessions/{session}`: what has arrived, to resume with the missing blocks. */
export async function handleDescribeUploadSession(request: Request, context: RequestContext): Promise<Response> {
  const progress = await describeUploadSession(context.storage, sessionId(context));
  return jsonResponse(200, {
    ...sessionJson(request, context, progress.session),
    uploadUrl: progress.uploadUrl,
    receivedBytes: progress.receivedBytes,
    blocks: progress.blocks,
  });
}

/** `POST {base}/upload-sessions/{session}/commit`: stores the uploaded instance; STOW's answer. */
export async function handleCommitUploadSession(request: Request, context: RequestContext): Promise<Response> {
  const responseType = stowResponseType(request);
  const { session, result } = await commitUploadSession(context.storage, sessionId(context), {
    apiVersion: context.apiVersion,
    duplicates: context.config.duplicatePolicy,
    maxHeaderBytes: context.config.maxHeaderBytes,
    validateStructure: context.config.validateStructure ?? true,
    log: context.log,
  });
  return storeAnswer(request, context, result, session.studyInstanceUid, responseType);
}

/** `DELETE {base}/upload-sessions/{session}`: abandons the session and what it received. */
export async function handleAbandonUploadSession(_request: Request, context: RequestContext): Promise<Response> {
  await abandonUploadSession(context.storage, sessionId(context));
  return new Response(null, { status: 204 });
}
