import { StorageUnavailableError, type AddInstanceOutcome, type InstanceIndex, type InstanceRecord } from './ports.js';

/** InstanceIndex.addInstance for every adapter: one instance through prepareStudy and add. */
export async function addOneInstance(
  index: Pick<InstanceIndex, 'prepareStudy'>,
  record: InstanceRecord,
): Promise<AddInstanceOutcome> {
  const write = await index.prepareStudy(record.studyInstanceUid, [record]);
  if (write.deleting(record)) return 'deleting';
  if (write.exists(record)) return 'exists';
  const [outcome] = await write.add([record]);
  if (outcome === 'unavailable') throw new StorageUnavailableError('The index update could not be confirmed.');
  return outcome ?? 'exists';
}
