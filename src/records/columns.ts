// Records laid out as columns, to hand a batch from one thread to another: decode workers post
// their flow, host and traffic records to the thread that writes the store.
//
// postMessage clones an array of records object by object, each with its property names: ~4.7 µs
// a flow record each way on the benchmark's records (40,960 real flow records: 190 ms from one
// thread to the other). As columns, the numbers of all rows go as one Float64Array (transferred,
// not copied) and the strings as indexes into one list of the batch's strings, each sent once
// where a column repeats its values (addresses, names, states), so the receiving thread only
// builds the objects: the same 40,960 records took 30-50 ms to encode, 7-20 ms to post and 6-25
// ms to decode.
import type { AnyRecordDef, ColumnInfo } from './define.js';

/** A batch of records of one definition, column after column. */
export interface RecordColumns {
  rows: number;
  /** The numeric columns (time, u8, u16, counter), `rows` values each, in table order. */
  numbers: Float64Array;
  /** The bool columns, 0 or 1. */
  flags: Uint8Array;
  /** The string columns: each value's index in `strings`. */
  stringIndexes: Uint32Array;
  /** The batch's distinct strings. */
  strings: string[];
}

interface Layout {
  numeric: ColumnInfo[];
  bool: ColumnInfo[];
  str: ColumnInfo[];
  /** Builds the records of a batch: one object literal per row, every field in table order. */
  build: (c: RecordColumns) => unknown[];
  /** Reads every field of every record into the numbers, flags and (column after column) string values. */
  extract: (records: readonly unknown[], numbers: Float64Array, flags: Uint8Array, values: string[]) => void;
}

const layouts = new WeakMap<AnyRecordDef, Layout>();

/** Rows of a string column looked at to tell whether its values repeat (see encodeRecords). */
const UNIQUE_PROBE_ROWS = 256;

function layoutOf(def: AnyRecordDef): Layout {
  let layout = layouts.get(def);
  if (layout) return layout;
  const numeric = def.list.filter((c) => c.type !== 'str' && c.type !== 'bool');
  const bool = def.list.filter((c) => c.type === 'bool');
  const str = def.list.filter((c) => c.type === 'str');
  // One literal with every field, generated from the definition: objects made alike share one
  // hidden class from the start (assigning fields one by one is twice as slow here).
  const fields = def.list.map((c) => {
    const value = c.type === 'str' ? `s[x[${str.indexOf(c)}*n+i]]` : c.type === 'bool' ? `b[${bool.indexOf(c)}*n+i]===1` : `v[${numeric.indexOf(c)}*n+i]`;
    return `${JSON.stringify(c.field)}:${value}`;
  });
  const body = `const n=c.rows,v=c.numbers,b=c.flags,x=c.stringIndexes,s=c.strings,out=new Array(n);for(let i=0;i<n;i++)out[i]={${fields.join(',')}};return out;`;
  const build = new Function('c', body) as (c: RecordColumns) => unknown[];
  // The reverse, as named property reads: read by a field name that changes from column to
  // column (r[field]), a record's fields cost several times as much.
  const reads = def.list.map((c) => {
    const read = `r[${JSON.stringify(c.field)}]`;
    if (c.type === 'str') return `s[${str.indexOf(c)}*n+i]=${read};`;
    if (c.type === 'bool') return `b[${bool.indexOf(c)}*n+i]=${read}===true?1:0;`;
    return `v[${numeric.indexOf(c)}*n+i]=${read};`;
  });
  const extract = new Function(
    'records',
    'v',
    'b',
    's',
    `const n=records.length;for(let i=0;i<n;i++){const r=records[i];${reads.join('')}}`,
  ) as Layout['extract'];
  layout = { numeric, bool, str, build, extract };
  layouts.set(def, layout);
  return layout;
}

/** Lays records of `def` out as columns (see RecordColumns). */
export function encodeRecords<R>(def: AnyRecordDef, records: readonly R[]): RecordColumns {
  const { numeric, bool, str, extract } = layoutOf(def);
  const n = records.length;
  const numbers = new Float64Array(n * numeric.length);
  const flags = new Uint8Array(n * bool.length);
  const stringIndexes = new Uint32Array(n * str.length);
  const strings: string[] = [];
  const index = new Map<string, number>();
  const values = new Array<string>(n * str.length);
  extract(records, numbers, flags, values);
  for (let c = 0; c < str.length; c++) {
    const at = c * n;
    let last: unknown;
    let lastIndex = 0;
    let distinct = 0;
    // Off for a column of mostly distinct values (flow ids, Community IDs): a lookup would cost
    // more than sending the value again.
    let lookup = true;
    for (let i = 0; i < n; i++) {
      if (i === UNIQUE_PROBE_ROWS && distinct * 2 > UNIQUE_PROBE_ROWS) lookup = false;
      const value = values[at + i];
      // Many columns repeat the row before (node, source, states): no lookup for those.
      if (value !== last) {
        let k = lookup ? index.get(value) : undefined;
        if (k === undefined) {
          k = strings.length;
          strings.push(value);
          if (lookup) {
            index.set(value, k);
            distinct++;
          }
        }
        last = value;
        lastIndex = k;
      }
      stringIndexes[at + i] = lastIndex;
    }
  }
  return { rows: n, numbers, flags, stringIndexes, strings };
}

/** The records encodeRecords laid out, as objects with every field of `def` in table order. */
export function decodeRecords<R>(def: AnyRecordDef, columns: RecordColumns): R[] {
  return layoutOf(def).build(columns) as R[];
}

/** The buffers of `columns` that postMessage can move instead of copying (the sender loses them). */
export function columnBuffers(columns: RecordColumns): ArrayBuffer[] {
  return [columns.numbers.buffer as ArrayBuffer, columns.flags.buffer as ArrayBuffer, columns.stringIndexes.buffer as ArrayBuffer];
}
