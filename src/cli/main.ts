#!/usr/bin/env node
/**
 * `dicomweb`: the command line of the typed client (docs/client.md). Run with `npx dicomweb …`
 * once installed, `npm run dicomweb -- …` in this repository, or `node dist/src/cli/main.js …`
 * after `npm run build`.
 */
import { Command, CommanderError } from 'commander';
import { DicomwebHttpError, networkReason } from '../client/index.js';
import { changeFeedCommand } from './changefeed-command.js';
import { addGlobalOptions } from './connection.js';
import { deleteCommand } from './delete-command.js';
import { downloadCommand } from './download-command.js';
import { CliExit, ExitCode } from './exit-codes.js';
import { searchCommand } from './search-command.js';
import { uploadCommand } from './upload-command.js';

function program(): Command {
  const root = new Command('dicomweb')
    .description('Load, find, retrieve and delete DICOM on a DICOMweb server (dicomweb-functions or any other).')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  addGlobalOptions(root);
  for (const command of [uploadCommand(), downloadCommand(), searchCommand(), changeFeedCommand(), deleteCommand()]) {
    root.addCommand(command.exitOverride());
  }
  return root;
}

/** The exit code for what ended the command, with a message a person can act on. */
function failure(error: unknown): { code: number; message?: string } {
  if (error instanceof CliExit) return { code: error.code, ...(error.message ? { message: error.message } : {}) };
  if (error instanceof CommanderError) {
    // Commander has printed the usage error or the help already.
    return { code: error.exitCode === 0 ? ExitCode.ok : ExitCode.usage };
  }
  if (error instanceof DicomwebHttpError) {
    return { code: error.status === 404 ? ExitCode.partial : ExitCode.server, message: error.message };
  }
  if (error instanceof TypeError && error.message === 'fetch failed') {
    return {
      code: ExitCode.server,
      message: `Cannot reach the server (${networkReason(error)}). Check --url (or DICOMWEB_URL).`,
    };
  }
  return { code: ExitCode.partial, message: error instanceof Error ? error.message : String(error) };
}

try {
  await program().parseAsync(process.argv);
} catch (error) {
  const { code, message } = failure(error);
  if (message) process.stderr.write(`${message}\n`);
  process.exitCode = code;
}
