/**
 * The query shapes the QIDO scale bench (qs) measures, picked from the data set
 * (qido-scale-data.ts) so each names studies that exist at every size.
 */
import { scaleStudy, type ScaleStudy } from './qido-scale-data.js';

export interface ScaleQuery {
  readonly id: string;
  readonly title: string;
  readonly path: string;
  /** offset + limit of the query: what a bounded path may read, plus a constant. */
  readonly page: number;
}

/** The first study from `from` on (below `count`) that `wanted` accepts; else study `from`. */
function find(count: number, uidRoot: string, from: number, wanted: (study: ScaleStudy) => boolean): ScaleStudy {
  for (let i = Math.min(from, count - 1); i < count; i++) {
    const study = scaleStudy(i, uidRoot);
    if (wanted(study)) return study;
  }
  return scaleStudy(Math.min(from, count - 1), uidRoot);
}

export function scaleQueries(count: number, uidRoot: string): ScaleQuery[] {
  const byPatient = scaleStudy(Math.min(123, count - 1), uidRoot);
  const byAccession = scaleStudy(Math.min(456, count - 1), uidRoot);
  // A common family name (Smith and the like: about 0.6% of studies each).
  const common = find(count, uidRoot, 7, (study) => /^(Smith|Johnson|Williams|Brown|Jones)\^/.test(study.patientName));
  const japanese = find(count, uidRoot, 6, (study) => study.patientName.includes('='));
  const ideographic = japanese.patientName.split('=')[1] ?? japanese.patientName;
  const multiSeries = scaleStudy(Math.min(10, count - 1) - (Math.min(10, count - 1) % 10), uidRoot);
  const series = multiSeries.series[0];
  const sop = series?.sopInstanceUids[0] ?? '';
  const day = scaleStudy(Math.min(77, count - 1), uidRoot).studyDate;
  const worklist = '/v2/studies?limit=101&offset=0&fuzzymatching=false&includefield=00081030%2C00080060';
  const uri = encodeURIComponent;
  return [
    { id: 'pid', title: 'PatientID', path: `/v2/studies?PatientID=${byPatient.patientId}`, page: 100 },
    {
      id: 'acc',
      title: 'AccessionNumber',
      path: `/v2/studies?AccessionNumber=${byAccession.accessionNumber}`,
      page: 100,
    },
    {
      id: 'name',
      title: 'PatientName exact, common name',
      path: `/v2/studies?PatientName=${uri(common.patientName)}`,
      page: 100,
    },
    {
      id: 'fuzzy',
      title: 'PatientName "nak", fuzzy',
      path: '/v2/studies?PatientName=nak&fuzzymatching=true',
      page: 100,
    },
    {
      id: 'ideo',
      title: 'PatientName exact, ideographic',
      path: `/v2/studies?PatientName=${uri(ideographic)}`,
      page: 100,
    },
    { id: 'day', title: 'StudyDate one day', path: `/v2/studies?StudyDate=${day}`, page: 100 },
    { id: 'year', title: 'StudyDate one year', path: '/v2/studies?StudyDate=20240101-20241231', page: 100 },
    { id: 'mod', title: 'ModalitiesInStudy=CT', path: '/v2/studies?ModalitiesInStudy=CT', page: 100 },
    { id: 'ohif', title: 'OHIF worklist (limit 101)', path: worklist, page: 101 },
    { id: 'all', title: 'worklist, includefield=all', path: '/v2/studies?limit=101&includefield=all', page: 101 },
    { id: 'deep', title: 'worklist, offset 900', path: '/v2/studies?limit=100&offset=900', page: 1000 },
    { id: 'series', title: 'series of a study', path: `/v2/studies/${multiSeries.studyInstanceUid}/series`, page: 100 },
    {
      id: 'inst',
      title: 'instances of a series',
      path: `/v2/studies/${multiSeries.studyInstanceUid}/series/${series?.seriesInstanceUid ?? ''}/instances`,
      page: 100,
    },
    { id: 'sop', title: 'instance by SOPInstanceUID', path: `/v2/instances?SOPInstanceUID=${sop}`, page: 100 },
  ];
}
