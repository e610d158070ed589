import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../../src/app.js';
import { freePort } from '../../src/host/azurite.js';
import { createNodeServer, listen } from '../../src/host/node-host.js';
import type { Storage } from '../../src/storage/ports.js';
import { defaultAppConfig } from './server.js';

/** Where Debian's packages `orthanc` and `orthanc-dicomweb` put the server and the plugin. */
const BINARY_CANDIDATES = ['/usr/sbin/Orthanc', 'Orthanc'];
const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface OrthancInstall {
  readonly binary: string;
  readonly plugin: string;
}

/**
 * Orthanc with its DICOMweb plugin (Debian's orthanc + orthanc-dicomweb; .ci/run installs them).
 * Undefined when either is missing: tests then skip locally, but fail under CI=true so a missing
 * install step cannot hide.
 */
export function findOrthanc(): OrthancInstall | undefined {
  const binary = BINARY_CANDIDATES.find(
    (candidate) => spawnSync(candidate, ['--version'], { stdio: 'ignore' }).status === 0,
  );
  if (binary && existsSync(DICOMWEB_PLUGIN)) return { binary, plugin: DICOMWEB_PLUGIN };
  if (process.env['CI'])
    throw new Error('CI needs Orthanc and its DICOMweb plugin (apt-get install orthanc orthanc-dicomweb).');
  return undefined;
}

/** One entry of the plugin's `DicomWeb.Servers` (plugin 1.7; extra keys are "user properties"). */
export interface DicomwebPeer {
  readonly Url: string;
  /** Default true: STOW-RS bodies are sent with Transfer-Encoding: chunked. */
  readonly ChunkedTransfers?: boolean;
  /** Default false: `POST /dicom-web/servers/{name}/delete` refuses unless set. */
  readonly HasDelete?: boolean;
  /** HTTP timeout in seconds for this server (plugin >= 1.6). */
  readonly Timeout?: number;
  readonly HttpHeaders?: Record<string, string>;
}

export interface OrthancProcess {
  /** REST API root, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly dicomPort: number;
  /** A REST call; JSON bodies are serialised, JSON answers parsed. */
  rest(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  /** The raw bytes of a REST resource (e.g. /instances/{id}/file). */
  bytes(path: string): Promise<Buffer>;
  /** What Orthanc wrote to stdout and stderr (the last 256 KiB). */
  log(): string;
  /** SIGTERM, then SIGKILL after 5 s; removes the temporary folder. */
  stop(): Promise<void>;
}

const LOG_LIMIT = 256 * 1024;

/**
 * Starts Orthanc as a child process with its own configuration, storage and index in a fresh
 * temporary folder, on free loopback ports, with the DICOMweb plugin and `peers` as its DICOMweb
 * servers. Resolves once its REST API answers /system.
 */
export async function startOrthanc(
  install: OrthancInstall,
  peers: Record<string, DicomwebPeer>,
): Promise<OrthancProcess> {
  const folder = mkdtempSync(join(tmpdir(), 'dicomweb-orthanc-'));
  const httpPort = await freePort();
  const dicomPort = await freePort();
  const config = {
    Name: 'dicomweb-functions-test',
    StorageDirectory: join(folder, 'storage'),
    IndexDirectory: join(folder, 'index'),
    Plugins: [install.plugin],
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: 'DWFTEST',
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    SaveJobs: false,
    HttpProxy: '',
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false, Servers: peers },
  };
  mkdirSync(config.StorageDirectory);
  mkdirSync(config.IndexDirectory);
  const configPath = join(folder, 'orthanc.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));

  // Orthanc's libcurl honours proxy variables; its peer is on loopback.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(https?|all|no)_proxy$/i.test(name)),
  );
  const child = spawn(install.binary, [configPath], { cwd: folder, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (data: Buffer): void => {
    output = (output + data.toString()).slice(-LOG_LIMIT);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const url = `http://127.0.0.1:${httpPort}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => {
          resolve('timeout');
        }, 5000);
      });
      if ((await Promise.race([exited, grace])) === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
      clearTimeout(timer);
    }
    process.off('exit', killOnExit);
    rmSync(folder, { recursive: true, force: true });
  };

  try {
    await waitForSystem(url, () => child.exitCode !== null || child.signalCode !== null, 30_000);
  } catch (error) {
    await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${output}`, { cause: error });
  }

  return {
    url,
    dicomPort,
    async rest(method: string, path: string, body?: unknown) {
      const response = await fetch(`${url}${path}`, {
        method,
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: the text itself
      }
      return { status: response.status, body: parsed };
    },
    async bytes(path: string) {
      const response = await fetch(`${url}${path}`);
      if (response.status !== 200) throw new Error(`GET ${path}: ${response.status}`);
      return Buffer.from(await response.arrayBuffer());
    },
    log: () => output,
    stop,
  };
}

async function waitForSystem(url: string, hasExited: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (hasExited()) throw new Error('Orthanc exited before its REST API answered.');
    try {
      const response = await fetch(`${url}/system`);
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`Orthanc's REST API did not answer within ${timeoutMs} ms.`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One request as it reached our server: the headers as sent, and our status. */
export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  status: number | undefined;
}

/**
 * Serves `storage` through the node host on port 0, as server.ts does, and records every request's
 * method, URL, headers and our response status (what a PACS sent us and what we answered).
 */
export async function serveRecorded(
  storage: Storage,
): Promise<{ baseUrl: string; requests: RecordedRequest[]; close(): Promise<void> }> {
  const requests: RecordedRequest[] = [];
  const server: Server = createNodeServer(
    createApp({ storage, config: defaultAppConfig, log: () => undefined, audit: () => undefined }),
  );
  server.prependListener('request', (req, res) => {
    const entry: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: { ...req.headers },
      status: undefined,
    };
    requests.push(entry);
    res.once('finish', () => {
      entry.status = res.statusCode;
    });
  });
  const address = await listen(server, 0, '127.0.0.1');
  return {
    baseUrl: `http://127.0.0.1:${address.port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
