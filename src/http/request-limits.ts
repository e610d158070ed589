import { DicomwebError } from '../dicomweb/errors.js';

function tooLarge(limit: number): DicomwebError {
  return new DicomwebError(
    'PayloadTooLarge',
    `The request body is larger than the ${limit}-byte limit of this server (DICOMWEB_MAX_REQUEST_BYTES); send fewer or smaller instances per request.`,
  );
}

/**
 * Enforces the request size limit: at once from Content-Length, and while streaming for chunked
 * bodies (the count fails the body stream, so the store stops and nothing partial is kept).
 */
export function limitRequestBody(request: Request, limit: number | undefined): Request {
  if (limit === undefined || !request.body) return request;
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  let seen = 0;
  const counted = request.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        seen += chunk.byteLength;
        if (seen > limit) controller.error(tooLarge(limit));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new Request(request, { body: counted, duplex: 'half' } as RequestInit);
}
