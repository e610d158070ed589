import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/http/audit.js';
import { tokenAuthenticator } from '../../src/security/authenticator.js';
import type { Storage } from '../../src/storage/ports.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { openTestStorage, serveStorage } from '../helpers/server.js';

const ISSUER = 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000001/v2.0';
const AUDIENCE = 'https://dicom.healthcareapis.azure.com';
const roles = { claim: 'roles', owner: ['DicomDataOwner'], reader: ['DicomDataReader'] };

let key: CryptoKey;
let foreignKey: CryptoKey;
let storage: Storage;
let baseUrl = '';
let close: () => Promise<void> = () => Promise.resolve();
const audit: AuditRecord[] = [];

async function token(
  claims: Record<string, unknown> = {},
  options: { key?: CryptoKey; issuer?: string; audience?: string; expires?: string | number; kid?: string } = {},
) {
  return new SignJWT({ roles: ['DicomDataOwner'], oid: 'caller-oid-1', appid: 'app-1', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'test-key' })
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(options.expires ?? '1h')
    .sign(options.key ?? key);
}

function call(path: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('authorization', `Bearer ${init.token}`);
  return fetch(`${baseUrl}${path}`, { ...init, headers });
}

const storeInit = (body: Uint8Array, bearer?: string): RequestInit & { token?: string } => ({
  method: 'POST',
  headers: { 'content-type': 'application/dicom', accept: 'application/dicom+json' },
  body: body as Uint8Array<ArrayBuffer>,
  ...(bearer ? { token: bearer } : {}),
});

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  key = pair.privateKey;
  foreignKey = (await generateKeyPair('RS256')).privateKey;
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'test-key', alg: 'RS256' };
  storage = (await openTestStorage()).storage;
  const server = await serveStorage(
    storage,
    {},
    {
      security: {
        authenticator: tokenAuthenticator(createLocalJWKSet({ keys: [jwk] }), [ISSUER], [AUDIENCE], roles),
        cors: { origins: ['https://viewer.example.org'] },
        maxRequestBytes: 64 * 1024,
      },
      audit: (record) => audit.push(record),
    },
  );
  baseUrl = server.baseUrl;
  close = () => server.close();
});
afterAll(async () => {
  await close();
});

describe('authentication', () => {
  it('answers 401 with a Bearer challenge for missing, expired, wrong-audience, wrong-issuer, tampered and foreign-key tokens', async () => {
    const valid = await token();
    const [header, payload, signature] = valid.split('.');
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()), roles: ['x'] })).toString('base64url')}.${signature}`;
    const cases: [string, string | undefined][] = [
      ['missing', undefined],
      ['expired', await token({}, { expires: Math.floor(Date.now() / 1000) - 3600 })],
      ['wrong audience', await token({}, { audience: 'api://someone-else' })],
      ['wrong issuer', await token({}, { issuer: 'https://sts.windows.net/another-tenant/' })],
      ['tampered', tampered],
      ['foreign key', await token({}, { key: foreignKey })],
      ['not a JWT', 'abc'],
    ];
    for (const [name, bearer] of cases) {
      const response = await call('/v2/studies', bearer ? { token: bearer } : {});
      expect({ name, status: response.status }).toEqual({ name, status: 401 });
      expect(response.headers.get('www-authenticate')).toMatch(
        bearer ? /^Bearer realm="dicomweb", error="invalid_token", error_description="/ : /^Bearer realm="dicomweb"$/,
      );
    }
  });

  it('lets a reader search, retrieve and read the change feed, but not store or delete (403)', async () => {
    const reader = await token({ roles: ['DicomDataReader'] });
    const owner = await token();
    const uids = newInstanceUids();
    expect((await call('/v2/studies', storeInit(buildInstance({ ...uids }), reader))).status).toBe(403);
    expect((await call('/v2/studies', storeInit(buildInstance({ ...uids }), owner))).status).toBe(200);
    expect((await call(`/v2/studies?StudyInstanceUID=${uids.studyInstanceUid}`, { token: reader })).status).toBe(200);
    expect((await call(`/v2/studies/${uids.studyInstanceUid}/metadata`, { token: reader })).status).toBe(200);
    expect((await call('/v2/changefeed', { token: reader })).status).toBe(200);
    expect((await call(`/v2/studies/${uids.studyInstanceUid}`, { method: 'DELETE', token: reader })).status).toBe(403);
    expect((await call(`/v2/studies/${uids.studyInstanceUid}`, { method: 'DELETE', token: owner })).status).toBe(204);
    const none = await token({ roles: [] });
    expect((await call('/v2/changefeed', { token: none })).status).toBe(403);
  });

  it('keeps upload sessions to the DICOM Data Owner role, reading a session included', async () => {
    const reader = await token({ roles: ['DicomDataReader'] });
    const owner = await token();
    expect((await call('/v2/upload-sessions', { method: 'POST', token: reader })).status).toBe(403);
    const opened = await call('/v2/upload-sessions', { method: 'POST', token: owner });
    expect(opened.status).toBe(201);
    const { id } = (await opened.json()) as { id: string };
    expect((await call(`/v2/upload-sessions/${id}`, { token: reader })).status).toBe(403);
    expect((await call(`/v2/upload-sessions/${id}/commit`, { method: 'POST', token: reader })).status).toBe(403);
    expect((await call(`/v2/upload-sessions/${id}`, { method: 'DELETE', token: reader })).status).toBe(403);
    expect((await call(`/v2/upload-sessions/${id}`, { token: owner })).status).toBe(200);
    expect((await call(`/v2/upload-sessions/${id}`, { method: 'DELETE', token: owner })).status).toBe(204);
  });

  it('logs one audit record per request with the caller and study, and never the token', async () => {
    const owner = await token({ oid: 'audit-oid' });
    const uids = newInstanceUids();
    audit.length = 0;
    const response = await call(`/v2/studies/${uids.studyInstanceUid}/metadata`, {
      token: owner,
      headers: { 'x-correlation-id': 'corr-123' },
    });
    await response.text(); // the record is written when the response has ended
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      correlationId: 'corr-123',
      method: 'GET',
      route: 'v2/studies/{study}/metadata',
      studyInstanceUid: uids.studyInstanceUid,
      status: 404,
      callerObjectId: 'audit-oid',
      callerAppId: 'app-1',
      // the study row and the study's metadata document, read at once: neither exists
      storage: {
        operations: 2,
        byKind: { 'blob.get': 1, 'table.get-entity': 1 },
        batchEntities: 0,
        entitiesRead: 0,
        bytesWritten: 0,
      },
    });
    expect(JSON.stringify(audit)).not.toContain(owner.slice(0, 40));
  });
});

describe('CORS, health, limits and versions', () => {
  it('answers preflights for configured origins and exposes the headers viewers need', async () => {
    const preflight = await call('/v2/studies', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://viewer.example.org',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization, accept',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://viewer.example.org');
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/Accept/);
    const refused = await call('/v2/studies', {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
    });
    expect(refused.status).toBe(403);
    const simple = await call('/v2/studies', {
      token: await token(),
      headers: { origin: 'https://viewer.example.org' },
    });
    expect(simple.headers.get('access-control-allow-origin')).toBe('https://viewer.example.org');
    expect(simple.headers.get('access-control-expose-headers')).toMatch(/ETag/);
  });

  it('reports storage health without a token', async () => {
    const response = await call('/health/check');
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'Healthy' });
  });

  it('answers 413 for a body over the limit, declared or chunked, and stores nothing', async () => {
    const owner = await token();
    const uids = newInstanceUids();
    const big = buildInstance({ ...uids, pixelBytes: 100 * 1024 });
    const declared = await call('/v2/studies', storeInit(big, owner));
    expect(declared.status).toBe(413);
    expect(await declared.text()).toMatch(/limit/);
    const chunked = await call('/v2/studies', {
      ...storeInit(big, owner),
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(big);
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit & { token: string });
    expect(chunked.status).toBe(413);
    expect(await storage.index.getInstance(uids)).toBeUndefined();
  });

  it('names supported versions, and answers unversioned or unknown versions with 400', async () => {
    const owner = await token();
    const response = await call('/v2/changefeed', { token: owner });
    expect(response.headers.get('api-supported-versions')).toBe('1, 2');
    const v3 = await call('/v3/studies', { token: owner });
    expect(v3.status).toBe(400);
    expect(await v3.text()).toMatch(/v3 is not supported/);
    const unversioned = await call('/studies', { token: owner });
    expect(unversioned.status).toBe(400);
    expect(await unversioned.text()).toMatch(/\/v2\/studies/);
  });
});
