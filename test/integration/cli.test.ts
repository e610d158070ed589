import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DicomwebClient } from '../../src/client/index.js';
import { buildInstance, newInstanceUids } from '../../support/dicom-builder.js';
import { finished, runCli, startCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const SAMPLES = join(import.meta.dirname, '..', 'fixtures', 'azure-samples');
const SAMPLE_STUDY = '1.2.826.0.1.3680043.8.498.13230779778012324449356534479549187420';
const BLUE_CIRCLE = '1.2.826.0.1.3680043.8.498.13273713909719068980354078852867170114';

let server: TestServer;
let url: string;
let work: string;
beforeAll(async () => {
  server = await startTestServer();
  url = `${server.baseUrl}/v2`;
  work = mkdtempSync(join(tmpdir(), 'dicomweb-cli-'));
});
afterAll(async () => {
  await server.close();
  rmSync(work, { recursive: true, force: true });
});

/** Writes `count` generated CT instances of one new series into `dir`; their UIDs and bytes. */
function writeSeries(dir: string, count: number, pixelBytes = 4096) {
  mkdirSync(dir, { recursive: true });
  const { studyInstanceUid, seriesInstanceUid } = newInstanceUids();
  const files = Array.from({ length: count }, (_, i) => {
    const uids = newInstanceUids(studyInstanceUid, seriesInstanceUid);
    const bytes = buildInstance({
      ...uids,
      attributes: { '00200013': { vr: 'IS', value: String(i + 1) } },
      pixelBytes,
    });
    writeFileSync(join(dir, `slice-${String(i + 1).padStart(3, '0')}.dcm`), bytes);
    return { sopInstanceUid: uids.sopInstanceUid, bytes };
  });
  return { studyInstanceUid, seriesInstanceUid, files };
}

interface UploadJson {
  files: { file: string; status: string; resumed?: boolean; failureReason?: number; sopInstanceUid?: string }[];
  skipped: { file: string; reason: string }[];
}

const upload = (args: string[], cwd = work) => runCli(['--url', url, 'upload', '--no-progress', ...args], { cwd });

describe('dicomweb upload', () => {
  it('loads a folder of mixed files: stored, already there, failed with its FailureReason, skipped with a reason', async () => {
    const folder = join(work, 'mixed');
    mkdirSync(join(folder, 'samples'), { recursive: true });
    mkdirSync(join(folder, 'copies'), { recursive: true });
    for (const name of ['blue-circle', 'green-square', 'red-triangle']) {
      copyFileSync(join(SAMPLES, `${name}.dcm`), join(folder, 'samples', `${name}.dcm`));
    }
    copyFileSync(join(SAMPLES, 'blue-circle.dcm'), join(folder, 'copies', 'blue-circle-again.dcm'));
    const ct = writeSeries(join(folder, 'ct'), 12);
    // A DICOM file cut off inside its Pixel Data: the server refuses it (43264).
    const broken = buildInstance({ ...newInstanceUids(), pixelBytes: 4096 });
    writeFileSync(join(folder, 'broken.dcm'), broken.subarray(0, broken.length - 1000));
    writeFileSync(join(folder, 'notes.txt'), 'not an image\n'.repeat(100));
    writeFileSync(join(folder, 'empty.dcm'), '');
    writeFileSync(join(folder, 'no-prefix.dcm'), Buffer.alloc(600, 1));

    const run = await upload([folder, '--batch-files', '4']);
    expect(run.code).toBe(1); // one file failed
    expect(run.stdout).toMatch(/^stored\s+15\s/m);
    expect(run.stdout).toMatch(/^already there\s+1\s/m);
    expect(run.stdout).toMatch(/^failed\s+1\s/m);
    expect(run.stdout).toMatch(/^not DICOM \(skipped\)\s+3\s/m);
    expect(run.stdout).toMatch(
      /^mixed\/broken\.dcm\s+1\.2\.826\S+\s+43264 \(0xA900\) not a valid DICOM instance\s+The file is not complete/m,
    );
    expect(run.stdout).toMatch(/notes\.txt\s+no DICM prefix/);
    expect(run.stdout).toMatch(/empty\.dcm\s+too short for DICOM \(0 bytes\)/);
    // Plain output without a terminal: no escape codes anywhere.
    expect(run.stdout + run.stderr).not.toContain('\u001b');

    const study = await new DicomwebClient({ baseUrl: url }).search('studies', {
      filters: { StudyInstanceUID: ct.studyInstanceUid },
    });
    expect(study.results[0]?.numberOfStudyRelatedInstances).toBe(12);

    // Again, with --json and without the record of the first run: everything is already there but the broken file.
    const again = await upload([folder, '--json', '--no-resume']);
    expect(again.code).toBe(1);
    const report = JSON.parse(again.stdout) as UploadJson;
    const withStatus = (status: string) => report.files.filter((file) => file.status === status);
    expect(withStatus('already-stored')).toHaveLength(16);
    expect(withStatus('failed').map((file) => [file.file, file.failureReason])).toEqual([
      [join(folder, 'broken.dcm'), 43264],
    ]);
    expect(report.skipped).toHaveLength(3);
  });

  it('resumes a run killed midway and ends with every instance stored once', async () => {
    const folder = join(work, 'resume');
    const series = writeSeries(folder, 120, 64 * 1024);
    const state = join(work, 'resume-state.jsonl');
    const child = startCli([
      '--url',
      url,
      'upload',
      folder,
      '--state',
      state,
      '--batch-files',
      '1',
      '-c',
      '1',
      '--no-progress',
    ]);
    const exited = finished(child);
    const lines = () => (existsSync(state) ? readFileSync(state, 'utf8').split('\n').filter(Boolean).length : 0);
    while (lines() < 10) await new Promise((resolve) => setTimeout(resolve, 10));
    child.kill('SIGKILL');
    await exited;
    const recorded = lines();
    expect(recorded).toBeLessThan(120);

    const resumed = await runCli(['--url', url, 'upload', folder, '--state', state, '--json', '--no-progress'], {
      cwd: work,
    });
    expect(resumed.stderr).toContain('done by an earlier run');
    expect(resumed.code).toBe(0);
    const report = JSON.parse(resumed.stdout) as UploadJson;
    expect(report.files).toHaveLength(120);
    expect(report.files.filter((file) => file.resumed).length).toBeGreaterThanOrEqual(recorded - 1);
    expect(report.files.every((file) => file.status === 'stored' || file.status === 'already-stored')).toBe(true);
    expect(existsSync(state)).toBe(false); // a finished run leaves no record behind

    const client = new DicomwebClient({ baseUrl: url });
    const stored = [];
    for await (const instance of client.searchAll('instances', { study: series.studyInstanceUid }))
      stored.push(instance.sopInstanceUid);
    expect(stored.sort()).toEqual(series.files.map((file) => file.sopInstanceUid).sort());
    // Stored once: one create entry per instance in the change feed.
    const creates = [];
    for await (const entry of client.changes()) {
      if (entry.studyInstanceUid === series.studyInstanceUid && entry.action === 'create')
        creates.push(entry.sopInstanceUid);
    }
    expect(creates.sort()).toEqual(stored);
  });

  it('stops cleanly on Ctrl-C (SIGINT): exit 130, the record kept for the next run', async () => {
    const folder = join(work, 'interrupt');
    writeSeries(folder, 80, 64 * 1024);
    const state = join(work, 'interrupt-state.jsonl');
    const child = startCli(['--url', url, 'upload', folder, '--state', state, '--batch-files', '1', '-c', '1']);
    const exited = finished(child);
    while (!existsSync(state)) await new Promise((resolve) => setTimeout(resolve, 10));
    child.kill('SIGINT');
    const run = await exited;
    expect(run.code).toBe(130);
    expect(run.stderr).toMatch(/Interrupted after \d+ of 80 files; run the same command again to resume/);
    expect(readFileSync(state, 'utf8').trim().split('\n').length).toBeGreaterThan(0);
  });
});

describe('dicomweb download, search, changefeed, delete', () => {
  it('downloads a study into files named by UID, byte for byte as uploaded', async () => {
    const folder = join(work, 'to-download');
    const series = writeSeries(folder, 5, 70 * 1024);
    expect((await upload([folder])).code).toBe(0);
    const out = join(work, 'downloaded');
    const run = await runCli(['--url', url, 'download', series.studyInstanceUid, '-o', out, '--no-progress']);
    expect(run.code).toBe(0);
    const dir = join(out, series.studyInstanceUid, series.seriesInstanceUid);
    expect(readdirSync(dir).sort()).toEqual(series.files.map((file) => `${file.sopInstanceUid}.dcm`).sort());
    for (const file of series.files) {
      expect(readFileSync(join(dir, `${file.sopInstanceUid}.dcm`)).equals(file.bytes)).toBe(true);
    }
    expect(run.stderr).not.toContain('\u001b');

    // One instance of the tutorial study (stored by the first test), as stored.
    const one = await runCli([
      '--url',
      url,
      'download',
      SAMPLE_STUDY,
      '1.2.826.0.1.3680043.8.498.77033797676425927098669402985243398207',
      BLUE_CIRCLE,
      '-o',
      out,
    ]);
    expect(one.code).toBe(0);
    expect(one.stdout.trim()).toBe(
      join(out, SAMPLE_STUDY, '1.2.826.0.1.3680043.8.498.77033797676425927098669402985243398207', `${BLUE_CIRCLE}.dcm`),
    );
    expect(readFileSync(one.stdout.trim()).equals(readFileSync(join(SAMPLES, 'blue-circle.dcm')))).toBe(true);

    const missing = await runCli(['--url', url, 'download', '1.2.3.4.5', '-o', out]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404');
  });

  it('search prints a table of the expected rows, or the DICOM JSON', async () => {
    const series = writeSeries(join(work, 'to-search'), 3);
    expect((await upload([join(work, 'to-search')])).code).toBe(0);
    const table = await runCli(['--url', url, 'search', 'series', '--study', series.studyInstanceUid]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^SeriesInstanceUID\s+Modality\s+SeriesNumber\s+Instances\s+SeriesDescription$/);
    expect(lines[1]).toMatch(new RegExp(`^${series.seriesInstanceUid.replaceAll('.', '\\.')}\\s+CT\\s+1\\s+3\\s+-$`));

    const studies = await runCli([
      '--url',
      url,
      'search',
      'studies',
      '-f',
      `StudyInstanceUID=${series.studyInstanceUid}`,
      '--json',
    ]);
    const json = JSON.parse(studies.stdout) as Record<string, { Value?: unknown[] }>[];
    expect(json.map((dataset) => dataset['0020000D']?.Value?.[0])).toEqual([series.studyInstanceUid]);
    expect(json[0]?.['00100010']?.Value).toEqual([{ Alphabetic: 'Test^Patient' }]);

    const instances = await runCli([
      '--url',
      url,
      'search',
      'instances',
      '--study',
      series.studyInstanceUid,
      '--limit',
      '2',
    ]);
    expect(instances.stdout.trim().split('\n')).toHaveLength(3);
    expect(instances.stderr).toContain('More results exist: --offset 2');

    const bad = await runCli(['--url', url, 'search', 'studies', '-f', 'NoSuchKeyword=1']);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('400');
    const usage = await runCli(['--url', url, 'search', 'patients']);
    expect(usage.code).toBe(2);
  });

  it('changefeed --follow prints entries as they are written, and delete removes a study once', async () => {
    const client = new DicomwebClient({ baseUrl: url });
    const latest = (await client.latestChange())?.sequence ?? 0;
    const child = startCli([
      '--url',
      url,
      'changefeed',
      '--follow',
      '--after',
      String(latest),
      '--interval',
      '1',
      '--json',
    ]);
    let collected = '';
    child.stdout?.on('data', (chunk: Buffer) => (collected += chunk.toString()));
    const output = finished(child);
    const series = writeSeries(join(work, 'to-follow'), 2);
    expect((await upload([join(work, 'to-follow')])).code).toBe(0);
    const deleted = await runCli(['--url', url, 'delete', series.studyInstanceUid]);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain(`deleted study ${series.studyInstanceUid}`);
    expect((await runCli(['--url', url, 'delete', series.studyInstanceUid])).code).toBe(1);

    let seen: { action: string; sopInstanceUid: string; sequence: number }[] = [];
    for (let waited = 0; seen.length < 4 && waited < 15_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      seen = collected
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as (typeof seen)[number]);
    }
    child.kill('SIGINT');
    expect((await output).code).toBe(0);
    expect(seen.map((entry) => entry.action)).toEqual(['create', 'create', 'delete', 'delete']);
    expect(seen[0]?.sequence).toBe(latest + 1);
  });

  it('has --help on every command', async () => {
    for (const command of ['upload', 'download', 'search', 'changefeed', 'delete']) {
      const help = await runCli([command, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`Usage: dicomweb ${command}`);
    }
    const top = await runCli(['--help']);
    expect(top.stdout).toMatch(/--url <url>.*env: DICOMWEB_URL/);
    // A port that was just free: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = await runCli(['--url', `http://127.0.0.1:${port}/v2`, '--retries', '0', 'search', 'studies']);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain('Cannot reach the server (fetch failed: connect ECONNREFUSED');
    // An upload stops at the first request that outlasts its retries, rather than failing file after file.
    const upload = await runCli(
      ['--url', `http://127.0.0.1:${port}/v2`, '--retries', '1', 'upload', SAMPLES, '--no-progress'],
      { cwd: work },
    );
    expect(upload.code).toBe(3);
    expect(upload.stderr).toMatch(/retry 1: POST .* \(fetch failed: connect ECONNREFUSED/);
    expect(upload.stdout).toBe('');
  });
});
