import type { DicomJson as JsonDataSet } from './dicom-json-model.js';

type JsonAttribute = JsonDataSet[string];

/**
 * JSON text of DICOM JSON data sets with attributes in ascending tag order at every level.
 * JSON.stringify cannot guarantee that: JavaScript objects list integer-like keys first, so
 * "30060020" or "60003000" (no hex letter, no leading zero) would precede "00080005".
 */
export function stringifyDicomJson(value: JsonDataSet | readonly JsonDataSet[]): string {
  return isList(value) ? `[${value.map(dataSetText).join(',')}]` : dataSetText(value);
}

function isList(value: JsonDataSet | readonly JsonDataSet[]): value is readonly JsonDataSet[] {
  return Array.isArray(value);
}

function dataSetText(dataSet: JsonDataSet): string {
  const members = Object.keys(dataSet)
    .sort()
    .map((tag) => {
      const attribute = dataSet[tag];
      return attribute ? `${JSON.stringify(tag)}:${attributeText(attribute)}` : undefined;
    })
    .filter((member) => member !== undefined);
  return `{${members.join(',')}}`;
}

function attributeText(attribute: JsonAttribute): string {
  const members = [`"vr":${JSON.stringify(attribute.vr)}`];
  const { Value: value, InlineBinary: inline, BulkDataURI: uri } = attribute;
  if (value !== undefined) {
    const items = attribute.vr === 'SQ' ? value.map((item) => dataSetText(item as JsonDataSet)) : undefined;
    members.push(`"Value":${items ? `[${items.join(',')}]` : JSON.stringify(value)}`);
  }
  if (inline !== undefined) members.push(`"InlineBinary":${JSON.stringify(inline)}`);
  if (uri !== undefined) members.push(`"BulkDataURI":${JSON.stringify(uri)}`);
  return `{${members.join(',')}}`;
}
