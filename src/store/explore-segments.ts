// Explore from memory (issue 21: p99 under 100 ms over a day of 300,000 flow segments). The SQL
// statement (explore.ts) re-reads and re-groups every segment of the range for each request: over a
// day that was 60-330 ms, and over 1 s for host/peer pairs. Here the segments are held by hour
// blocks, column by column in typed arrays with their strings interned per block, and a request
// is a group-by over those arrays in JavaScript (a few ms for 300,000 rows), with the same
// semantics as the SQL statement: the same keys (as the statement's VARCHAR text), sums, distinct
// flows, order (metric descending, then keys in DuckDB's byte order, nulls last) and series.
//
// Blocks: the segments whose ts falls in one hour (EXPLORE_BLOCK_US), so that ranges that move
// (a live "last hour", the web client's presets) reuse what is loaded and a write drops only the
// hours it touched. A request's missing blocks are read in one statement. Bounds: a memory budget
// (bytes, estimated; a day of 300,000 segments is ~45 MB) with least-recently-used eviction; a
// request whose blocks do not fit in it is answered by the SQL statement instead (the caller does
// that on null).
// Warming: a request whose blocks are not all held is answered by SQL at once while they are read
// in the background (DuckDbStore.explore), so that no request waits for the read (a day took
// ~1-10 s, against the statement's tenths of a second), and the requests after it are answered
// from memory.
// Freshness: blocks a committed write touched are dropped (invalidate()), and blocks read while
// such a write committed are used for that request only, not kept.
import { appMatches, hostPredicate, parseHostSpec, parseServerNameSpec, serverNamePredicate } from '../records/flow-filter.js';
import { type ExploreDimension, type ExploreFilter, type ExploreItem, type ExploreQuery, type ExplorePoint, HOST_DIMENSIONS } from './explore.js';

/** Explore's memory budget by default (DuckDbStore's exploreCacheBytes, `--explore-cache-mb`). */
export const DEFAULT_EXPLORE_CACHE_BYTES = 128 * 1024 * 1024;
/** A block's span: one hour of segment timestamps (µs). */
export const EXPLORE_BLOCK_US = 3_600_000_000;
/** Estimated bytes of a segment in a block: 4 doubles, 14 codes, the flow id's slot. */
const BYTES_PER_SEGMENT = 4 * 8 + 14 * 4 + 8;
const BYTES_PER_STRING = 40;
/** Committed writes remembered to judge reads that were running meanwhile. */
const MAX_WRITE_LOG = 64;
/** Pairs of values up to which a pair's item is found in a dense table (4 bytes each) rather than a Map. */
const MAX_DENSE_PAIRS = 4_000_000;

/**
 * The string columns a block holds, as the statement's dimension SQL yields them (ports and AS
 * numbers as their decimal text), and the SQL that reads each.
 */
export const SEGMENT_COLUMNS = [
  ['clientIp', 'client_ip'],
  ['serverIp', 'server_ip'],
  ['port', 'CAST(server_port AS VARCHAR)'],
  ['transport', 'transport'],
  ['app', 'app'],
  ['serverName', 'server_name'],
  ['node', 'node'],
  ['iface', 'iface'],
  ['clientCountry', 'client_country'],
  ['serverCountry', 'server_country'],
  ['clientAsn', 'CAST(client_asn AS VARCHAR)'],
  ['serverAsn', 'CAST(server_asn AS VARCHAR)'],
  ['clientNetwork', 'client_network'],
  ['serverNetwork', 'server_network'],
] as const;
type SegmentColumn = (typeof SEGMENT_COLUMNS)[number][0];
const COLUMN_INDEX = new Map<string, number>(SEGMENT_COLUMNS.map(([name], i) => [name, i]));
const col = (name: SegmentColumn) => COLUMN_INDEX.get(name)!;
const CLIENT_IP = col('clientIp');
const SERVER_IP = col('serverIp');

/**
 * The SELECT list of a block read, in the order addChunk takes: ts, first_seen, bytes, packets
 * (DOUBLE), the flow id of segments that are not their flow's first (NULL for a first: only later
 * segments can have begun before a range), then SEGMENT_COLUMNS.
 */
export const SEGMENT_SELECT = [
  'epoch_us(ts)::DOUBLE',
  'epoch_us(first_seen)::DOUBLE',
  '(client_bytes + server_bytes)::DOUBLE',
  '(client_packets + server_packets)::DOUBLE',
  'CASE WHEN ts = first_seen THEN NULL ELSE flow_id END',
  ...SEGMENT_COLUMNS.map(([, sql]) => sql),
].join(', ');

/** One hour's segments. */
export class SegmentBlock {
  n = 0;
  ts = new Float64Array(0);
  firstSeen = new Float64Array(0);
  bytes = new Float64Array(0);
  packets = new Float64Array(0);
  /** Flow id of segments that are not their flow's first; null for firsts. */
  readonly flowId: (string | null)[] = [];
  codes: Uint32Array[] = SEGMENT_COLUMNS.map(() => new Uint32Array(0));
  /** Per column: each distinct value once, its index the code. */
  readonly dicts: (string | null)[][] = SEGMENT_COLUMNS.map(() => []);
  private readonly lookup = SEGMENT_COLUMNS.map(() => new Map<string | null, number>());
  private stringBytes = 0;

  constructor(readonly start: number) {}

  get bytesHeld(): number {
    return this.ts.length * BYTES_PER_SEGMENT + this.stringBytes;
  }

  private grow(need: number): void {
    if (need <= this.ts.length) return;
    const cap = Math.max(need, this.ts.length * 2, 256);
    const f64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a.subarray(0, this.n));
      return b;
    };
    this.ts = f64(this.ts);
    this.firstSeen = f64(this.firstSeen);
    this.bytes = f64(this.bytes);
    this.packets = f64(this.packets);
    this.codes = this.codes.map((a) => {
      const b = new Uint32Array(cap);
      b.set(a.subarray(0, this.n));
      return b;
    });
  }

  /** Appends row r of a chunk's columns (SEGMENT_SELECT's order). */
  add(cols: readonly (readonly unknown[])[], r: number): void {
    this.grow(this.n + 1);
    const i = this.n++;
    this.ts[i] = cols[0]![r] as number;
    this.firstSeen[i] = cols[1]![r] as number;
    this.bytes[i] = cols[2]![r] as number;
    this.packets[i] = cols[3]![r] as number;
    const id = (cols[4]![r] as string | null) ?? null;
    this.flowId.push(id);
    if (id !== null) this.stringBytes += BYTES_PER_STRING + 2 * id.length;
    for (let k = 0; k < SEGMENT_COLUMNS.length; k++) {
      const v = (cols[5 + k]![r] as string | null) ?? null;
      const lookup = this.lookup[k]!;
      let code = lookup.get(v);
      if (code === undefined) {
        code = this.dicts[k]!.length;
        this.dicts[k]!.push(v);
        lookup.set(v, code);
        this.stringBytes += BYTES_PER_STRING + 2 * (v?.length ?? 0);
      }
      this.codes[k]![i] = code;
    }
  }
}

/** Splits the rows of a read into hour blocks. */
export class SegmentBlocksBuilder {
  readonly blocks = new Map<number, SegmentBlock>();
  bytes = 0;

  /** Adds a chunk (SEGMENT_SELECT's columns); false once the blocks hold more than maxBytes. */
  addChunk(cols: readonly (readonly unknown[])[], count: number, maxBytes: number): boolean {
    for (let r = 0; r < count; r++) {
      const start = blockStart(cols[0]![r] as number);
      let block = this.blocks.get(start);
      if (!block) {
        block = new SegmentBlock(start);
        this.blocks.set(start, block);
      }
      block.add(cols, r);
    }
    let bytes = 0;
    for (const b of this.blocks.values()) bytes += b.bytesHeld;
    this.bytes = bytes;
    return bytes <= maxBytes;
  }
}

export function blockStart(ts: number): number {
  return Math.floor(ts / EXPLORE_BLOCK_US) * EXPLORE_BLOCK_US;
}

/** The block starts a range covers. */
export function blockStarts(from: number, to: number): number[] {
  const starts: number[] = [];
  for (let s = blockStart(from); s < to; s += EXPLORE_BLOCK_US) starts.push(s);
  return starts;
}

/** Blocks kept in memory, by start; see the header comment. */
export class SegmentBlockCache {
  private readonly blocks = new Map<number, SegmentBlock>();
  private bytes = 0;
  private generation = 0;
  private readonly writes: { generation: number; minTs: number; maxTs: number }[] = [];
  /** Reads run one at a time (each reads the blocks the ones before it did not). */
  private loading: Promise<unknown> = Promise.resolve();
  /** Ranges ("from:to") whose blocks were more than a request may hold, since the last write. */
  private readonly tooLarge = new Set<string>();
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {}

  /** The most a request's blocks may hold: the budget (older blocks are evicted for them). */
  get maxRequestBytes(): number {
    return this.maxBytes;
  }

  state(): { blocks: number; bytes: number; maxBytes: number; hits: number; misses: number } {
    return { blocks: this.blocks.size, bytes: this.bytes, maxBytes: this.maxBytes, hits: this.hits, misses: this.misses };
  }

  /** The blocks of [from, to) when every one is held; null otherwise (nothing is read). */
  peek(from: number, to: number): SegmentBlock[] | null {
    const starts = blockStarts(from, to);
    const found: SegmentBlock[] = [];
    for (const s of starts) {
      const b = this.blocks.get(s);
      if (!b) {
        this.misses++;
        return null;
      }
      found.push(b);
    }
    this.hits++;
    this.touch(starts);
    return found;
  }

  /** Whether reading the blocks of [from, to) was given up as too large (since the last write). */
  isTooLarge(from: number, to: number): boolean {
    return this.tooLarge.has(`${from}:${to}`);
  }

  /**
   * The blocks of [from, to), reading the missing ones with `read(from, to)` (one statement over
   * the missing blocks' span; null when they are more than it may hold). Null: answer by SQL.
   */
  async get(
    from: number,
    to: number,
    read: (from: number, to: number, maxBytes: number) => Promise<SegmentBlocksBuilder | null>,
  ): Promise<SegmentBlock[] | null> {
    const starts = blockStarts(from, to);
    const have = () => starts.map((s) => this.blocks.get(s));
    let found = have();
    if (found.every((b) => b)) {
      this.touch(starts);
      return found as SegmentBlock[];
    }
    const run = this.loading.then(async () => {
      found = have();
      const missing = starts.filter((_, i) => !found[i]);
      if (missing.length === 0) return found as SegmentBlock[];
      let held = 0;
      for (const b of found) if (b) held += b.bytesHeld;
      const started = this.generation;
      const spanFrom = missing[0]!;
      const spanTo = missing[missing.length - 1]! + EXPLORE_BLOCK_US;
      const built = await read(spanFrom, spanTo, this.maxRequestBytes - held);
      if (!built) {
        if (this.generation === started) this.tooLarge.add(`${from}:${to}`);
        if (this.tooLarge.size > MAX_WRITE_LOG) this.tooLarge.delete(this.tooLarge.values().next().value as string);
        return null;
      }
      const keep = this.generation === started || this.unchangedSince(started, spanFrom, spanTo);
      const out: SegmentBlock[] = [];
      for (const [i, s] of starts.entries()) {
        // A block with no segment is held empty, so that it is not read again.
        const block = found[i] ?? built.blocks.get(s) ?? new SegmentBlock(s);
        out.push(block);
        if (!found[i] && keep) this.insert(block);
      }
      this.touch(starts);
      this.evict(new Set(starts));
      return out;
    });
    this.loading = run.catch(() => undefined);
    return run;
  }

  /** Segments with ts in [minTs, maxTs] were committed: their blocks go. */
  invalidate(minTs: number, maxTs: number): void {
    this.generation++;
    this.tooLarge.clear();
    this.writes.push({ generation: this.generation, minTs, maxTs });
    if (this.writes.length > MAX_WRITE_LOG) this.writes.shift();
    for (const [s, b] of this.blocks) {
      if (maxTs >= s && minTs < s + EXPLORE_BLOCK_US) {
        this.blocks.delete(s);
        this.bytes -= b.bytesHeld;
      }
    }
  }

  clear(): void {
    this.blocks.clear();
    this.bytes = 0;
  }

  private unchangedSince(generation: number, from: number, to: number): boolean {
    const oldest = this.writes[0]?.generation ?? Infinity;
    if (oldest > generation + 1) return false;
    return this.writes.every((w) => w.generation <= generation || !(w.maxTs >= from && w.minTs < to));
  }

  private insert(block: SegmentBlock): void {
    const old = this.blocks.get(block.start);
    if (old) this.bytes -= old.bytesHeld;
    this.blocks.set(block.start, block);
    this.bytes += block.bytesHeld;
  }

  /** Most recently used last. */
  private touch(starts: number[]): void {
    for (const s of starts) {
      const b = this.blocks.get(s);
      if (b) {
        this.blocks.delete(s);
        this.blocks.set(s, b);
      }
    }
  }

  private evict(keep: Set<number>): void {
    for (const [s, b] of this.blocks) {
      if (this.bytes <= this.maxBytes) break;
      if (keep.has(s)) continue;
      this.blocks.delete(s);
      this.bytes -= b.bytesHeld;
    }
  }
}

/** The block columns a dimension reads on side 0 and side 1 (the same for one-ended dimensions). */
function dimensionColumns(d: ExploreDimension): [number, number] {
  if (d === 'host') return [CLIENT_IP, SERVER_IP];
  if (d === 'peer') return [SERVER_IP, CLIENT_IP];
  if (d === 'client') return [CLIENT_IP, CLIENT_IP];
  if (d === 'server') return [SERVER_IP, SERVER_IP];
  const k = col(d);
  return [k, k];
}

/** Whether a block's dictionary value matches a filter's value, as explore.ts's filterSql compares. */
function filterValueMatcher(f: ExploreFilter): (v: string | null) => boolean {
  if (f.dimension === 'port' || f.dimension === 'clientAsn' || f.dimension === 'serverAsn') {
    // The SQL casts the value to the column's integer type: "0443" is port 443.
    const want = String(Number(f.value));
    return (v) => v === want;
  }
  if (f.dimension === 'app') return (v) => appMatches(v, f.value);
  // Addresses or CIDR prefixes, server names in any case or globs (flow-filter.ts), as the SQL.
  if (HOST_DIMENSIONS.has(f.dimension)) return hostPredicate(parseHostSpec(f.value));
  if (f.dimension === 'serverName') {
    const name = serverNamePredicate(parseServerNameSpec(f.value));
    // A NULL name equals nothing in SQL, not even the empty filter.
    return (v) => v !== null && name(v);
  }
  return (v) => v === f.value;
}

/** Per filter, per block: which codes of its columns match (host and peer: either address). */
function blockFilter(block: SegmentBlock, filters: ExploreFilter[]): ((i: number) => boolean) | null {
  if (filters.length === 0) return null;
  const tests = filters.map((f) => {
    const match = filterValueMatcher(f);
    const columns = f.dimension === 'host' || f.dimension === 'peer' ? [CLIENT_IP, SERVER_IP] : [dimensionColumns(f.dimension)[0]];
    const sets = columns.map((k) => Uint8Array.from(block.dicts[k]!, (v) => (match(v) ? 1 : 0)));
    const codes = columns.map((k) => block.codes[k]!);
    if (columns.length === 2) {
      const [a, b] = sets as [Uint8Array, Uint8Array];
      const [ca, cb] = codes as [Uint32Array, Uint32Array];
      return (i: number) => a[ca[i]!] === 1 || b[cb[i]!] === 1;
    }
    const a = sets[0]!;
    const ca = codes[0]!;
    return (i: number) => a[ca[i]!] === 1;
  });
  return (i) => {
    for (const t of tests) if (!t(i)) return false;
    return true;
  };
}

/**
 * Compares two keys as DuckDB orders VARCHAR (by UTF-8 bytes, i.e. by code point), nulls last.
 * UTF-16 code units order like code points except that surrogates (U+D800..DFFF, which encode
 * code points above U+FFFF) sort below U+E000..FFFF: shifting them above fixes that.
 */
export function compareKey(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** Typed arrays up to this many elements are kept from request to request (see scratch()). */
const MAX_SCRATCH_ELEMENTS = 1 << 20;
const scratchArrays = new Map<string, Int32Array | Float64Array | Uint8Array>();

/**
 * A typed array of `size` elements (contents undefined) kept for the next request: a request is
 * synchronous, and a day's request allocated ~10 MB of arrays, whose collections were the slow
 * requests. Arrays above `keep` elements (MAX_SCRATCH_ELEMENTS unless said) are not kept (at most ~40 MB are).
 */
function scratch<T extends Int32Array | Float64Array | Uint8Array>(name: string, make: new (n: number) => T, size: number, keep = MAX_SCRATCH_ELEMENTS): T {
  const held = scratchArrays.get(name) as T | undefined;
  if (held && held.length >= size) return held.subarray(0, size) as T;
  const made = new make(Math.max(size, Math.min(keep, (held?.length ?? 0) * 2)));
  if (made.length <= keep) scratchArrays.set(name, made);
  return made.subarray(0, size) as T;
}

/** A scratch array's first `n` elements in a larger one (the rest left undefined). */
function grown<T extends Int32Array | Float64Array>(name: string, make: new (n: number) => T, a: T, n: number): T {
  const b = scratch(name, make, a.length * 2);
  if (b.buffer !== a.buffer) b.set(a.subarray(0, n));
  return b;
}

/**
 * Answers an explore query from the blocks of its range (blockStarts' order): as the DuckDB
 * statement does (explore.ts), item by item and bucket by bucket.
 *
 * A group-by on integer codes over typed arrays (a day of 300,000 segments is 600,000 host/peer
 * rows and ~190,000 items): (1) each block's codes → ids of the values across blocks; (2) each kept
 * (segment, side) → its item, numbered as first met by a table of every (id, id) cell (a Map when
 * the cells are too many), and the items' totals; (3) the top items by the metric; (4) the top
 * items' buckets.
 */
export function exploreFromBlocks(blocks: SegmentBlock[], q: ExploreQuery, first: number, buckets: number): ExploreItem[] {
  const dims = q.dimensions;
  const pair = dims.length === 2;
  const sides = dims.some((d) => d === 'host' || d === 'peer') ? 2 : 1;
  const cols = dims.map(dimensionColumns);
  // (1) Ids of each dimension's values across blocks; per block, dimension and side: code → id.
  const ids = dims.map(() => new Map<string | null, number>());
  const values: (string | null)[][] = dims.map(() => []);
  const idMaps = blocks.map((block) =>
    cols.map(([c0, c1], d) =>
      [c0, c1].map((k) => {
        const dict = block.dicts[k]!;
        const map = new Int32Array(dict.length);
        const known = ids[d]!;
        for (let c = 0; c < dict.length; c++) {
          const v = dict[c]!;
          let id = known.get(v);
          if (id === undefined) {
            id = values[d]!.length;
            values[d]!.push(v);
            known.set(v, id);
          }
          map[c] = id;
        }
        return map;
      }),
    ),
  );
  const width = pair ? values[1]!.length : 1;
  const cells = values[0]!.length * width;

  // (2) rows[offset of the block + s * n + i]: the item of segment i on side s, -1 when not kept;
  // totals per item. Distinct flows: a flow that began in the range is its first segment, one that
  // began before it is counted by flow id.
  const { from, to } = q;
  const filters = q.filters ?? [];
  const offsets: number[] = [];
  let total = 0;
  for (const b of blocks) {
    offsets.push(total);
    total += b.n * sides;
  }
  const rows = scratch('rows', Int32Array, total);
  // The pair table is kept too (at most MAX_DENSE_PAIRS cells, 16 MB): a new one per request of
  // host/peer pairs was the largest allocation, and its collections the slowest requests.
  const dense = cells <= MAX_DENSE_PAIRS ? scratch('dense', Int32Array, cells, MAX_DENSE_PAIRS).fill(-1) : null;
  const sparse = dense ? null : new Map<number, number>();
  let n = 0;
  let itemCells = scratch('itemCells', Float64Array, 4096);
  // Bytes, packets and flows of item it at 3 * it, + 1, + 2 (one cache line for a row's three sums).
  let sums = scratch('sums', Float64Array, 3 * 4096);
  const older = new Map<number, Set<string>>();
  for (const [bi, block] of blocks.entries()) {
    const nb = block.n;
    const keep = keptRows(block, from, to, filters);
    const { ts, firstSeen, bytes: by, packets: pk } = block;
    for (let s = 0; s < sides; s++) {
      const ca = block.codes[cols[0]![s]!]!;
      const ma = idMaps[bi]![0]![s]!;
      const cb = pair ? block.codes[cols[1]![s]!]! : null;
      const mb = pair ? idMaps[bi]![1]![s]! : null;
      const base = offsets[bi]! + s * nb;
      for (let i = 0; i < nb; i++) {
        if (keep !== null && keep[i] === 0) {
          rows[base + i] = -1;
          continue;
        }
        const cell = cb === null ? ma[ca[i]!]! : ma[ca[i]!]! * width + mb![cb[i]!]!;
        let it = dense !== null ? dense[cell]! : (sparse!.get(cell) ?? -1);
        if (it < 0) {
          it = n++;
          if (it === itemCells.length) {
            itemCells = grown('itemCells', Float64Array, itemCells, it);
            sums = grown('sums', Float64Array, sums, 3 * it);
          }
          if (dense !== null) dense[cell] = it;
          else sparse!.set(cell, it);
          itemCells[it] = cell;
          sums[3 * it] = 0;
          sums[3 * it + 1] = 0;
          sums[3 * it + 2] = 0;
        }
        rows[base + i] = it;
        sums[3 * it]! += by[i]!;
        sums[3 * it + 1]! += pk[i]!;
        const fs = firstSeen[i]!;
        if (ts[i] === fs) sums[3 * it + 2]!++;
        else if (fs < from) {
          let set = older.get(it);
          if (!set) older.set(it, (set = new Set()));
          set.add(block.flowId[i]!);
        }
      }
    }
  }
  for (const [it, set] of older) sums[3 * it + 2]! += set.size;

  // (3) The top items: metric descending, then keys (DuckDB's order); a bounded insertion list.
  const totals = sums;
  const m = q.metric === 'bytes' ? 0 : q.metric === 'packets' ? 1 : 2;
  const cellOf = itemCells;
  const keysOf = (it: number): (string | null)[] => {
    const cell = cellOf[it]!;
    return pair ? [values[0]![Math.floor(cell / width)]!, values[1]![cell % width]!] : [values[0]![cell]!];
  };
  const before = (x: number, y: number): boolean => {
    const mx = totals[3 * x + m]!;
    const my = totals[3 * y + m]!;
    if (mx !== my) return mx > my;
    const kx = keysOf(x);
    const ky = keysOf(y);
    for (let d = 0; d < kx.length; d++) {
      const c = compareKey(kx[d]!, ky[d]!);
      if (c !== 0) return c < 0;
    }
    return false;
  };
  const top: number[] = [];
  for (let it = 0; it < n; it++) {
    if (top.length === q.limit) {
      const last = top[top.length - 1]!;
      if (totals[3 * it + m]! < totals[3 * last + m]! || !before(it, last)) continue;
    }
    let p = top.length;
    while (p > 0 && before(it, top[p - 1]!)) p--;
    top.splice(p, 0, it);
    if (top.length > q.limit) top.pop();
  }

  // (4) The top items' buckets.
  const slot = scratch('slot', Int32Array, n).fill(-1);
  top.forEach((it, k) => {
    slot[it] = k;
  });
  const points = new Float64Array(top.length * buckets * 3);
  const step = q.step;
  for (const [bi, block] of blocks.entries()) {
    const nb = block.n;
    const { ts, firstSeen, bytes: by, packets: pk } = block;
    for (let s = 0; s < sides; s++) {
      const base = offsets[bi]! + s * nb;
      for (let i = 0; i < nb; i++) {
        const it = rows[base + i]!;
        if (it < 0) continue;
        const k = slot[it]!;
        if (k < 0) continue;
        const t = ts[i]!;
        const b = Math.round((Math.floor(t / step) * step - first) / step);
        if (b < 0 || b >= buckets) continue;
        const at = (k * buckets + b) * 3;
        points[at]! += by[i]!;
        points[at + 1]! += pk[i]!;
        if (t === firstSeen[i]!) points[at + 2]!++;
      }
    }
  }
  return top.map((it, k) => {
    const series: ExplorePoint[] = [];
    for (let b = 0; b < buckets; b++) {
      const at = (k * buckets + b) * 3;
      series.push({ ts: first + b * step, bytes: points[at]!, packets: points[at + 1]!, flows: points[at + 2]! });
    }
    return { keys: keysOf(it).map((v) => v ?? ''), bytes: totals[3 * it]!, packets: totals[3 * it + 1]!, flows: totals[3 * it + 2]!, series };
  });
}

/**
 * The segments of a block a request keeps (ts in its range, every filter holds): 1 per kept
 * segment (a scratch array, valid until the next call); null when the block lies inside the range
 * and there is no filter (all kept).
 */
function keptRows(block: SegmentBlock, from: number, to: number, filters: ExploreFilter[]): Uint8Array | null {
  const inside = block.start >= from && block.start + EXPLORE_BLOCK_US <= to;
  const filter = blockFilter(block, filters);
  if (inside && !filter) return null;
  const keep = scratch('keep', Uint8Array, block.n);
  const ts = block.ts;
  for (let i = 0; i < block.n; i++) {
    const t = ts[i]!;
    keep[i] = t >= from && t < to && (filter === null || filter(i)) ? 1 : 0;
  }
  return keep;
}
