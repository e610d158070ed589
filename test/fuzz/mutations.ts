/**
 * Mutations of a valid Part 10 file that break (or, now and then, keep) its structure: cuts at
 * element boundaries and between them, rewritten length fields, flipped bytes, unbalanced
 * delimiters, junk after the data set and sequences nested far too deep. A deflated seed is
 * mutated in its inflated data set and compressed again, or in its compressed bytes directly.
 */
import type { Rng } from './prng.js';
import type { Layout, LayoutNode } from './layout.js';
import { encodeLogical, type Seed } from './seeds.js';
import { elementHeader, EXPLICIT_BE, IMPLICIT_LE, itemHeader, UNDEFINED, type Encoding } from './writer.js';

export const MUTATION_KINDS = [
  'truncateBoundary',
  'truncateRandom',
  'length',
  'flip',
  'delimiter',
  'junk',
  'nesting',
] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

export const MUTATION_WEIGHTS: Readonly<Record<MutationKind, number>> = {
  truncateBoundary: 14,
  truncateRandom: 10,
  length: 24,
  flip: 16,
  delimiter: 16,
  junk: 12,
  nesting: 8,
};

export interface Mutant {
  readonly kind: MutationKind;
  /** What was done, precisely enough to see it again (offsets are in the logical bytes unless "raw"). */
  readonly detail: string;
  readonly bytes: Buffer;
}

const CONTENT_SEQUENCE = 0x0040a730;

export function mutate(seed: Seed, rng: Rng, kind: MutationKind = rng.weighted(MUTATION_WEIGHTS)): Mutant {
  const layout = seed.layout;
  let mutant: Mutant;
  switch (kind) {
    case 'truncateBoundary':
      mutant = truncateAt(seed, rng.pick(boundaries(layout)), 'boundary');
      break;
    case 'truncateRandom':
      mutant = truncateRandom(seed, rng);
      break;
    case 'length':
      mutant = rewriteLength(seed, rng);
      break;
    case 'flip':
      mutant = flip(seed, rng);
      break;
    case 'delimiter':
      mutant = delimiter(seed, rng);
      break;
    case 'junk':
      mutant = junk(seed, rng);
      break;
    case 'nesting':
      mutant = nesting(seed, rng);
      break;
  }
  if (rng.chance(0.12)) mutant = blindAgain(mutant, rng);
  return mutant;
}

/** Every distinct element boundary of the file: element, item and delimiter starts, value starts and ends. */
export function boundaries(layout: Layout): number[] {
  const at = new Set<number>([0, 128, 132, layout.metaEnd]);
  for (const node of layout.nodes) {
    at.add(node.offset);
    at.add(node.offset + node.headerSize);
    at.add(node.end);
  }
  at.delete(layout.logical.length);
  return [...at].filter((n) => n >= 0 && n < layout.logical.length).sort((a, b) => a - b);
}

/** The file cut at a position of its logical bytes (a deflated data set is cut, then compressed again). */
export function truncateAt(seed: Seed, position: number, how: string): Mutant {
  const layout = seed.layout;
  const detail = `truncate at ${how} ${position} of ${layout.logical.length}${nodeNear(layout, position)}`;
  const bytes =
    layout.deflated && position > layout.metaEnd
      ? encodeLogical(layout, layout.logical.subarray(0, position))
      : Buffer.from(seed.file.subarray(0, position));
  return { kind: 'truncateBoundary', detail, bytes };
}

function truncateRandom(seed: Seed, rng: Rng): Mutant {
  const layout = seed.layout;
  if (layout.deflated && rng.chance(0.5)) {
    const position = rng.int(seed.file.length);
    return {
      kind: 'truncateRandom',
      detail: `truncate raw (compressed) file at ${position} of ${seed.file.length}`,
      bytes: Buffer.from(seed.file.subarray(0, position)),
    };
  }
  // Half the cuts land near a boundary (within 16 bytes), where off-by-one mistakes live.
  const near = rng.chance(0.5);
  const position = near
    ? Math.max(0, Math.min(layout.logical.length - 1, rng.pick(boundaries(layout)) + rng.range(-16, 16)))
    : rng.int(layout.logical.length);
  return { ...truncateAt(seed, position, near ? 'near-boundary' : 'random'), kind: 'truncateRandom' };
}

function rewriteLength(seed: Seed, rng: Rng): Mutant {
  const layout = seed.layout;
  const dataNodes = layout.nodes.filter((node) => node.kind !== 'meta');
  const metaNodes = layout.nodes.filter((node) => node.kind === 'meta');
  const node = rng.chance(0.1) || dataNodes.length === 0 ? rng.pick(metaNodes) : rng.pick(dataNodes);
  const max = node.lengthSize === 2 ? 0xffff : 0xffffffff;
  const choice = rng.pick(['zero', 'odd', 'huge', 'delta', 'undefined'] as const);
  let value: number;
  switch (choice) {
    case 'zero':
      value = 0;
      break;
    case 'odd': {
      const base = node.length === UNDEFINED ? rng.range(0, 64) : node.length;
      value = base % 2 === 1 ? base + 2 : base + (rng.chance(0.5) || base === 0 ? 1 : -1);
      break;
    }
    case 'huge':
      value =
        node.lengthSize === 2
          ? rng.pick([0xffff, 0xfff0, 0x8000, 0x7fff])
          : rng.pick([0xfffffff0, 0xfffffffe, 0x7fffffff, 0x80000000, 0x00ffffff, rng.range(1 << 20, 0xfffffff0)]);
      break;
    case 'delta': {
      const base = node.length === UNDEFINED ? 0 : node.length;
      const delta = rng.range(1, 16) * (rng.chance(0.5) ? 1 : -1);
      value = Math.max(0, Math.min(max, base + delta));
      break;
    }
    case 'undefined':
      value = max;
      break;
  }
  if (value === node.length) value = node.length === 0 ? 1 : node.length - 1;
  const logical = Buffer.from(layout.logical);
  writeUint(logical, node.lengthOffset, node.lengthSize, node.littleEndian, value);
  return {
    kind: 'length',
    detail: `length of ${describeNode(node)} ${hex(node.length)} -> ${hex(value)} (${choice})`,
    bytes: encodeLogical(layout, logical),
  };
}

function flip(seed: Seed, rng: Rng): Mutant {
  const layout = seed.layout;
  const raw = layout.deflated && rng.chance(0.5);
  const target = Buffer.from(raw ? seed.file : layout.logical);
  const count = rng.range(1, 4);
  const flips: string[] = [];
  for (let i = 0; i < count; i += 1) {
    let position: number;
    if (!raw && rng.chance(0.6)) {
      const node = rng.pick(layout.nodes);
      position = node.offset + rng.int(node.headerSize + Math.min(node.length === UNDEFINED ? 0 : node.length, 8));
    } else {
      position = rng.int(target.length);
    }
    position = Math.min(position, target.length - 1);
    const mask = rng.range(1, 255);
    target[position] = (target[position] ?? 0) ^ mask;
    flips.push(`${position}^${hex(mask)}${raw ? '' : nodeNear(layout, position)}`);
  }
  return {
    kind: 'flip',
    detail: `flip ${raw ? 'raw (compressed) ' : ''}bytes ${flips.join(', ')}`,
    bytes: raw ? target : encodeLogical(layout, target),
  };
}

function delimiter(seed: Seed, rng: Rng): Mutant {
  const layout = seed.layout;
  const delimiters = layout.nodes.filter((node) => node.kind === 'itemDelimiter' || node.kind === 'sequenceDelimiter');
  const how =
    delimiters.length === 0 ? 'stray' : rng.weighted({ drop: 4, duplicate: 3, stray: 4, swap: 2, nonzero: 1 });
  const logical = layout.logical;
  if (how === 'stray') {
    const dataNodes = layout.nodes.filter((node) => node.kind !== 'meta');
    const node = rng.pick(dataNodes);
    const position = rng.chance(0.5) ? node.offset : node.end;
    const what = rng.pick(['itemDelimiter', 'sequenceDelimiter', 'item', 'undefinedItem'] as const);
    const inserted =
      what === 'undefinedItem'
        ? itemHeader('item', UNDEFINED, node.littleEndian)
        : itemHeader(what, 0, node.littleEndian);
    return insert(
      layout,
      position,
      inserted,
      'delimiter',
      `insert stray ${what} at ${position}${nodeNear(layout, position)}`,
    );
  }
  const node = rng.pick(delimiters);
  switch (how) {
    case 'drop':
      return splice(layout, node.offset, 8, Buffer.alloc(0), 'delimiter', `drop ${describeNode(node)}`);
    case 'duplicate':
      return insert(
        layout,
        node.end,
        Buffer.from(logical.subarray(node.offset, node.end)),
        'delimiter',
        `duplicate ${describeNode(node)}`,
      );
    case 'swap': {
      const other = node.kind === 'itemDelimiter' ? 'sequenceDelimiter' : 'itemDelimiter';
      return splice(
        layout,
        node.offset,
        8,
        itemHeader(other, 0, node.littleEndian),
        'delimiter',
        `swap ${describeNode(node)} for an ${other}`,
      );
    }
    case 'nonzero': {
      const value = rng.pick([1, 2, 4, 8, 0xffffffff, rng.range(1, 1 << 20)]);
      const copy = Buffer.from(logical);
      writeUint(copy, node.lengthOffset, 4, node.littleEndian, value);
      return {
        kind: 'delimiter',
        detail: `length of ${describeNode(node)} -> ${hex(value)}`,
        bytes: encodeLogical(layout, copy),
      };
    }
  }
}

function junk(seed: Seed, rng: Rng): Mutant {
  const layout = seed.layout;
  const encoding = encodingOfLayout(layout);
  const what = rng.weighted({ random: 4, zeros: 2, partialHeader: 3, element: 2, delimiter: 2, repeatLast: 1 });
  let tail: Buffer;
  switch (what) {
    case 'random':
      tail = Buffer.from(rng.bytes(rng.range(1, 64)));
      break;
    case 'zeros':
      tail = Buffer.alloc(rng.range(1, 16));
      break;
    case 'partialHeader': {
      const header = elementHeader(0x00091010, 'OB', 64, encoding);
      tail = header.subarray(0, rng.range(1, header.length - 1));
      break;
    }
    case 'element':
      tail = Buffer.concat([elementHeader(0x00090010, 'LO', 4, encoding), Buffer.from('JUNK')]);
      break;
    case 'delimiter':
      tail = itemHeader(rng.pick(['itemDelimiter', 'sequenceDelimiter'] as const), 0, encoding.littleEndian);
      break;
    case 'repeatLast': {
      const last = [...layout.nodes].reverse().find((node) => node.depth === 0 && node.kind !== 'meta');
      tail = last ? Buffer.from(layout.logical.subarray(last.offset, last.end)) : Buffer.from('x');
      break;
    }
  }
  if (layout.deflated && rng.chance(0.5)) {
    return {
      kind: 'junk',
      detail: `append ${tail.length} bytes of ${what} after the compressed stream (raw)`,
      bytes: Buffer.concat([seed.file, tail]),
    };
  }
  return insert(layout, layout.logical.length, tail, 'junk', `append ${tail.length} bytes of ${what}`);
}

function nesting(seed: Seed, rng: Rng): Mutant {
  const layout = seed.layout;
  const encoding = encodingOfLayout(layout);
  const variant = rng.weighted({ unclosed500: 3, closed500: 1, defined500: 1, closedShallow: 2, unclosedRandom: 1 });
  const levels =
    variant === 'closedShallow' ? rng.range(1, 60) : variant === 'unclosedRandom' ? rng.range(1, 100) : 500;
  const closed = variant === 'closed500' || variant === 'closedShallow';
  let chain: Buffer;
  if (variant === 'defined500') {
    let inner = Buffer.concat([elementHeader(0x0040a040, 'CS', 4, encoding), Buffer.from('TEXT')]);
    for (let i = 0; i < levels; i += 1) {
      const item = Buffer.concat([itemHeader('item', inner.length, encoding.littleEndian), inner]);
      inner = Buffer.concat([elementHeader(CONTENT_SEQUENCE, 'SQ', item.length, encoding), item]);
    }
    chain = inner;
  } else {
    const open = Buffer.concat([
      elementHeader(CONTENT_SEQUENCE, 'SQ', UNDEFINED, encoding),
      itemHeader('item', UNDEFINED, encoding.littleEndian),
    ]);
    const close = Buffer.concat([
      itemHeader('itemDelimiter', 0, encoding.littleEndian),
      itemHeader('sequenceDelimiter', 0, encoding.littleEndian),
    ]);
    const leaf = Buffer.concat([elementHeader(0x0040a040, 'CS', 4, encoding), Buffer.from('TEXT')]);
    chain = Buffer.concat([
      ...Array.from({ length: levels }, () => open),
      leaf,
      ...(closed ? Array.from({ length: levels }, () => close) : []),
    ]);
  }
  const tops = layout.nodes.filter((node) => node.kind !== 'meta' && node.depth === 0);
  const position = rng.chance(0.3) || tops.length === 0 ? layout.logical.length : rng.pick(tops).offset;
  return insert(
    layout,
    position,
    chain,
    'nesting',
    `insert ${variant} (${levels} levels) at ${position}${nodeNear(layout, position)}`,
  );
}

/** A second, structure-blind mutation on top of the first: a flip, a cut or junk. */
function blindAgain(mutant: Mutant, rng: Rng): Mutant {
  const bytes = Buffer.from(mutant.bytes);
  if (bytes.length === 0) return mutant;
  const how = rng.pick(['flip', 'cut', 'junk'] as const);
  if (how === 'flip') {
    const position = rng.int(bytes.length);
    const mask = rng.range(1, 255);
    bytes[position] = (bytes[position] ?? 0) ^ mask;
    return { ...mutant, detail: `${mutant.detail} + flip ${position}^${hex(mask)}`, bytes };
  }
  if (how === 'cut') {
    const position = rng.int(bytes.length);
    return { ...mutant, detail: `${mutant.detail} + cut at ${position}`, bytes: bytes.subarray(0, position) };
  }
  const tail = Buffer.from(rng.bytes(rng.range(1, 16)));
  return { ...mutant, detail: `${mutant.detail} + ${tail.length} junk bytes`, bytes: Buffer.concat([bytes, tail]) };
}

function insert(layout: Layout, position: number, bytes: Buffer, kind: MutationKind, detail: string): Mutant {
  return splice(layout, position, 0, bytes, kind, detail);
}

function splice(
  layout: Layout,
  position: number,
  remove: number,
  bytes: Buffer,
  kind: MutationKind,
  detail: string,
): Mutant {
  const logical = layout.logical;
  const out = Buffer.concat([logical.subarray(0, position), bytes, logical.subarray(position + remove)]);
  // A change inside the meta group moves the data set's start.
  const metaEnd = position < layout.metaEnd ? layout.metaEnd + bytes.length - remove : layout.metaEnd;
  return { kind, detail, bytes: encodeLogical(layout, out, metaEnd) };
}

function encodingOfLayout(layout: Layout): Encoding {
  return {
    explicitVr: layout.transferSyntax !== IMPLICIT_LE,
    littleEndian: layout.transferSyntax !== EXPLICIT_BE,
    deflated: false,
  };
}

function writeUint(bytes: Buffer, offset: number, size: 2 | 4, littleEndian: boolean, value: number): void {
  if (size === 2) {
    if (littleEndian) bytes.writeUInt16LE(value, offset);
    else bytes.writeUInt16BE(value, offset);
  } else if (littleEndian) bytes.writeUInt32LE(value >>> 0, offset);
  else bytes.writeUInt32BE(value >>> 0, offset);
}

function hex(n: number): string {
  return `0x${n.toString(16).toUpperCase()}`;
}

export function formatTag(tag: number): string {
  const text = tag.toString(16).toUpperCase().padStart(8, '0');
  return `(${text.slice(0, 4)},${text.slice(4)})`;
}

export function describeNode(node: LayoutNode): string {
  const vr = node.vr === undefined ? '' : ` ${node.vr}`;
  return `${node.kind} ${formatTag(node.tag)}${vr} at ${node.offset} (depth ${node.depth})`;
}

/** " in <node>": the innermost node around a position, for case descriptions. */
function nodeNear(layout: Layout, position: number): string {
  let found: LayoutNode | undefined;
  for (const node of layout.nodes) {
    if (node.offset <= position && position < node.end) found = node;
  }
  return found ? ` in ${describeNode(found)}` : '';
}
