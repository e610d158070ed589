/**
 * The studies of the QIDO scale bench (qs), a pure function of the study's number, so a
 * million need no list in memory and Azurite and the in-memory table get the same data:
 * two studies per patient; one patient in four Japanese (alphabetic, ideographic and phonetic
 * groups); family names as skewed as real ones (a few common names, a long tail of made-up
 * ones); study dates over ten years; eight modalities; one study in ten with three series of
 * two instances, the rest one instance.
 */
import { JAPANESE_GIVEN, tinyInstance, utf8 } from './datasets.js';

const COMMON_FAMILY = (
  'Smith Johnson Williams Brown Jones Garcia Miller Davis Müller Schmidt Schneider Fischer ' +
  'Weber Meyer Dubois Martin Bernard Rossi Russo Ferrari Novak Nielsen Nash Moreau'
).split(' ');
/** Syllables of the made-up family names: 16³ names, none of them common. */
const SYLLABLES = 'ka lo mar ten vi ros del an ber sen tor lin nak mo ri el'.split(' ');
const GIVEN = (
  'James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth ' +
  'Hans Anna Pierre Marie Luca Giulia Jan Eva Lars Ingrid'
).split(' ');
/** Kanji with a reading each (romaji, kana); two make a family name: 256 of them. */
const KANJI: readonly [string, string, string][] = [
  ['山', 'yama', 'やま'],
  ['田', 'da', 'だ'],
  ['中', 'naka', 'なか'],
  ['村', 'mura', 'むら'],
  ['本', 'moto', 'もと'],
  ['木', 'ki', 'き'],
  ['川', 'kawa', 'かわ'],
  ['井', 'i', 'い'],
  ['藤', 'fuji', 'ふじ'],
  ['原', 'hara', 'はら'],
  ['小', 'ko', 'こ'],
  ['林', 'bayashi', 'ばやし'],
  ['高', 'taka', 'たか'],
  ['橋', 'hashi', 'はし'],
  ['松', 'matsu', 'まつ'],
  ['野', 'no', 'の'],
];
const MODALITIES = 'CT MR CR US DX MG PT NM'.split(' ');
/** Ten years of study dates, 2016 to 2025. */
const FIRST_DAY = Date.UTC(2016, 0, 1);
const DAYS = 3653;

export interface ScaleSeries {
  readonly seriesInstanceUid: string;
  readonly sopInstanceUids: readonly string[];
}

export interface ScaleStudy {
  readonly studyInstanceUid: string;
  readonly patientId: string;
  /** The PN value as stored (Japanese names have three component groups). */
  readonly patientName: string;
  readonly accessionNumber: string;
  readonly studyDate: string;
  readonly modality: string;
  readonly series: readonly ScaleSeries[];
}

/** A well-mixed 32-bit hash (so neighbouring numbers get unrelated names and dates). */
function mix(n: number, salt: number): number {
  let h = Math.imul(n ^ salt, 0x9e3779b1);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

const pick = <T>(list: readonly T[], n: number): T => list[n % list.length] as T;
const capital = (word: string): string => `${word.charAt(0).toUpperCase()}${word.slice(1)}`;

function westernName(patient: number): string {
  const h = mix(patient, 1);
  // One patient in five has one of the common names (Smith: about 0.6% of studies, as in life).
  const family =
    h % 5 === 0
      ? pick(COMMON_FAMILY, h >>> 3)
      : capital([h >>> 3, h >>> 7, h >>> 11].map((n) => pick(SYLLABLES, n)).join(''));
  return `${family}^${pick(GIVEN, mix(patient, 2))}`;
}

function japaneseName(patient: number): string {
  const h = mix(patient, 3);
  const first = pick(KANJI, h);
  const second = pick(KANJI, h >>> 4);
  const given = pick(JAPANESE_GIVEN, h >>> 8);
  const alphabetic = `${capital(first[1])}${second[1]}^${given[0]}`;
  return `${alphabetic}=${first[0]}${second[0]}^${given[1]}=${first[2]}${second[2]}^${given[2]}`;
}

/** Study `i` (from 0) under `uidRoot`. */
export function scaleStudy(i: number, uidRoot: string): ScaleStudy {
  const patient = Math.floor(i / 2);
  const study = `${uidRoot}.${i + 1}`;
  const seriesCount = i % 10 === 0 ? 3 : 1;
  const perSeries = i % 10 === 0 ? 2 : 1;
  const day = mix(i, 4) % DAYS;
  return {
    studyInstanceUid: study,
    patientId: `P${patient.toString().padStart(7, '0')}`,
    patientName: patient % 4 === 3 ? japaneseName(patient) : westernName(patient),
    accessionNumber: `A${i.toString().padStart(8, '0')}`,
    studyDate: new Date(FIRST_DAY + day * 86_400_000).toISOString().slice(0, 10).replace(/-/g, ''),
    modality: pick(MODALITIES, i),
    series: Array.from({ length: seriesCount }, (_, s) => ({
      seriesInstanceUid: `${study}.${s + 1}`,
      sopInstanceUids: Array.from({ length: perSeries }, (_, k) => `${study}.${s + 1}.${k + 1}`),
    })),
  };
}

/** The Part 10 bytes of every instance of the study (small: no Pixel Data). */
export function scaleInstances(study: ScaleStudy, i: number): Buffer[] {
  return study.series.flatMap((series, s) =>
    series.sopInstanceUids.map((sopInstanceUid, k) =>
      tinyInstance(
        { studyInstanceUid: study.studyInstanceUid, seriesInstanceUid: series.seriesInstanceUid, sopInstanceUid },
        {
          '00080020': { vr: 'DA', value: study.studyDate },
          '00080030': {
            vr: 'TM',
            value: `${String(8 + (i % 10)).padStart(2, '0')}${String(i % 60).padStart(2, '0')}00`,
          },
          '00080050': { vr: 'SH', value: study.accessionNumber },
          '00080060': { vr: 'CS', value: s === 2 ? 'SR' : study.modality },
          '00081030': utf8('LO', `${study.modality} study ${i % 20}`),
          '00100010': utf8('PN', study.patientName),
          '00100020': { vr: 'LO', value: study.patientId },
          '00200011': { vr: 'IS', value: String(s + 1) },
          '00200013': { vr: 'IS', value: String(k + 1) },
        },
      ),
    ),
  );
}
