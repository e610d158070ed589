/** `dicomweb upload <paths…>`: every DICOM file under the paths, batched, concurrent, resumable. */
import { relative } from 'node:path';
import { Command } from 'commander';
import {
  DEFAULT_BATCH_BYTES,
  DEFAULT_BATCH_INSTANCES,
  describeReason,
  scanPaths,
  type DicomFile,
  type FileOutcome,
  type InstanceStatus,
  type SkippedFile,
} from '../client/index.js';
import { connect, integer, type GlobalOptions } from './connection.js';
import { CliExit, ExitCode } from './exit-codes.js';
import { formatTable, megabytes, Progress } from './output.js';
import { interruptSignal } from './signals.js';
import { defaultStatePath, UploadState, type StateRecord } from './upload-state.js';

interface UploadOptions {
  readonly concurrency: number;
  readonly batchMb: number;
  readonly batchFiles: number;
  readonly study?: string;
  readonly state?: string;
  readonly resume: boolean;
  readonly json?: boolean;
  readonly sessionMb: number;
}

const LABELS: Record<InstanceStatus, string> = {
  stored: 'stored',
  'already-stored': 'already there',
  failed: 'failed',
};

const shown = (path: string): string => relative(process.cwd(), path) || path;

interface Summary {
  readonly outcomes: readonly (FileOutcome | { file: DicomFile; status: InstanceStatus; resumed: true })[];
  readonly skipped: readonly SkippedFile[];
}

function printTables(summary: Summary): void {
  const rows = (['stored', 'already-stored', 'failed'] as const).map((status) => {
    const files = summary.outcomes.filter((outcome) => outcome.status === status);
    return [LABELS[status], files.length, megabytes(files.reduce((sum, outcome) => sum + outcome.file.size, 0))];
  });
  rows.push(['not DICOM (skipped)', summary.skipped.length, '-']);
  console.log(formatTable(['result', 'files', 'MB'], rows));
  const failed = summary.outcomes.filter(
    (outcome): outcome is FileOutcome => outcome.status === 'failed' && !('resumed' in outcome),
  );
  if (failed.length > 0) {
    console.log('\nfailed:');
    console.log(
      formatTable(
        ['file', 'SOP Instance UID', 'FailureReason', 'comment'],
        failed.map((outcome) => [
          shown(outcome.file.path),
          outcome.sopInstanceUid ?? '-',
          outcome.failureReason === undefined ? '-' : describeReason(outcome.failureReason),
          outcome.comments.join(' ') || '-',
        ]),
      ),
    );
  }
  if (summary.skipped.length > 0) {
    console.log('\nskipped:');
    console.log(
      formatTable(
        ['file', 'reason'],
        summary.skipped.map((file) => [shown(file.path), file.reason]),
      ),
    );
  }
}

function printJson(summary: Summary): void {
  const entry = ({ file, ...rest }: Summary['outcomes'][number]) => ({ file: file.path, ...rest });
  const skipped = summary.skipped.map(({ path, reason }) => ({ file: path, reason }));
  console.log(JSON.stringify({ files: summary.outcomes.map(entry), skipped }, null, 2));
}

async function upload(paths: string[], options: UploadOptions, global: GlobalOptions): Promise<void> {
  const found: DicomFile[] = [];
  const skipped: SkippedFile[] = [];
  for await (const file of scanPaths(paths)) {
    if (file.kind === 'dicom') found.push(file);
    else skipped.push(file);
  }
  const state = new UploadState(options.state ?? defaultStatePath(global.url, paths));
  const earlier = options.resume ? state.load() : new Map<string, StateRecord>();
  if (!options.resume) state.remove();
  const resumed = found.flatMap((file) => {
    const record = earlier.get(file.path);
    return UploadState.isUnchanged(record, file) ? [{ file, status: record.status, resumed: true as const }] : [];
  });
  const todo = found.filter((file) => !UploadState.isUnchanged(earlier.get(file.path), file));
  const totalBytes = todo.reduce((sum, file) => sum + file.size, 0);
  process.stderr.write(
    `${found.length} DICOM files (${megabytes(totalBytes)} MB to send), ${skipped.length} skipped as not DICOM` +
      (resumed.length > 0 ? `, ${resumed.length} done by an earlier run (${state.path})` : '') +
      '\n',
  );
  const progress = new Progress({ unit: 'instances', enabled: global.progress });
  const client = await connect(global, (message) => {
    progress.log(message);
  });
  const openSessions = options.resume
    ? state.sessions()
    : new Map<string, { size: number; mtimeMs: number; session: string }>();
  const outcomes: FileOutcome[] = [];
  const interrupt = interruptSignal();
  progress.start(todo.length);
  try {
    await client.upload(todo, {
      concurrency: options.concurrency,
      batchBytes: options.batchMb * 1024 * 1024,
      batchInstances: options.batchFiles,
      ...(options.study ? { study: options.study } : {}),
      signal: interrupt.signal,
      // Large files through upload sessions, resumed block by block after an interruption.
      largeInstances: client.sessions({
        threshold: options.sessionMb * 1024 * 1024,
        resumeFrom: (file) => {
          const record = openSessions.get(file.path);
          return UploadState.isUnchanged(record, file) ? record.session : undefined;
        },
        onSession: (file, session) => {
          state.appendSession(file, session);
        },
      }),
      onBytes: (bytes) => {
        progress.addBytes(bytes);
      },
      onFile: (outcome) => {
        state.append([outcome]);
        outcomes.push(outcome);
        progress.addDone(1, outcome.status === 'failed');
      },
    });
  } catch (error) {
    progress.stop();
    if (interrupt.signal.aborted) {
      throw new CliExit(
        ExitCode.interrupted,
        `Interrupted after ${outcomes.length} of ${todo.length} files; run the same command again to resume (${state.path}).`,
      );
    }
    if (outcomes.length > 0) {
      process.stderr.write(
        `Stopped after ${outcomes.length} of ${todo.length} files; run the same command again to resume (${state.path}).\n`,
      );
    }
    throw error;
  } finally {
    interrupt.dispose();
  }
  const { seconds, megabytes: sent } = progress.stop();
  process.stderr.write(
    `sent ${sent.toFixed(1)} MB in ${seconds.toFixed(1)} s (${(sent / Math.max(seconds, 1e-9)).toFixed(1)} MB/s)\n`,
  );
  const summary: Summary = { outcomes: [...resumed, ...outcomes], skipped };
  if (options.json) printJson(summary);
  else printTables(summary);
  const failures = outcomes.filter((outcome) => outcome.status === 'failed').length;
  if (failures === 0) state.remove();
  else {
    process.stderr.write(
      `${failures} of ${todo.length} files failed; running the same command again retries only them (${state.path}).\n`,
    );
    throw new CliExit(ExitCode.partial);
  }
}

export function uploadCommand(): Command {
  return new Command('upload')
    .description(
      'store every DICOM file under the given files and folders (recursively); others are skipped with a reason',
    )
    .argument('<paths...>', 'files and folders')
    .option('-c, --concurrency <n>', 'STOW requests in flight at once', integer('--concurrency', 1), 4)
    .option(
      '--batch-mb <mb>',
      'small files are sent together in requests of up to this many MiB',
      integer('--batch-mb', 1),
      DEFAULT_BATCH_BYTES / 1024 / 1024,
    )
    .option(
      '--batch-files <n>',
      'and up to this many files per request',
      integer('--batch-files', 1),
      DEFAULT_BATCH_INSTANCES,
    )
    .option(
      '--session-mb <mb>',
      'files of at least this many MiB go through an upload session (blocks straight to storage, resumable); the server answers for them as for STOW',
      integer('--session-mb', 1),
      64,
    )
    .option('--study <uid>', 'store into this study only (POST /studies/{uid}); other studies’ files fail with 43265')
    .option('--state <file>', 'where the resume record is kept (default: .dicomweb-upload-<hash>.jsonl here)')
    .option('--no-resume', 'ignore and replace the record of an earlier, interrupted run')
    .option('--json', 'print the outcome of every file as JSON instead of the tables')
    .addHelpText(
      'after',
      '\nExit codes: 0 all stored or already there, 1 some files failed, 2 usage, 3 server unreachable or refused, 130 interrupted.',
    )
    .action(async (paths: string[], options: UploadOptions, command: Command) => {
      await upload(paths, options, command.optsWithGlobals<GlobalOptions>());
    });
}
