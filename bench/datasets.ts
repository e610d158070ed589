/** Synthetic instances for the read workloads: multi-frame images, tiny instances, varied studies. */
import { buildInstance, newInstanceUids } from '../support/dicom-builder.js';
import type { InstanceKey } from '../src/storage/ports.js';

type Attributes = NonNullable<Parameters<typeof buildInstance>[0]['attributes']>;

function us(value: number): { vr: string; value: Uint8Array } {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16LE(value);
  return { vr: 'US', value: bytes };
}

/** Text as UTF-8 bytes padded with a space to even length (the builder pads by characters, not bytes). */
export function utf8(vr: string, text: string): { vr: string; value: Uint8Array } {
  const bytes = Buffer.from(text, 'utf8');
  return { vr, value: bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.from(' ')]) };
}

const MULTIFRAME_GRAYSCALE_WORD = '1.2.840.10008.5.1.4.1.1.7.3';

/** A native multi-frame image of `frames` frames of rows × columns × 16 bits (64×64: 8 KiB a frame). */
export function multiFrameInstance(
  key: InstanceKey,
  frames: number,
  rows = 64,
  columns = 64,
  extra: Attributes = {},
): { bytes: Buffer; frameBytes: number } {
  const frameBytes = rows * columns * 2;
  const bytes = buildInstance({
    ...key,
    sopClassUid: MULTIFRAME_GRAYSCALE_WORD,
    attributes: {
      '00280002': us(1),
      '00280004': { vr: 'CS', value: 'MONOCHROME2' },
      '00280008': { vr: 'IS', value: String(frames) },
      '00280010': us(rows),
      '00280011': us(columns),
      '00280100': us(16),
      '00280101': us(16),
      '00280102': us(15),
      '00280103': us(0),
      ...extra,
    },
    pixelBytes: frameBytes * frames,
  });
  return { bytes, frameBytes };
}

/** A small instance without Pixel Data (about 1 KiB). */
export function tinyInstance(key: InstanceKey, attributes: Attributes = {}): Buffer {
  return buildInstance({ ...key, attributes });
}

/** `count` tiny instances of one study (one series per 100 instances). */
export function tinyStudy(count: number): { studyInstanceUid: string; files: Buffer[] } {
  const { studyInstanceUid } = newInstanceUids();
  let series = newInstanceUids(studyInstanceUid).seriesInstanceUid;
  const files: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0 && i % 100 === 0) series = newInstanceUids(studyInstanceUid).seriesInstanceUid;
    files.push(
      tinyInstance(newInstanceUids(studyInstanceUid, series), {
        '00200013': { vr: 'IS', value: String(i + 1) },
      }),
    );
  }
  return { studyInstanceUid, files };
}

const words = (...lines: string[]): string[] => lines.join(' ').split(' ');
const WESTERN_FAMILY = words(
  'Smith Johnson Williams Brown Jones Garcia Miller Davis Müller Schmidt Schneider Fischer',
  'Weber Meyer Dubois Martin Bernard Rossi Russo Ferrari Nakashima Novak Nielsen Nash',
);
const WESTERN_GIVEN = words(
  'James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth',
  'Hans Anna Pierre Marie Luca Giulia Jan Eva Lars Ingrid',
);
/** Alphabetic (romaji), ideographic and phonetic groups of a Japanese name: PS3.5 H.3 style. */
const JAPANESE_FAMILY: readonly [string, string, string][] = [
  ['Yamada', '山田', 'やまだ'],
  ['Tanaka', '田中', 'たなか'],
  ['Suzuki', '鈴木', 'すずき'],
  ['Nakamura', '中村', 'なかむら'],
  ['Kobayashi', '小林', 'こばやし'],
  ['Yamamoto', '山本', 'やまもと'],
  ['Watanabe', '渡辺', 'わたなべ'],
  ['Sato', '佐藤', 'さとう'],
];
export const JAPANESE_GIVEN: readonly [string, string, string][] = [
  ['Taro', '太郎', 'たろう'],
  ['Hanako', '花子', 'はなこ'],
  ['Hiroshi', '博', 'ひろし'],
  ['Yuki', '由紀', 'ゆき'],
  ['Kenji', '健二', 'けんじ'],
  ['Akiko', '明子', 'あきこ'],
  ['Takashi', '隆', 'たかし'],
  ['Emi', '恵美', 'えみ'],
  ['Satoshi', '聡', 'さとし'],
  ['Naoko', '直子', 'なおこ'],
];
const MODALITIES = words('CT MR CR US DX MG PT NM');
const YEAR_START = Date.UTC(2024, 0, 1);

export interface QidoStudy {
  readonly key: InstanceKey;
  readonly patientId: string;
  /** The full PN value as stored (Japanese names have three component groups). */
  readonly patientName: string;
  /** The words a fuzzy search can match (lower case). */
  readonly nameWords: readonly string[];
  readonly accessionNumber: string;
  readonly studyDate: string;
  readonly modality: string;
}

/** Study `i` of the QIDO data set: two studies per patient, one Japanese patient in four, dates over 2024. */
export function qidoStudy(i: number, uidRoot: string): QidoStudy {
  const patient = Math.floor(i / 2);
  let patientName: string;
  let nameWords: string[];
  if (patient % 4 === 3) {
    const j = Math.floor(patient / 4);
    const family = JAPANESE_FAMILY[j % JAPANESE_FAMILY.length] as [string, string, string];
    const given = JAPANESE_GIVEN[Math.floor(j / JAPANESE_FAMILY.length) % JAPANESE_GIVEN.length] as [
      string,
      string,
      string,
    ];
    patientName = `${family[0]}^${given[0]}=${family[1]}^${given[1]}=${family[2]}^${given[2]}`;
    nameWords = [...family, ...given].map((word) => word.toLowerCase());
  } else {
    const w = patient - Math.floor(patient / 4);
    const family = WESTERN_FAMILY[w % WESTERN_FAMILY.length] as string;
    const given = WESTERN_GIVEN[Math.floor(w / WESTERN_FAMILY.length) % WESTERN_GIVEN.length] as string;
    patientName = `${family}^${given}`;
    nameWords = [family.normalize('NFKD').replace(/[\u0300-\u036f]/g, ''), given].map((word) => word.toLowerCase());
  }
  const day = (i * 37) % 366;
  const studyDate = new Date(YEAR_START + day * 86_400_000).toISOString().slice(0, 10).replace(/-/g, '');
  const study = `${uidRoot}.${i + 1}`;
  return {
    key: { studyInstanceUid: study, seriesInstanceUid: `${study}.1`, sopInstanceUid: `${study}.1.1` },
    patientId: `P${patient.toString().padStart(6, '0')}`,
    patientName,
    nameWords,
    accessionNumber: `A${i.toString().padStart(7, '0')}`,
    studyDate,
    modality: MODALITIES[i % MODALITIES.length] as string,
  };
}

/** Study `i`'s patient and study attributes, as its instances carry them. */
export function qidoAttributes(study: QidoStudy, i: number): Attributes {
  return {
    '00080020': { vr: 'DA', value: study.studyDate },
    '00080030': { vr: 'TM', value: `${String(8 + (i % 10)).padStart(2, '0')}${String(i % 60).padStart(2, '0')}00` },
    '00080050': { vr: 'SH', value: study.accessionNumber },
    '00080060': { vr: 'CS', value: study.modality },
    '00081030': utf8('LO', `${study.modality} study ${i % 20}`),
    '00100010': utf8('PN', study.patientName),
    '00100020': { vr: 'LO', value: study.patientId },
  };
}

/** The Part 10 bytes of a QIDO study's one instance. */
export function qidoInstance(study: QidoStudy, i: number): Buffer {
  return tinyInstance(study.key, qidoAttributes(study, i));
}
