import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { DicomwebError, MISSING_CREDENTIALS } from '../dicomweb/errors.js';
import type { AuthConfig, RoleNames } from './auth-config.js';
import { LOCAL_ISSUER } from './auth-config.js';

export type Permission = 'read' | 'write';

/** Who called: for authorization and the audit log (never the token itself). */
export interface Caller {
  readonly objectId?: string | undefined;
  readonly appId?: string | undefined;
  readonly permissions: ReadonlySet<Permission>;
}

export const ANONYMOUS_OWNER: Caller = { permissions: new Set(['read', 'write']) };

export interface Authenticator {
  /** The caller of a request; throws DicomwebError 401 when the token is missing or invalid. */
  authenticate(authorization: string | null): Promise<Caller>;
}

function permissionsOf(payload: JWTPayload, roles: RoleNames): Set<Permission> {
  const claim = payload[roles.claim];
  const held = Array.isArray(claim)
    ? claim.filter((role) => typeof role === 'string')
    : typeof claim === 'string'
      ? claim.split(' ')
      : [];
  const permissions = new Set<Permission>();
  if (held.some((role) => roles.owner.includes(role))) permissions.add('read').add('write');
  if (held.some((role) => roles.reader.includes(role))) permissions.add('read');
  return permissions;
}

function unauthorized(description: string): DicomwebError {
  return new DicomwebError('Unauthorized', description);
}

/** Verifies bearer tokens: signature against the key set, issuer, audience, expiry and not-before. */
export function tokenAuthenticator(
  keys: JWTVerifyGetKey,
  issuers: readonly string[],
  audiences: readonly string[],
  roles: RoleNames,
): Authenticator {
  return {
    async authenticate(authorization) {
      const match = /^Bearer\s+([A-Za-z0-9\-_=]+\.[A-Za-z0-9\-_=]+\.[A-Za-z0-9\-_=]*)\s*$/i.exec(authorization ?? '');
      if (!match?.[1])
        throw unauthorized(authorization ? 'The Authorization header is not a bearer token.' : MISSING_CREDENTIALS);
      try {
        const { payload } = await jwtVerify(match[1], keys, {
          issuer: [...issuers],
          audience: [...audiences],
          algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'ES256'],
          clockTolerance: 300,
          requiredClaims: ['exp'],
        });
        return {
          objectId: typeof payload['oid'] === 'string' ? payload['oid'] : undefined,
          appId:
            typeof payload['appid'] === 'string'
              ? payload['appid']
              : typeof payload['azp'] === 'string'
                ? payload['azp']
                : undefined,
          permissions: permissionsOf(payload, roles),
        };
      } catch (error) {
        if (error instanceof errors.JWTExpired) throw unauthorized('The token has expired.');
        if (error instanceof errors.JWTClaimValidationFailed)
          throw unauthorized(`The token's ${error.claim} claim is not accepted.`);
        if (error instanceof errors.JOSEError) throw unauthorized('The token is not valid.');
        throw new DicomwebError('StorageUnavailable', 'The token signing keys could not be fetched; try again.', {
          cause: error,
        });
      }
    },
  };
}

/** Entra ID (v1 and v2 tokens of one tenant), keys from the tenant's JWKS (cached by jose). */
export function entraAuthenticator(tenantId: string, audiences: readonly string[], roles: RoleNames): Authenticator {
  const keys = createRemoteJWKSet(new URL(`https://login.microsoftonline.com/${tenantId}/discovery/v2.0/keys`));
  const issuers = [`https://login.microsoftonline.com/${tenantId}/v2.0`, `https://sts.windows.net/${tenantId}/`];
  return tokenAuthenticator(keys, issuers, audiences, roles);
}

export function localAuthenticator(
  publicJwk: Parameters<typeof createLocalJWKSet>[0],
  audiences: readonly string[],
  roles: RoleNames,
): Authenticator {
  return tokenAuthenticator(createLocalJWKSet(publicJwk), [LOCAL_ISSUER], audiences, roles);
}

export function authenticatorFor(
  config: AuthConfig,
  localKeys?: Parameters<typeof createLocalJWKSet>[0],
): Authenticator | undefined {
  if (config.mode === 'none') return undefined;
  if (config.mode === 'entra') return entraAuthenticator(config.tenantId, config.audiences, config.roles);
  if (!localKeys) throw new Error('local authentication needs its key set');
  return localAuthenticator(localKeys, config.audiences, config.roles);
}
