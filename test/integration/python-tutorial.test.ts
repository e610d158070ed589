import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findPython } from '../helpers/python.js';
import { useTestServer } from '../helpers/server.js';

const python = findPython();
const SAMPLES = join(import.meta.dirname, '..', 'fixtures', 'azure-samples');

function run(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(python === undefined)('the Azure Python tutorial', () => {
  const server = useTestServer();

  it('stores the three samples with its own requests + urllib3 code: 200, 200, 409', async () => {
    const result = await run(
      python ?? 'python3',
      [join(import.meta.dirname, '..', 'python', 'azure_tutorial_stow.py'), SAMPLES],
      {
        DICOMWEB_BASE_URL: `${server().baseUrl}/v2`,
      },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            status: number;
            body: Record<string, { Value: { [tag: string]: { Value: unknown[] } }[] }>;
          },
      );
    expect(lines.map((line) => line.status)).toEqual([200, 200, 409]);
    expect(lines[1]?.body['00081199']?.Value).toHaveLength(2);
    expect(lines[2]?.body['00081198']?.Value[0]?.['00081197']?.Value).toEqual([45070]);
  });
});
