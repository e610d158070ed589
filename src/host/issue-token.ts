/**
 * `npm run token -- [owner|reader]`: prints a bearer token signed with local mode's key, so the
 * tutorials' `Authorization: Bearer ...` flow can be run end to end against `npm start`.
 */
import { readConfig } from '../config.js';
import { issueLocalToken, loadOrCreateLocalKeys } from '../security/local-keys.js';

const config = readConfig({ ...process.env, DICOMWEB_AUTH_MODE: 'local' });
if (config.auth.mode !== 'local') throw new Error('unreachable');
const role = process.argv[2] ?? 'owner';
const roles = role === 'reader' ? config.auth.roles.reader : config.auth.roles.owner;
if (role !== 'owner' && role !== 'reader') {
  console.error('usage: npm run token -- [owner|reader]');
  process.exit(2);
}
const keys = await loadOrCreateLocalKeys(config.auth.keyDir);
console.log(await issueLocalToken(keys, { roles: [roles[0] ?? ''], audience: config.auth.audiences[0] }));
