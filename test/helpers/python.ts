import { spawnSync } from 'node:child_process';

/**
 * A Python 3 with `requests` and `urllib3` (Debian's python3-requests; .ci/run installs it).
 * Undefined when there is none: tests then skip locally, but fail under CI=true so a missing
 * install step cannot hide.
 */
export function findPython(): string | undefined {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    const probe = spawnSync(candidate, ['-c', 'import requests, urllib3'], { stdio: 'ignore' });
    if (probe.status === 0) return candidate;
  }
  if (process.env['CI'])
    throw new Error('CI needs python3 with requests and urllib3 (apt-get install python3-requests).');
  return undefined;
}
