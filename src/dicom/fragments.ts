/**
 * Finds the fragments of encapsulated Pixel Data (PS3.5 A.4) while the file streams past, so
 * frame byte ranges are known when the instance is stored and a frame is one ranged blob read.
 * It holds at most an item header and the Basic Offset Table, whatever the pixel data size.
 */
export interface Fragment {
  /** Absolute file offset of the fragment's value (after its 8-byte item header). */
  readonly offset: number;
  readonly length: number;
  /** The fragment's first bytes, to tell where a frame starts when there is no offset table. */
  readonly head: string;
}

export interface EncapsulatedLayout {
  readonly basicOffsetTable: readonly number[];
  readonly fragments: readonly Fragment[];
  /** Offset of the first fragment's item header: Basic Offset Table values count from there. */
  readonly firstItemOffset: number;
  /** The sequence delimiter was seen. */
  readonly complete: boolean;
}

const ITEM = 0xe000;
const SEQUENCE_DELIMITER = 0xe0dd;
const HEAD_BYTES = 4;

export class FragmentScanner {
  private header: number[] = [];
  private table: number[] | undefined;
  private tableBytes: number[] = [];
  private itemIndex = 0;
  private current: { offset: number; length: number; head: number[] } | undefined;
  private readonly fragments: Fragment[] = [];
  private firstItemOffset = -1;
  private done = false;

  /** `start`: offset of the Pixel Data value, i.e. of the Basic Offset Table item. */
  constructor(private readonly start: number) {}

  /** Feeds a chunk that starts at absolute file offset `at`. */
  feed(chunk: Uint8Array, at: number): void {
    let i = Math.max(0, this.start - at);
    while (!this.done && i < chunk.length) {
      const position = at + i;
      if (this.current && position < this.current.offset + this.current.length) {
        // Inside an item value: collect the table or a fragment head, skip the rest.
        const end = Math.min(chunk.length, this.current.offset + this.current.length - at);
        if (this.itemIndex === 0) for (let j = i; j < end; j += 1) this.tableBytes.push(chunk[j] ?? 0);
        else
          for (let j = i; j < end && this.current.head.length < HEAD_BYTES; j += 1)
            this.current.head.push(chunk[j] ?? 0);
        i = end;
        if (at + i === this.current.offset + this.current.length) this.closeItem();
        continue;
      }
      this.header.push(chunk[i] ?? 0);
      i += 1;
      if (this.header.length === 8) this.openItem(at + i);
    }
  }

  layout(): EncapsulatedLayout {
    return {
      basicOffsetTable: this.table ?? [],
      fragments: this.fragments,
      firstItemOffset: this.firstItemOffset,
      complete: this.done,
    };
  }

  private openItem(valueOffset: number): void {
    const [g0 = 0, g1 = 0, e0 = 0, e1 = 0, l0 = 0, l1 = 0, l2 = 0, l3 = 0] = this.header;
    this.header = [];
    const group = g0 | (g1 << 8);
    const element = e0 | (e1 << 8);
    const length = (l0 | (l1 << 8) | (l2 << 16) | (l3 << 24)) >>> 0;
    if (group === 0xfffe && element === SEQUENCE_DELIMITER) {
      this.done = true;
      return;
    }
    if (group !== 0xfffe || element !== ITEM || length === 0xffffffff) {
      // Not a valid fragment sequence: stop; frames are then located by other means or not at all.
      this.done = true;
      return;
    }
    if (this.itemIndex === 1) this.firstItemOffset = valueOffset - 8;
    this.current = { offset: valueOffset, length, head: [] };
    if (length === 0) this.closeItem();
  }

  private closeItem(): void {
    const item = this.current;
    if (!item) return;
    if (this.itemIndex === 0) {
      const table: number[] = [];
      for (let j = 0; j + 3 < this.tableBytes.length; j += 4) {
        const [a = 0, b = 0, c = 0, d = 0] = this.tableBytes.slice(j, j + 4);
        table.push((a | (b << 8) | (c << 16) | (d << 24)) >>> 0);
      }
      this.table = table;
      this.tableBytes = [];
    } else {
      this.fragments.push({
        offset: item.offset,
        length: item.length,
        head: Buffer.from(item.head).toString('hex'),
      });
    }
    this.itemIndex += 1;
    this.current = undefined;
  }
}
