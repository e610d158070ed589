/** Builders for the DICOM JSON model (PS3.18 Annex F) of the attributes our responses carry. */
export type DicomJsonValue = { vr: string; Value?: unknown[] };
export type DicomJsonDataset = Record<string, DicomJsonValue>;

export const uiAttr = (value: string): DicomJsonValue => ({ vr: 'UI', Value: [value] });
export const urAttr = (value: string): DicomJsonValue => ({ vr: 'UR', Value: [value] });
export const usAttr = (value: number): DicomJsonValue => ({ vr: 'US', Value: [value] });
export const loAttr = (value: string): DicomJsonValue => ({ vr: 'LO', Value: [value] });
export const sqAttr = (items: DicomJsonDataset[]): DicomJsonValue =>
  items.length > 0 ? { vr: 'SQ', Value: items } : { vr: 'SQ' };

/** Attributes in ascending tag order, as PS3.18 F.2 recommends and the Azure service emits. */
export function dataset(entries: Record<string, DicomJsonValue | undefined>): DicomJsonDataset {
  const out: DicomJsonDataset = {};
  for (const tag of Object.keys(entries).sort()) {
    const value = entries[tag];
    if (value !== undefined) out[tag] = value;
  }
  return out;
}
