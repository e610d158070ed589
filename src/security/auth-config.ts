/** How callers are authenticated (README "Authentication"). */
export type AuthConfig =
  | { readonly mode: 'none' }
  | {
      readonly mode: 'entra';
      readonly tenantId: string;
      /** Accepted `aud` values (the app ID URI and/or the client ID). */
      readonly audiences: readonly string[];
      readonly roles: RoleNames;
    }
  | {
      readonly mode: 'local';
      /** Folder holding the locally generated signing key. */
      readonly keyDir: string;
      readonly audiences: readonly string[];
      readonly roles: RoleNames;
    };

export interface RoleNames {
  /** The token claim holding the roles (Entra puts app roles in `roles`). */
  readonly claim: string;
  /** Role values granting everything (the Azure service's DICOM Data Owner). */
  readonly owner: readonly string[];
  /** Role values granting retrieve, search and change feed (DICOM Data Reader). */
  readonly reader: readonly string[];
}

export const LOCAL_ISSUER = 'https://dicomweb-functions.local/';
export const DEFAULT_AUDIENCE = 'https://dicom.healthcareapis.azure.com';

type Env = Readonly<Record<string, string | undefined>>;

function list(raw: string | undefined, fallback: readonly string[]): string[] {
  const items = (raw ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  return items.length > 0 ? items : [...fallback];
}

export function readAuthConfig(env: Env, dataDir: string): AuthConfig {
  const roles: RoleNames = {
    claim: env['DICOMWEB_AUTH_ROLE_CLAIM'] || 'roles',
    owner: list(env['DICOMWEB_AUTH_OWNER_ROLES'], ['DicomDataOwner', 'DICOM Data Owner']),
    reader: list(env['DICOMWEB_AUTH_READER_ROLES'], ['DicomDataReader', 'DICOM Data Reader']),
  };
  const audiences = list(env['DICOMWEB_AUTH_AUDIENCE'], [DEFAULT_AUDIENCE]);
  const mode = env['DICOMWEB_AUTH_MODE'] || (env['DICOMWEB_AUTH_TENANT_ID'] ? 'entra' : 'none');
  switch (mode) {
    case 'entra': {
      const tenantId = env['DICOMWEB_AUTH_TENANT_ID'] ?? '';
      if (!/^[0-9a-fA-F-]{36}$/.test(tenantId))
        throw new Error('DICOMWEB_AUTH_TENANT_ID must be the Entra tenant ID (a GUID).');
      return { mode, tenantId, audiences, roles };
    }
    case 'local':
      return { mode, keyDir: env['DICOMWEB_AUTH_KEY_DIR'] || `${dataDir}/auth`, audiences, roles };
    case 'none':
      return { mode };
    default:
      throw new Error(`DICOMWEB_AUTH_MODE must be entra, local or none, not "${mode}".`);
  }
}
