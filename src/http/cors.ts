/** Cross-origin access for browser viewers (OHIF and the like): configured origins only. */
export interface CorsConfig {
  /** Allowed origins, or ["*"] for any. Empty: no CORS headers at all. */
  readonly origins: readonly string[];
}

const ALLOW_METHODS = 'GET, POST, PUT, DELETE, OPTIONS';
const ALLOW_HEADERS =
  'Accept, Authorization, Content-Type, If-None-Match, X-Correlation-Id, X-Ms-Client-Request-Id, ' +
  'msdicom-expiry-time-milliseconds, msdicom-expiry-option, msdicom-expiry-level';
/** What viewers read from responses: ETag for metadata caching, Warning for truncated searches. */
const EXPOSE_HEADERS = 'ETag, Warning, Content-Type, Content-Length, api-supported-versions, X-Correlation-Id';

export function allowedOrigin(config: CorsConfig, origin: string | null): string | undefined {
  if (!origin || config.origins.length === 0) return undefined;
  if (config.origins.includes('*')) return origin;
  return config.origins.includes(origin) ? origin : undefined;
}

/** The answer to a CORS preflight (an OPTIONS request with Access-Control-Request-Method). */
export function preflightResponse(config: CorsConfig, request: Request): Response {
  const origin = allowedOrigin(config, request.headers.get('origin'));
  if (!origin)
    return new Response('This origin may not call the DICOMweb API.', { status: 403, headers: { vary: 'Origin' } });
  return new Response(null, {
    status: 204,
    headers: {
      'access-control-allow-origin': origin,
      'access-control-allow-methods': ALLOW_METHODS,
      'access-control-allow-headers': ALLOW_HEADERS,
      'access-control-max-age': '600',
      vary: 'Origin',
    },
  });
}

export function corsHeaders(config: CorsConfig, request: Request): Record<string, string> {
  const origin = allowedOrigin(config, request.headers.get('origin'));
  if (!origin) return config.origins.length > 0 ? { vary: 'Origin' } : {};
  return { 'access-control-allow-origin': origin, 'access-control-expose-headers': EXPOSE_HEADERS, vary: 'Origin' };
}
