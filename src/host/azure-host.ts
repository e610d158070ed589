// @azure/functions is CommonJS: Node's ESM loader exposes its classes on the default export only.
import azureFunctions, { type HttpRequest, type HttpResponse, type HttpResponseInit } from '@azure/functions';
import type { App } from '../app.js';
import { UNREPRESENTABLE_METHODS } from '../http/router.js';

/**
 * The Azure Functions host: HttpRequest ↔ web-standard Request/Response. With
 * `enableHttpStream`, the request body arrives as a stream and the response body streams out.
 */
export function toWebRequest(request: HttpRequest): Request {
  const method = request.method.toUpperCase();
  const hasBody = method !== 'GET' && method !== 'HEAD' && request.body !== null;
  return new Request(request.url, {
    method,
    headers: request.headers,
    body: hasBody ? request.body : null,
    duplex: 'half',
  } as RequestInit);
}

export function toHttpResponse(response: Response): HttpResponse {
  const init: HttpResponseInit = {
    status: response.status,
    headers: Object.fromEntries(response.headers.entries()),
    body: response.body ?? undefined,
  };
  return new azureFunctions.HttpResponse(init);
}

export async function handleAzureRequest(app: App, request: HttpRequest): Promise<HttpResponse> {
  if (UNREPRESENTABLE_METHODS.has(request.method.toUpperCase())) {
    return toHttpResponse(app.refuse(request.method.toUpperCase(), new URL(request.url)));
  }
  return toHttpResponse(await app.handle(toWebRequest(request)));
}
