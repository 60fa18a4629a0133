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

/** One column of a flow's summed segments, by its combine rule; aliased to its field name. */
function duckdbCombine(c: ColumnInfo, ts: string): string {
  const x = c.sql;
  const time = (e: string) => (c.type === 'time' ? `epoch_us(${e})` : e);
  let e: string;
  switch (c.combine) {
    case 'key':
      e = x;
      break;
    case 'first':
      e = `any_value(${x})`;
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
      e = c.type === 'str' ? `coalesce(arg_max(${x}, ${ts}), '')` : time(`arg_max(${x}, ${ts})`);
      break;
    case 'latestNonEmpty':
      if (c.type !== 'str') throw new Error(`${x}: latestNonEmpty is for text columns`);
      e = `coalesce(arg_max(${x}, ${ts}) FILTER (WHERE ${x} <> ''), '')`;
      break;
    default:
      throw new Error(`${x} has no combine rule`);
  }
  return `${e} AS "${c.field}"`;
}

/** The SELECT list summing a record's segments (GROUP BY its key), aliased to the summary's fields; only `fields` when given. */
export function duckdbSummarySelect(def: Def, fields?: ReadonlySet<string>): string {
  const columns = fields ? def.summary.filter((c) => fields.has(c.field)) : def.summary;
  return columns.map((c) => duckdbCombine(c, def.designated.sql)).join(',\n  ');
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

/** One bounded piece of ILP text (see IlpLines). */
export interface IlpChunk {
  text: string;
  /** The index of the first row not in `text` (rows.length when all are). */
  next: number;
}

/**
 * Appends rows[from..] as ILP lines to `out.text` until the text reaches `maxChars` characters
 * (at least one row is taken) or the rows end; sets `out.next`.
 */
export type IlpLines<T> = (rows: readonly T[], from: number, maxChars: number, out: IlpChunk) => void;

// ILP escaping (docs/reference/api/ilp/advanced-settings.md, "Special characters"), byte for byte
// what @questdb/nodejs-client's SenderBuffer writes (writeEscaped): in a tag (symbol) value a space,
// comma, equals sign, newline, carriage return and backslash get a backslash before them; in a
// quoted string field value a double quote, newline, carriage return and backslash do. Most values
// need none, so a test comes first and the value is used as it is.
const SYMBOL_SPECIAL = /[ ,=\n\r\\]/;
const SYMBOL_SPECIAL_ALL = /[ ,=\n\r\\]/g;
const STRING_SPECIAL = /["\n\r\\]/;
const STRING_SPECIAL_ALL = /["\n\r\\]/g;
const helpers = {
  sym(v: unknown, name: string): string {
    if (typeof v !== 'string') throw new Error(`${name}: a text value is needed, received ${typeof v}`);
    return SYMBOL_SPECIAL.test(v) ? v.replace(SYMBOL_SPECIAL_ALL, '\\$&') : v;
  },
  str(v: unknown, name: string): string {
    if (typeof v !== 'string') throw new Error(`${name}: a text value is needed, received ${typeof v}`);
    return STRING_SPECIAL.test(v) ? v.replace(STRING_SPECIAL_ALL, '\\$&') : v;
  },
  /** An integer's digits (Number#toString has no exponent below 1e21, where BigInt's is the same). */
  int(v: unknown, name: string): string {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`${name}: an integer is needed, received ${String(v)}`);
    return Math.abs(v) < 1e21 ? `${v}` : BigInt(v).toString();
  },
  /** µs -> ns digits for the designated timestamp (precision=n), exact beyond 2^53 ns. */
  nanos(v: unknown, name: string): string {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`${name}: an integer timestamp is needed, received ${String(v)}`);
    if (v === 0) return '0';
    return Math.abs(v) < 1e21 ? `${v}000` : (BigInt(v) * 1000n).toString();
  },
  bool(v: unknown, name: string): string {
    if (typeof v !== 'boolean') throw new Error(`${name}: a boolean is needed, received ${typeof v}`);
    return v ? 't' : 'f';
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
export function ilpLines<T>(def: Def): IlpLines<T> {
  const value = (c: ColumnInfo) => `r.${ident(c.field)}`;
  const label = (c: ColumnInfo) => JSON.stringify(`${def.table}.${c.field}`);
  const symbols = def.list.filter((c) => c.questdbType === 'SYMBOL');
  const fields = def.list.filter((c) => c.questdbType !== 'SYMBOL' && !c.designated);
  const lines: string[] = [];
  for (const c of symbols) {
    lines.push(`v = ${value(c)}; if (v !== '') line += ${JSON.stringify(`,${ident(c.sql)}=`)} + h.sym(v, ${label(c)});`);
  }
  // The first field written follows a space, the others a comma; until one that is always written
  // has been, the separator is decided per row (empty texts are skipped).
  let certain = false;
  for (const c of fields) {
    const key = `${ident(c.sql)}=`;
    const prefix = () => (certain ? JSON.stringify(`,${key}`) : `sep + ${JSON.stringify(key)}`);
    const after = certain ? '' : " sep = ',';";
    switch (c.questdbType) {
      case 'VARCHAR':
        lines.push(`v = ${value(c)}; if (v !== '') { line += ${prefix()} + '"' + h.str(v, ${label(c)}) + '"';${after} }`);
        continue; // optional: does not settle the separator
      case 'TIMESTAMP':
        lines.push(`line += ${prefix()} + h.int(${value(c)}, ${label(c)}) + 't';${after}`);
        break;
      case 'INT':
      case 'LONG':
        lines.push(`line += ${prefix()} + h.int(${value(c)}, ${label(c)}) + 'i';${after}`);
        break;
      case 'BOOLEAN':
        lines.push(`line += ${prefix()} + h.bool(${value(c)}, ${label(c)});${after}`);
        break;
      default:
        throw new Error(`${def.table}.${c.field}: no ILP form for ${c.questdbType}`);
    }
    certain = true;
  }
  const body = `return function ilpLines(rows, from, maxChars, out) {
  let s = '';
  let i = from;
  const n = rows.length;
  let v;
  while (i < n) {
    const r = rows[i++];
    let sep = ' ';
    let line = ${JSON.stringify(ident(def.table))};
    ${lines.join('\n    ')}
    if (sep === ' ' && line === ${JSON.stringify(def.table)}) throw new Error(${JSON.stringify(`${def.table}: a row with no column set`)});
    s += line + ' ' + h.nanos(${value(def.designated)}, ${label(def.designated)}) + '\\n';
    if (s.length >= maxChars) break;
  }
  out.text += s;
  out.next = i;
};`;
  return new Function('h', body)(helpers) as IlpLines<T>;
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
