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
import { encodeCursor, type CursorKey } from './cursor.js';
import { raceAbort, ReadGate } from './read-pool.js';
import type { EndReason, FlowFilter, FlowOrder, FlowPage, FlowSummary, TcpState } from './types.js';

/** Estimated bytes per flow held (typed arrays, flowId string, pointers); strings are counted apart. */
const BYTES_PER_FLOW = 6 * 8 + 1 + 2 * 2 + 2 + 12 * 4 + 4 + 8 + 48;
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

/** The string columns, interned per entry. */
const STRING_COLUMNS = [
  'node',
  'iface',
  'transport',
  'clientIp',
  'serverIp',
  'tcpState',
  'app',
  'serverName',
  'confidence',
  'firstPackets',
  'appInfo',
  'endReason',
] as const;

/** Builds an entry from rows arriving in time order (firstSeen, flowId), each with its rank in bytes order. */
export class FlowEntryBuilder {
  private n = 0;
  private cap: number;
  private flowId: string[] = [];
  private nums: Float64Array[];
  private small: Uint16Array;
  private strs: Uint32Array;
  private byBytes: Uint32Array;
  private readonly strings: (string | null)[] = [];
  private readonly codes = new Map<string | null, number>();
  private stringBytes = 0;
  /** Every row so far had the same segment attributes on all its segments (see ENTRY_COLUMNS' uniform). */
  private uniform = true;

  constructor(private readonly maxRows: number) {
    this.cap = Math.min(4096, Math.max(1, maxRows));
    this.nums = Array.from({ length: NUM_COLUMNS }, () => new Float64Array(this.cap));
    this.small = new Uint16Array(this.cap * SMALL_COLUMNS);
    this.strs = new Uint32Array(this.cap * STRING_COLUMNS.length);
    this.byBytes = new Uint32Array(this.cap);
  }

  get rows(): number {
    return this.n;
  }

  /**
   * Appends the rows of one result chunk: `cols[k]` holds column k of ENTRY_COLUMNS for `count` rows
   * (DuckDB values: numbers, bigints, strings, null). False when the entry would exceed maxRows
   * (the caller gives up on caching it).
   */
  addChunk(cols: readonly (readonly unknown[])[], count: number): boolean {
    if (this.n + count > this.maxRows) return false;
    while (this.n + count > this.cap) this.grow();
    const nums = this.nums;
    for (let r = 0; r < count; r++) {
      const i = this.n++;
      this.flowId.push(cols[0]![r] as string);
      for (let c = 0; c < NUM_COLUMNS; c++) nums[c]![i] = Number(cols[1 + c]![r]);
      const s = i * SMALL_COLUMNS;
      for (let c = 0; c < SMALL_COLUMNS; c++) this.small[s + c] = Number(cols[1 + NUM_COLUMNS + c]![r]);
      const t = i * STRING_COLUMNS.length;
      for (let c = 0; c < STRING_COLUMNS.length; c++) this.strs[t + c] = this.intern(cols[1 + NUM_COLUMNS + SMALL_COLUMNS + c]![r] as string | null);
      if (!cols[ENTRY_COLUMNS.length - 2]![r]) this.uniform = false;
      const rank = Number(cols[ENTRY_COLUMNS.length - 1]![r]);
      if (!(rank >= 0 && rank < this.maxRows)) return false;
      // Ranks arrive in any order; the array grows with the rows (every rank is below the final count).
      if (rank >= this.byBytes.length) this.growRanks(rank + 1);
      this.byBytes[rank] = i;
    }
    return true;
  }

  /** The entry, or null when its orders do not agree with the comparisons pages use (see FlowEntry.check). */
  finish(range: { from: number; to: number }): FlowEntry | null {
    const n = this.n;
    const entry = new FlowEntry(
      range,
      n,
      this.flowId,
      this.nums.map((a) => a.slice(0, n)),
      this.small.slice(0, n * SMALL_COLUMNS),
      this.strs.slice(0, n * STRING_COLUMNS.length),
      this.byBytes.slice(0, n),
      this.strings,
      n * BYTES_PER_FLOW + this.stringBytes,
      this.uniform,
    );
    return entry.check() ? entry : null;
  }

  private intern(value: string | null): number {
    let code = this.codes.get(value);
    if (code === undefined) {
      code = this.strings.length;
      this.strings.push(value);
      this.codes.set(value, code);
      this.stringBytes += BYTES_PER_STRING + 2 * (value?.length ?? 0);
    }
    return code;
  }

  private grow(): void {
    const cap = Math.min(this.maxRows, this.cap * 2);
    this.nums = this.nums.map((a) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    });
    const small = new Uint16Array(cap * SMALL_COLUMNS);
    small.set(this.small);
    this.small = small;
    const strs = new Uint32Array(cap * STRING_COLUMNS.length);
    strs.set(this.strs);
    this.strs = strs;
    this.cap = cap;
  }

  private growRanks(min: number): void {
    const ranks = new Uint32Array(Math.max(min, Math.min(this.maxRows, this.byBytes.length * 2)));
    ranks.set(this.byBytes);
    this.byBytes = ranks;
  }
}

const NUM_COLUMNS = 6;
const SMALL_COLUMNS = 5;

/**
 * The columns an entry is built from, in order: FlowSummary field names; `uniform`, whether the
 * flow's segments in the range all have the same node, transport, addresses and ports (true or
 * 1; the attributes the store filters segments by); the row's position in bytes order, 0-based.
 */
export const ENTRY_COLUMNS = [
  'flowId',
  'firstSeen',
  'lastSeen',
  'clientPackets',
  'clientBytes',
  'serverPackets',
  'serverBytes',
  'ipProto',
  'clientPort',
  'serverPort',
  'clientTcpFlags',
  'serverTcpFlags',
  ...STRING_COLUMNS,
  'uniform',
  'byteRank',
] as const;

/**
 * One (range, filter)'s flows: the columns, held in time order, and the rows of each order. A view
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
    private readonly nums: Float64Array[],
    private readonly small: Uint16Array,
    private readonly strs: Uint32Array,
    /** Position in bytes order -> row. */
    private readonly byBytes: Uint32Array,
    private readonly strings: (string | null)[],
    readonly bytes: number,
    /** Every flow's segments share node, transport, addresses and ports (segment filters are flow filters). */
    readonly uniform: boolean,
    timeRows: Uint32Array | null = null,
  ) {
    this.n = n;
    this.timeRows = timeRows;
  }

  private totalBytes(i: number): number {
    return this.nums[3]![i]! + this.nums[5]![i]!;
  }

  /** The row at `pos` in `order`. */
  private row(order: FlowOrder, pos: number): number {
    if (order === 'bytes') return this.byBytes[pos]!;
    return this.timeRows ? this.timeRows[pos]! : pos;
  }

  /** Whether row i comes strictly after the cursor key in its order (the SQL keyset predicate). */
  private after(order: FlowOrder, i: number, key: CursorKey): boolean {
    if (order === 'time') {
      const v = this.nums[0]![i]!;
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
        const key: CursorKey = { order, value: order === 'time' ? this.nums[0]![prev]! : this.totalBytes(prev), flowId: this.flowId[prev]! };
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
      this.nums,
      this.small,
      this.strs,
      bytes,
      this.strings,
      BYTES_PER_VIEW + 8 * timeRows.length,
      this.uniform,
      timeRows,
    );
  }

  /** A row predicate for `filter`, or null (see view()). */
  private matcher(filter: FlowFilter): ((i: number) => boolean) | null {
    const tests: ((i: number) => boolean)[] = [];
    const code = (v: string) => this.strings.indexOf(v); // -1 matches no row
    const strs = this.strs;
    const W = STRING_COLUMNS.length;
    const col = (name: (typeof STRING_COLUMNS)[number]) => STRING_COLUMNS.indexOf(name);
    for (const [field, value] of Object.entries(filter) as [keyof FlowFilter, unknown][]) {
      if (value === undefined) continue;
      switch (field) {
        case 'host': {
          if (!this.uniform) return null;
          const c = code(value as string);
          const a = col('clientIp');
          const b = col('serverIp');
          tests.push((i) => strs[i * W + a] === c || strs[i * W + b] === c);
          break;
        }
        case 'port': {
          if (!this.uniform) return null;
          const port = value as number;
          tests.push((i) => this.small[i * SMALL_COLUMNS + 1] === port || this.small[i * SMALL_COLUMNS + 2] === port);
          break;
        }
        case 'transport':
        case 'node':
        case 'app':
        case 'serverName': {
          if ((field === 'transport' || field === 'node') && !this.uniform) return null;
          const c = code(value as string);
          const k = col(field);
          tests.push((i) => strs[i * W + k] === c);
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
    const nums = this.nums;
    const s = i * SMALL_COLUMNS;
    const t = i * STRING_COLUMNS.length;
    const str = this.strings;
    const strs = this.strs;
    return {
      flowId: this.flowId[i]!,
      node: str[strs[t]!] as string,
      iface: str[strs[t + 1]!] as string,
      firstSeen: nums[0]![i]!,
      lastSeen: nums[1]![i]!,
      transport: str[strs[t + 2]!] as string,
      ipProto: this.small[s]!,
      clientIp: str[strs[t + 3]!] as string,
      clientPort: this.small[s + 1]!,
      serverIp: str[strs[t + 4]!] as string,
      serverPort: this.small[s + 2]!,
      clientPackets: nums[2]![i]!,
      clientBytes: nums[3]![i]!,
      serverPackets: nums[4]![i]!,
      serverBytes: nums[5]![i]!,
      clientTcpFlags: this.small[s + 3]!,
      serverTcpFlags: this.small[s + 4]!,
      tcpState: str[strs[t + 5]!] as TcpState,
      app: str[strs[t + 6]!] as string,
      serverName: str[strs[t + 7]!] as string,
      confidence: str[strs[t + 8]!] as string,
      firstPackets: str[strs[t + 9]!] as string,
      appInfo: str[strs[t + 10]!] as string,
      // max(duration) of the segments = lastSeen - firstSeen of the summed flow (src/records/flow.ts).
      duration: nums[1]![i]! - nums[0]![i]!,
      endReason: str[strs[t + 11]!] as EndReason,
    };
  }
}

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
  get maxRows(): number {
    return Math.floor(this.maxBytes / 2 / BYTES_PER_FLOW);
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
