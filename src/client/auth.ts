/**
 * Where the bearer token comes from: none (the local host), a static token, or any
 * `TokenCredential` of `@azure/identity` for a scope (the API's Application ID URI + `/.default`).
 * The package is only a type here: callers who pass a credential already have it loaded.
 */
import type { TokenCredential } from '@azure/identity';

export type Authorization =
  undefined | string | { readonly credential: TokenCredential; readonly scope: string } | (() => Promise<string>);

/** Renew this long before a credential's token expires. */
const EARLY_RENEWAL_MS = 2 * 60 * 1000;

/** A function giving the `Authorization` header value for each request (undefined: send none). */
export function bearerHeader(authorization: Authorization): (signal?: AbortSignal) => Promise<string | undefined> {
  if (authorization === undefined) return () => Promise.resolve(undefined);
  if (typeof authorization === 'string') {
    const header = `Bearer ${authorization}`;
    return () => Promise.resolve(header);
  }
  if (typeof authorization === 'function') return async () => `Bearer ${await authorization()}`;
  const { credential, scope } = authorization;
  let cached: { token: string; renewAt: number } | undefined;
  let pending: Promise<string> | undefined;
  const fetchToken = async (signal?: AbortSignal): Promise<string> => {
    const token = await credential.getToken(scope, signal ? { abortSignal: signal } : {});
    if (!token) throw new Error(`The credential gave no token for the scope ${scope}.`);
    cached = { token: token.token, renewAt: token.expiresOnTimestamp - EARLY_RENEWAL_MS };
    return token.token;
  };
  return async (signal) => {
    if (cached && Date.now() < cached.renewAt) return `Bearer ${cached.token}`;
    // Concurrent requests share one token request.
    pending ??= fetchToken(signal).finally(() => {
      pending = undefined;
    });
    return `Bearer ${await pending}`;
  };
}
