/** `dicomweb download <study> [series] [instance] -o dir`: files named by UID, as stored. */
import { Command } from 'commander';
import { connect, integer, type GlobalOptions } from './connection.js';
import { CliExit, ExitCode } from './exit-codes.js';
import { Progress } from './output.js';
import { interruptSignal } from './signals.js';

interface DownloadOptions {
  readonly output: string;
  readonly concurrency: number;
}

export function downloadCommand(): Command {
  return new Command('download')
    .description('retrieve a study, series or instance as stored, into <output>/<study>/<series>/<sop>.dcm')
    .argument('<study>', 'StudyInstanceUID')
    .argument('[series]', 'SeriesInstanceUID')
    .argument('[instance]', 'SOPInstanceUID')
    .option('-o, --output <dir>', 'folder to write into', '.')
    .option('-c, --concurrency <n>', 'series retrieved at once', integer('--concurrency', 1), 2)
    .addHelpText(
      'after',
      '\nExit codes: 0 every instance written, 1 fewer than the metadata lists or not found, 3 server error.',
    )
    .action(
      async (
        study: string,
        series: string | undefined,
        instance: string | undefined,
        options: DownloadOptions,
        command: Command,
      ) => {
        const global = command.optsWithGlobals<GlobalOptions>();
        const progress = new Progress({ unit: 'instances', enabled: global.progress });
        const client = await connect(global, (message) => {
          progress.log(message);
        });
        const interrupt = interruptSignal();
        let started = false;
        try {
          const result = await client.download({ study, series, instance }, options.output, {
            concurrency: options.concurrency,
            signal: interrupt.signal,
            onExpected: (count) => {
              started = true;
              progress.start(count);
            },
            onBytes: (bytes) => {
              progress.addBytes(bytes);
            },
            onFile: () => {
              progress.addDone();
            },
          });
          const { seconds, megabytes } = progress.stop();
          process.stderr.write(
            `${result.files.length} instances, ${megabytes.toFixed(1)} MB in ${seconds.toFixed(1)} s\n`,
          );
          for (const file of result.files) console.log(file.path);
          if (result.files.length < result.expected) {
            throw new CliExit(
              ExitCode.partial,
              `Only ${result.files.length} of the ${result.expected} instances listed by the metadata arrived.`,
            );
          }
        } catch (error) {
          if (started) progress.stop();
          if (interrupt.signal.aborted)
            throw new CliExit(ExitCode.interrupted, 'Interrupted; files written so far are whole.');
          throw error;
        } finally {
          interrupt.dispose();
        }
      },
    );
}
