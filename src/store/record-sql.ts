// What the back ends derive from the record definitions (src/records): the DuckDB appender's column
// layout, the QuestDB ILP serialiser, the SQL that sums a flow's segments by the columns' combine
// rules, and the row mappers. Generated once per record at start-up; nothing here is interpreted
// per value on a write.
import type { SenderBuffer } from '@questdb/nodejs-client';
import { fieldGetter, type ColumnInfo, type ColumnType, type AnyRecordDef } from '../records/define.js';
import type { ColumnKind, ColumnSpec } from './duckdb-chunks.js';

type Def = AnyRecordDef;

// ---------------------------------------------------------------------------------------------
// DuckDB

const CHUNK_KIND: Record<ColumnType, ColumnKind> = {
  time: 'timestamp',
  str: 'varchar',
  u8: 'utinyint',
  u16: 'usmallint',
  counter: 'ubigint',
  bool: 'boolean',
};

/**
 * The appender's columns, in table order. One compiled getter per column rather than a shared
 * (r) => r[name]: a getter shared by every column sees every property name and goes megamorphic,
 * which made appends ~30% slower.
 */
export function chunkColumns<T>(def: Def): ColumnSpec<T>[] {
  return def.list.map((c) => ({ name: c.field, kind: CHUNK_KIND[c.type], get: fieldGetter(c.field) as (record: T) => unknown }));
}

/**
 * One column of a flow's summed segments, by its combine rule; aliased to its field name. `first`
 * and `latest` columns are read from one struct each (`packs`): a flow's 'first' columns from one
 * any_value, its 'latest' ones from one arg_max, which DuckDB computes once per group however many
 * columns read it. One aggregate state per column held 2.5 times the memory (250,000 flows of
 * 40 columns went over 200 MB).
 */
function duckdbCombine(c: ColumnInfo, packs: { first: string; latest: string; ts: string }): string {
  const x = c.sql;
  const time = (e: string) => (c.type === 'time' ? `epoch_us(${e})` : e);
  let e: string;
  switch (c.combine) {
    case 'key':
      e = x;
      break;
    case 'first':
      e = `${packs.first}."${c.field}"`;
      break;
    case 'sum':
      e = `sum(${x})`;
      break;
    case 'bitOr':
      e = `bit_or(${x})`;
      break;
    case 'min':
    case 'max':
      e = time(`${c.combine}(${x})`);
      break;
    case 'latest':
      e = c.type === 'str' ? `coalesce(${packs.latest}."${c.field}", '')` : time(`${packs.latest}."${c.field}"`);
      break;
    case 'latestNonEmpty':
      if (c.type !== 'str') throw new Error(`${x}: latestNonEmpty is for text columns`);
      e = `coalesce(arg_max(${x}, ${packs.ts}) FILTER (WHERE ${x} <> ''), '')`;
      break;
    default:
      throw new Error(`${x} has no combine rule`);
  }
  return `${e} AS "${c.field}"`;
}

/** The SELECT list summing a record's segments (GROUP BY its key), aliased to the summary's fields; only `fields` when given. */
export function duckdbSummarySelect(def: Def, fields?: ReadonlySet<string>): string {
  const columns = fields ? def.summary.filter((c) => fields.has(c.field)) : def.summary;
  const struct = (combine: string) =>
    `struct_pack(${columns
      .filter((c) => c.combine === combine)
      .map((c) => `"${c.field}" := ${c.sql}`)
      .join(', ')})`;
  const ts = def.designated.sql;
  const packs = { first: `any_value(${struct('first')})`, latest: `arg_max(${struct('latest')}, ${ts})`, ts };
  return columns.map((c) => duckdbCombine(c, packs)).join(',\n  ');
}

/** The SELECT list of whole records, aliased to their fields, times as µs (epoch_us: a TIMESTAMP would come back as a ms Date). */
export function duckdbRecordSelect(def: Def): string {
  return def.list.map((c) => `${c.type === 'time' ? `epoch_us(${c.sql})` : c.sql} AS "${c.field}"`).join(', ');
}

// ---------------------------------------------------------------------------------------------
// QuestDB

const ident = (s: string) => {
  if (!/^[A-Za-z_]\w*$/.test(s)) throw new Error(`not an identifier: ${s}`);
  return s;
};

/**
 * The ILP serialiser of a record, compiled from its column list: symbols first (ILP requires it),
 * then the other columns, the designated timestamp last with at(µs). Empty texts are not written,
 * so the column stays NULL: there is no empty ILP tag value, and the readers take "the latest
 * non-empty" value of a flow with last_not_null(), which skips NULLs but not empty strings; they
 * map NULL back to ''. Integers go as ILP integers (64-bit) into INT columns too: QuestDB casts them
 * on ingestion, and a value that does not fit rejects the line (docs/ingestion/ilp/columnset-types).
 */
export function ilpSerializer<T>(def: Def): (buf: SenderBuffer, rows: readonly T[]) => void {
  const lines: string[] = [];
  const value = (c: ColumnInfo) => `r.${ident(c.field)}`;
  const name = (c: ColumnInfo) => JSON.stringify(ident(c.sql));
  const ordered = [...def.list.filter((c) => c.questdbType === 'SYMBOL'), ...def.list.filter((c) => c.questdbType !== 'SYMBOL' && !c.designated)];
  for (const c of ordered) {
    const v = value(c);
    switch (c.questdbType) {
      case 'SYMBOL':
        lines.push(`if (${v} !== '') buf.symbol(${name(c)}, ${v});`);
        break;
      case 'VARCHAR':
        lines.push(`if (${v} !== '') buf.stringColumn(${name(c)}, ${v});`);
        break;
      case 'TIMESTAMP':
        lines.push(`buf.timestampColumn(${name(c)}, ${v}, 'us');`);
        break;
      case 'INT':
      case 'LONG':
        lines.push(`buf.intColumn(${name(c)}, ${v});`);
        break;
      case 'BOOLEAN':
        lines.push(`buf.booleanColumn(${name(c)}, ${v});`);
        break;
    }
  }
  const body = `for (let i = 0; i < rows.length; i++) {
  const r = rows[i];
  buf.table(${JSON.stringify(ident(def.table))});
  ${lines.join('\n  ')}
  buf.at(${value(def.designated)}, 'us');
}`;
  return new Function('buf', 'rows', body) as (buf: SenderBuffer, rows: readonly T[]) => void;
}

/** Buffers an IlpBuffer keeps for reuse: as many bodies as are commonly on their way at once. */
const MAX_SPARE_BUFFERS = 16;

/**
 * A growable byte buffer that ILP rows are written into (see IlpRows). `buf` may be replaced when it
 * grows, so read it after writing.
 */
export class IlpBuffer {
  /** Whole buffers that take() handed over and that came back by recycle(): reused before allocating. */
  private readonly spare: Buffer[] = [];
  buf!: Buffer;
  /** A view of `buf` for the serialiser's multi-byte stores of constant parts (unaligned, little-endian). */
  view!: DataView;
  pos = 0;
  constructor(initialBytes = 4 * 1024 * 1024) {
    this.use(Buffer.allocUnsafe(initialBytes));
  }
  /** Writes go to `buf` from now on. */
  use(buf: Buffer): void {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  }
  /** Room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.use(next);
  }
  /**
   * What was written, and the buffer emptied. A body that fills most of the buffer is handed over
   * as it is and a fresh buffer taken (copying ~2 MiB bodies was a tenth of the ILP writer's time);
   * a small one is copied, so that it does not hold a whole buffer.
   */
  take(): Buffer {
    let out: Buffer;
    if (this.pos * 2 >= this.buf.length) {
      out = this.buf.subarray(0, this.pos);
      let next = this.spare.pop();
      while (next && next.length !== this.buf.length) next = this.spare.pop();
      this.use(next ?? Buffer.allocUnsafe(this.buf.length));
    } else {
      out = Buffer.allocUnsafe(this.pos);
      this.buf.copy(out, 0, 0, this.pos);
    }
    this.pos = 0;
    return out;
  }
  /**
   * A body take() handed over as it was, no longer referenced by its taker: its buffer is written
   * into again. Bodies the writer is done with come back here, so that a steady stream of
   * requests allocates no new buffers; ~2 MiB allocations held until their request was answered
   * made V8 run full collections for their external memory, a third of the writer's time when
   * deliveries overlap the serialising. Others (copies, foreign buffers) are left alone.
   */
  recycle(body: Buffer): void {
    if (this.spare.length >= MAX_SPARE_BUFFERS || body.byteOffset !== 0 || body.buffer.byteLength !== this.buf.length) return;
    if (body.buffer === this.buf.buffer || this.spare.some((b) => b.buffer === body.buffer)) return;
    this.spare.push(Buffer.from(body.buffer));
  }
}

/**
 * Writes rows[from..] as ILP lines into `out` until it holds `maxBytes` bytes (at least one row is
 * taken) or the rows end; returns the index of the first row not written.
 */
export type IlpRows<T> = (rows: readonly T[], from: number, maxBytes: number, out: IlpBuffer) => number;

// ILP escaping (docs/reference/api/ilp/advanced-settings.md, "Special characters"), byte for byte
// what @questdb/nodejs-client's SenderBuffer writes (writeEscaped): in a tag (symbol) value a space,
// comma, equals sign, newline, carriage return and backslash get a backslash before them; in a
// quoted string field value a double quote, newline, carriage return and backslash do. Most values
// need none: ASCII values are escaped byte by byte from a table, others by these expressions.
const SYMBOL_SPECIAL_ALL = /[ ,=\n\r\\]/g;
const STRING_SPECIAL_ALL = /["\n\r\\]/g;
/** The most bytes a text of `n` UTF-16 units can take as escaped UTF-8 (3 per unit, escapes included). */
const MAX_UTF8 = 3;
/** Room a number takes at most: a sign and 19 digits (below 2^63), 3 more for ns, with some to spare. */
const MAX_NUMBER = 32;

/** "00".."99" as ASCII byte pairs: two digits per division. */
const DIGIT_PAIRS = (() => {
  const t = new Uint8Array(200);
  for (let i = 0; i < 100; i++) {
    t[2 * i] = 48 + Math.floor(i / 10);
    t[2 * i + 1] = 48 + (i % 10);
  }
  return t;
})();

/**
 * Digits of 0 <= v < 2^31 at p; returns the end. `v | 0` tells the compiler the value is a 32-bit
 * integer, so that the divisions by 100 become integer multiplications rather than floating point.
 */
function writeSmall(b: Buffer, p: number, v: number): number {
  let x = v | 0;
  const digits = x < 10 ? 1 : x < 100 ? 2 : x < 1e3 ? 3 : x < 1e4 ? 4 : x < 1e5 ? 5 : x < 1e6 ? 6 : x < 1e7 ? 7 : x < 1e8 ? 8 : x < 1e9 ? 9 : 10;
  const end = p + digits;
  let q = end;
  while (x >= 100) {
    const d = (x / 100) | 0;
    const r = (x - d * 100) << 1;
    b[--q] = DIGIT_PAIRS[r + 1]!;
    b[--q] = DIGIT_PAIRS[r]!;
    x = d;
  }
  if (x >= 10) {
    b[--q] = DIGIT_PAIRS[(x << 1) + 1]!;
    b[--q] = DIGIT_PAIRS[x << 1]!;
  } else b[--q] = 48 + x;
  return end;
}

/** Exactly nine digits of 0 <= v < 1e9 at p, zeros first. */
function writeNine(b: Buffer, p: number, v: number): number {
  let x = v | 0;
  for (let q = p + 9; q > p + 1; ) {
    const d = (x / 100) | 0;
    const r = (x - d * 100) << 1;
    b[--q] = DIGIT_PAIRS[r + 1]!;
    b[--q] = DIGIT_PAIRS[r]!;
    x = d;
  }
  b[p] = 48 + x;
  return p + 9;
}

/**
 * Writes an integer's decimal digits at p, as Number#toString does (no exponent below 1e21); returns
 * the end. Beyond 2^63 no ILP integer can hold it: that throws rather than send a line QuestDB refuses.
 */
function writeInt(b: Buffer, p: number, v: number, name: string): number {
  if (v < 0) {
    b[p++] = 45; // '-'
    v = -v;
  }
  if (v < 2147483648) return writeSmall(b, p, v);
  if (v < 9007199254740992) {
    // Below 2^53 both halves are exact.
    const high = Math.floor(v / 1e9);
    return writeNine(b, writeSmall(b, p, high), v - high * 1e9);
  }
  if (v >= 2 ** 63) throw new Error(`${name}: ${v} does not fit a 64-bit integer`);
  return p + b.write(`${v}`, p, 'latin1');
}

/** Byte tables of what ILP escapes with a backslash (see SYMBOL_SPECIAL, STRING_SPECIAL). */
const escapeTable = (chars: string) => {
  const t = new Uint8Array(128);
  for (const c of chars) t[c.charCodeAt(0)] = 1;
  return t;
};
const SYMBOL_ESCAPED = escapeTable(' ,=\n\r\\');
const STRING_ESCAPED = escapeTable('"\n\r\\');

/**
 * Writes a text at w.pos with room for `reserve` bytes after it. ASCII with nothing to escape (nearly
 * every value) is copied by a loop here, which costs less than a call into the encoder for texts
 * this short; anything else is escaped by the regexp and encoded as UTF-8.
 */
function writeText(w: IlpBuffer, s: string, escaped: Uint8Array, all: RegExp, reserve: number): void {
  const n = s.length;
  w.ensure(n * MAX_UTF8 + reserve);
  const b = w.buf;
  let p = w.pos;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || escaped[c] === 1) {
      w.pos += b.write(s.replace(all, '\\$&'), w.pos, 'utf8');
      return;
    }
    b[p++] = c;
  }
  w.pos = p;
}

const helpers = {
  sym(w: IlpBuffer, v: unknown, name: string, reserve: number): void {
    if (typeof v !== 'string') throw new Error(`${name}: a text value is needed, received ${typeof v}`);
    writeText(w, v, SYMBOL_ESCAPED, SYMBOL_SPECIAL_ALL, reserve);
  },
  str(w: IlpBuffer, v: unknown, name: string, reserve: number): void {
    if (typeof v !== 'string') throw new Error(`${name}: a text value is needed, received ${typeof v}`);
    writeText(w, v, STRING_ESCAPED, STRING_SPECIAL_ALL, reserve);
  },
  int(b: Buffer, p: number, v: unknown, name: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`${name}: an integer is needed, received ${String(v)}`);
    return writeInt(b, p, v, name);
  },
  /** µs -> ns digits for the designated timestamp (precision=n), exact beyond 2^53 ns. */
  nanos(b: Buffer, p: number, v: unknown, name: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`${name}: an integer timestamp is needed, received ${String(v)}`);
    if (v === 0) {
      b[p] = 48;
      return p + 1;
    }
    if (Math.abs(v) >= 2 ** 63 / 1000) throw new Error(`${name}: ${v} µs is out of range for a nanosecond timestamp`);
    p = writeInt(b, p, v, name);
    b[p] = 48;
    b[p + 1] = 48;
    b[p + 2] = 48;
    return p + 3;
  },
  bool(b: Buffer, p: number, v: unknown, name: string): number {
    if (typeof v !== 'boolean') throw new Error(`${name}: a boolean is needed, received ${typeof v}`);
    b[p] = v ? 116 : 102; // 't' : 'f'
    return p + 1;
  },
};

/**
 * The ILP serialiser of a record, compiled once from its column list into one function that builds
 * each row's line as a string: the table, the symbols as tags (ILP requires them first), then the
 * other columns as fields, and the designated timestamp last in ns (the request says
 * precision=n). Protocol version 1 text: integers with an `i` suffix, timestamp fields in µs with
 * `t`, booleans t/f, strings quoted. Empty texts are not written, so the column stays NULL: there
 * is no empty ILP tag value, and the readers take "the latest non-empty" value of a flow with
 * last_not_null(), which skips NULLs but not empty strings; they map NULL back to ''. Integers go as
 * ILP integers (64-bit) into INT columns too: QuestDB casts them on ingestion, and a value that does
 * not fit rejects the line (docs/ingestion/ilp/columnset-types). A value of the wrong type throws.
 * The bytes are those @questdb/nodejs-client's SenderBuffer writes for the same calls
 * (test/questdb-ilp.test.ts compares them), at a small fraction of its cost: the client writes
 * escaped text one character at a time.
 */
export function ilpRows<T>(def: Def): IlpRows<T> {
  const value = (c: ColumnInfo) => `r.${ident(c.field)}`;
  const label = (c: ColumnInfo) => JSON.stringify(`${def.table}.${c.field}`);
  const symbols = def.list.filter((c) => c.questdbType === 'SYMBOL');
  const fields = def.list.filter((c) => c.questdbType !== 'SYMBOL' && !c.designated);
  // Room for everything of a row but its texts: its constant parts and its numbers. It is ensured
  // at the row's start and after each text, so constants and numbers are written without checks.
  let fixed = 2 + MAX_NUMBER;
  // A constant ASCII part, written by 4-byte stores through a DataView and bytes for the rest
  // (cheaper than a call for a few bytes). Consecutive constants are joined (pending) first: the
  // end of one column and the name of the next make one part.
  const raw = (text: string) => {
    fixed += text.length;
    const bytes = Buffer.from(text, 'latin1');
    const out: string[] = [];
    let k = 0;
    for (; k + 4 <= bytes.length; k += 4) out.push(`d.setUint32(p + ${k}, ${bytes.readUInt32LE(k)}, true);`);
    for (; k < bytes.length; k++) out.push(`b[p + ${k}] = ${bytes[k]};`);
    out.push(`p += ${bytes.length};`);
    return out.join(' ');
  };
  let pending = '';
  const code: string[] = [];
  const constant = (text: string) => {
    pending += text;
  };
  const dynamic = (js: string) => {
    if (pending) code.push(raw(pending));
    pending = '';
    code.push(js);
  };
  const text = (kind: 'sym' | 'str', c: ColumnInfo) => `w.pos = p; h.${kind}(w, v, ${label(c)}, FIXED); b = w.buf; d = w.view; p = w.pos;`;
  constant(ident(def.table));
  dynamic('const bare = p;');
  for (const c of symbols) {
    dynamic(`v = ${value(c)}; if (v !== '') { ${raw(`,${ident(c.sql)}=`)} ${text('sym', c)} }`);
  }
  // The first field written follows a space, the others a comma; until one that is always written
  // has been, the separator is decided per row (empty texts are skipped).
  let certain = false;
  for (const c of fields) {
    const key = `${ident(c.sql)}=`;
    const prefix = () => {
      if (certain) constant(`,${key}`);
      else {
        fixed += 1;
        dynamic('b[p++] = sep; sep = 44;');
        constant(key);
      }
    };
    switch (c.questdbType) {
      case 'VARCHAR': {
        if (!certain) fixed += 1;
        const open = certain ? raw(`,${key}"`) : `b[p++] = sep; sep = 44; ${raw(`${key}"`)}`;
        dynamic(`v = ${value(c)}; if (v !== '') { ${open} ${text('str', c)} ${raw('"')} }`);
        continue; // optional: does not settle the separator
      }
      case 'TIMESTAMP':
        fixed += MAX_NUMBER;
        prefix();
        dynamic(`p = h.int(b, p, ${value(c)}, ${label(c)});`);
        constant('t');
        break;
      case 'INT':
      case 'LONG':
        fixed += MAX_NUMBER;
        prefix();
        dynamic(`p = h.int(b, p, ${value(c)}, ${label(c)});`);
        constant('i');
        break;
      case 'BOOLEAN':
        fixed += 1;
        prefix();
        dynamic(`p = h.bool(b, p, ${value(c)}, ${label(c)});`);
        break;
      default:
        throw new Error(`${def.table}.${c.field}: no ILP form for ${c.questdbType}`);
    }
    certain = true;
  }
  dynamic(`if (sep === 32 && p === bare) throw new Error(${JSON.stringify(`${def.table}: a row with no column set`)});`);
  constant(' ');
  dynamic(`p = h.nanos(b, p, ${value(def.designated)}, ${label(def.designated)});`);
  constant('\n');
  dynamic('');
  const body = `const FIXED = ${fixed};
return function ilpRows(rows, from, maxBytes, w) {
  let i = from;
  const n = rows.length;
  let v;
  while (i < n) {
    const r = rows[i++];
    let sep = 32; // ' '
    w.ensure(FIXED);
    let b = w.buf;
    let d = w.view;
    let p = w.pos;
    ${code.join('\n    ')}
    w.pos = p;
    if (p >= maxBytes) break;
  }
  return i;
};`;
  return new Function('h', body)(helpers) as IlpRows<T>;
}

/** The name a column is read back under: times as µs (`<column>_us`, cast to LONG), others as they are. */
const questdbAlias = (c: ColumnInfo) => (c.type === 'time' ? `${c.sql}_us` : c.sql);

/** A column in an outer SELECT: times cast to µs (pg would parse a TIMESTAMP into a ms Date). */
export function questdbOut(c: ColumnInfo): string {
  return c.type === 'time' ? `cast(${c.sql} AS LONG) ${questdbAlias(c)}` : c.sql;
}

/**
 * Summing a record's segments in QuestDB: the grouped SELECT list, its GROUP BY (the key and the
 * columns the same on every segment) and the outer list (times cast, see questdbOut). last() and
 * last_not_null() take the row with the latest designated timestamp (docs/reference/function/
 * aggregation.md), i.e. the latest segment, like DuckDB's arg_max(x, ts); `latestNonEmpty` texts are
 * not written when empty (see ilpSerializer), so last_not_null() gives the latest that was set.
 * QuestDB 8 has no bit_or aggregate: the bit masks combined with bitOr are cumulative ("seen so
 * far"), so their max is their bitwise OR.
 */
export function questdbSummary(def: Def): { select: string; groupBy: string; outer: string } {
  const aggregate: Record<string, string> = { sum: 'sum', bitOr: 'max', min: 'min', max: 'max', latest: 'last', latestNonEmpty: 'last_not_null' };
  const grouped = def.summary.filter((c) => c.combine === 'key' || c.combine === 'first').map((c) => c.sql);
  const select = def.summary.map((c) => (c.combine === 'key' || c.combine === 'first' ? c.sql : `${aggregate[c.combine!]}(${c.sql}) ${c.sql}`));
  return { select: select.join(', '), groupBy: grouped.join(', '), outer: def.summary.map(questdbOut).join(', ') };
}

/** The SELECT list of whole records (times cast, see questdbOut). */
export function questdbRecordSelect(def: Def): string {
  return def.list.map(questdbOut).join(', ');
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

/**
 * A row of `columns` (named as questdbOut names them) -> the record's fields: NULL texts read as ''
 * (empty values are not written), LONG times and counters (strings from pg) as numbers. Compiled once.
 */
export function questdbRowMapper<T>(columns: readonly ColumnInfo[]): (row: Record<string, unknown>) => T {
  const fields = columns.map((c) => {
    const v = `r[${JSON.stringify(questdbAlias(c))}]`;
    const read = c.type === 'str' ? `str(${v})` : c.type === 'bool' ? `${v} === true` : `num(${v})`;
    return `${JSON.stringify(c.field)}: ${read}`;
  });
  return new Function('num', 'str', `return (r) => ({ ${fields.join(', ')} });`)(num, str) as (row: Record<string, unknown>) => T;
}
