// Embedded DuckDB back end: one database file, written with DuckDB's Appender one data chunk at a
// time (duckdb-chunks.ts: the import path writes hundreds of thousands of flow segments, far too
// many for one INSERT per row, or even one native call per value) and read
// with prepared statements whose values are always bound, never spliced into the SQL text.
//
// Connections: one long-lived connection owns the appenders and the anomaly upserts. Reads share a
// bounded pool (read-pool.ts): at most `readConnections` run at once, each on a connection of the
// pool's, reused while it is clean; up to `readQueue` more wait in FIFO order and the next is
// refused with StoreBusyError. A read whose signal aborts leaves the queue, or is interrupted
// (DuckDB's interrupt) and its connection closed and replaced, so nothing it held survives it.
// Export streams take a slot of the pool too but a connection of their own: a DuckDB connection
// runs one query at a time and a streaming result dies when another query runs on it.
//
// Flow pages come from a bounded result cache (flow-cache.ts) when it has room: the summed flows of
// a (range, filter) are computed once and paged by binary search, until a commit touches the range.
import { makeDirectory } from './make-dir.js';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DuckDBInstance, DuckDBTimestampValue, type DuckDBAppender, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { encodeCursor, type CursorKey } from './cursor.js';
import { ANOMALY, FLOW, HOST, TRAFFIC, fieldGetter } from '../records/index.js';
import { DEFAULT_DUCKDB_CHECKPOINT_MB, DEFAULT_DUCKDB_MEMORY_MB } from './index.js';
import { ChunkAppender, type ColumnSpec } from './duckdb-chunks.js';
import { checkExploreQuery, duckdbExploreSql, type ExploreItem, type ExploreQuery, exploreItems } from './explore.js';
import { type Bind, duckdbAppSql, hostSql, serverNameSql } from './flow-filter.js';
import { DEFAULT_EXPLORE_CACHE_BYTES, exploreFromBlocks, SEGMENT_SELECT, SegmentBlockCache, SegmentBlocksBuilder } from './explore-segments.js';
import { ENTRY_COLUMNS, FlowCache, FlowEntryBuilder, type FlowCacheState, type FlowEntry, NUMERIC_ENTRY_COLUMNS } from './flow-cache.js';
import { DEFAULT_READ_POOL_SIZE, DEFAULT_READ_QUEUE_LIMIT, raceAbort, ReadGate, type ReadGateState } from './read-pool.js';
import { checkAnomalyQuery, checkFlowQuery, checkHostIpQuery, checkHostQuery, checkHostTopQuery, checkSeriesQuery } from './query-check.js';
import { chunkColumns, duckdbRecordSelect, duckdbSummarySelect } from './record-sql.js';
import {
  StoreQueryCancelled,
  type AnomalyQuery,
  type AnomalyRecord,
  type DataExtent,
  type FlowFilter,
  type FlowOrder,
  type FlowPage,
  type FlowQuery,
  type FlowRecord,
  type FlowStore,
  type FlowSummary,
  type HostIpQuery,
  type HostOrder,
  type HostPeer,
  type HostPoint,
  type HostPort,
  type HostQuery,
  type HostRecord,
  type HostSeriesQuery,
  type HostSummary,
  type HostTopQuery,
  type QueryOptions,
  type RecordBatch,
  type StoreHealth,
  type TimeRange,
  type TrafficPoint,
  type TrafficQuery,
  type TrafficRecord,
} from './types.js';

/** A flow-cache computation that ran out of DuckDB's memory_limit (flowEntry tries once more). */
const OUT_OF_MEMORY = Symbol('out of memory');
export interface DuckDbStoreOptions {
  /** Database file; its directory is created when missing (unless read-only). */
  path: string;
  /** Open with access_mode READ_ONLY (flowlens export): no schema changes, writes refused. */
  readOnly?: boolean;
  /** DuckDB's worker threads (its `threads` setting); undefined leaves DuckDB's default. */
  threads?: number;
  /** Reads running at once, each on a pooled connection (default 4). */
  readConnections?: number;
  /** Reads waiting for a connection before the next is refused with StoreBusyError (default 256). */
  readQueue?: number;
  /** Memory budget of the flow result cache in bytes (default 128 MiB; 0 turns it off). */
  flowCacheBytes?: number;
  /** Memory budget of Explore's in-memory segments (explore-segments.ts; default 128 MiB; 0: Explore by SQL only). */
  exploreCacheBytes?: number;
  /** DuckDB's memory_limit, e.g. '256MB' (default DEFAULT_DUCKDB_MEMORY_MB, src/store/index.ts). */
  memoryLimit?: string;
  /**
   * DuckDB's checkpoint_threshold, e.g. '64MB': the write-ahead log's size at which committed rows
   * are written into the database file (default DEFAULT_DUCKDB_CHECKPOINT_MB, src/store/index.ts).
   */
  checkpointThreshold?: string;
}

export const DEFAULT_FLOW_CACHE_BYTES = 128 * 1024 * 1024;
export { DEFAULT_EXPLORE_CACHE_BYTES };
export const DEFAULT_DUCKDB_MEMORY_LIMIT = `${DEFAULT_DUCKDB_MEMORY_MB}MB`;
export const DEFAULT_DUCKDB_CHECKPOINT_THRESHOLD = `${DEFAULT_DUCKDB_CHECKPOINT_MB}MB`;

/** Resolved from this module so it works from src/store/*.ts (tsx) and dist/store/*.js (tsc). */
const SCHEMA_URL = new URL('../../schema/duckdb.sql', import.meta.url);

type Params = Record<string, DuckDBValue>;
type Row = Record<string, DuckDBValue>;

/**
 * The aggregate of one flow's segments, by the combine rules of FLOW (src/records/flow.ts; see
 * record-sql.ts). Column aliases are the FlowSummary field names so rows map onto it without renaming.
 */
const flowAggregateColumns = (fields?: ReadonlySet<string>) => `
  ${duckdbSummarySelect(FLOW, fields)},
  sum(client_bytes) + sum(server_bytes) AS "totalBytes"`;
const FLOW_AGGREGATE_COLUMNS = flowAggregateColumns();

/** Per-host sums; aliases are the HostSummary field names. */
const HOST_AGGREGATE_COLUMNS = `
  ip,
  sum(bytes_sent) AS "bytesSent",
  sum(bytes_received) AS "bytesReceived",
  sum(packets_sent) AS "packetsSent",
  sum(packets_received) AS "packetsReceived",
  sum(flows_initiated) AS "flowsInitiated",
  sum(flows_received) AS "flowsReceived",
  sum(flows_initiated) + sum(flows_received) AS flows,
  max(peers) AS peers,
  epoch_us(min(ts)) AS "firstSeen",
  epoch_us(max(ts)) AS "lastSeen",
  arg_max(country, ts) AS country,
  arg_max(asn, ts) AS asn,
  arg_max(as_org, ts) AS "asOrg",
  arg_max(network, ts) AS network`;

/** Keyset pagination per flow order: the ORDER BY, the "after this key" predicate and the key of a row. */
const FLOW_ORDERS: Record<FlowOrder, { orderBy: string; after: string; key: (f: FlowSummaryRow) => number }> = {
  time: {
    orderBy: '"firstSeen" ASC, "flowId" ASC',
    after: '("firstSeen" > $afterValue OR ("firstSeen" = $afterValue AND "flowId" > $afterId))',
    key: (f) => f.firstSeen,
  },
  bytes: {
    orderBy: '"totalBytes" DESC, "flowId" ASC',
    after: '("totalBytes" < $afterValue OR ("totalBytes" = $afterValue AND "flowId" > $afterId))',
    key: (f) => f.totalBytes,
  },
};

/** Series columns (alias = TrafficPoint / HostPoint field, aggregate); fixed text, never input. */
const TRAFFIC_SERIES_COLUMNS: [string, string][] = [
  ['bytes', 'sum(bytes)'],
  ['packets', 'sum(packets)'],
  ['flows', 'sum(flows)'],
];
const HOST_SERIES_COLUMNS: [string, string][] = [
  ['bytesSent', 'sum(bytes_sent)'],
  ['bytesReceived', 'sum(bytes_received)'],
  ['packetsSent', 'sum(packets_sent)'],
  ['packetsReceived', 'sum(packets_received)'],
  ['flowsInitiated', 'sum(flows_initiated)'],
  ['flowsReceived', 'sum(flows_received)'],
  // Distinct peers are not additive: the largest per-interval count, as in HostSummary.
  ['peers', 'max(peers)'],
];

const HOST_ORDERS: Record<HostOrder, string> = {
  bytes: '"bytesSent" + "bytesReceived" DESC, ip ASC',
  packets: '"packetsSent" + "packetsReceived" DESC, ip ASC',
  flows: 'flows DESC, ip ASC',
};

interface FlowSummaryRow extends FlowSummary {
  totalBytes: number;
}

/**
 * Rows appended before a commit is made without being asked. Uncommitted rows are held in memory
 * (the appenders and the transaction); on the benchmark capture, 50,000 here cost ~30 MB more peak
 * memory than 20,000, and the commits run on another thread either way (see commit()).
 */
const FLUSH_EVERY_ROWS = 20_000;

export class DuckDbStore implements FlowStore {
  readonly backend = 'duckdb';
  private readonly path: string;
  private readonly readOnly: boolean;
  /** DuckDB's worker threads (its `threads` setting); undefined leaves DuckDB's default. */
  private readonly threads: number | undefined;
  private readonly memoryLimit: string;
  private readonly checkpointThreshold: string;
  private instance?: DuckDBInstance;
  /** Rows appended since the last commit. */
  private unflushedRows = 0;
  /** The writer has a transaction open that the appended rows go into (see commit()). */
  private inTransaction = false;
  /** Anomaly updates written at the next commit, the latest of each anomaly only. */
  private readonly pendingAnomalies = new Map<string, AnomalyRecord>();
  /** Owns the appenders and anomaly upserts (see the header comment). */
  private writer?: DuckDBConnection;
  private appenders?: { flows: DuckDBAppender; hosts: DuckDBAppender; traffic: DuckDBAppender };
  /** Column-wise writers in front of the appenders (duckdb-chunks.ts). */
  private chunks?: { flows: ChunkAppender<FlowRecord>; hosts: ChunkAppender<HostRecord>; traffic: ChunkAppender<TrafficRecord> };
  /** Writes and flushes run one after another: the appenders are not safe to interleave. */
  private writeQueue: Promise<void> = Promise.resolve();
  /** The read pool's slots and queue, and its idle connections (clean: no transaction, no result). */
  private readonly gate: ReadGate;
  private readonly idle: DuckDBConnection[] = [];
  /** Flow results by (range, filter); null when turned off. */
  private readonly flowCache: FlowCache | null;
  /** Explore's segments by hour block; null when turned off. */
  private readonly exploreCache: SegmentBlockCache | null;
  /** ts span of the flow segments written since the last commit (the cache drops what they touch). */
  private pendingMinTs = Infinity;
  private pendingMaxTs = -Infinity;

  constructor(opts: DuckDbStoreOptions) {
    this.path = opts.path;
    this.readOnly = opts.readOnly ?? false;
    this.threads = opts.threads;
    this.memoryLimit = opts.memoryLimit ?? DEFAULT_DUCKDB_MEMORY_LIMIT;
    this.checkpointThreshold = opts.checkpointThreshold ?? DEFAULT_DUCKDB_CHECKPOINT_THRESHOLD;
    this.gate = new ReadGate({ size: opts.readConnections ?? DEFAULT_READ_POOL_SIZE, queueLimit: opts.readQueue ?? DEFAULT_READ_QUEUE_LIMIT });
    const cacheBytes = opts.flowCacheBytes ?? DEFAULT_FLOW_CACHE_BYTES;
    this.flowCache = cacheBytes > 0 ? new FlowCache(cacheBytes) : null;
    const exploreBytes = opts.exploreCacheBytes ?? DEFAULT_EXPLORE_CACHE_BYTES;
    this.exploreCache = exploreBytes > 0 ? new SegmentBlockCache(exploreBytes) : null;
  }

  /** The read pool and the flow cache, for metrics and tests. */
  readState(): { pool: ReadGateState & { idle: number }; flowCache: FlowCacheState | null; exploreCache: ReturnType<SegmentBlockCache['state']> | null } {
    return {
      pool: { ...this.gate.state(), idle: this.idle.length },
      flowCache: this.flowCache?.state() ?? null,
      exploreCache: this.exploreCache?.state() ?? null,
    };
  }

  async init(): Promise<void> {
    if (this.instance) return;
    const inMemory = this.path === ':memory:';
    try {
      if (!this.readOnly && !inMemory) makeDirectory(dirname(this.path));
      const config: Record<string, string> = this.readOnly ? { access_mode: 'READ_ONLY' } : {};
      if (this.threads !== undefined) config.threads = String(this.threads);
      config.memory_limit = this.memoryLimit;
      config.checkpoint_threshold = this.checkpointThreshold;
      const instance = await DuckDBInstance.create(this.path, config);
      try {
        if (!this.readOnly) {
          const writer = await instance.connect();
          await writer.run(await readFile(SCHEMA_URL, 'utf8'));
          this.appenders = {
            flows: await writer.createAppender('flows'),
            hosts: await writer.createAppender('hosts'),
            traffic: await writer.createAppender('traffic'),
          };
          this.chunks = {
            flows: new ChunkAppender(this.appenders.flows, 'flows', await columnsInFileOrder(writer, FLOW, FLOW_COLUMNS)),
            hosts: new ChunkAppender(this.appenders.hosts, 'hosts', await columnsInFileOrder(writer, HOST, HOST_COLUMNS)),
            traffic: new ChunkAppender(this.appenders.traffic, 'traffic', await columnsInFileOrder(writer, TRAFFIC, TRAFFIC_COLUMNS)),
          };
          this.writer = writer;
        } else {
          // A read-only file cannot get the schema created, so check it is there instead of
          // failing later with "table flows does not exist" on the first query.
          await this.readWith(instance, (conn) => conn.run('SELECT 1 FROM flows, hosts, traffic, anomalies LIMIT 0'));
        }
      } catch (err) {
        instance.closeSync();
        throw err;
      }
      this.instance = instance;
    } catch (err) {
      // DuckDB's messages for a locked or corrupt file are long and do not always say which
      // file the caller asked for; give one message that does.
      const mode = this.readOnly ? ' (read-only)' : '';
      const hint = /conflicting lock/i.test(errorMessage(err)) ? ' (another process has it open; DuckDB allows one writer process per file)' : '';
      throw new Error(`Cannot open DuckDB database ${this.path}${mode}${hint}: ${errorMessage(err)}`, { cause: err });
    }
  }

  write(batch: RecordBatch): Promise<void> {
    return this.enqueue(async () => {
      const { writer, chunks } = this.writable();
      // Check every record first: a bad one refuses the whole batch, and nothing is half-written.
      try {
        chunks.flows.check(batch.flows);
        chunks.hosts.check(batch.hosts);
        chunks.traffic.check(batch.traffic);
      } catch (err) {
        throw new Error(`DuckDB store: ${errorMessage(err)}; the batch was not written`, { cause: err });
      }
      if (!this.inTransaction) {
        await writer.run('BEGIN TRANSACTION');
        this.inTransaction = true;
      }
      try {
        await chunks.flows.appendInSlices(batch.flows);
        await chunks.hosts.appendInSlices(batch.hosts);
        await chunks.traffic.appendInSlices(batch.traffic);
      } catch (err) {
        // What the open transaction holds (this batch's first rows, earlier batches' since the last
        // commit) is given up as a whole, as a failed commit gives it up.
        const rows = this.unflushedRows + batch.flows.length + batch.hosts.length + batch.traffic.length;
        this.inTransaction = false;
        this.unflushedRows = 0;
        await writer.run('ROLLBACK').catch(() => undefined);
        throw new Error(`DuckDB store: append failed (${errorMessage(err)}); ${rows} rows were not written`, { cause: err });
      }
      if (this.flowCache || this.exploreCache) {
        let min = this.pendingMinTs;
        let max = this.pendingMaxTs;
        for (const f of batch.flows) {
          if (f.ts < min) min = f.ts;
          if (f.ts > max) max = f.ts;
        }
        this.pendingMinTs = min;
        this.pendingMaxTs = max;
      }
      this.unflushedRows += batch.flows.length + batch.hosts.length + batch.traffic.length;
      for (const an of batch.anomalies ?? []) this.pendingAnomalies.set(an.anomalyId, an);
      // Appended rows wait in the appenders and the open transaction until committed; commit
      // every so often so that a long import or capture holds a bounded number of them.
      if (this.unflushedRows >= FLUSH_EVERY_ROWS) await this.commit();
    });
  }

  /**
   * Exactly once: the rows an earlier run of the same source wrote are deleted, in the transaction
   * the new run's rows go into, so that a re-import replaces its rows rather than adding to them.
   * Rows of other sources are left alone and add up (two halves of a capture, a restarted
   * capture). QuestDB gets the same from its DEDUP keys, which hold the source.
   */
  beginRun(source: string): Promise<void> {
    if (source === '') return Promise.resolve();
    return this.enqueue(async () => {
      const { writer } = this.writable();
      if (!this.inTransaction) {
        await writer.run('BEGIN TRANSACTION');
        this.inTransaction = true;
      }
      for (const table of ['flows', 'hosts', 'traffic']) await writer.run(`DELETE FROM ${table} WHERE source = $1`, [source]);
      // Cached flow pages of any range may have held the deleted rows.
      this.pendingMinTs = -Infinity;
      this.pendingMaxTs = Infinity;
    });
  }

  /** Commits what was written; after it other connections see the rows. */
  flush(): Promise<void> {
    return this.enqueue(() => this.commit());
  }

  /**
   * Moves the appenders' rows into the open transaction (quick, on this thread) and commits it
   * (the costly part: the write-ahead log and any checkpoint), which DuckDB runs on a worker thread
   * while this one goes on decoding. Appending in autocommit mode would do both here.
   */
  private async commit(): Promise<void> {
    const { chunks, writer } = this.writable();
    if (this.inTransaction) {
      const rows = this.unflushedRows;
      this.inTransaction = false;
      this.unflushedRows = 0;
      try {
        chunks.flows.flush();
        chunks.hosts.flush();
        chunks.traffic.flush();
        await writer.run('COMMIT');
      } catch (err) {
        await writer.run('ROLLBACK').catch(() => undefined);
        throw new Error(`DuckDB store: commit failed (${errorMessage(err)}); ${rows} rows were not written`, { cause: err });
      } finally {
        // Readers see the rows from here: cached flow results of the ranges they fall in are stale.
        if (this.pendingMinTs <= this.pendingMaxTs) {
          this.flowCache?.invalidate(this.pendingMinTs, this.pendingMaxTs);
          this.exploreCache?.invalidate(this.pendingMinTs, this.pendingMaxTs);
        }
        this.pendingMinTs = Infinity;
        this.pendingMaxTs = -Infinity;
      }
    }
    // Anomalies go in a transaction of their own, after the rows: a failed upsert must not void them.
    if (this.pendingAnomalies.size > 0) {
      const anomalies = [...this.pendingAnomalies.values()];
      this.pendingAnomalies.clear();
      await upsertAnomalies(writer, anomalies);
    }
  }

  async close(): Promise<void> {
    if (!this.instance) return;
    this.gate.rejectWaiting(new Error(`DuckDB store ${this.path} is closing`));
    this.flowCache?.clear();
    this.exploreCache?.clear();
    for (const conn of this.idle.splice(0)) conn.closeSync();
    await this.writeQueue.catch(() => undefined);
    try {
      if (this.writer) {
        await this.commit();
        // The last checkpoint, on DuckDB's thread: closeSync would otherwise write it, up to the
        // checkpoint threshold's worth of log, with this thread blocked.
        // When it cannot run yet (a read still has a transaction open), closeSync writes it.
        await this.writer.run('CHECKPOINT').catch(() => undefined);
      }
    } finally {
      // closeSync also flushes what is still buffered before releasing the appender.
      this.appenders?.flows.closeSync();
      this.appenders?.hosts.closeSync();
      this.appenders?.traffic.closeSync();
      this.appenders = undefined;
      this.chunks = undefined;
      this.writer?.closeSync();
      this.writer = undefined;
      this.instance.closeSync();
      this.instance = undefined;
    }
  }

  async health(): Promise<StoreHealth> {
    try {
      // DuckDB's own reading of its settings (it says MiB): what it was given, as it took it.
      const settings = await this.read(
        async (conn) =>
          (await conn.runAndReadAll("SELECT current_setting('memory_limit') AS m, current_setting('checkpoint_threshold') AS c")).getRowObjectsJson()[0],
        undefined,
      );
      const detail = `${this.path}${this.readOnly ? ' (read-only)' : ''}, memory limit ${String(settings?.m)}, checkpoint threshold ${String(settings?.c)}`;
      return { backend: this.backend, ok: true, detail, spooled: 0 };
    } catch (err) {
      return { backend: this.backend, ok: false, detail: errorMessage(err), spooled: 0 };
    }
  }

  async queryFlows(q: FlowQuery, opts?: QueryOptions): Promise<FlowPage> {
    const { order: orderName, cursor } = checkFlowQuery(q);
    const filter = q.filter ?? {};
    if (this.flowCache) {
      const range = { from: q.from, to: q.to };
      // The range's unfiltered flows, and the filter's view of them (flow-cache.ts) ...
      const allKey = flowCacheKey(range, {});
      const all = await this.flowCache.get(allKey, range, (signal) => this.flowEntry(range, {}, signal), opts?.signal);
      const filterKey = flowCacheKey(range, filter);
      if (all) {
        const view = filterKey === allKey ? all : this.flowCache.view(allKey, all, filterKey, filter);
        if (view) return view.page(orderName, cursor, q.first);
      }
      // ... or, when they are too many to keep or cannot answer the filter, the filter's own.
      if (filterKey !== allKey) {
        const entry = await this.flowCache.get(filterKey, range, (signal) => this.flowEntry(range, filter, signal), opts?.signal);
        if (entry) return entry.page(orderName, cursor, q.first);
      }
    }
    return this.flowPageSql(q, filter, orderName, cursor, opts?.signal);
  }

  /**
   * The summed flows of a range and filter, as a cache entry; null when they are more than the cache
   * keeps. Streamed chunk by chunk, so that
   * a result too large stops early and the event loop runs between chunks.
   */
  private async flowEntry(range: TimeRange, filter: FlowFilter, signal: AbortSignal): Promise<FlowEntry | null> {
    // An Out of Memory error can be passing: the computation's peak varies with how its threads'
    // hash tables grow (250,000 flows under a 200 MB limit ran out in about one attempt in ten with
    // two DuckDB threads, never with one; DuckDB itself held 5 MB after the failure). One more try
    // after a pause, before the range is left to SQL paging until the next write.
    const first = await this.readFlowEntry(range, filter, signal);
    if (first !== OUT_OF_MEMORY) return first;
    await new Promise((r) => setTimeout(r, 200));
    const second = await this.readFlowEntry(range, filter, signal);
    return second === OUT_OF_MEMORY ? null : second;
  }

  private readFlowEntry(range: TimeRange, filter: FlowFilter, signal: AbortSignal): Promise<FlowEntry | null | typeof OUT_OF_MEMORY> {
    const cache = this.flowCache!;
    const filtered = filteredFlowsSql(range, filter, UNIFORM_COLUMN);
    // The columns the entry takes, in its order; counters as DOUBLE (exact to 2^53, as toNumbers).
    // No ORDER BY: the entry sorts both orders itself (a sort here held every column twice).
    const columns = ENTRY_COLUMNS.map((name) => (NUMERIC_ENTRY_COLUMNS.has(name) ? `"${name}"::DOUBLE` : `"${name}"`));
    const sql = `${filtered.sql} SELECT ${columns.join(', ')} FROM filtered`;
    return this.read(async (conn, session) => {
      const stmt = await conn.prepare(sql);
      try {
        stmt.bind(filtered.params);
        const result = await stmt.stream();
        const builder = new FlowEntryBuilder(cache.maxEntryBytes);
        for (;;) {
          session.check();
          const chunk = await result.fetchChunk();
          if (!chunk || chunk.rowCount === 0) break;
          if (!builder.addChunk(chunk.getColumns(), chunk.rowCount)) {
            // Too large to keep: the streaming result is left unread, so the connection goes.
            session.discard();
            return null;
          }
        }
        return builder.finish(range);
      } catch (err) {
        // Summing every column of a very large range can exceed the memory_limit where the narrow
        // SQL page does not: such a result is paged by SQL, as one too large to keep.
        if (/Out of Memory Error/.test(errorMessage(err))) {
          session.discard();
          return OUT_OF_MEMORY;
        }
        throw err;
      } finally {
        stmt.destroySync();
      }
    }, signal);
  }

  /**
   * A page by SQL (count and keyset page), for results the cache does not hold. Summing every
   * column of every flow in a large range to keep one page of them ran DuckDB out of its
   * memory_limit (2 million flows over 256 MB), so the count and the page's choice sum only the
   * columns the order and the filter need; the page's flows alone are then summed whole.
   */
  private async flowPageSql(
    q: FlowQuery,
    filter: FlowFilter,
    orderName: FlowOrder,
    cursor: CursorKey | undefined,
    signal: AbortSignal | undefined,
  ): Promise<FlowPage> {
    const order = FLOW_ORDERS[orderName];
    const keys = filteredFlowsSql(q, filter, '', flowKeyFields(filter));
    const pageParams: Params = { ...keys.params, limit: q.first + 1 };
    let keyset = '';
    if (cursor) {
      keyset = `WHERE ${order.after}`;
      pageParams.afterValue = cursor.value;
      pageParams.afterId = cursor.flowId;
    }
    const pageSql = `${keys.sql}, page AS (SELECT "flowId" FROM filtered ${keyset} ORDER BY ${order.orderBy} LIMIT $limit)
      SELECT ${FLOW_AGGREGATE_COLUMNS} FROM flows ${keys.segmentsWhere} ${keys.segmentsWhere ? 'AND' : 'WHERE'} flow_id IN (SELECT "flowId" FROM page)
      GROUP BY flow_id ORDER BY ${order.orderBy}`;
    const countSql = `${keys.sql} SELECT count(*) AS n FROM filtered`;

    // Count and page in one transaction so a flush between them cannot make them disagree.
    // On an error the connection is closed, which rolls the transaction back.
    const { rows, count } = await this.read(async (conn, session) => {
      await conn.run('BEGIN TRANSACTION');
      const count = await session.query(countSql, keys.params);
      const rows = await session.query(pageSql, pageParams);
      await conn.run('COMMIT');
      return { rows, count };
    }, signal);

    const hasNextPage = rows.length > q.first;
    const edges = rows.slice(0, q.first).map((row) => {
      const flow = toNumbers(row) as unknown as FlowSummaryRow;
      const cursor = encodeCursor({ order: orderName, value: order.key(flow), flowId: flow.flowId });
      const { totalBytes: _total, ...summary } = flow;
      return { node: summary, cursor };
    });
    return {
      edges,
      pageInfo: { hasNextPage, endCursor: edges.length ? edges[edges.length - 1].cursor : null },
      totalCount: Number(count[0].n),
    };
  }

  async topHosts(q: HostQuery, opts?: QueryOptions): Promise<HostSummary[]> {
    const orderBy = HOST_ORDERS[checkHostQuery(q)];
    const where = new Conditions(q);
    if (q.node !== undefined) where.add('node = $node', { node: q.node });
    if (q.country !== undefined) where.add('country = $country', { country: q.country });
    if (q.asn !== undefined) where.add('asn = $asn', { asn: q.asn });
    if (q.network !== undefined) where.add('network = $network', { network: q.network });
    const sql = `SELECT ${HOST_AGGREGATE_COLUMNS} FROM hosts ${where.sql()} GROUP BY ip ORDER BY ${orderBy} LIMIT $limit`;
    const rows = await this.read((_conn, session) => session.query(sql, { ...where.params, limit: q.limit }), opts?.signal);
    return rows.map((row) => toNumbers(row) as unknown as HostSummary);
  }

  async trafficSeries(q: TrafficQuery, opts?: QueryOptions): Promise<TrafficPoint[]> {
    const where = new Conditions(q);
    if (q.node !== undefined) where.add('node = $node', { node: q.node });
    const rows = await this.series('traffic', TRAFFIC_SERIES_COLUMNS, where, q, opts?.signal);
    return rows as unknown as TrafficPoint[];
  }

  async hostSummary(q: HostIpQuery, opts?: QueryOptions): Promise<HostSummary | null> {
    checkHostIpQuery(q);
    const where = hostConditions(q);
    const sql = `SELECT ${HOST_AGGREGATE_COLUMNS} FROM hosts ${where.sql()} GROUP BY ip`;
    const rows = await this.read((_conn, session) => session.query(sql, where.params), opts?.signal);
    return rows.length ? (toNumbers(rows[0]) as unknown as HostSummary) : null;
  }

  async hostSeries(q: HostSeriesQuery, opts?: QueryOptions): Promise<HostPoint[]> {
    checkHostIpQuery(q);
    const rows = await this.series('hosts', HOST_SERIES_COLUMNS, hostConditions(q), q, opts?.signal);
    return rows as unknown as HostPoint[];
  }

  async hostPeers(q: HostTopQuery, opts?: QueryOptions): Promise<HostPeer[]> {
    // The other end: the server when the host is the client, else the client.
    const rows = await this.hostFlows(q, 'CASE WHEN client_ip = $ip THEN server_ip ELSE client_ip END AS ip', 'ip ASC', opts?.signal);
    return rows as unknown as HostPeer[];
  }

  async hostPorts(q: HostTopQuery, opts?: QueryOptions): Promise<HostPort[]> {
    // The service port is the server's, whichever end the host is.
    const rows = await this.hostFlows(q, 'transport, server_port AS port', 'transport ASC, port ASC', opts?.signal);
    return rows as unknown as HostPort[];
  }

  /** The host's flow segments in the range (either end), grouped by `keys` and summed, top by bytes. */
  private async hostFlows(q: HostTopQuery, keys: string, tieBreak: string, signal: AbortSignal | undefined): Promise<Record<string, unknown>[]> {
    checkHostTopQuery(q);
    const where = new Conditions(q);
    where.add('(client_ip = $ip OR server_ip = $ip)', { ip: q.ip });
    if (q.node !== undefined) where.add('node = $node', { node: q.node });
    const sql = `
      SELECT ${keys},
             sum(client_bytes + server_bytes) AS bytes,
             sum(client_packets + server_packets) AS packets,
             count(DISTINCT flow_id) AS flows
      FROM flows ${where.sql()}
      GROUP BY ALL
      ORDER BY bytes DESC, ${tieBreak}
      LIMIT $limit`;
    const rows = await this.read((_conn, session) => session.query(sql, { ...where.params, limit: q.limit }), signal);
    return rows.map(toNumbers);
  }

  /**
   * Buckets of `step` µs over [from, to), aligned to the epoch (so the first one starts at or
   * before `from`), with `columns` aggregated over the rows of `table` matching `where` in each;
   * generate_series makes every bucket so the ones without rows come out as zeros.
   */
  private async series(
    table: string,
    columns: [alias: string, aggregate: string][],
    where: Conditions,
    q: TrafficQuery,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, unknown>[]> {
    const { first, buckets } = checkSeriesQuery(q);
    if (buckets === 0) return [];
    const sql = `
      WITH buckets AS (
        SELECT b AS bucket FROM generate_series($first::BIGINT, $last::BIGINT, $step::BIGINT) AS t(b)
      ), sums AS (
        SELECT epoch_us(ts) // $step::BIGINT * $step::BIGINT AS bucket,
               ${columns.map(([alias, aggregate]) => `${aggregate} AS "${alias}"`).join(', ')}
        FROM ${table} ${where.sql()}
        GROUP BY 1
      )
      SELECT buckets.bucket AS ts, ${columns.map(([alias]) => `coalesce(sums."${alias}", 0) AS "${alias}"`).join(', ')}
      FROM buckets LEFT JOIN sums USING (bucket)
      ORDER BY ts`;
    const rows = await this.read((_conn, session) => session.query(sql, { ...where.params, first, last: q.to - 1, step: q.step }), signal);
    return rows.map(toNumbers);
  }

  async queryAnomalies(q: AnomalyQuery, opts?: QueryOptions): Promise<AnomalyRecord[]> {
    checkAnomalyQuery(q);
    // Active at any time in the range: started before its end and last seen at or after its start.
    const where = new Conditions();
    where.add('started_at < $to AND last_seen >= $from', { from: timestamp(q.from), to: timestamp(q.to) });
    if (q.kind !== undefined) where.add('kind = $kind', { kind: q.kind });
    if (q.host !== undefined) where.add('(source = $host OR target_ip = $host)', { host: q.host });
    if (q.node !== undefined) where.add('node = $node', { node: q.node });
    const sql = `
      SELECT ${ANOMALY_SELECT}
      FROM anomalies ${where.sql()}
      ORDER BY started_at DESC, anomaly_id ASC
      LIMIT $limit`;
    const rows = await this.read((_conn, session) => session.query(sql, { ...where.params, limit: q.limit }), opts?.signal);
    return rows.map((row) => toNumbers(row) as unknown as AnomalyRecord);
  }

  /**
   * Explore from the range's segments held in memory (explore-segments.ts) when they all are; else
   * by the SQL statement at once, while they are read in the background for the requests after it
   * (see warmExplore). By SQL too when they do not fit the budget or the cache is off.
   */
  async explore(q: ExploreQuery, opts?: QueryOptions): Promise<ExploreItem[]> {
    const { first, buckets } = checkExploreQuery(q);
    if (this.exploreCache) {
      const blocks = this.exploreCache.peek(q.from, q.to);
      if (blocks) return exploreFromBlocks(blocks, q, first, buckets);
      if (!this.exploreCache.isTooLarge(q.from, q.to)) this.warmExplore(q.from, q.to).catch(() => undefined);
    }
    return this.exploreBySql(q, opts);
  }

  /**
   * Reads the hour blocks of [from, to) into Explore's memory (one statement for the missing ones;
   * reads run one after another); false when they do not fit or the cache is off.
   */
  async warmExplore(from: number, to: number): Promise<boolean> {
    if (!this.exploreCache || !this.instance) return false;
    return (await this.exploreCache.get(from, to, (f, t, maxBytes) => this.readSegmentBlocks(f, t, maxBytes, undefined))) !== null;
  }

  /** The hour blocks of segments with ts in [from, to), in one statement; null past maxBytes. */
  private readSegmentBlocks(from: number, to: number, maxBytes: number, signal: AbortSignal | undefined): Promise<SegmentBlocksBuilder | null> {
    const sql = `SELECT ${SEGMENT_SELECT} FROM flows WHERE ts >= make_timestamp($from::BIGINT) AND ts < make_timestamp($to::BIGINT)`;
    return this.read(async (conn, session) => {
      const stmt = await conn.prepare(sql);
      try {
        stmt.bind({ from, to });
        const result = await stmt.stream();
        const builder = new SegmentBlocksBuilder();
        for (;;) {
          session.check();
          const chunk = await result.fetchChunk();
          if (!chunk || chunk.rowCount === 0) break;
          if (!builder.addChunk(chunk.getColumns(), chunk.rowCount, maxBytes)) {
            session.discard();
            return null;
          }
        }
        return builder;
      } finally {
        stmt.destroySync();
      }
    }, signal);
  }

  /** Explore by the one SQL statement (explore.ts): the reference the in-memory answer is tested against. */
  async exploreBySql(q: ExploreQuery, opts?: QueryOptions): Promise<ExploreItem[]> {
    const { first, buckets } = checkExploreQuery(q);
    const { sql, params } = duckdbExploreSql(q);
    const rows = await this.read((_conn, session) => session.query(sql, params), opts?.signal);
    return exploreItems(rows.map(toNumbers), q.dimensions.length, first, buckets, q.step);
  }

  async dataExtent(opts?: QueryOptions): Promise<DataExtent | null> {
    // Each table's span per run (source) on its designated timestamp (min/max read the zone maps
    // mostly), then the whole span and the span of the run holding the latest row.
    const perTable = ['flows', 'hosts', 'traffic'].map((table) => `SELECT source, min(ts) AS first, max(ts) AS last FROM ${table} GROUP BY source`);
    const sql = `
      WITH runs AS (SELECT source, min(first) AS first, max(last) AS last FROM (${perTable.join(' UNION ALL ')}) GROUP BY source)
      SELECT epoch_us(min(first)) AS first, epoch_us(max(last)) AS last, epoch_us(arg_max(first, last)) AS "runFirst" FROM runs`;
    const rows = await this.read((_conn, session) => session.query(sql, {}), opts?.signal);
    const row = rows.length ? (toNumbers(rows[0]) as unknown as DataExtent | { first: null }) : null;
    return row && row.first !== null ? (row as DataExtent) : null;
  }

  async *exportFlows(): AsyncIterable<FlowSummary> {
    const filtered = filteredFlowsSql(undefined, {});
    const sql = `${filtered.sql} SELECT * FROM filtered ORDER BY ${FLOW_ORDERS.time.orderBy}`;
    for await (const row of this.stream(sql, filtered.params)) {
      const { totalBytes: _total, ...summary } = row as unknown as FlowSummaryRow;
      yield summary;
    }
  }

  async *exportHosts(): AsyncIterable<HostSummary> {
    const sql = `SELECT ${HOST_AGGREGATE_COLUMNS} FROM hosts GROUP BY ip ORDER BY ${HOST_ORDERS.bytes}`;
    for await (const row of this.stream(sql, {})) yield row as unknown as HostSummary;
  }

  /**
   * Rows of a query, one DuckDB chunk (about 2048 rows) at a time, on a connection of its own that
   * holds a slot of the read pool until the stream ends.
   */
  private async *stream(sql: string, params: Params): AsyncGenerator<Record<string, unknown>> {
    await this.gate.acquire();
    try {
      const conn = await this.opened().connect();
      try {
        const stmt = await conn.prepare(sql);
        stmt.bind(params);
        const result = await stmt.stream();
        for await (const chunk of result.yieldRowObjects()) {
          for (const row of chunk) yield toNumbers(row);
        }
      } finally {
        conn.closeSync();
      }
    } finally {
      this.gate.release();
    }
  }

  /**
   * Runs `fn` on a pooled connection once the pool has a slot (see the header comment). When
   * `signal` aborts, the promise rejects with StoreQueryCancelled at once; a running statement is
   * interrupted and the connection closed when `fn` has stopped, which is when the slot is freed.
   */
  private async read<T>(fn: (conn: DuckDBConnection, session: ReadSession) => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
    await this.gate.acquire(signal);
    let conn: DuckDBConnection;
    try {
      conn = this.idle.pop() ?? (await this.opened().connect());
    } catch (err) {
      this.gate.release();
      throw err;
    }
    const session = new ReadSession(conn, signal);
    const onAbort = () => session.interrupt();
    signal?.addEventListener('abort', onAbort, { once: true });
    const work = (async () => {
      let ok = false;
      try {
        const result = await fn(conn, session);
        ok = true;
        return result;
      } finally {
        signal?.removeEventListener('abort', onAbort);
        // A connection goes back only clean: its work done, not interrupted, the store still open.
        if (ok && session.reusable && this.instance) this.idle.push(conn);
        else conn.closeSync();
        this.gate.release();
      }
    })();
    return raceAbort(work, signal);
  }

  private async readWith<T>(instance: DuckDBInstance, fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const conn = await instance.connect();
    try {
      return await fn(conn);
    } finally {
      conn.closeSync();
    }
  }

  private opened(): DuckDBInstance {
    if (!this.instance) throw new Error(`DuckDB store ${this.path} is not open (call init() first)`);
    return this.instance;
  }

  private writable(): { writer: DuckDBConnection; appenders: NonNullable<DuckDbStore['appenders']>; chunks: NonNullable<DuckDbStore['chunks']> } {
    if (this.readOnly) throw new Error(`DuckDB store ${this.path} is open read-only`);
    if (!this.writer || !this.appenders || !this.chunks) throw new Error(`DuckDB store ${this.path} is not open (call init() first)`);
    return { writer: this.writer, appenders: this.appenders, chunks: this.chunks };
  }

  /** Runs `op` after every earlier write/flush; a failed one does not block the ones after it. */
  private enqueue(op: () => Promise<void>): Promise<void> {
    const run = this.writeQueue.then(op, op);
    this.writeQueue = run.catch(() => undefined);
    return run;
  }
}

/** The statements of one read on one connection: each checks the caller's signal before it starts. */
class ReadSession {
  private interrupted = false;
  private discarded = false;

  constructor(
    private readonly conn: DuckDBConnection,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** The connection may serve the next read (nothing interrupted, no result left unread). */
  get reusable(): boolean {
    return !this.interrupted && !this.discarded;
  }

  /** Throws StoreQueryCancelled once the caller's signal has aborted. */
  check(): void {
    if (this.signal?.aborted) throw new StoreQueryCancelled();
  }

  /** The connection is to be closed after this read rather than reused. */
  discard(): void {
    this.discarded = true;
  }

  /** Stops the statement running on the connection (DuckDB's interrupt). */
  interrupt(): void {
    this.interrupted = true;
    this.conn.interrupt();
  }

  query(sql: string, params: Params): Promise<Row[]> {
    this.check();
    return query(this.conn, sql, params);
  }
}

/**
 * A cache entry's `uniform` column (flow-cache.ts's ENTRY_COLUMNS): the flow's segments agree on
 * every attribute that filteredFlowsSql filters segments by, so that filtering the summed flows by
 * them keeps the same flows with the same sums. One 64-bit hash of them all, compared, is much
 * cheaper than a min and a max of each string.
 */
const UNIFORM_COLUMN = `,
  min(hash(node, transport, client_ip, server_ip, client_port, server_port))
    = max(hash(node, transport, client_ip, server_ip, client_port, server_port)) AS uniform`;

/** The flow cache's key of a range and filter: every filter field in a fixed order. */
function flowCacheKey(range: TimeRange, f: FlowFilter): string {
  return JSON.stringify([
    range.from,
    range.to,
    f.host,
    f.port,
    f.transport,
    f.app,
    f.serverName,
    f.minBytes,
    f.node,
    f.communityId,
    f.risk,
    f.country,
    f.asn,
    f.network,
  ]);
}

/** A WHERE clause built together with its bound parameters, so a clause never lacks its value. */
class Conditions {
  private readonly clauses: string[] = [];
  readonly params: Params = {};

  /** With a range: rows whose ts is in [from, to). */
  constructor(range?: TimeRange) {
    if (range) this.add('ts >= $from AND ts < $to', { from: timestamp(range.from), to: timestamp(range.to) });
  }

  add(clause: string, params: Params): void {
    this.clauses.push(clause);
    Object.assign(this.params, params);
  }

  /** A clause that binds its own values (flow-filter.ts's builders), as $name, $name_1, ... */
  addBound(name: string, build: (bind: Bind) => string): void {
    let n = 0;
    this.clauses.push(
      build((value) => {
        const key = n++ === 0 ? name : `${name}_${n - 1}`;
        this.params[key] = value as Params[string];
        return `$${key}`;
      }),
    );
  }

  sql(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}

/** One host's rows of `hosts` in the range (and node). */
function hostConditions(q: HostIpQuery): Conditions {
  const where = new Conditions(q);
  where.add('ip = $ip', { ip: q.ip });
  if (q.node !== undefined) where.add('node = $node', { node: q.node });
  return where;
}

/**
 * A `WITH ... filtered AS (...)` prefix: the flows with segments in the range (all segments when
 * no range), summed, then filtered. Filters on what every segment shares (host, port, transport,
 * node) go before the GROUP BY so DuckDB reads fewer rows; filters on aggregated values (app and
 * server name as of the latest segment, total bytes) go after it.
 */
function filteredFlowsSql(
  range: TimeRange | undefined,
  filter: FlowFilter,
  extraColumns = '',
  fields?: ReadonlySet<string>,
): { sql: string; params: Params; segmentsWhere: string } {
  const segments = new Conditions(range);
  if (filter.host !== undefined) segments.addBound('host', (bind) => hostSql('duckdb', ['client_ip', 'server_ip'], filter.host as string, bind));
  if (filter.port !== undefined) segments.add('(client_port = $port OR server_port = $port)', { port: filter.port });
  if (filter.transport !== undefined) segments.add('transport = $transport', { transport: filter.transport });
  if (filter.node !== undefined) segments.add('node = $node', { node: filter.node });
  // Every segment of a flow carries its Community ID (it derives from the 5-tuple).
  if (filter.communityId !== undefined) segments.add('community_id = $communityId', { communityId: filter.communityId });
  // Enrichment is set when a flow starts and is the same on each segment.
  if (filter.country !== undefined) segments.add('(client_country = $country OR server_country = $country)', { country: filter.country });
  if (filter.asn !== undefined) segments.add('(client_asn = $asn OR server_asn = $asn)', { asn: filter.asn });
  if (filter.network !== undefined) segments.add('(client_network = $network OR server_network = $network)', { network: filter.network });

  const flows = new Conditions();
  if (filter.app !== undefined) flows.add(duckdbAppSql('app', '$app'), { app: filter.app });
  if (filter.serverName !== undefined) flows.addBound('serverName', (bind) => serverNameSql('duckdb', '"serverName"', filter.serverName as string, bind));
  if (filter.minBytes !== undefined) flows.add('"totalBytes" >= $minBytes', { minBytes: filter.minBytes });
  if (filter.risk !== undefined) flows.add(`list_contains(string_split("risks", ','), $risk)`, { risk: filter.risk });

  const sql = `
    WITH summed AS (
      SELECT ${fields ? flowAggregateColumns(fields) : FLOW_AGGREGATE_COLUMNS}${extraColumns} FROM flows ${segments.sql()} GROUP BY flow_id
    ), filtered AS (
      SELECT * FROM summed ${flows.sql()}
    )`;
  return { sql, params: { ...segments.params, ...flows.params }, segmentsWhere: segments.sql() };
}

/** The summed fields that order a flow page (both orders) and that the filter's flow conditions read. */
function flowKeyFields(filter: FlowFilter): ReadonlySet<string> {
  const fields = new Set(['flowId', 'firstSeen']);
  if (filter.app !== undefined) fields.add('app');
  if (filter.serverName !== undefined) fields.add('serverName');
  if (filter.risk !== undefined) fields.add('risks');
  return fields;
}

async function query(conn: DuckDBConnection, sql: string, params: Params): Promise<Row[]> {
  const stmt = await conn.prepare(sql);
  try {
    stmt.bind(params);
    const reader = await stmt.runAndReadAll();
    return reader.getRowObjects();
  } finally {
    stmt.destroySync();
  }
}

/**
 * DuckDB hands BIGINT/UBIGINT/HUGEINT (counters, their sums, epoch_us() times) back as bigint.
 * Times are selected as epoch_us() rather than TIMESTAMP because the JS conversion of a TIMESTAMP
 * is a Date, which drops the microseconds. Values up to 2^53 convert exactly, which covers µs
 * times to the year 2255 and byte counts to 9 PB.
 */
function toNumbers(row: Row): Record<string, unknown> {
  // In place: exports convert every row, and copying them showed up in profiles.
  for (const key in row) {
    const value = row[key];
    if (typeof value === 'bigint') row[key] = Number(value);
  }
  return row;
}

function timestamp(us: number): DuckDBTimestampValue {
  return new DuckDBTimestampValue(BigInt(us));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// Column order of the tables (src/records) as this version creates them.
const FLOW_COLUMNS = chunkColumns<FlowRecord>(FLOW);
const HOST_COLUMNS = chunkColumns<HostRecord>(HOST);
const TRAFFIC_COLUMNS = chunkColumns<TrafficRecord>(TRAFFIC);

/**
 * A table's columns in the order the file has them, which the appender writes in: a file created
 * by an earlier version got the columns added since at the end (ALTER TABLE ADD COLUMN), where the
 * definition may have them in the middle. One clear error for a file whose columns are not this
 * version's (a newer version's file).
 */
async function columnsInFileOrder<T>(
  conn: DuckDBConnection,
  def: typeof FLOW | typeof HOST | typeof TRAFFIC,
  specs: ColumnSpec<T>[],
): Promise<ColumnSpec<T>[]> {
  const reader = await conn.runAndReadAll(
    "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'main' AND table_name = $1 ORDER BY column_index",
    [def.table],
  );
  const names = reader.getRows().map((r) => String(r[0]));
  const bySql = new Map(def.list.map((c, i) => [c.sql, specs[i]]));
  const unknown = names.filter((n) => !bySql.has(n));
  const missing = def.list.filter((c) => !names.includes(c.sql)).map((c) => c.sql);
  if (unknown.length > 0 || missing.length > 0) {
    const what = [unknown.length > 0 ? `unknown: ${unknown.join(', ')}` : '', missing.length > 0 ? `missing: ${missing.join(', ')}` : ''];
    throw new Error(`table ${def.table} does not have this version's columns (${what.filter(Boolean).join('; ')}): was it written by a newer flowlens?`);
  }
  return names.map((n) => bySql.get(n)!);
}

/** Anomalies as records: every column, aliased to its field. */
const ANOMALY_SELECT = duckdbRecordSelect(ANOMALY);

/** Anomaly rows per INSERT statement: 15 parameters each, so a statement stays a few KB of SQL. */
const ANOMALIES_PER_STATEMENT = 256;

const ANOMALY_COLUMNS = ANOMALY.list.map((c) => c.sql).join(', ');
/** Values per anomaly row: the statement's placeholders run $1, $2, ... over all its rows. */
const ANOMALY_ROW_PARAMS = ANOMALY.list.length;
/** An anomaly's values in ANOMALY_COLUMNS order (times as TIMESTAMP values). */
const ANOMALY_VALUES: ((an: AnomalyRecord) => DuckDBValue)[] = ANOMALY.list.map((c) => {
  const get = fieldGetter(c.field) as (an: AnomalyRecord) => DuckDBValue;
  return c.type === 'time' ? (an: AnomalyRecord) => timestamp(get(an) as number) : get;
});

/**
 * Anomalies are few and updated in place, so they go through INSERT OR REPLACE on the primary
 * key, many rows per statement: one statement per row cost ~2 ms each (the benchmark capture's
 * 349 anomalies took 0.7 s, on the thread the import's commits wait for).
 * The caller passes each anomaly once (a statement must not touch one key twice).
 */
async function upsertAnomalies(conn: DuckDBConnection, anomalies: AnomalyRecord[]): Promise<void> {
  await conn.run('BEGIN TRANSACTION');
  try {
    for (let start = 0; start < anomalies.length; start += ANOMALIES_PER_STATEMENT) {
      const rows = anomalies.slice(start, start + ANOMALIES_PER_STATEMENT);
      const values: DuckDBValue[] = [];
      const tuples = rows.map((an) => {
        const at = values.length;
        for (const value of ANOMALY_VALUES) values.push(value(an));
        return `(${Array.from({ length: ANOMALY_ROW_PARAMS }, (_, k) => `$${at + k + 1}`).join(', ')})`;
      });
      await conn.run(`INSERT OR REPLACE INTO anomalies (${ANOMALY_COLUMNS}) VALUES ${tuples.join(', ')}`, values);
    }
    await conn.run('COMMIT');
  } catch (err) {
    await conn.run('ROLLBACK');
    throw err;
  }
}
