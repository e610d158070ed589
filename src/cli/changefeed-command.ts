/** `dicomweb changefeed [--follow]`: the change feed as lines (or JSON lines), live with --follow. */
import { Command } from 'commander';
import type { ChangeFeedEntry } from '../client/index.js';
import { connectCommand, integer } from './connection.js';
import { interruptSignal } from './signals.js';

interface ChangeFeedOptions {
  readonly after: number;
  readonly max?: number;
  readonly follow?: boolean;
  readonly interval: number;
  readonly metadata?: boolean;
  readonly json?: boolean;
}

function line(entry: ChangeFeedEntry): string {
  return [
    String(entry.sequence).padStart(8),
    entry.timestamp,
    entry.action.padEnd(6),
    entry.state.padEnd(8),
    `${entry.studyInstanceUid} ${entry.seriesInstanceUid} ${entry.sopInstanceUid}`,
  ].join('  ');
}

export function changeFeedCommand(): Command {
  return new Command('changefeed')
    .description('print the change feed (sequence, time, action, state, study series instance), oldest first')
    .option('--after <sequence>', 'start after this Sequence', integer('--after', 0), 0)
    .option('--max <n>', 'stop after this many entries', integer('--max', 1))
    .option('--follow', 'keep waiting for new entries (Ctrl-C ends)')
    .option('--interval <seconds>', 'poll interval with --follow', integer('--interval', 1), 2)
    .option('--metadata', 'include each entry’s DICOM JSON (with --json)')
    .option('--json', 'one JSON object per line')
    .addHelpText('after', '\nExit codes: 0 done (or Ctrl-C with --follow), 3 server error.')
    .action(async (options: ChangeFeedOptions, command: Command) => {
      const client = await connectCommand(command);
      const interrupt = interruptSignal();
      let printed = 0;
      try {
        for await (const entry of client.changes({
          after: options.after,
          follow: options.follow ?? false,
          pollIntervalMs: options.interval * 1000,
          includeMetadata: options.metadata ?? false,
          signal: interrupt.signal,
        })) {
          console.log(options.json ? JSON.stringify(entry) : line(entry));
          if (options.max !== undefined && ++printed >= options.max) break;
        }
      } catch (error) {
        // Ctrl-C is how a follow ends.
        if (!interrupt.signal.aborted) throw error;
      } finally {
        interrupt.dispose();
      }
    });
}
