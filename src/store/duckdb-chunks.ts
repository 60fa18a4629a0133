// Column-at-a-time appends for the DuckDB back end. The import path writes hundreds of thousands
// of rows; appending them value by value (DuckDBAppender.appendVarchar, appendUBigInt, ...) costs a
// native call and, for timestamps and counters, a BigInt and a wrapper object per value, which
// was the largest cost of an import. Here a table's rows are laid out column by column in DuckDB
// data chunks (2048 rows) and handed to the appender one chunk at a time:
//   - each column is laid out in a scratch buffer in DuckDB's vector format and copied into the
//     vector with one native call: numbers through typed-array views (no BigInt per value),
//     strings of up to 12 ASCII bytes inline in DuckDB's 16-byte string_t (length, then the bytes,
//     zero padded: DuckDB compares inlined strings byte for byte, so the padding must be zeros),
//   - longer strings then go through duckdb_vector_assign_string_element, which copies them into
//     the vector's string heap and writes their string_t over the placeholder.
// Every record of a batch is checked before any is written (see check()), so a bad record
// refuses its whole batch and never leaves a partial row behind.
import duckdb from '@duckdb/node-bindings';
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

export class ChunkAppender<T> {
  private readonly chunk: DuckDBDataChunk;
  private readonly capacity = duckdb.vector_size();
  /** One vector's worth of the widest type, reused for every column. */
  private readonly scratch = new ArrayBuffer(this.capacity * 16);
  /** Rows of the current varchar column whose string goes through DuckDB. */
  private readonly longStrings = new Uint32Array(this.capacity);

  constructor(
    private readonly appender: DuckDBAppender,
    private readonly table: string,
    private readonly columns: ColumnSpec<T>[],
  ) {
    this.chunk = DuckDBDataChunk.create(columns.map((c) => TYPES[c.kind]));
  }

  /** Throws, naming the column, for the first record whose value its column cannot hold exactly. */
  check(records: readonly T[]): void {
    for (const record of records) this.checkRecord(record);
  }

  /** Appends records that passed check(); they are committed by the appender's next flush. */
  append(records: readonly T[]): void {
    for (let start = 0; start < records.length; start += this.capacity) {
      const count = Math.min(this.capacity, records.length - start);
      const raw = this.chunk.chunk;
      duckdb.data_chunk_reset(raw);
      duckdb.data_chunk_set_size(raw, count);
      for (let c = 0; c < this.columns.length; c++) {
        const column = this.columns[c];
        const vector = duckdb.data_chunk_get_vector(raw, c);
        const long = layOut(column, this.scratch, this.longStrings, records, start, count);
        duckdb.copy_data_to_vector(vector, 0, this.scratch, 0, count * WIDTH[column.kind]);
        for (let k = 0; k < long; k++) {
          const row = this.longStrings[k];
          duckdb.vector_assign_string_element(vector, row, column.get(records[start + row]) as string);
        }
      }
      this.appender.appendDataChunk(this.chunk);
    }
  }

  private checkRecord(record: T): void {
    for (const column of this.columns) {
      const value = column.get(record);
      const ok =
        column.kind === 'varchar'
          ? typeof value === 'string'
          : column.kind === 'boolean'
            ? typeof value === 'boolean'
            : typeof value === 'number' && Number.isSafeInteger(value) && inRange(column.kind, value);
      if (!ok) {
        throw new Error(`bad ${this.table} record (${column.name} = ${JSON.stringify(value) ?? String(value)} is not a ${column.kind})`);
      }
    }
  }
}

function inRange(kind: ColumnKind, value: number): boolean {
  switch (kind) {
    case 'utinyint':
      return value >= 0 && value <= 0xff;
    case 'usmallint':
      return value >= 0 && value <= 0xffff;
    case 'ubigint':
      return value >= 0;
    default:
      return true; // timestamps: any safe integer (µs), negative before 1970
  }
}

/**
 * Writes rows start..start+count of one column into scratch in DuckDB's vector layout. For a
 * varchar column, returns how many strings must go through DuckDB and lists their rows in long.
 */
function layOut<T>(column: ColumnSpec<T>, scratch: ArrayBuffer, long: Uint32Array, records: readonly T[], start: number, count: number): number {
  const get = column.get;
  switch (column.kind) {
    case 'utinyint': {
      const u8 = new Uint8Array(scratch, 0, count);
      for (let i = 0; i < count; i++) u8[i] = get(records[start + i]) as number;
      return 0;
    }
    case 'boolean': {
      const u8 = new Uint8Array(scratch, 0, count);
      for (let i = 0; i < count; i++) u8[i] = get(records[start + i]) ? 1 : 0;
      return 0;
    }
    case 'usmallint': {
      const u16 = new Uint16Array(scratch, 0, count);
      for (let i = 0; i < count; i++) u16[i] = get(records[start + i]) as number;
      return 0;
    }
    case 'timestamp':
    case 'ubigint': {
      // Little-endian 64-bit integers as two 32-bit halves: no BigInt per value. For a negative
      // value the high half is negative and the Uint32Array stores its two's complement.
      const u32 = new Uint32Array(scratch, 0, count * 2);
      for (let i = 0; i < count; i++) {
        const v = get(records[start + i]) as number;
        const hi = Math.floor(v / TWO_32);
        u32[2 * i] = v - hi * TWO_32;
        u32[2 * i + 1] = hi;
      }
      return 0;
    }
    case 'varchar': {
      const u8 = new Uint8Array(scratch, 0, count * 16);
      const u32 = new Uint32Array(scratch, 0, count * 4);
      let n = 0;
      for (let i = 0; i < count; i++) {
        if (!writeInline(u8, u32, i, get(records[start + i]) as string)) {
          u32[4 * i] = 0; // an empty placeholder until DuckDB writes the real one
          u32[4 * i + 1] = u32[4 * i + 2] = u32[4 * i + 3] = 0;
          long[n++] = i;
        }
      }
      return n;
    }
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
