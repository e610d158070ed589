/**
 * Section l: loading an archive of small instances (the "10,000 small instances"): studies
 * of 5 tiny instances with varied patients, one multipart request per study, 4 clients, against
 * the raw floor of the same bytes — one Put Blob and one Table row per instance, 4 at once. Both
 * counted by the storage meter (operations per instance) and timed in the same run.
 */
import { TableClient } from '@azure/data-tables';
import { meterTable } from '../src/storage/azure-storage-meter.js';
import { StorageMeter, withStorageMeter } from '../src/util/storage-meter.js';
import { freshStorage, suffix, withServer, type BenchContext } from './context.js';
import { qidoStudy, tinyInstance } from './datasets.js';
import { watchOtherLoad } from './machine-load.js';
import { takingTurns, timedPool } from './measure.js';
import { uploadRaw } from './raw-upload.js';
import { summarize, type SectionResult, type ServerRun } from './report.js';
import type { StorageTally } from './server-child.js';
import { stow } from './stow-client.js';
import { multipartRequest, warmUpRequest } from './workloads.js';

const PER_STUDY = 5;
/** The target: the load at least half as fast as the raw Blob + Table floor. */
const TARGET_RATIO = 0.5;

/** Study `i`'s instances: the QIDO data set's attributes, five instances in one series. */
function studyFiles(i: number, root: string): Buffer[] {
  const study = qidoStudy(i, root);
  return Array.from({ length: PER_STUDY }, (_, k) =>
    tinyInstance(
      { ...study.key, sopInstanceUid: `${study.key.seriesInstanceUid}.${k + 1}` },
      {
        '00080020': { vr: 'DA', value: study.studyDate },
        '00080050': { vr: 'SH', value: study.accessionNumber },
        '00080060': { vr: 'CS', value: study.modality },
        '00100010': { vr: 'PN', value: study.patientName.includes('=') ? 'Yamada^Tarou' : study.patientName },
        '00100020': { vr: 'LO', value: study.patientId },
        '00200013': { vr: 'IS', value: String(k + 1) },
      },
    ),
  );
}

export async function archiveLoadSection(context: BenchContext): Promise<SectionResult> {
  const { loadInstances, concurrency } = context.settings;
  const studies = Math.max(1, Math.round(loadInstances / PER_STUDY));
  const root = `1.2.826.0.1.3680043.10.1234.${Date.now()}`;
  const files = Array.from({ length: studies }, (_, i) => studyFiles(i, root));
  const requests = files.map((each) => multipartRequest(each));
  const instances = files.flat();
  const bytes = instances.reduce((sum, file) => sum + file.byteLength, 0);
  context.progress(`l: loading ${instances.length} small instances in ${studies} studies, server and raw`);
  const otherLoad = watchOtherLoad();
  let run: ServerRun | undefined;
  let rawSeconds = 0;
  let rawOperations = 0;
  const server = async (): Promise<void> => {
    const storage = freshStorage(context.target, 'load');
    await withServer(storage, concurrency, async (child, agent) => {
      const url = `${child.baseUrl}/v2/studies`;
      await stow(agent, url, warmUpRequest());
      await child.resetPeak();
      await child.takeStorage();
      const seconds = await timedPool(requests, concurrency, (request) => stow(agent, url, request));
      const tally = await child.takeStorage();
      const memory = await child.memory();
      run = {
        seconds,
        baselineRssBytes: child.baselineRssBytes,
        peakRssBytes: memory.peakRssBytes,
        otherBlobs: 0,
        otherBlobBytes: 0,
        storage: tally,
      };
    });
  };
  const raw = async (): Promise<void> => {
    const id = suffix();
    const container = context.target.blobs.getContainerClient(`raw-load-${id}`);
    await container.create();
    const table = TableClient.fromConnectionString(context.target.connectionString, `rawload${id}`, {
      allowInsecureConnection: true,
    });
    await table.createTable();
    meterTable(table);
    const items = instances.map((file, i) => ({ file, i }));
    const meter = new StorageMeter();
    rawSeconds = await withStorageMeter(meter, () =>
      timedPool(items, concurrency, async ({ file, i }) => {
        await uploadRaw(container, `instance-${i}.dcm`, { kind: 'buffer', bytes: file });
        await table.createEntity({
          partitionKey: `study-${Math.floor(i / PER_STUDY)}`,
          rowKey: String(i),
          size: file.length,
        });
      }),
    );
    rawOperations = meter.counts().operations;
  };
  await takingTurns(0, server, raw);
  if (!run) throw new Error('the server load did not run');
  const workload = summarize(
    {
      id: 'l',
      title: `archive load, ${instances.length} small instances`,
      method: `${studies} studies of ${PER_STUDY} tiny instances (varied patients, names, dates, modalities), one multipart/related request per study, ${concurrency} clients; raw = per instance one Put Blob and one Table row, ${concurrency} at once, into the same Azurite`,
      concurrency,
    },
    instances.length,
    bytes,
    [run],
    [rawSeconds],
    otherLoad(),
    rawOperations,
  );
  return {
    workloads: [workload],
    timings: [],
    qido: [],
    checks: [
      {
        name: 'l archive load vs raw Blob + Table',
        value: `ratio ${workload.ratio.toFixed(2)} (${workload.instancesPerSecond.toFixed(0)} inst/s)`,
        target: `≥ ${TARGET_RATIO}`,
        met: workload.ratio >= TARGET_RATIO,
      },
    ],
    notes: inSequenceNote(run.storage),
  };
}

/**
 * What carries over to Azure, where each storage round trip is a network one: how many a request
 * waits for one after another, beside raw's two per instance (its Put Blob, then its row).
 */
function inSequenceNote(tally: StorageTally | undefined): string[] {
  if (!tally || tally.requests === 0) return [];
  const perRequest = (tally.inSequence / tally.requests).toFixed(1);
  return [
    `l: storage round trips in sequence: ${perRequest} per request of ${PER_STUDY} instances (the storage meter's inSequence, from the audit records); raw: 2 per instance (a Put Blob, then its row), ${2 * PER_STUDY} for as many. On Azure each is a network round trip; BENCH_STORAGE_LATENCY_MS adds one here.`,
  ];
}
