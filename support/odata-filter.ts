/**
 * The part of the Table service's OData `$filter` language our adapters write (through the SDK's
 * `odata` template): comparisons (eq ne gt ge lt le) of a property with a literal, `and`, `or`,
 * `not` and parentheses; string, number, boolean, datetime and guid literals. Parsed once into a
 * predicate, plus the PartitionKey and RowKey bounds the filter implies, so a fake table can
 * seek to them and read only what the service would (a partition, a key range), never the table.
 */

export type Literal = string | number | boolean;
type Operator = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le';

type Node =
  | { readonly kind: 'compare'; readonly property: string; readonly operator: Operator; readonly value: Literal }
  | { readonly kind: 'and' | 'or'; readonly left: Node; readonly right: Node }
  | { readonly kind: 'not'; readonly operand: Node };

/** A key interval; `undefined` ends are open. Strings compare by UTF-16 code unit, as the service orders keys. */
export interface KeyBounds {
  readonly from?: string | undefined;
  readonly fromInclusive: boolean;
  readonly to?: string | undefined;
  readonly toInclusive: boolean;
}

export interface ParsedFilter {
  /** True when the row (its properties, PartitionKey and RowKey among them) passes the filter. */
  matches(row: Readonly<Record<string, unknown>>): boolean;
  /** True when the filter names nothing but PartitionKey and RowKey: the keys alone decide. */
  readonly keysOnly: boolean;
  /** The PartitionKey interval every passing row lies in. */
  readonly partitions: KeyBounds;
  /** The RowKey interval every passing row lies in, when the filter pins one partition. */
  readonly rows: KeyBounds;
}

const OPERATORS = new Set<string>(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);
const EVERYTHING: KeyBounds = { fromInclusive: true, toInclusive: true };

type Token =
  | { readonly kind: 'word'; readonly text: string }
  | { readonly kind: 'literal'; readonly value: Literal }
  | { readonly kind: 'open' | 'close' };

function tokenize(filter: string): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  const quoted = (start: number): { text: string; end: number } => {
    let text = '';
    let i = start + 1;
    for (;;) {
      if (i >= filter.length) throw new Error(`unterminated string in filter: ${filter}`);
      const char = filter[i] as string;
      if (char === "'") {
        // A doubled quote is one quote inside the string.
        if (filter[i + 1] === "'") {
          text += "'";
          i += 2;
          continue;
        }
        return { text, end: i + 1 };
      }
      text += char;
      i += 1;
    }
  };
  while (at < filter.length) {
    const char = filter[at] as string;
    if (/\s/.test(char)) {
      at += 1;
    } else if (char === '(' || char === ')') {
      tokens.push({ kind: char === '(' ? 'open' : 'close' });
      at += 1;
    } else if (char === "'") {
      const { text, end } = quoted(at);
      tokens.push({ kind: 'literal', value: text });
      at = end;
    } else {
      const word = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(filter.slice(at))?.[0];
      const number = /^-?\d+(\.\d+)?([eE][+-]?\d+)?[LlDdMm]?/.exec(filter.slice(at))?.[0];
      if (word && filter[at + word.length] === "'" && /^(datetime|guid|X|binary)$/i.test(word)) {
        // Typed literals compare as their text: ISO datetimes of one format order as time does.
        const { text, end } = quoted(at + word.length);
        tokens.push({ kind: 'literal', value: text });
        at = end;
      } else if (word) {
        tokens.push(
          word === 'true' || word === 'false'
            ? { kind: 'literal', value: word === 'true' }
            : { kind: 'word', text: word },
        );
        at += word.length;
      } else if (number) {
        tokens.push({ kind: 'literal', value: Number(number.replace(/[LlDdMm]$/, '')) });
        at += number.length;
      } else {
        throw new Error(`unexpected "${char}" in filter: ${filter}`);
      }
    }
  }
  return tokens;
}

/** Recursive descent: or binds loosest, then and, then not, then a comparison or parentheses. */
function parse(filter: string): Node {
  const tokens = tokenize(filter);
  let at = 0;
  const peekWord = (text: string): boolean => {
    const token = tokens[at];
    return token?.kind === 'word' && token.text.toLowerCase() === text;
  };
  const fail = (what: string): never => {
    throw new Error(`${what} at token ${at} of filter: ${filter}`);
  };
  const binary = (kind: 'and' | 'or', operand: () => Node): Node => {
    let left = operand();
    while (peekWord(kind)) {
      at += 1;
      left = { kind, left, right: operand() };
    }
    return left;
  };
  const primary = (): Node => {
    const token = tokens[at];
    if (token?.kind === 'open') {
      at += 1;
      const inner = or();
      if (tokens[at]?.kind !== 'close') fail('expected ")"');
      at += 1;
      return inner;
    }
    if (peekWord('not')) {
      at += 1;
      return { kind: 'not', operand: primary() };
    }
    const property = tokens[at];
    const operator = tokens[at + 1];
    const value = tokens[at + 2];
    if (property?.kind !== 'word' || operator?.kind !== 'word' || !OPERATORS.has(operator.text.toLowerCase())) {
      return fail('expected a comparison');
    }
    if (value?.kind !== 'literal') return fail('expected a literal');
    at += 3;
    return {
      kind: 'compare',
      property: property.text,
      operator: operator.text.toLowerCase() as Operator,
      value: value.value,
    };
  };
  const and = (): Node => binary('and', primary);
  const or = (): Node => binary('or', and);
  const tree = or();
  if (at !== tokens.length) fail('unexpected trailing tokens');
  return tree;
}

function compare(actual: unknown, operator: Operator, expected: Literal): boolean {
  // A missing property, or one of another type, matches no comparison (as on the service).
  if (typeof actual !== typeof expected) return false;
  const a = actual as Literal;
  switch (operator) {
    case 'eq':
      return a === expected;
    case 'ne':
      return a !== expected;
    case 'gt':
      return a > expected;
    case 'ge':
      return a >= expected;
    case 'lt':
      return a < expected;
    case 'le':
      return a <= expected;
  }
}

function evaluate(node: Node, row: Readonly<Record<string, unknown>>): boolean {
  switch (node.kind) {
    case 'compare':
      return compare(row[node.property], node.operator, node.value);
    case 'and':
      return evaluate(node.left, row) && evaluate(node.right, row);
    case 'or':
      return evaluate(node.left, row) || evaluate(node.right, row);
    case 'not':
      return !evaluate(node.operand, row);
  }
}

function properties(node: Node): string[] {
  switch (node.kind) {
    case 'compare':
      return [node.property];
    case 'and':
    case 'or':
      return [...properties(node.left), ...properties(node.right)];
    case 'not':
      return properties(node.operand);
  }
}

function lower(a: KeyBounds, b: KeyBounds): Pick<KeyBounds, 'from' | 'fromInclusive'> {
  if (a.from === undefined) return b;
  if (b.from === undefined) return a;
  if (a.from !== b.from) return a.from > b.from ? a : b;
  return { from: a.from, fromInclusive: a.fromInclusive && b.fromInclusive };
}

function upper(a: KeyBounds, b: KeyBounds): Pick<KeyBounds, 'to' | 'toInclusive'> {
  if (a.to === undefined) return b;
  if (b.to === undefined) return a;
  if (a.to !== b.to) return a.to < b.to ? a : b;
  return { to: a.to, toInclusive: a.toInclusive && b.toInclusive };
}

/** The smallest interval holding both (an `or` of two key ranges reads from the first to the last). */
function hull(a: KeyBounds, b: KeyBounds): KeyBounds {
  const from =
    a.from === undefined || b.from === undefined
      ? EVERYTHING
      : a.from === b.from
        ? { from: a.from, fromInclusive: a.fromInclusive || b.fromInclusive }
        : a.from < b.from
          ? a
          : b;
  const to =
    a.to === undefined || b.to === undefined
      ? EVERYTHING
      : a.to === b.to
        ? { to: a.to, toInclusive: a.toInclusive || b.toInclusive }
        : a.to > b.to
          ? a
          : b;
  return { from: from.from, fromInclusive: from.fromInclusive, to: to.to, toInclusive: to.toInclusive };
}

/** The interval of `key` every row passing `node` lies in (conservative: never too narrow). */
function bounds(node: Node, key: string): KeyBounds {
  switch (node.kind) {
    case 'compare': {
      if (node.property !== key || typeof node.value !== 'string') return EVERYTHING;
      const value = node.value;
      switch (node.operator) {
        case 'eq':
          return { from: value, fromInclusive: true, to: value, toInclusive: true };
        case 'gt':
        case 'ge':
          return { from: value, fromInclusive: node.operator === 'ge', toInclusive: true };
        case 'lt':
        case 'le':
          return { fromInclusive: true, to: value, toInclusive: node.operator === 'le' };
        case 'ne':
          return EVERYTHING;
      }
      return EVERYTHING;
    }
    case 'and': {
      const left = bounds(node.left, key);
      const right = bounds(node.right, key);
      return { ...lower(left, right), ...upper(left, right) };
    }
    case 'or':
      return hull(bounds(node.left, key), bounds(node.right, key));
    case 'not':
      return EVERYTHING;
  }
}

/** Parses `filter`; an empty filter passes every row. */
export function parseFilter(filter: string | undefined): ParsedFilter {
  if (filter === undefined || filter.trim() === '') {
    return { matches: () => true, keysOnly: true, partitions: EVERYTHING, rows: EVERYTHING };
  }
  const tree = parse(filter);
  const partitions = bounds(tree, 'PartitionKey');
  const onePartition = partitions.from !== undefined && partitions.from === partitions.to;
  return {
    matches: (row) => evaluate(tree, row),
    keysOnly: properties(tree).every((name) => name === 'PartitionKey' || name === 'RowKey'),
    partitions,
    rows: onePartition ? bounds(tree, 'RowKey') : EVERYTHING,
  };
}
