/** The global options every command shares, and the client they make. */
import { Option, type Command } from 'commander';
import { DicomwebClient, type Authorization } from '../client/index.js';
import { CliExit, ExitCode } from './exit-codes.js';

export interface GlobalOptions {
  readonly url: string;
  readonly token?: string;
  readonly azure?: boolean;
  readonly scope?: string;
  readonly retries: number;
  readonly progress: boolean;
}

export const DEFAULT_URL = 'http://127.0.0.1:7071/v2';

export function integer(name: string, min: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min)
      throw new CliExit(ExitCode.usage, `${name} must be an integer ≥ ${min}, not "${value}".`);
    return parsed;
  };
}

export function addGlobalOptions(program: Command): void {
  program
    .addOption(
      new Option('--url <url>', 'DICOMweb base URL, version included (…/v1 or …/v2)')
        .env('DICOMWEB_URL')
        .default(DEFAULT_URL),
    )
    .addOption(new Option('--token <token>', 'bearer token sent as is').env('DICOMWEB_TOKEN'))
    .addOption(
      new Option('--azure', 'get tokens from DefaultAzureCredential (az login, managed identity, …)').conflicts(
        'token',
      ),
    )
    .addOption(
      new Option('--scope <scope>', 'token scope for --azure: the API’s Application ID URI + /.default').env(
        'DICOMWEB_SCOPE',
      ),
    )
    .addOption(
      new Option('--retries <n>', 'retries of a request on 429, 503 and network errors')
        .default(5)
        .argParser(integer('--retries', 0)),
    )
    .option('--no-progress', 'no progress bar or progress lines');
}

async function authorization(options: GlobalOptions): Promise<Authorization> {
  if (options.token) return options.token;
  if (!options.azure) return undefined;
  if (!options.scope) {
    throw new CliExit(
      ExitCode.usage,
      '--azure needs --scope (or DICOMWEB_SCOPE): the server’s audience + "/.default", e.g. api://<app-id>/.default.',
    );
  }
  // Loaded only when asked for: it is large and the local server needs no token.
  const { DefaultAzureCredential } = await import('@azure/identity');
  return { credential: new DefaultAzureCredential(), scope: options.scope };
}

export async function connect(options: GlobalOptions, onRetry?: (message: string) => void): Promise<DicomwebClient> {
  if (!/^https?:\/\/[^/]/.test(options.url))
    throw new CliExit(ExitCode.usage, `--url must be an http(s) URL, not "${options.url}".`);
  return new DicomwebClient({
    baseUrl: options.url,
    authorization: await authorization(options),
    retry: { retries: options.retries },
    onRetry: (event) =>
      onRetry?.(
        `retry ${event.attempt}: ${event.method} ${event.url} (${event.reason}) in ${(event.delayMs / 1000).toFixed(1)} s`,
      ),
  });
}

/** The client for a command's global options, its retries logged on stderr. */
export function connectCommand(command: Command): Promise<DicomwebClient> {
  return connect(command.optsWithGlobals<GlobalOptions>(), (message) => {
    process.stderr.write(`${message}\n`);
  });
}
