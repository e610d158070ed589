import { dictionaryEntry } from '../dicom/dictionary.js';
import type { DicomJsonDataset } from './dicom-json.js';

/**
 * The Native DICOM Model (PS3.19 §A.1) of a data set held in the DICOM JSON model: what a STOW-RS
 * response is for clients that accept only `application/dicom+xml` (dcm4che's stowrs and Weasis
 * ask for it). The JSON model is converted, not re-read, so both answers carry the same data.
 */
export function toNativeDicomModel(dataset: DicomJsonDataset): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>\n',
    '<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">',
    attributes(dataset),
    '</NativeDicomModel>\n',
  ].join('');
}

const PERSON_NAME_GROUPS = ['Alphabetic', 'Ideographic', 'Phonetic'] as const;
const PERSON_NAME_COMPONENTS = ['FamilyName', 'GivenName', 'MiddleName', 'NamePrefix', 'NameSuffix'] as const;

function attributes(dataset: DicomJsonDataset): string {
  return Object.keys(dataset)
    .sort()
    .map((tag) => {
      const attribute = dataset[tag] as DicomJsonDataset[string] & { InlineBinary?: string; BulkDataURI?: string };
      const keyword = dictionaryEntry(tag)?.keyword;
      const open = `<DicomAttribute tag="${tag.toUpperCase()}" vr="${attribute.vr}"${keyword ? ` keyword="${keyword}"` : ''}>`;
      let body: string;
      if (attribute.InlineBinary !== undefined) body = `<InlineBinary>${attribute.InlineBinary}</InlineBinary>`;
      else if (attribute.BulkDataURI !== undefined) body = `<BulkData uri="${escape(attribute.BulkDataURI)}"/>`;
      else body = (attribute.Value ?? []).map((value, i) => valueXml(attribute.vr, value, i + 1)).join('');
      return `${open}${body}</DicomAttribute>`;
    })
    .join('');
}

function valueXml(vr: string, value: unknown, number: number): string {
  if (vr === 'SQ') return `<Item number="${number}">${attributes(value as DicomJsonDataset)}</Item>`;
  if (vr === 'PN' && typeof value === 'object' && value !== null) {
    const groups = PERSON_NAME_GROUPS.flatMap((group) => {
      const text = (value as Record<string, unknown>)[group];
      if (typeof text !== 'string') return [];
      const components = text
        .split('^')
        .map((part, i) =>
          part === ''
            ? ''
            : `<${PERSON_NAME_COMPONENTS[i] ?? 'NameSuffix'}>${escape(part)}</${PERSON_NAME_COMPONENTS[i] ?? 'NameSuffix'}>`,
        )
        .join('');
      return [`<${group}>${components}</${group}>`];
    });
    return `<PersonName number="${number}">${groups.join('')}</PersonName>`;
  }
  if (typeof value === 'string' || typeof value === 'number') {
    return `<Value number="${number}">${escape(String(value))}</Value>`;
  }
  return `<Value number="${number}"/>`;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
