import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { DEFAULT_AUDIENCE, LOCAL_ISSUER } from './auth-config.js';

/**
 * The signing key of local mode: generated once into the data folder, so `npm run token` and the
 * running server agree. It only ever signs tokens for this machine's own tests and tutorials.
 */
export interface LocalKeys {
  readonly privateJwk: JWK;
  readonly publicJwks: { keys: JWK[] };
}

export async function loadOrCreateLocalKeys(keyDir: string): Promise<LocalKeys> {
  const file = join(keyDir, 'signing-key.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as LocalKeys;
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomUUID();
  const keys: LocalKeys = {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256' },
    publicJwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] },
  };
  mkdirSync(keyDir, { recursive: true });
  writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}

export interface TokenClaims {
  readonly roles: readonly string[];
  readonly audience?: string;
  readonly objectId?: string;
  readonly expiresInSeconds?: number;
}

export async function issueLocalToken(keys: LocalKeys, claims: TokenClaims): Promise<string> {
  const key = await importJWK(keys.privateJwk, 'RS256');
  return new SignJWT({
    roles: [...claims.roles],
    oid: claims.objectId ?? randomUUID(),
    appid: 'dicomweb-functions-local',
  })
    .setProtectedHeader({ alg: 'RS256', kid: keys.privateJwk.kid ?? '' })
    .setIssuer(LOCAL_ISSUER)
    .setAudience(claims.audience ?? DEFAULT_AUDIENCE)
    .setIssuedAt()
    .setNotBefore('0s')
    .setExpirationTime(`${claims.expiresInSeconds ?? 3600}s`)
    .sign(key);
}
