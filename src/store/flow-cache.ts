// A bounded cache of flow query results (DuckDB back end). Paging flows re-aggregated every segment
// of the range by flowId for each page, and again for totalCount; with 50 clients paging a day
// (300,000 segments) that was the whole server's time. Here the filtered, summed flows of one
// (range, filter) are computed once, by the same SQL, in both orders (DuckDB sorts them), and kept
// column by column in typed arrays with their strings interned, ~150 bytes a flow; a page is then
// a binary search for the cursor and 100 rows materialised, and totalCount the entry's length.
//
// Bounds: a memory budget (bytes, estimated from the arrays and strings held) with LRU eviction, a
// maximum number of entries, and a largest entry (half the budget): a result over it is not kept
// (the caller pages it with SQL, as before) and its key is remembered as too large.
// Freshness: entries whose range a committed write touched are dropped (see invalidate()), and a
// result computed while such a write committed is not kept.
// Concurrent requests for one key share one computation; it is interrupted when all of them leave.
// Filters: the unfiltered entry of a range answers every filter of that range as a view (the rows
// that match, in both orders, 8 bytes a flow; see FlowEntry.view), so that eight filters of one
// range cost one computation, not eight. Views live and die with their entry.
import { FLOW } from '../records/index.js';
import { encodeCursor, type CursorKey } from './cursor.js';
import { appMatches, hostPredicate, parseHostSpec, parseServerNameSpec, serverNamePredicate } from '../records/flow-filter.js';
import { raceAbort, ReadGate } from './read-pool.js';
import type { FlowFilter, FlowOrder, FlowPage, FlowSummary } from './types.js';

// An entry's layout follows the flow record's definition (src/records/flow.ts): every summary
// column but the flow id is one array, of the narrowest unsigned type its values fit (a column of
// zeros or of a few distinct strings costs a byte a flow), so that a new column is cached with no
// edit here and costs little until it carries values.
const HELD = FLOW.summary.filter((c) => c.combine !== 'key');
const HELD_FIELDS = HELD.map((c) => c.field);
const KIND = HELD.map((c) => (c.type === 'str' ? 'str' : c.type === 'bool' ? 'bool' : 'num'));
const held = (field: string) => HELD_FIELDS.indexOf(field);
/** Where the columns that orders, cursors and filters read are. */
const FIRST_SEEN = held('firstSeen');
const CLIENT_BYTES = held('clientBytes');
const SERVER_BYTES = held('serverBytes');
const CLIENT_PORT = held('clientPort');
const SERVER_PORT = held('serverPort');

/** Estimated bytes per flow besides its columns: both orders' rows, the flowId string and its pointer. */
const BYTES_PER_FLOW = 2 * 4 + 8 + 48;
const BYTES_PER_STRING = 40;
const MAX_ENTRIES = 64;
const MAX_TOO_LARGE = 256;
/** Filter views one entry keeps (the oldest goes first). */
const MAX_VIEWS = 64;
/** Estimated bytes of a view besides its two row arrays. */
const BYTES_PER_VIEW = 256;
/** Committed writes remembered to judge computations that were running meanwhile. */
const MAX_WRITE_LOG = 64;
/** Computations waiting for their turn; the next is refused with StoreBusyError. */
const MAX_QUEUED_BUILDS = 256;

type NumberArray = Uint8Array | Uint16Array | Uint32Array | Float64Array;

/** The narrowest array for a value: unsigned integers by their size, anything else as a double. */
function widthFor(v: number): 0 | 1 | 2 | 3 {
  if (!(v >= 0 && Number.isInteger(v))) return 3;
  return v < 0x100 ? 0 : v < 0x10000 ? 1 : v < 0x100000000 ? 2 : 3;
}
const ARRAYS = [Uint8Array, Uint16Array, Uint32Array, Float64Array] as const;

/** One column being built: numbers (codes, for strings) in an array widened as larger values come. */
class ColumnBuilder {
  array: NumberArray = new Uint8Array(0);
  private width = 0;
  /** Strings: each distinct value once, its index the code held (per column: most columns have a few). */
  readonly dict: (string | null)[] = [];
  private readonly codes = new Map<string | null, number>();
  stringBytes = 0;

  resize(cap: number): void {
    const a = new ARRAYS[this.width](cap);
    a.set(this.array.subarray(0, Math.min(cap, this.array.length)));
    this.array = a;
  }

  set(i: number, v: number): void {
    const w = widthFor(v);
    if (w > this.width) {
      this.width = w;
      this.resize(this.array.length);
    }
    this.array[i] = v;
  }

  code(value: string | null): number {
    let code = this.codes.get(value);
    if (code === undefined) {
      code = this.dict.length;
      this.dict.push(value);
      this.codes.set(value, code);
      this.stringBytes += BYTES_PER_STRING + 2 * (value?.length ?? 0);
    }
    return code;
  }
}

/** Builds an entry from the summed flows of a range, in any order (finish() sorts both orders). */
export class FlowEntryBuilder {
  private n = 0;
  private cap = 0;
  private flowId: string[] = [];
  private readonly columns = HELD.map(() => new ColumnBuilder());
  /** Every row so far had the same segment attributes on all its segments (see ENTRY_COLUMNS' uniform). */
  private uniform = true;

  /** maxBytes: the largest entry kept (see bytes). */
  constructor(private readonly maxBytes: number) {}

  get rows(): number {
    return this.n;
  }

  /** Estimated bytes held: the columns' arrays and strings, and BYTES_PER_FLOW a flow. */
  get bytes(): number {
    let bytes = this.n * BYTES_PER_FLOW;
    for (const c of this.columns) bytes += (c.array.byteLength / Math.max(1, this.cap)) * this.n + c.stringBytes;
    return bytes;
  }

  /**
   * Appends the rows of one result chunk: `cols[k]` holds column k of ENTRY_COLUMNS for `count` rows
   * (DuckDB values: numbers, bigints, strings, booleans, null). False when the entry grew past
   * maxBytes (the caller gives up on caching it).
   */
  addChunk(cols: readonly (readonly unknown[])[], count: number): boolean {
    if (this.n + count > this.cap) {
      this.cap = Math.max(this.n + count, this.cap * 2, 1024);
      for (const c of this.columns) c.resize(this.cap);
    }
    const columns = this.columns;
    for (let r = 0; r < count; r++) {
      const i = this.n++;
      this.flowId.push(cols[0]![r] as string);
      for (let k = 0; k < columns.length; k++) {
        const v = cols[1 + k]![r];
        columns[k]!.set(i, KIND[k] === 'str' ? columns[k]!.code(v as string | null) : Number(v));
      }
      if (!cols[ENTRY_COLUMNS.length - 1]![r]) this.uniform = false;
    }
    return this.bytes <= this.maxBytes;
  }

  /** The entry, or null when its orders do not agree with the comparisons pages use (see FlowEntry.check). */
  finish(range: { from: number; to: number }): FlowEntry | null {
    const n = this.n;
    const columns = this.columns.map((c) => c.array.slice(0, n));
    // Both orders are sorted here rather than by the store: a window and a sort over every summed
    // column held the whole result twice in DuckDB (250,000 flows went over a 200 MB memory_limit).
    const ids = this.flowId;
    const first = columns[FIRST_SEEN]!;
    const cb = columns[CLIENT_BYTES]!;
    const sb = columns[SERVER_BYTES]!;
    const byId = (a: number, b: number) => (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0);
    const rows = () => {
      const r = new Uint32Array(n);
      for (let i = 0; i < n; i++) r[i] = i;
      return r;
    };
    const byTime = rows().sort((a, b) => first[a]! - first[b]! || byId(a, b));
    const byBytes = rows().sort((a, b) => cb[b]! + sb[b]! - (cb[a]! + sb[a]!) || byId(a, b));
    let bytes = n * BYTES_PER_FLOW;
    for (const [k, c] of columns.entries()) bytes += c.byteLength + this.columns[k]!.stringBytes;
    const entry = new FlowEntry(
      range,
      n,
      ids,
      columns,
      this.columns.map((c) => c.dict),
      byBytes,
      bytes,
      this.uniform,
      byTime,
    );
    return entry.check() ? entry : null;
  }
}

/**
 * The columns an entry is built from, in order: FlowSummary field names; `uniform`, whether the
 * flow's segments in the range all have the same node, transport, addresses and ports (true or
 * 1; the attributes the store filters segments by).
 */
export const ENTRY_COLUMNS: readonly string[] = ['flowId', ...HELD_FIELDS, 'uniform'];

/** The entry columns the store selects as DOUBLE (times and counters, exact to 2^53). */
export const NUMERIC_ENTRY_COLUMNS: ReadonlySet<string> = new Set(HELD.filter((c) => c.type === 'time' || c.type === 'counter').map((c) => c.field));

/**
 * One (range, filter)'s flows: the columns, and the rows of each order. A view
 * (see view()) shares its entry's columns and has its own rows.
 */
export class FlowEntry {
  /** Rows in time order; null: all of them, 0..n-1. */
  private readonly timeRows: Uint32Array | null;
  /** Filter views of this entry by filter key, oldest first (entries only; a view has none). */
  readonly views = new Map<string, FlowEntry>();
  /** Bytes its views hold. */
  viewBytes = 0;
  /** Rows of the entry, or of the view. */
  readonly n: number;

  constructor(
    readonly range: { from: number; to: number },
    n: number,
    private readonly flowId: string[],
    /** One array per held column (HELD's order): values, or codes into the column's dict. */
    private readonly columns: NumberArray[],
    private readonly dicts: (string | null)[][],
    /** Position in bytes order -> row. */
    private readonly byBytes: Uint32Array,
    readonly bytes: number,
    /** Every flow's segments share node, transport, addresses and ports (segment filters are flow filters). */
    readonly uniform: boolean,
    timeRows: Uint32Array | null = null,
  ) {
    this.n = n;
    this.timeRows = timeRows;
  }

  private totalBytes(i: number): number {
    return this.columns[CLIENT_BYTES]![i]! + this.columns[SERVER_BYTES]![i]!;
  }

  /** The row at `pos` in `order`. */
  private row(order: FlowOrder, pos: number): number {
    if (order === 'bytes') return this.byBytes[pos]!;
    return this.timeRows ? this.timeRows[pos]! : pos;
  }

  /** Whether row i comes strictly after the cursor key in its order (the SQL keyset predicate). */
  private after(order: FlowOrder, i: number, key: CursorKey): boolean {
    if (order === 'time') {
      const v = this.columns[FIRST_SEEN]![i]!;
      return v > key.value || (v === key.value && this.flowId[i]! > key.flowId);
    }
    const v = this.totalBytes(i);
    return v < key.value || (v === key.value && this.flowId[i]! > key.flowId);
  }

  /**
   * Both orders must be strictly increasing under the comparisons the binary search makes (they
   * are DuckDB's order; JS and DuckDB compare the hex flow ids alike, but an id outside ASCII
   * could differ): otherwise the entry is not used.
   */
  check(): boolean {
    for (const order of ['time', 'bytes'] as const) {
      for (let p = 1; p < this.n; p++) {
        const prev = this.row(order, p - 1);
        const key: CursorKey = { order, value: order === 'time' ? this.columns[FIRST_SEEN]![prev]! : this.totalBytes(prev), flowId: this.flowId[prev]! };
        if (!this.after(order, this.row(order, p), key)) return false;
      }
    }
    return true;
  }

  /**
   * The flows of this entry that `filter` keeps, as the store's SQL keeps them (segment filters
   * before summing, app, server name and bytes after), in both orders (subsequences of this
   * entry's, so still ordered); null when it cannot tell: segment filters on an entry whose flows'
   * segments differ in what they filter on, or a filter field it does not know.
   */
  view(filter: FlowFilter): FlowEntry | null {
    const match = this.matcher(filter);
    if (!match) return null;
    const time: number[] = [];
    for (let p = 0; p < this.n; p++) {
      const i = this.row('time', p);
      if (match(i)) time.push(i);
    }
    const bytes = new Uint32Array(time.length);
    let k = 0;
    for (let p = 0; p < this.n; p++) {
      const i = this.byBytes[p]!;
      if (match(i)) bytes[k++] = i;
    }
    const timeRows = Uint32Array.from(time);
    return new FlowEntry(
      this.range,
      timeRows.length,
      this.flowId,
      this.columns,
      this.dicts,
      bytes,
      BYTES_PER_VIEW + 8 * timeRows.length,
      this.uniform,
      timeRows,
    );
  }

  /** A row predicate for `filter`, or null (see view()). */
  private matcher(filter: FlowFilter): ((i: number) => boolean) | null {
    const tests: ((i: number) => boolean)[] = [];
    const cols = this.columns;
    /** The column of a string field, and which of its codes `test` keeps (1) and drops (0). */
    const codes = (field: string, test: (v: string | null) => boolean) => {
      const k = held(field);
      return { a: cols[k]!, keep: Uint8Array.from(this.dicts[k]!, (v) => (test(v) ? 1 : 0)) };
    };
    for (const [field, value] of Object.entries(filter) as [keyof FlowFilter, unknown][]) {
      if (value === undefined) continue;
      switch (field) {
        case 'host': {
          // An address or a prefix (flow-filter.ts): the codes of the addresses it takes.
          if (!this.uniform) return null;
          const test = hostPredicate(parseHostSpec(value as string));
          const client = codes('clientIp', test);
          const server = codes('serverIp', test);
          tests.push((i) => client.keep[client.a[i]!] === 1 || server.keep[server.a[i]!] === 1);
          break;
        }
        case 'port': {
          if (!this.uniform) return null;
          const port = value as number;
          const client = cols[CLIENT_PORT]!;
          const server = cols[SERVER_PORT]!;
          tests.push((i) => client[i] === port || server[i] === port);
          break;
        }
        case 'app':
        case 'serverName': {
          // Values as of the latest segment: any case, and server-name globs (flow-filter.ts).
          const name = field === 'serverName' ? serverNamePredicate(parseServerNameSpec(value as string)) : null;
          // A NULL name equals nothing in SQL, not even the empty filter.
          const test = name ? (v: string | null) => v !== null && name(v) : (v: string | null) => appMatches(v, value as string);
          const { a, keep } = codes(field, test);
          tests.push((i) => keep[a[i]!] === 1);
          break;
        }
        case 'transport':
        case 'node':
        case 'communityId': {
          // Segment filters hold for the summed flow when its segments agree.
          if (!this.uniform) return null;
          const { a, keep } = codes(field, (v) => v === value);
          tests.push((i) => keep[a[i]!] === 1);
          break;
        }
        case 'minBytes': {
          const min = value as number;
          tests.push((i) => this.totalBytes(i) >= min);
          break;
        }
        default:
          return null;
      }
    }
    return (i) => tests.every((t) => t(i));
  }

  /** A page: the `first` flows after the cursor in `order`, as queryFlows returns it. */
  page(order: FlowOrder, cursor: CursorKey | undefined, first: number): FlowPage {
    let lo = 0;
    if (cursor) {
      let hi = this.n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.after(order, this.row(order, mid), cursor)) hi = mid;
        else lo = mid + 1;
      }
    }
    const end = Math.min(this.n, lo + first);
    const edges: FlowPage['edges'] = new Array(end - lo);
    for (let p = lo; p < end; p++) {
      const i = this.row(order, p);
      const node = this.summary(i);
      edges[p - lo] = {
        node,
        cursor: encodeCursor({ order, value: order === 'time' ? node.firstSeen : node.clientBytes + node.serverBytes, flowId: node.flowId }),
      };
    }
    return { edges, pageInfo: { hasNextPage: end < this.n, endCursor: edges.length ? edges[edges.length - 1]!.cursor : null }, totalCount: this.n };
  }

  private summary(i: number): FlowSummary {
    return readSummary(this.flowId, this.columns, this.dicts, i);
  }
}

/**
 * Reads row i back as a FlowSummary: compiled once from the definition into one object literal (the
 * summary's fields in the definition's order), so that every summary shares one shape; a loop adding
 * the fields by name cost a keyed store per field and more garbage (the paging load bench's 23% GC).
 */
const readSummary = new Function(
  'ids',
  'cols',
  'dicts',
  'i',
  `return { ${FLOW.summary
    .map((c) => {
      const k = HELD_FIELDS.indexOf(c.field);
      const read = k < 0 ? 'ids[i]' : KIND[k] === 'str' ? `dicts[${k}][cols[${k}][i]]` : KIND[k] === 'bool' ? `cols[${k}][i] === 1` : `cols[${k}][i]`;
      if (!/^[A-Za-z_]\w*$/.test(c.field)) throw new Error(`not a field name: ${c.field}`);
      return `${c.field}: ${read}`;
    })
    .join(', ')} };`,
) as (ids: string[], cols: NumberArray[], dicts: (string | null)[][], i: number) => FlowSummary;

interface InFlight {
  promise: Promise<FlowEntry | null>;
  waiters: number;
  abort: AbortController;
}

export interface FlowCacheState {
  entries: number;
  /** Filter views held by the entries. */
  views: number;
  /** Computations running, and waiting for their turn (see FlowCache's `builds`). */
  building: number;
  buildsQueued: number;
  /** Computations started. */
  builds: number;
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
}

export class FlowCache {
  private readonly entries = new Map<string, FlowEntry>();
  private readonly inFlight = new Map<string, InFlight>();
  /** Keys whose result is over the largest entry, with the write generation they were seen at. */
  private readonly tooLarge = new Map<string, number>();
  private bytes = 0;
  private generation = 0;
  /** Recent committed writes: generation and the ts span of the flow segments written. */
  private readonly writes: { generation: number; minTs: number; maxTs: number }[] = [];
  private hits = 0;
  private misses = 0;
  private started = 0;

  /**
   * Computations run one at a time by default: each sums and sorts the range's segments in DuckDB,
   * whose memory_limit they share (four at once over a day ran DuckDB out of memory), and with
   * DuckDB using every core a second one only makes both slower.
   */
  private readonly builds: ReadGate;

  constructor(
    readonly maxBytes: number,
    opts: { maxBuilds?: number } = {},
  ) {
    this.builds = new ReadGate({ size: opts.maxBuilds ?? 1, queueLimit: MAX_QUEUED_BUILDS });
  }

  /** Rows one entry may hold (half the budget). */
  /** The largest entry kept: half the budget. */
  get maxEntryBytes(): number {
    return Math.floor(this.maxBytes / 2);
  }

  state(): FlowCacheState {
    let views = 0;
    for (const e of this.entries.values()) views += e.views.size;
    const b = this.builds.state();
    return {
      entries: this.entries.size,
      views,
      building: b.active,
      buildsQueued: b.queued,
      builds: this.started,
      bytes: this.bytes,
      maxBytes: this.maxBytes,
      hits: this.hits,
      misses: this.misses,
    };
  }

  /**
   * The entry for `key` (range `range`), computed by `build` when missing; null when the result is
   * too large to keep (the caller answers with SQL). `signal` abandons the wait (StoreQueryCancelled);
   * the computation stops when no caller waits for it any more.
   */
  async get(
    key: string,
    range: { from: number; to: number },
    build: (signal: AbortSignal) => Promise<FlowEntry | null>,
    signal?: AbortSignal,
  ): Promise<FlowEntry | null> {
    const hit = this.entries.get(key);
    if (hit) {
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, hit);
      this.hits++;
      return hit;
    }
    if (this.tooLarge.get(key) === this.generation) return null;
    this.misses++;
    let flight = this.inFlight.get(key);
    if (!flight) {
      const started = this.generation;
      const abort = new AbortController();
      this.started++;
      const promise = this.build(build, abort.signal).then(
        (entry) => {
          this.inFlight.delete(key);
          if (!entry) {
            this.tooLarge.delete(key);
            this.tooLarge.set(key, started);
            if (this.tooLarge.size > MAX_TOO_LARGE) this.tooLarge.delete(this.tooLarge.keys().next().value as string);
          } else if (this.unchangedSince(started, range)) this.insert(key, entry);
          return entry;
        },
        (err: unknown) => {
          this.inFlight.delete(key);
          throw err;
        },
      );
      flight = { promise, waiters: 0, abort };
      this.inFlight.set(key, flight);
    }
    const f = flight;
    f.waiters++;
    try {
      return await raceAbort(f.promise, signal);
    } finally {
      if (--f.waiters === 0 && signal?.aborted) f.abort.abort();
    }
  }

  /**
   * The view of `entry` (cached under `key`) that `filter` (`filterKey`) selects, made once and
   * kept with the entry while it is cached; null when the entry cannot answer the filter.
   */
  view(key: string, entry: FlowEntry, filterKey: string, filter: FlowFilter): FlowEntry | null {
    const hit = entry.views.get(filterKey);
    if (hit) {
      entry.views.delete(filterKey);
      entry.views.set(filterKey, hit);
      return hit;
    }
    const view = entry.view(filter);
    if (!view || this.entries.get(key) !== entry) return view;
    entry.views.set(filterKey, view);
    entry.viewBytes += view.bytes;
    this.bytes += view.bytes;
    if (entry.views.size > MAX_VIEWS) {
      const [oldKey, old] = entry.views.entries().next().value as [string, FlowEntry];
      entry.views.delete(oldKey);
      entry.viewBytes -= old.bytes;
      this.bytes -= old.bytes;
    }
    this.evict(key);
    return view;
  }

  /** `build`, once a computation slot is free (see `builds`). */
  private async build(build: (signal: AbortSignal) => Promise<FlowEntry | null>, signal: AbortSignal): Promise<FlowEntry | null> {
    await this.builds.acquire(signal);
    try {
      return await build(signal);
    } finally {
      this.builds.release();
    }
  }

  /**
   * Flow segments with ts in [minTs, maxTs] were committed: entries whose range holds any such ts
   * are dropped, and results being computed are not kept.
   */
  invalidate(minTs: number, maxTs: number): void {
    this.generation++;
    this.writes.push({ generation: this.generation, minTs, maxTs });
    if (this.writes.length > MAX_WRITE_LOG) this.writes.shift();
    for (const [key, entry] of this.entries) {
      if (overlaps(entry.range, minTs, maxTs)) this.remove(key, entry);
    }
    this.tooLarge.clear();
  }

  clear(): void {
    for (const f of this.inFlight.values()) f.abort.abort();
    this.entries.clear();
    this.bytes = 0;
  }

  private unchangedSince(generation: number, range: { from: number; to: number }): boolean {
    if (generation === this.generation) return true;
    const oldest = this.writes[0]?.generation ?? Infinity;
    if (oldest > generation + 1) return false; // the log no longer reaches back that far
    return this.writes.every((w) => w.generation <= generation || !overlaps(range, w.minTs, w.maxTs));
  }

  private insert(key: string, entry: FlowEntry): void {
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    this.entries.set(key, entry);
    this.bytes += entry.bytes;
    this.evict(key);
  }

  /** Drops the least recently used entries but `keep` while over the budget or the entry count. */
  private evict(keep: string): void {
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes && this.entries.size <= MAX_ENTRIES) break;
      if (k !== keep) this.remove(k, e);
    }
  }

  private remove(key: string, entry: FlowEntry): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes + entry.viewBytes;
  }
}

function overlaps(range: { from: number; to: number }, minTs: number, maxTs: number): boolean {
  return maxTs >= range.from && minTs < range.to;
}
