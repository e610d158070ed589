import { DicomwebError } from './dicomweb/errors.js';
import { consoleAudit, correlationIdOf, type AuditRecord, type AuditSink } from './http/audit.js';
import { ThumbnailMemory } from './dicomweb/thumbnail-cache.js';
import { FrameTableMemory } from './dicomweb/frame-table-memory.js';
import type { AppConfig, FrameDecoder } from './http/context.js';
import { corsHeaders, preflightResponse, type CorsConfig } from './http/cors.js';
import { errorResponse, type ErrorLogger } from './http/error-response.js';
import { limitRequestBody } from './http/request-limits.js';
import { allowedMethods, matchRoute, unmatched, type RouteMatch } from './http/router.js';
import { API_VERSIONS, routes, type Route } from './http/routes.js';
import { ANONYMOUS_OWNER, type Authenticator, type Caller } from './security/authenticator.js';
import type { SecurityOptions } from './security/security-options.js';
import type { Storage } from './storage/ports.js';
import { StorageMeter, withStorageMeter } from './util/storage-meter.js';

export interface App {
  /** The web-standard core both hosts call. */
  handle(request: Request): Promise<Response>;
  /**
   * The answer to a request a web-standard Request cannot carry (CONNECT, TRACE, TRACK): 405
   * with Allow on a resource, 404 elsewhere. Only the node host needs it; Azure never routes them.
   */
  refuse(method: string, url: URL): Response;
  readonly routes: readonly Route[];
}

export interface AppOptions {
  readonly storage: Storage;
  readonly config: AppConfig;
  readonly security?: SecurityOptions;
  readonly log?: ErrorLogger;
  readonly audit?: AuditSink;
  /** Decodes compressed frames for rendered and thumbnail resources (406 for them without one). */
  readonly decodeFrame?: FrameDecoder;
}

const defaultLog: ErrorLogger = (message, error) => {
  console.error(`[dicomweb] ${message}:`, error);
};

const SUPPORTED_VERSIONS = API_VERSIONS.map((version) => version.slice(1)).join(', ');

/** A path that names no supported API version gets a clear answer instead of a bare 404. */
function versionError(pathname: string): DicomwebError | undefined {
  const first = pathname.split('/').filter((part) => part !== '')[0] ?? '';
  if (/^v\d+/i.test(first) && !API_VERSIONS.includes(first.toLowerCase() as (typeof API_VERSIONS)[number])) {
    return new DicomwebError(
      'BadRequest',
      `The API version ${first} is not supported; use ${API_VERSIONS.map((v) => `/${v}`).join(' or ')}.`,
    );
  }
  if (/^(studies|series|instances|changefeed)$/i.test(first)) {
    return new DicomwebError(
      'BadRequest',
      `The URL has no API version; use ${API_VERSIONS.map((v) => `/${v}${pathname}`).join(' or ')}.`,
    );
  }
  return undefined;
}

async function authorize(authenticator: Authenticator | undefined, route: Route, request: Request): Promise<Caller> {
  if (route.permission === 'public' || !authenticator) return ANONYMOUS_OWNER;
  const caller = await authenticator.authenticate(request.headers.get('authorization'));
  if (!caller.permissions.has(route.permission)) {
    throw new DicomwebError(
      'Forbidden',
      route.permission === 'write'
        ? 'Storing and deleting need the DICOM Data Owner role.'
        : 'Reading needs the DICOM Data Reader or DICOM Data Owner role.',
    );
  }
  return caller;
}

/** OPTIONS outside a CORS preflight (RFC 9110 §9.3.7): what the resource supports. */
function optionsResponse(pathname: string): Response {
  const allowed = allowedMethods(routes, pathname);
  if (!allowed) throw unmatched(routes, 'OPTIONS', pathname);
  return new Response(null, { status: 204, headers: { allow: allowed.join(', ') } });
}

/** Statuses whose response has no body (a Response with one of them cannot be built with a body). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * Calls `done` once the response has ended: at once when it has no body, else when its body has
 * been read to the end, has failed or was cancelled. Reads of the body run under the request's
 * storage meter, so blob reads that stream a retrieve count to the request that made them.
 */
function finished(response: Response, meter: StorageMeter, done: () => void): Response {
  if (!response.body || NULL_BODY_STATUSES.has(response.status)) {
    done();
    return response;
  }
  const reader = response.body.getReader();
  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    done();
  };
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await withStorageMeter(meter, () => reader.read());
          if (next.done) {
            end();
            controller.close();
          } else controller.enqueue(next.value);
        } catch (error) {
          end();
          controller.error(error);
        }
      },
      async cancel(reason) {
        try {
          await withStorageMeter(meter, () => reader.cancel(reason));
        } finally {
          end();
        }
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}

/** Composition root: one app, served by the node:http host locally and by Azure Functions. */
export function createApp({
  storage,
  config,
  security = {},
  log = defaultLog,
  audit = consoleAudit,
  decodeFrame,
}: AppOptions): App {
  const cors: CorsConfig = security.cors ?? { origins: [] };
  const thumbnails = new ThumbnailMemory();
  const frameTables = new FrameTableMemory();
  async function handleMetered(incoming: Request, meter: StorageMeter): Promise<Response> {
    const started = Date.now();
    const correlationId = correlationIdOf(incoming);
    const requestLog: ErrorLogger = (message, error) => {
      log(`${message} (correlation id ${correlationId})`, error);
    };
    const url = new URL(incoming.url);
    let match: RouteMatch | undefined;
    let caller: Caller | undefined;
    let response: Response;
    try {
      if (incoming.method === 'OPTIONS' && incoming.headers.has('access-control-request-method')) {
        response = preflightResponse(cors, incoming);
      } else if (incoming.method === 'OPTIONS') {
        response = optionsResponse(url.pathname);
      } else {
        const versionProblem = versionError(url.pathname);
        if (versionProblem) throw versionProblem;
        match = matchRoute(routes, incoming.method, url.pathname);
        caller = await authorize(security.authenticator, match.route, incoming);
        const request = limitRequestBody(incoming, security.maxRequestBytes);
        response = await match.route.handler(request, {
          apiVersion: match.route.apiVersion ?? 'v2',
          params: match.params,
          storage,
          config,
          log: requestLog,
          decodeFrame,
          thumbnails,
          frameTables,
        });
      }
    } catch (error) {
      response = errorResponse(error, requestLog);
    }
    const extra = {
      ...corsHeaders(cors, incoming),
      'api-supported-versions': SUPPORTED_VERSIONS,
      'x-correlation-id': correlationId,
    };
    for (const [name, value] of Object.entries(extra)) response.headers.set(name, value);
    const record: Omit<AuditRecord, 'storage'> = {
      type: 'dicomweb.request',
      time: new Date(started).toISOString(),
      correlationId,
      method: incoming.method,
      route: match?.route.template ?? url.pathname.split('/').slice(0, 3).join('/'),
      apiVersion: match?.route.apiVersion,
      studyInstanceUid: match?.params['study'],
      status: response.status,
      durationMs: Date.now() - started,
      callerObjectId: caller?.objectId,
      callerAppId: caller?.appId,
    };
    return finished(response, meter, () => {
      audit({ ...record, storage: meter.counts() });
    });
  }

  return {
    routes,
    handle(incoming: Request): Promise<Response> {
      const meter = new StorageMeter();
      return withStorageMeter(meter, () => handleMetered(incoming, meter));
    },
    refuse(method: string, url: URL): Response {
      let error: DicomwebError;
      try {
        error = unmatched(routes, method, url.pathname);
      } catch (thrown) {
        error = thrown instanceof DicomwebError ? thrown : new DicomwebError('BadRequest', 'The request is malformed.');
      }
      const response = errorResponse(error, log);
      response.headers.set('api-supported-versions', SUPPORTED_VERSIONS);
      return response;
    },
  };
}
