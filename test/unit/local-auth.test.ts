import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readAuthConfig } from '../../src/security/auth-config.js';
import { localAuthenticator } from '../../src/security/authenticator.js';
import { issueLocalToken, loadOrCreateLocalKeys } from '../../src/security/local-keys.js';

describe('local authentication mode', () => {
  it('issues tokens that the server accepts, with the roles they carry, and keeps one key per data folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dicomweb-auth-'));
    const config = readAuthConfig({ DICOMWEB_AUTH_MODE: 'local' }, dir);
    if (config.mode !== 'local') throw new Error('expected local mode');
    const keys = await loadOrCreateLocalKeys(config.keyDir);
    expect(await loadOrCreateLocalKeys(config.keyDir)).toEqual(keys);
    const authenticator = localAuthenticator(keys.publicJwks, config.audiences, config.roles);
    const owner = await authenticator.authenticate(
      `Bearer ${await issueLocalToken(keys, { roles: ['DicomDataOwner'] })}`,
    );
    expect([...owner.permissions].sort()).toEqual(['read', 'write']);
    const reader = await authenticator.authenticate(
      `Bearer ${await issueLocalToken(keys, { roles: ['DICOM Data Reader'] })}`,
    );
    expect([...reader.permissions]).toEqual(['read']);
    await expect(
      authenticator.authenticate(`Bearer ${await issueLocalToken(keys, { roles: [], expiresInSeconds: -600 })}`),
    ).rejects.toThrow(/expired/);
  });

  it('reads the Entra settings, and refuses a malformed tenant', () => {
    const config = readAuthConfig(
      {
        DICOMWEB_AUTH_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47',
        DICOMWEB_AUTH_AUDIENCE: 'api://a, api://b',
        DICOMWEB_AUTH_OWNER_ROLES: 'Owner',
      },
      '.data',
    );
    expect(config).toMatchObject({
      mode: 'entra',
      audiences: ['api://a', 'api://b'],
      roles: { claim: 'roles', owner: ['Owner'] },
    });
    expect(() => readAuthConfig({ DICOMWEB_AUTH_TENANT_ID: 'contoso' }, '.data')).toThrow(/GUID/);
    expect(readAuthConfig({}, '.data')).toEqual({ mode: 'none' });
  });
});
