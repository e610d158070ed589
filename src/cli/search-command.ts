/** `dicomweb search studies|series|instances`: QIDO-RS as a table or DICOM JSON. */
import { Command, Argument } from 'commander';
import type { InstanceResult, SearchLevel, SearchResults, SeriesResult, StudyResult } from '../client/index.js';
import { connectCommand, integer } from './connection.js';
import { CliExit, ExitCode } from './exit-codes.js';
import { formatTable } from './output.js';

interface SearchOptions {
  readonly study?: string;
  readonly series?: string;
  readonly filter: string[];
  readonly include: string[];
  readonly fuzzy?: boolean;
  readonly limit: number;
  readonly offset: number;
  readonly all?: boolean;
  readonly json?: boolean;
}

const cell = (value: string | number | undefined): string =>
  value === undefined || value === '' ? '-' : String(value);

const COLUMNS = {
  studies: {
    headers: [
      'StudyInstanceUID',
      'PatientName',
      'PatientID',
      'StudyDate',
      'Modalities',
      'Series',
      'Instances',
      'StudyDescription',
    ],
    row: (s: StudyResult) => [
      s.studyInstanceUid,
      cell(s.patientName),
      cell(s.patientId),
      cell(s.studyDate),
      cell(s.modalitiesInStudy.join('\\')),
      cell(s.numberOfStudyRelatedSeries),
      cell(s.numberOfStudyRelatedInstances),
      cell(s.studyDescription),
    ],
  },
  series: {
    headers: ['SeriesInstanceUID', 'Modality', 'SeriesNumber', 'Instances', 'SeriesDescription'],
    row: (s: SeriesResult) => [
      s.seriesInstanceUid,
      cell(s.modality),
      cell(s.seriesNumber),
      cell(s.numberOfSeriesRelatedInstances),
      cell(s.seriesDescription),
    ],
  },
  instances: {
    headers: ['SOPInstanceUID', 'SeriesInstanceUID', 'InstanceNumber', 'SOPClassUID', 'Frames'],
    row: (i: InstanceResult) => [
      i.sopInstanceUid,
      cell(i.seriesInstanceUid),
      cell(i.instanceNumber),
      cell(i.sopClassUid),
      cell(i.numberOfFrames),
    ],
  },
};

function filters(pairs: readonly string[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of pairs) {
    const equals = pair.indexOf('=');
    if (equals <= 0)
      throw new CliExit(ExitCode.usage, `--filter takes Keyword=value (e.g. PatientID=ID1), not "${pair}".`);
    result[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return result;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function searchCommand(): Command {
  return new Command('search')
    .description('search studies, series or instances (QIDO-RS)')
    .addArgument(new Argument('<level>', 'what to list').choices(['studies', 'series', 'instances']))
    .option('--study <uid>', 'within this study (series or instances)')
    .option('--series <uid>', 'within this series (instances; needs --study)')
    .option(
      '-f, --filter <keyword=value>',
      'match an attribute, repeatable: PatientID=ID1, StudyDate=20200101-',
      collect,
      [],
    )
    .option('-i, --include <field>', 'also return this attribute (keyword, tag or all), repeatable', collect, [])
    .option('--fuzzy', 'fuzzy person-name matching')
    .option('--limit <n>', 'results per request (1–200)', integer('--limit', 1), 100)
    .option('--offset <n>', 'skip this many results', integer('--offset', 0), 0)
    .option('--all', 'follow every page instead of stopping at --limit')
    .option('--json', 'print the DICOM JSON the server answered')
    .addHelpText(
      'after',
      '\nExit codes: 0 the search ran (even with no match), 2 usage, 3 server error or a refused query.',
    )
    .action(async (level: SearchLevel, options: SearchOptions, command: Command) => {
      const client = await connectCommand(command);
      const query = {
        study: options.study,
        series: options.series,
        filters: filters(options.filter),
        includeFields: options.include,
        ...(options.fuzzy ? { fuzzyMatching: true } : {}),
        limit: options.limit,
        offset: options.offset,
      };
      let results: SearchResults[SearchLevel][];
      if (options.all) {
        results = [];
        for await (const result of client.searchAll(level, query)) results.push(result);
      } else {
        const page = await client.search(level, query);
        results = page.results;
        if (page.more)
          process.stderr.write(`More results exist: --offset ${options.offset + options.limit}, or --all.\n`);
      }
      if (options.json) {
        console.log(
          JSON.stringify(
            results.map((result) => result.dataset),
            null,
            2,
          ),
        );
        return;
      }
      const { headers, row } = COLUMNS[level] as {
        headers: string[];
        row: (result: (typeof results)[number]) => string[];
      };
      console.log(formatTable(headers, results.map(row)));
      process.stderr.write(`${results.length} ${level}\n`);
    });
}
