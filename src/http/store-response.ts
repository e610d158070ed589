import type { ApiVersion } from '../dicomweb/api-version.js';
import { WarningReason as WarningReasons } from '../dicomweb/failure-codes.js';
import type { FailedInstance, StoredInstance, StoreResult } from '../dicomweb/store.js';
import { dataset, loAttr, sqAttr, uiAttr, urAttr, usAttr, type DicomJsonDataset } from './dicom-json.js';
import type { ResourceUrls } from './urls.js';

const RetrieveURL = '00081190';
const FailedSOPSequence = '00081198';
const ReferencedSOPSequence = '00081199';
const ReferencedSOPClassUID = '00081150';
const ReferencedSOPInstanceUID = '00081155';
const WarningReason = '00081196';
const FailureReason = '00081197';
const FailedAttributesSequence = '00741048';
const ErrorComment = '00000902';

function failedAttributes(problems: readonly string[]) {
  return sqAttr(problems.map((problem) => ({ [ErrorComment]: loAttr(problem) })));
}

function referenced(instance: StoredInstance, urls: ResourceUrls, apiVersion: ApiVersion): DicomJsonDataset {
  return dataset({
    [ReferencedSOPClassUID]: uiAttr(instance.sopClassUid),
    [ReferencedSOPInstanceUID]: uiAttr(instance.key.sopInstanceUid),
    [RetrieveURL]: urAttr(urls.instance(instance.key)),
    [WarningReason]: instance.warningReason === undefined ? undefined : usAttr(instance.warningReason),
    // v2 lists the attributes that were not indexed on every stored instance, empty when there were none.
    [FailedAttributesSequence]: apiVersion === 'v1' ? undefined : failedAttributes(instance.problems),
  });
}

function failedItem(instance: FailedInstance): DicomJsonDataset {
  return dataset({
    [ReferencedSOPClassUID]: instance.sopClassUid === undefined ? undefined : uiAttr(instance.sopClassUid),
    [ReferencedSOPInstanceUID]: instance.sopInstanceUid === undefined ? undefined : uiAttr(instance.sopInstanceUid),
    [FailureReason]: usAttr(instance.reason),
    [FailedAttributesSequence]: instance.problems.length > 0 ? failedAttributes(instance.problems) : undefined,
  });
}

/**
 * Status per the Azure conformance statement: 200 all stored; 202 some failed, or (v2) a stored
 * instance has a warning; 409 none stored; 204 the request held no instance. An identical re-send
 * accepted under the duplicate policy (0xB006) is a success that needs no attention: 200.
 */
export function storeStatus(result: StoreResult, apiVersion: ApiVersion): number {
  if (result.stored.length === 0) return result.failed.length === 0 ? 204 : 409;
  if (result.failed.length > 0) return 202;
  const warned = result.stored.some(
    (instance) => instance.warningReason !== undefined && instance.warningReason !== WarningReasons.ElementsDiscarded,
  );
  return apiVersion !== 'v1' && warned ? 202 : 200;
}

export function storeResponseBody(
  result: StoreResult,
  urls: ResourceUrls,
  apiVersion: ApiVersion,
  pathStudyUid: string | undefined,
): DicomJsonDataset {
  return dataset({
    // Like Azure: the study's URL only when the request named the study and something was stored.
    [RetrieveURL]:
      pathStudyUid !== undefined && result.stored.length > 0 ? urAttr(urls.study(pathStudyUid)) : undefined,
    [FailedSOPSequence]: result.failed.length > 0 ? sqAttr(result.failed.map(failedItem)) : undefined,
    [ReferencedSOPSequence]:
      result.stored.length > 0
        ? sqAttr(result.stored.map((instance) => referenced(instance, urls, apiVersion)))
        : undefined,
  });
}
