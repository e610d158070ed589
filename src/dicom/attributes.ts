import type { DataSet } from 'dicom-parser';
import { convertBytes } from 'dicom-character-set';
import { parserKey, Tag, type TagDef } from './tags.js';

/** VRs whose text is encoded in the Specific Character Set; all others are plain ASCII. */
const CHARSET_VRS = new Set(['PN', 'LO', 'SH', 'ST', 'LT', 'UT', 'UC']);
const NUMERIC_VRS = new Set(['US', 'SS', 'UL', 'SL']);
const BINARY_SIZES: Readonly<Record<string, number>> = { US: 2, SS: 2, UL: 4, SL: 4 };

/**
 * Typed, decoded access to the attributes of a parsed header. Text is decoded from the
 * data set's Specific Character Set to a JavaScript string.
 */
export class DicomAttributes {
  private readonly charset: string | undefined;

  constructor(private readonly dataSet: DataSet) {
    this.charset = this.ascii(Tag.SpecificCharacterSet)?.replace(/[\0 ]+$/, '');
  }

  has(tag: TagDef): boolean {
    return this.dataSet.elements[parserKey(tag)] !== undefined;
  }

  /** The whole value, trimmed of padding; undefined when absent or empty. */
  string(tag: TagDef): string | undefined {
    if (NUMERIC_VRS.has(tag.vr)) return this.number(tag)?.toString();
    const text = CHARSET_VRS.has(tag.vr) ? this.decoded(tag) : this.ascii(tag);
    const trimmed = text?.replace(/[\0 ]+$/, '').replace(/^ +/, '');
    return trimmed === undefined || trimmed === '' ? undefined : trimmed;
  }

  /** The values of a multi-valued attribute (split at backslashes). */
  strings(tag: TagDef): string[] {
    const text = this.string(tag);
    return text === undefined ? [] : text.split('\\').map((value) => value.trim());
  }

  /** A binary number needs its bytes inside the parsed header (a cut file may end in the value). */
  number(tag: TagDef): number | undefined {
    const key = parserKey(tag);
    const element = this.dataSet.elements[key];
    if (!element || element.length === 0) return undefined;
    const size = BINARY_SIZES[tag.vr];
    if (size !== undefined && (element.length < size || element.dataOffset + size > this.dataSet.byteArray.length)) {
      return undefined;
    }
    switch (tag.vr) {
      case 'US':
        return this.dataSet.uint16(key);
      case 'SS':
        return this.dataSet.int16(key);
      case 'UL':
        return this.dataSet.uint32(key);
      case 'SL':
        return this.dataSet.int32(key);
      default: {
        const parsed = Number(this.ascii(tag)?.trim());
        return Number.isFinite(parsed) ? parsed : undefined;
      }
    }
  }

  private bytes(tag: TagDef): Uint8Array | undefined {
    const element = this.dataSet.elements[parserKey(tag)];
    if (!element || element.length <= 0) return undefined;
    const { byteArray } = this.dataSet;
    if (element.dataOffset + element.length > byteArray.length) return undefined;
    return byteArray.subarray(element.dataOffset, element.dataOffset + element.length);
  }

  private ascii(tag: TagDef): string | undefined {
    const bytes = this.bytes(tag);
    return bytes === undefined ? undefined : Buffer.from(bytes).toString('latin1');
  }

  private decoded(tag: TagDef): string | undefined {
    const bytes = this.bytes(tag);
    if (bytes === undefined) return undefined;
    try {
      return convertBytes(this.charset, bytes, { vr: tag.vr });
    } catch {
      // An unknown or malformed character set must not fail the store: fall back to Latin-1.
      return Buffer.from(bytes).toString('latin1');
    }
  }
}
