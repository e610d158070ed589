import { just } from '../util/streams.js';
import { DicomwebError } from '../dicomweb/errors.js';
import { storeInstances, type IncomingInstance, type StoreResult } from '../dicomweb/store.js';
import type { RequestContext } from './context.js';
import { requestAccept, parseContentType, storeResponseType, type MediaType } from './media-type.js';
import { toNativeDicomModel } from './dicom-xml.js';
import { MultipartReader } from './multipart-reader.js';
import { pathUid } from './path-params.js';
import { dicomJsonResponse } from './responses.js';
import { requestedExpiry } from './expiry-headers.js';
import { storeResponseBody, storeStatus } from './store-response.js';
import { resourceUrls, versionBaseUrl } from './urls.js';

/**
 * RFC 2046 allows 70 characters, but Orthanc's DICOMweb client sends 73 (two UUIDs joined by "-").
 * The reader holds back one delimiter's length between chunks, so a longer bound costs nothing;
 * it only keeps a hostile header from making every chunk boundary search expensive.
 */
const MAX_BOUNDARY_LENGTH = 200;

/** `POST {base}/studies[/{study}]` (STOW-RS), and `PUT` (v2): the same, but replacing instances already stored. */
export async function handleStore(request: Request, context: RequestContext): Promise<Response> {
  const apiVersion = context.apiVersion;
  const study = pathUid(context, 'study');
  const responseType = stowResponseType(request);
  const expiresAt = requestedExpiry(request.headers, apiVersion);
  const mediaType = parseContentType(request.headers.get('content-type'));
  const body = request.body;
  const instances = incomingInstances(mediaType, body);
  const result = await storeInstances(context.storage, instances, {
    apiVersion,
    studyInstanceUid: study,
    upsert: request.method === 'PUT',
    expiresAt,
    duplicates: context.config.duplicatePolicy,
    maxHeaderBytes: context.config.maxHeaderBytes,
    validateStructure: context.config.validateStructure ?? true,
    log: context.log,
  });
  return storeAnswer(request, context, result, study, responseType);
}

/** How a STOW answer is written, from the Accept header: 406 when it excludes both forms. */
export function stowResponseType(request: Request): 'json' | 'xml' {
  const responseType = storeResponseType(requestAccept(request));
  if (!responseType) {
    throw new DicomwebError(
      'NotAcceptable',
      'STOW-RS responds with application/dicom+json or application/dicom+xml; the Accept header excludes both.',
    );
  }
  return responseType;
}

/** The STOW answer for a store result (also the answer of an upload session's commit). */
export function storeAnswer(
  request: Request,
  context: RequestContext,
  result: StoreResult,
  study: string | undefined,
  responseType: 'json' | 'xml',
): Response {
  const apiVersion = context.apiVersion;
  const status = storeStatus(result, apiVersion);
  if (status === 204) return new Response(null, { status });
  const urls = resourceUrls(versionBaseUrl(new URL(request.url), apiVersion, context.config.publicBaseUrl));
  const answer = storeResponseBody(result, urls, apiVersion, study);
  if (responseType === 'xml') {
    return new Response(toNativeDicomModel(answer), { status, headers: { 'content-type': 'application/dicom+xml' } });
  }
  return dicomJsonResponse(status, answer);
}

function incomingInstances(
  mediaType: MediaType | undefined,
  body: ReadableStream<Uint8Array> | null,
): AsyncIterable<IncomingInstance> {
  if (mediaType === undefined) {
    throw new DicomwebError(
      'UnsupportedMediaType',
      'The request has no Content-Type; send multipart/related; type="application/dicom" or application/dicom.',
    );
  }
  if (mediaType.type === 'application/dicom') {
    if (!body) throw new DicomwebError('BadRequest', 'The request body is missing.');
    return just<IncomingInstance>({ mediaType: 'application/dicom', body });
  }
  if (mediaType.type !== 'multipart/related') {
    throw new DicomwebError(
      'UnsupportedMediaType',
      `The Content-Type ${mediaType.type} is not supported; send multipart/related; type="application/dicom" or application/dicom.`,
    );
  }
  const { boundary, type, start } = mediaType.parameters;
  if (!boundary)
    throw new DicomwebError('UnsupportedMediaType', 'The multipart/related Content-Type has no boundary parameter.');
  if (boundary.length > MAX_BOUNDARY_LENGTH) {
    throw new DicomwebError(
      'BadRequest',
      `The multipart boundary is ${boundary.length} characters long; this server reads boundaries of up to ${MAX_BOUNDARY_LENGTH}.`,
    );
  }
  if (start !== undefined) {
    throw new DicomwebError('BadRequest', 'The start parameter of multipart/related is not supported.');
  }
  const rootType = type?.toLowerCase();
  if (rootType !== undefined && rootType !== 'application/dicom') {
    throw new DicomwebError(
      'UnsupportedMediaType',
      `multipart/related with type="${rootType}" is not supported; only application/dicom instances can be stored.`,
    );
  }
  if (!body) throw new DicomwebError('BadRequest', 'The request body is missing.');
  return partsOf(new MultipartReader(body, boundary));
}

/** A part without its own Content-Type is taken as application/dicom, the request's type. */
async function* partsOf(reader: MultipartReader): AsyncGenerator<IncomingInstance> {
  for await (const part of reader.parts()) {
    const declared = parseContentType(part.headers.get('content-type'));
    yield { mediaType: declared?.type ?? 'application/dicom', body: part.body };
  }
}
