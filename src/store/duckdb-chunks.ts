// Column-at-a-time appends for the DuckDB back end. The import path writes hundreds of thousands
// of rows; appending them value by value (DuckDBAppender.appendVarchar, appendUBigInt, ...) costs a
// native call and, for timestamps and counters, a BigInt and a wrapper object per value, which
// was the largest cost of an import. Here a table's rows are laid out column by column in DuckDB
// data chunks (2048 rows) and handed to the appender one chunk at a time:
//   - each column is laid out in a scratch buffer in DuckDB's vector format, by a loop compiled for
//     it from the record definition, and copied into the vector with one native call: numbers through typed-array views (no BigInt per value),
//     strings of up to 12 ASCII bytes inline in DuckDB's 16-byte string_t (length, then the bytes,
//     zero padded: DuckDB compares inlined strings byte for byte, so the padding must be zeros),
//   - longer strings then go through duckdb_vector_assign_string_element, which copies them into
//     the vector's string heap and writes their string_t over the placeholder; once for a run of
//     equal strings (assignLongStrings).
// Every record of a batch is checked before any is written (see check(), also compiled), so a bad record
// refuses its whole batch and never leaves a partial row behind.
import duckdb from '@duckdb/node-bindings';
import { fieldRead } from '../records/define.js';
import { BOOLEAN, DuckDBDataChunk, TIMESTAMP, UBIGINT, USMALLINT, UTINYINT, VARCHAR, type DuckDBAppender, type DuckDBType } from '@duckdb/node-api';

export type ColumnKind = 'timestamp' | 'varchar' | 'utinyint' | 'usmallint' | 'ubigint' | 'boolean';

/** One column, in the table's column order: its type and how to read it from a record. */
export interface ColumnSpec<T> {
  name: string;
  kind: ColumnKind;
  get: (record: T) => unknown;
}

const TYPES: Record<ColumnKind, DuckDBType> = {
  timestamp: TIMESTAMP,
  varchar: VARCHAR,
  utinyint: UTINYINT,
  usmallint: USMALLINT,
  ubigint: UBIGINT,
  boolean: BOOLEAN,
};

/** Bytes per value in a vector's data buffer. */
const WIDTH: Record<ColumnKind, number> = { timestamp: 8, varchar: 16, utinyint: 1, usmallint: 2, ubigint: 8, boolean: 1 };

const TWO_32 = 4294967296;
/** Longest string DuckDB keeps inside its string_t instead of behind a pointer. */
const INLINE_LENGTH = 12;

/**
 * Lays rows start..start+count of one column out in DuckDB's vector format in the scratch views;
 * for a varchar column, returns how many strings must go through DuckDB and lists their rows in
 * `long` and the strings in `longValues` (0 for the other kinds).
 */
type LayOut<T> = (
  records: readonly T[],
  start: number,
  count: number,
  u8: Uint8Array,
  u16: Uint16Array,
  u32: Uint32Array,
  long: Uint32Array,
  longValues: string[],
  inline: typeof writeInline,
) => number;

/** Whether a value fits its column exactly, as a JavaScript condition on `v`. */
const FITS: Record<ColumnKind, string> = {
  varchar: "typeof v==='string'",
  boolean: "typeof v==='boolean'",
  utinyint: "typeof v==='number'&&Number.isSafeInteger(v)&&v>=0&&v<=255",
  usmallint: "typeof v==='number'&&Number.isSafeInteger(v)&&v>=0&&v<=65535",
  ubigint: "typeof v==='number'&&Number.isSafeInteger(v)&&v>=0",
  timestamp: "typeof v==='number'&&Number.isSafeInteger(v)", // any safe integer (µs), negative before 1970
};

/**
 * One compiled loop per column, reading its field by name: a loop shared by the columns, calling
 * each column's getter, went megamorphic on the getters and cost as much as DuckDB's own flush.
 */
function compileLayOut<T>(column: ColumnSpec<T>): LayOut<T> {
  const value = fieldRead('records[start+i]', column.name);
  let body: string;
  switch (column.kind) {
    case 'utinyint':
      body = `for(let i=0;i<count;i++)u8[i]=${value};return 0;`;
      break;
    case 'boolean':
      body = `for(let i=0;i<count;i++)u8[i]=${value}?1:0;return 0;`;
      break;
    case 'usmallint':
      body = `for(let i=0;i<count;i++)u16[i]=${value};return 0;`;
      break;
    case 'timestamp':
    case 'ubigint':
      // Little-endian 64-bit integers as two 32-bit halves: no BigInt per value. For a negative
      // value the high half is negative and the Uint32Array stores its two's complement.
      body = `for(let i=0;i<count;i++){const v=${value};const hi=Math.floor(v/${TWO_32});u32[2*i]=v-hi*${TWO_32};u32[2*i+1]=hi;}return 0;`;
      break;
    case 'varchar':
      // A string that is not inlined gets an empty placeholder until DuckDB writes the real one.
      body = `let n=0;for(let i=0;i<count;i++){const s=${value};if(!inline(u8,u32,i,s)){const k=4*i;u32[k]=0;u32[k+1]=0;u32[k+2]=0;u32[k+3]=0;long[n]=i;longValues[n++]=s;}}return n;`;
      break;
  }
  return new Function('records', 'start', 'count', 'u8', 'u16', 'u32', 'long', 'longValues', 'inline', body) as LayOut<T>;
}

/** A check of a whole record, straight-line: the index of the first column its value does not fit, or -1. */
function compileCheck<T>(columns: ColumnSpec<T>[]): (record: T) => number {
  const tests = columns.map((c, k) => `v=${fieldRead('r', c.name)};if(!(${FITS[c.kind]}))return ${k};`);
  return new Function('r', `let v;${tests.join('')}return -1;`) as (record: T) => number;
}

export class ChunkAppender<T> {
  private readonly chunk: DuckDBDataChunk;
  private readonly capacity = duckdb.vector_size();
  /** One vector's worth of the widest type, reused for every column, and its views. */
  private readonly scratch = new ArrayBuffer(this.capacity * 16);
  private readonly u8 = new Uint8Array(this.scratch);
  private readonly u16 = new Uint16Array(this.scratch);
  private readonly u32 = new Uint32Array(this.scratch);
  /** Rows of the current varchar column whose string goes through DuckDB, and those strings. */
  private readonly longStrings = new Uint32Array(this.capacity);
  private readonly longValues: string[] = new Array<string>(this.capacity).fill('');
  /** assignLongStrings' scratch: (row, row its string was given in) pairs of the repeats. */
  private readonly repeatOf = new Uint32Array(this.capacity * 2);
  private readonly layOuts: LayOut<T>[];
  private readonly checkRecord: (record: T) => number;
  /** Rows appended since the last flush(). */
  unflushed = 0;

  constructor(
    private readonly appender: DuckDBAppender,
    private readonly table: string,
    private readonly columns: ColumnSpec<T>[],
  ) {
    this.chunk = DuckDBDataChunk.create(columns.map((c) => TYPES[c.kind]));
    this.layOuts = columns.map((c) => compileLayOut(c));
    this.checkRecord = compileCheck(columns);
  }

  /** Throws, naming the column, for the first record whose value its column cannot hold exactly. */
  check(records: readonly T[]): void {
    for (const record of records) {
      const bad = this.checkRecord(record);
      if (bad < 0) continue;
      const column = this.columns[bad];
      const value = column.get(record);
      throw new Error(`bad ${this.table} record (${column.name} = ${JSON.stringify(value) ?? String(value)} is not a ${column.kind})`);
    }
  }

  /** Appends records[from, to), which passed check(); they go into the transaction at the next flush(). */
  append(records: readonly T[], from = 0, to = records.length): void {
    for (let start = from; start < to; start += this.capacity) {
      const count = Math.min(this.capacity, to - start);
      const raw = this.chunk.chunk;
      duckdb.data_chunk_reset(raw);
      duckdb.data_chunk_set_size(raw, count);
      for (let c = 0; c < this.columns.length; c++) {
        const column = this.columns[c];
        const vector = duckdb.data_chunk_get_vector(raw, c);
        const long = this.layOuts[c](records, start, count, this.u8, this.u16, this.u32, this.longStrings, this.longValues, writeInline);
        duckdb.copy_data_to_vector(vector, 0, this.scratch, 0, count * WIDTH[column.kind]);
        if (long > 0) this.assignLongStrings(vector, count, long);
      }
      this.appender.appendDataChunk(this.chunk);
      this.unflushed += count;
    }
  }

  /**
   * Appends records that passed check() one data chunk at a time, each flushed into the open
   * transaction, and lets the event loop turn between chunks. Appends and flushes run on the thread
   * that reads libpcap in a live capture. A 19,000-row batch written in one go held it for 60-300 ms
   * (the flush at the next commit as long again), while a 16 MiB kernel buffer fills in about 100 ms
   * at 450,000 packets/s; a chunk at a time, each appended and flushed, the longest hold was
   * 25-45 ms, for the same total time (a throwaway script, 7 batches, twice) and the same import time.
   */
  async appendInSlices(records: readonly T[]): Promise<void> {
    for (let start = 0; start < records.length; start += this.capacity) {
      const end = Math.min(records.length, start + this.capacity);
      this.append(records, start, end);
      this.flush();
      if (end < records.length) await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Moves the appended rows into the open transaction (DuckDB's appender flush), if there are any. */
  flush(): void {
    if (this.unflushed === 0) return;
    this.unflushed = 0;
    this.appender.flushSync();
  }

  /**
   * Gives the long strings of a chunk of `count` rows (listed by layOut) to DuckDB, which copies
   * each into the vector's string heap: a native call and a UTF-8 conversion per string (~0.3 µs).
   * A string equal to the one before it in the column goes over once; its rows get a copy of the
   * first one's string_t, which points into the same heap (as DuckDB's own flattened dictionaries
   * do). On the benchmark capture that spares 44% of the flows' long strings and 61% of the hosts'
   * (a run's source file, end reasons, a host's address in consecutive intervals). Spotting every
   * repeat in the chunk, through a Map, cost as much as the calls it spared: hashing each new string.
   */
  private assignLongStrings(vector: duckdb.Vector, count: number, long: number): void {
    let repeats = 0;
    let last: string | undefined;
    let lastRow = 0;
    for (let k = 0; k < long; k++) {
      const row = this.longStrings[k];
      const value = this.longValues[k];
      if (value === last) {
        this.repeatOf[2 * repeats] = row;
        this.repeatOf[2 * repeats + 1] = lastRow;
        repeats++;
      } else {
        duckdb.vector_assign_string_element(vector, row, value);
        last = value;
        lastRow = row;
      }
    }
    if (repeats === 0) return;
    // The vector's string_t slots as DuckDB left them (a copy), the repeats' slots filled from their
    // first rows', and the whole written back.
    const slots = duckdb.vector_get_data(vector, count * 16);
    for (let k = 0; k < repeats; k++) slots.copyWithin(16 * this.repeatOf[2 * k], 16 * this.repeatOf[2 * k + 1], 16 * this.repeatOf[2 * k + 1] + 16);
    duckdb.copy_data_to_vector(vector, 0, slots.buffer as ArrayBuffer, slots.byteOffset, count * 16);
  }
}

/** Writes s into string_t slot i if it is short ASCII; false when it must go through DuckDB. */
function writeInline(data: Uint8Array, u32: Uint32Array, i: number, s: string): boolean {
  const n = s.length;
  if (n > INLINE_LENGTH) return false;
  for (let k = 0; k < n; k++) if (s.charCodeAt(k) > 0x7f) return false;
  u32[4 * i] = n;
  u32[4 * i + 1] = 0;
  u32[4 * i + 2] = 0;
  u32[4 * i + 3] = 0;
  const at = 16 * i + 4;
  for (let k = 0; k < n; k++) data[at + k] = s.charCodeAt(k);
  return true;
}
