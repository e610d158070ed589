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

  it('retrieves study, series, instance, metadata at three levels and frame 1, decoded with requests_toolbelt + pydicom', async () => {
    const result = await run(
      python ?? 'python3',
      [join(import.meta.dirname, '..', 'python', 'azure_tutorial_wado.py')],
      {
        DICOMWEB_BASE_URL: `${server().baseUrl}/v2`,
      },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const steps = Object.fromEntries(
      result.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { step: string; status: number; [key: string]: unknown })
        .map((line) => [line.step, line]),
    );
    for (const step of Object.values(steps)) expect(step.status, step.step).toBe(200);
    const study = steps['study']?.['parts'] as { type: string; patient: string }[];
    expect(study).toHaveLength(3);
    expect(study.every((part) => part.type === 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1')).toBe(true);
    expect(study[0]?.patient).toBe('Anony Mous');
    expect(steps['study-metadata']?.['count']).toBe(3);
    expect(steps['series']?.['parts']).toHaveLength(2);
    expect(steps['series-metadata']?.['count']).toBe(2);
    expect(steps['instance']).toMatchObject({
      type: 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1',
      sop: '1.2.826.0.1.3680043.8.498.47359123102728459884412887463296905395',
      rows: 979,
      pixels: 979 * 985 * 3 + 1,
    });
    expect(steps['instance-metadata']).toMatchObject({ count: 1, patient: 'Anony Mous' });
    expect(steps['frame']?.['parts']).toEqual([
      { type: 'application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1', bytes: 979 * 985 * 3 },
    ]);
  });

  it('probes the change feed (200) and deletes an instance, a series and the study: 204 each, then 404', async () => {
    const result = await run(
      python ?? 'python3',
      [join(import.meta.dirname, '..', 'python', 'azure_tutorial_delete.py')],
      {
        DICOMWEB_BASE_URL: `${server().baseUrl}/v2`,
      },
    );
    expect(result.stderr).toBe('');
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { step: string; status: number; entries?: number });
    expect(lines[0]).toEqual({ step: 'changefeed', status: 200, entries: 3 });
    expect(lines.slice(1).map((line) => line.status)).toEqual([204, 204, 204, 404, 404, 404]);
  });
});
