/** `dicomweb delete <study> [series] [instance]`. */
import { Command } from 'commander';
import { connectCommand } from './connection.js';
import { CliExit, ExitCode } from './exit-codes.js';

export function deleteCommand(): Command {
  return new Command('delete')
    .description('delete a study, series or instance')
    .argument('<study>', 'StudyInstanceUID')
    .argument('[series]', 'SeriesInstanceUID')
    .argument('[instance]', 'SOPInstanceUID')
    .addHelpText('after', '\nExit codes: 0 deleted, 1 not found (never stored or already deleted), 3 server error.')
    .action(
      async (
        study: string,
        series: string | undefined,
        instance: string | undefined,
        _options: object,
        command: Command,
      ) => {
        const client = await connectCommand(command);
        const what = instance ? `instance ${instance}` : series ? `series ${series}` : `study ${study}`;
        if (!(await client.delete({ study, series, instance })))
          throw new CliExit(ExitCode.partial, `Not found: ${what}.`);
        console.log(`deleted ${what}`);
      },
    );
}
