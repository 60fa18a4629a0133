// QuestDB back end: writes over ILP/HTTP with the official client, reads over the PostgreSQL wire
// protocol with `pg`.
//
// Writes: a batch is serialised by a per-table ILP serialiser compiled from the record definitions
// (record-sql.ts ilpRows: the bytes the client's SenderBuffer would write, many times faster) into
// request bodies of bounded size, and POSTed to /write by questdb-http.ts, which follows the client's HTTP transport but keeps the server's reason for a
// refusal (the client's transport drops it). Sender itself is not used because Sender.flush() takes
// the rows out of its buffer before the send's outcome is known, so after a failed send the rows
// would be gone; holding the serialised bytes ourselves lets SpoolingWriter (./spool.ts) put exactly
// what failed into the outage spool, replay it later, and set aside a batch the server refuses.
//
// Reads: bound parameters ($1, $2, ...) for every value that comes from a caller. `pg` sends them as
// text with no declared type (Parse carries no OIDs), and QuestDB types each one from where it is
// used; this is the pattern QuestDB's own node `pg` compatibility suite runs (questdb/questdb
// compat/src/test/resources/test_cases.yaml: `WHERE timestamp = $1` with '2024-10-01T10:00:00.000000Z').
// Times are therefore bound as ISO-8601 strings with microseconds and a Z, never as numbers: a number
// bound for a TIMESTAMP fails with "could not parse [value=..., as=TIMESTAMP]" (questdb/questdb.io#608).
// What is not a caller's value is inlined, never bound: ORDER BY columns (closed lists), LIMIT counts
// and the SAMPLE BY stride and FROM/TO bounds (validated integers), so that none of them depends on
// how a server version infers an untyped parameter. The LIMIT and SAMPLE BY reference pages show
// literals only (docs/reference/sql/limit.md, sample-by.md); parallel SAMPLE BY takes constant FROM/TO
// only (questdb/questdb#4733), and a non-constant FROM failed on 8.1.0 until questdb/questdb#4850.
// Times are read back as cast(... AS LONG) so that no precision is lost to JS Dates (`pg` would parse
// a TIMESTAMP into a millisecond Date); LONGs arrive as strings and go through Number(), exact up to
// 2^53.
import { readFile } from 'node:fs/promises';
import { SenderOptions, type SenderBuffer } from '@questdb/nodejs-client';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { pino } from 'pino';
import { ANOMALY, FLOW, HOST, TRAFFIC } from '../records/index.js';
import { encodeCursor } from './cursor.js';
import { hostSql, questdbAppSql, serverNameSql } from './flow-filter.js';
import { checkExploreQuery, type ExploreItem, type ExploreQuery, exploreItems, questdbExploreSql } from './explore.js';
import { IlpHttpTransport } from './questdb-http.js';
import { checkAnomalyQuery, checkFlowQuery, checkHostIpQuery, checkHostQuery, checkHostTopQuery, checkSeriesQuery } from './query-check.js';
import { DEFAULT_READ_POOL_SIZE, DEFAULT_READ_QUEUE_LIMIT, raceAbort, ReadGate, type ReadGateState } from './read-pool.js';
import { IlpBuffer, ilpRows, ilpSerializer, questdbRecordSelect, questdbRowMapper, questdbSummary } from './record-sql.js';
import { Spool, SpoolingWriter, type SpoolDepth, type SpoolLogger } from './spool.js';
import {
  StoreQueryError,
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
  type TrafficPoint,
  type TrafficQuery,
  type TrafficRecord,
} from './types.js';

export const SCHEMA_URL = new URL('../../schema/questdb.sql', import.meta.url);
const TABLES = ['flows', 'hosts', 'traffic', 'anomalies'] as const;
/** A migration statement of schema/questdb.sql, run by QuestDbStore.addColumnIfMissing. */
const ADD_COLUMN_IF_NOT_EXISTS = /^ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+) ([^;]+)$/i;
/** A dedup statement of schema/questdb.sql, run only where needsDedupEnable() says so. */
const DEDUP_ENABLE = /^ALTER TABLE (\w+) DEDUP ENABLE UPSERT KEYS\(([^)]*)\)$/i;

/**
 * What start-up knows of an existing table, from tables() (its `dedup`, `ttlValue` and `ttlUnit`
 * columns) and table_columns() (`upsertKey`), docs/reference/function/meta.md.
 */
export interface TableState {
  dedup: boolean;
  /** The columns table_columns() marks as upsertKey, lower-cased. */
  upsertKeys: string[];
  /** The table's TTL in hours (0: none); null when tables() does not say or gives MONTH or YEAR. */
  ttlHours: number | null;
}

/**
 * Whether `ALTER TABLE ... DEDUP ENABLE UPSERT KEYS(keys)` must run: only when deduplication is off,
 * or on with other keys, or the table's state is unknown. Every ALTER TABLE is a metadata change
 * (a new metadata version, cached query plans on the table invalidated), so it is not re-run on a
 * table that already deduplicates on exactly these keys.
 */
export function needsDedupEnable(state: TableState | undefined, keys: string[]): boolean {
  if (!state?.dedup) return true;
  const want = keys.map((k) => k.trim().toLowerCase()).sort();
  const have = [...state.upsertKeys].sort();
  return want.length !== have.length || want.some((k, i) => k !== have[i]);
}

/** Whether `ALTER TABLE ... SET TTL <days> DAYS` must run: only when the table's TTL is not already that. */
export function needsTtl(state: TableState | undefined, days: number): boolean {
  return state?.ttlHours !== days * 24;
}

const TTL_UNIT_HOURS: Record<string, number> = { HOUR: 1, HOURS: 1, DAY: 24, DAYS: 24, WEEK: 168, WEEKS: 168 };

/** tables()'s ttlValue and ttlUnit as hours; null for units of no fixed length (MONTH, YEAR) or none given. */
export function ttlHours(value: unknown, unit: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = Number(value);
  if (!Number.isFinite(n)) return null;
  if (n === 0) return 0;
  const perUnit = TTL_UNIT_HOURS[String(unit ?? '').toUpperCase()];
  return perUnit === undefined ? null : n * perUnit;
}

// ---------------------------------------------------------------------------------------------
// Schema

/** Splits schema/questdb.sql into statements: '--' comments dropped, ';' at a line's end ends one. */
export function parseSchemaSql(sql: string): string[] {
  const statements: string[] = [];
  let current: string[] = [];
  for (const raw of sql.split('\n')) {
    const line = raw.replace(/--.*$/, '').trimEnd();
    if (line.trim() === '') continue;
    if (line.endsWith(';')) {
      current.push(line.slice(0, -1));
      statements.push(current.join('\n').trim());
      current = [];
    } else {
      current.push(line);
    }
  }
  if (current.join('').trim() !== '') throw new Error('schema/questdb.sql: last statement has no terminating ;');
  return statements;
}

// ---------------------------------------------------------------------------------------------
// ILP serialisation

// One serialiser per record, compiled from its column list (record-sql.ts: symbols first, the
// designated timestamp last with at(µs), empty texts not written so that they read as NULL).
const serializeFlows = ilpSerializer<FlowRecord>(FLOW);
const serializeHosts = ilpSerializer<HostRecord>(HOST);
const serializeTraffic = ilpSerializer<TrafficRecord>(TRAFFIC);
const serializeAnomalies = ilpSerializer<AnomalyRecord>(ANOMALY);

/**
 * Appends a batch to a client SenderBuffer with the client's own row API: the reference the writer's
 * serialiser (ilpBodies) is compared with (test/questdb-ilp.test.ts). Returns the number of rows.
 */
export function serializeBatch(buf: SenderBuffer, batch: RecordBatch): number {
  serializeFlows(buf, batch.flows);
  serializeHosts(buf, batch.hosts);
  serializeTraffic(buf, batch.traffic);
  if (batch.anomalies) serializeAnomalies(buf, batch.anomalies);
  return batch.flows.length + batch.hosts.length + batch.traffic.length + (batch.anomalies?.length ?? 0);
}

const flowRows = ilpRows<FlowRecord>(FLOW);
const hostRows = ilpRows<HostRecord>(HOST);
const trafficRows = ilpRows<TrafficRecord>(TRAFFIC);
const anomalyRows = ilpRows<AnomalyRecord>(ANOMALY);

/**
 * A request body stays under about this many bytes (one row more at most: ~4,500 flow rows), so
 * that a body, a spooled batch and a replay are bounded whatever the batch's row count.
 */
export const MAX_BODY_BYTES = 2 * 1024 * 1024;

/** The writers' buffer, reused: serialising allocates only the bodies' copies. */
const scratch = new IlpBuffer(MAX_BODY_BYTES + 256 * 1024);

/** One request body of serialised rows. */
export interface IlpBody {
  body: Buffer;
  rows: number;
}

/**
 * Serialises a batch into ILP request bodies of at most ~maxChars characters each (a row is never
 * split). All of the batch is serialised before anything is sent, so a value that cannot be
 * serialised throws and nothing of the batch is written.
 */
export function ilpBodies(batch: RecordBatch, maxBytes = MAX_BODY_BYTES): IlpBody[] {
  const bodies: IlpBody[] = [];
  const out = scratch;
  out.pos = 0;
  let rows = 0;
  const take = <T>(write: (rows: readonly T[], from: number, maxBytes: number, out: IlpBuffer) => number, records: readonly T[]) => {
    let i = 0;
    while (i < records.length) {
      const next = write(records, i, maxBytes, out);
      rows += next - i;
      i = next;
      if (out.pos >= maxBytes) {
        bodies.push({ body: out.take(), rows });
        rows = 0;
      }
    }
  };
  try {
    take(flowRows, batch.flows);
    take(hostRows, batch.hosts);
    take(trafficRows, batch.traffic);
    if (batch.anomalies) take(anomalyRows, batch.anomalies);
    if (rows > 0) bodies.push({ body: out.take(), rows });
  } finally {
    out.pos = 0;
    // A batch of unusually long rows may have grown the buffer: do not keep that much.
    if (out.buf.length > 4 * MAX_BODY_BYTES) out.use(Buffer.allocUnsafe(MAX_BODY_BYTES + 256 * 1024));
  }
  return bodies;
}

// ---------------------------------------------------------------------------------------------
// Writer

export interface IlpWriterOptions {
  /** ILP configuration string, e.g. 'http::addr=localhost:9000;', or ILP/HTTP URL, e.g. 'http://localhost:9000'. */
  ilp: string;
  spoolDir: string;
  /** Spool bound (default 1 GiB). */
  spoolMaxBytes?: number;
  /** write() waits while more than this is pending or being delivered (default 32 MiB). */
  maxInFlightBytes?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  log?: SpoolLogger;
}

// Defaults applied only when the configuration string does not set them. Rows are sent at least
// every second (matching the client's own interval default) and in requests of at most 10k rows,
// well under the client's HTTP default of 75k so that one request stays a few MB.
const DEFAULT_AUTO_FLUSH_ROWS = 10_000;
const DEFAULT_AUTO_FLUSH_INTERVAL_MS = 1_000;

export interface IlpWriter {
  readonly writer: SpoolingWriter;
  write(batch: RecordBatch): Promise<void>;
  /** Closes the writer (sending what it can, spooling the rest) and the HTTP connections. */
  close(): Promise<void>;
}

/**
 * The client's configuration string for `ilp`, which is either one already
 * ('http::addr=host:9000;...', passed through) or a plain ILP/HTTP URL ('http://host:9000',
 * 'https://user:pass@host:9000/'), the form QuestDB's own docs and most deployments give the
 * endpoint in. SenderOptions only parses 'protocol::key=value;' and rejects a URL with "Missing
 * protocol", so the URL is turned into http(s)::addr=host:port; (no port: the client's default,
 * QuestDB's 9000), with its user and password as username/password and ';' doubled as the
 * configuration string escapes it.
 */
export function ilpConfigString(ilp: string): string {
  const s = ilp.trim();
  const m = /^(https?):\/\/(?:([^@/?#]*)@)?([^/?#@]+)\/?$/i.exec(s);
  if (!m) return s; // a configuration string, or something SenderOptions will name the problem of
  const esc = (v: string) => decodeURIComponent(v).replaceAll(';', ';;');
  let conf = `${m[1]!.toLowerCase()}::addr=${m[3]!};`;
  if (m[2]) {
    const colon = m[2].indexOf(':');
    const user = colon < 0 ? m[2] : m[2].slice(0, colon);
    if (user) conf += `username=${esc(user)};`;
    if (colon >= 0 && colon < m[2].length - 1) conf += `password=${esc(m[2].slice(colon + 1))};`;
  }
  return conf;
}

/** Builds the ILP serialiser, transport and spooling writer from a configuration string (or ILP/HTTP URL). */
export async function createIlpWriter(opts: IlpWriterOptions): Promise<IlpWriter> {
  const log = opts.log ?? defaultLogger();
  const options = new SenderOptions(ilpConfigString(opts.ilp), {
    log: (level, message) => {
      const text = message instanceof Error ? message.message : message;
      if (level === 'error' || level === 'warn') log.warn({ client: level }, `questdb client: ${text}`);
    },
  });
  if (options.protocol !== 'http' && options.protocol !== 'https') {
    // ILP/TCP acknowledges nothing, so the spool could not know what reached the server.
    throw new Error(`QuestDB ILP configuration must use http:: or https:: (got ${options.protocol}::)`);
  }
  if (options.protocol_version === undefined || options.protocol_version === 'auto') {
    // 'auto' asks the server's /settings endpoint first, which would make start-up fail during an
    // outage; flowlens writes no DOUBLE or array columns, the only things protocol 2 changes, and
    // version 1 text is what every QuestDB accepts, also when the spool is replayed after an upgrade.
    options.protocol_version = '1';
  }
  options.auto_flush_rows ??= DEFAULT_AUTO_FLUSH_ROWS;
  options.auto_flush_interval ??= DEFAULT_AUTO_FLUSH_INTERVAL_MS;
  // The request is our own (questdb-http.ts) so that a refusal carries the server's reason; it
  // follows the client's transport otherwise (path, authentication, TLS, timeouts, retries).
  const transport = new IlpHttpTransport(options);
  const spool = await Spool.open(opts.spoolDir, opts.spoolMaxBytes ?? 1024 ** 3, log);
  const writer = new SpoolingWriter({
    // A body QuestDB accepted: the serialiser writes the next ones into its buffer.
    release: (body) => scratch.recycle(body),
    send: async (body) => {
      // A guard against a send that never settles; the transport's own timeouts come first.
      const budgetMs = transport.sendBudgetMs(body.length);
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          transport.send(body),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`ILP request did not settle within ${budgetMs} ms`)), budgetMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
    spool,
    log,
    autoFlush: options.auto_flush !== false,
    autoFlushRows: options.auto_flush_rows,
    autoFlushIntervalMs: options.auto_flush_interval,
    maxInFlightBytes: opts.maxInFlightBytes ?? 32 * 1024 ** 2,
    retryMinMs: opts.retryMinMs ?? 500,
    retryMaxMs: opts.retryMaxMs ?? 30_000,
    maxRefusals: 3,
  });
  return {
    writer,
    async write(batch) {
      // Throws before anything is written when a value cannot be serialised (the whole batch is dropped).
      for (const b of ilpBodies(batch)) await writer.write(b.body, b.rows);
    },
    async close() {
      try {
        await writer.close();
      } finally {
        transport.close();
      }
    },
  };
}

/** For callers that pass no logger: stderr, never stdout, which carries the CLI's data (import --json, export). */
function defaultLogger(): SpoolLogger {
  return pino({ name: 'flowlens-questdb' }, pino.destination({ fd: 2, sync: true }));
}

// ---------------------------------------------------------------------------------------------
// Reads: helpers

/** Collects bound parameters; each use gets its own $n (no reuse, so every type is inferred once). */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** µs since the epoch → '2024-01-02T03:04:05.123456Z', QuestDB's timestamp text form. */
export function isoMicros(us: number): string {
  if (!Number.isSafeInteger(us)) throw new StoreQueryError(`invalid time ${us}`);
  const ms = Math.floor(us / 1000);
  const sub = us - ms * 1000;
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) throw new StoreQueryError(`invalid time ${us}`);
  return `${d.toISOString().slice(0, -1) + String(sub).padStart(3, '0')}Z`;
}

/** The SAMPLE BY stride for a step in µs: the largest unit that divides it. A validated integer, not input text. */
export function sampleByStride(stepUs: number): string {
  // Checked by checkSeriesQuery already; the stride reaches SQL text, so it is checked again here.
  if (!Number.isSafeInteger(stepUs) || stepUs <= 0) throw new Error(`not a checked step: ${stepUs}`);
  const units: [number, string][] = [
    [86_400_000_000, 'd'],
    [3_600_000_000, 'h'],
    [60_000_000, 'm'],
    [1_000_000, 's'],
    [1_000, 'T'],
    [1, 'U'],
  ];
  for (const [size, unit] of units) {
    if (stepUs % size === 0) return `${stepUs / size}${unit}`;
  }
  throw new Error('unreachable');
}

type Row = Record<string, unknown>;
const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

// ---------------------------------------------------------------------------------------------
// Reads: flows

const FLOW_ORDER_SQL: Record<FlowOrder, string> = {
  time: 'first_seen_us ASC, flow_id ASC',
  bytes: 'total_bytes DESC, flow_id ASC',
};

/**
 * Segments are summed per flow. Filters on what a flow keeps for its whole life (addresses, ports,
 * transport, node) apply to segments, where they prune; filters on what can change (app, server
 * name, bytes) apply to the summed flow, so a flow matches or not as a whole.
 */
function flowSource(p: Params, range: { from: number; to: number } | null, f: FlowFilter): { source: string } {
  const where: string[] = [];
  if (range) {
    // Predicates on the designated timestamp: QuestDB scans only the partitions in range.
    where.push(`ts >= ${p.add(isoMicros(range.from))}`, `ts < ${p.add(isoMicros(range.to))}`);
  }
  if (f.host !== undefined) where.push(hostSql('questdb', ['client_ip', 'server_ip'], f.host, (v) => p.add(v)));
  if (f.port !== undefined) where.push(`(client_port = ${p.add(f.port)} OR server_port = ${p.add(f.port)})`);
  if (f.transport) where.push(`transport = ${p.add(f.transport)}`);
  if (f.node) where.push(`node = ${p.add(f.node)}`);
  // Every segment of a flow carries its Community ID (it derives from the 5-tuple).
  if (f.communityId) where.push(`community_id = ${p.add(f.communityId)}`);
  if (f.country) where.push(`(client_country = ${p.add(f.country)} OR server_country = ${p.add(f.country)})`);
  if (f.asn !== undefined) where.push(`(client_asn = ${p.add(f.asn)} OR server_asn = ${p.add(f.asn)})`);
  if (f.network) where.push(`(client_network = ${p.add(f.network)} OR server_network = ${p.add(f.network)})`);
  // The segments summed by FLOW's combine rules (record-sql.ts: questdbSummary).
  const grouped = `
    SELECT ${FLOW_SUMMARY_SQL.select}
    FROM flows
    ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    GROUP BY ${FLOW_SUMMARY_SQL.groupBy}`;
  // Casts and arithmetic one level up: QuestDB does not take aggregates as function arguments.
  const outer = `
    SELECT ${FLOW_SUMMARY_SQL.outer},
           client_bytes + server_bytes total_bytes
    FROM (${grouped})`;
  const post: string[] = [];
  // An empty app or server name is stored as NULL (see sym/optString): '' asks for those flows, as
  // it does of the DuckDB back end.
  if (f.app !== undefined) post.push(questdbAppSql('app', f.app, (v) => p.add(v)));
  if (f.serverName !== undefined) post.push(serverNameSql('questdb', 'server_name', f.serverName, (v) => p.add(v)));
  if (f.minBytes !== undefined) post.push(`total_bytes >= ${p.add(f.minBytes)}`);
  // A name from the closed list (query-check.ts: no quote, % or _; none part of another), so a
  // literal substring pattern is safe and exact.
  if (f.risk !== undefined) post.push(`risks LIKE '%${f.risk}%'`);
  return { source: post.length ? `SELECT * FROM (${outer}) WHERE ${post.join(' AND ')}` : outer };
}

const FLOW_SUMMARY_SQL = questdbSummary(FLOW);
const rowToFlow = questdbRowMapper<FlowSummary>(FLOW.summary);
const ANOMALY_SELECT = questdbRecordSelect(ANOMALY);
const rowToAnomaly = questdbRowMapper<AnomalyRecord>(ANOMALY.list);

function flowCursor(order: FlowOrder, f: FlowSummary): string {
  return encodeCursor({ order, value: order === 'time' ? f.firstSeen : f.clientBytes + f.serverBytes, flowId: f.flowId });
}

// ---------------------------------------------------------------------------------------------
// Reads: hosts

const HOST_ORDER_SQL: Record<HostOrder, string> = {
  bytes: 'total_bytes DESC, ip ASC',
  packets: 'total_packets DESC, ip ASC',
  flows: 'flows DESC, ip ASC',
};

/** Filters of the host list on the records' enrichment columns (HostQuery's country, asn, network). */
type HostEnrichFilter = Pick<HostQuery, 'country' | 'asn' | 'network'>;

function hostSource(p: Params, range: { from: number; to: number } | null, node: string | undefined, ip?: string, enrich: HostEnrichFilter = {}): string {
  const where: string[] = [];
  if (range) where.push(`ts >= ${p.add(isoMicros(range.from))}`, `ts < ${p.add(isoMicros(range.to))}`);
  if (node) where.push(`node = ${p.add(node)}`);
  if (ip !== undefined) where.push(`ip = ${p.add(ip)}`);
  if (enrich.country !== undefined) where.push(`country = ${p.add(enrich.country)}`);
  if (enrich.asn !== undefined) where.push(`asn = ${p.add(enrich.asn)}`);
  if (enrich.network !== undefined) where.push(`network = ${p.add(enrich.network)}`);
  // last(): the value of the latest record in the group (QuestDB orders by the designated timestamp).
  const grouped = `
    SELECT ip, sum(bytes_sent) bytes_sent, sum(bytes_received) bytes_received,
           sum(packets_sent) packets_sent, sum(packets_received) packets_received,
           sum(flows_initiated) flows_initiated, sum(flows_received) flows_received,
           max(peers) peers, min(ts) first_seen, max(ts) last_seen,
           last(country) country, last(asn) asn, last(as_org) as_org, last(network) network
    FROM hosts
    ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    GROUP BY ip`;
  return `
    SELECT ip, bytes_sent, bytes_received, packets_sent, packets_received, flows_initiated, flows_received, peers, country, asn, as_org, network,
           flows_initiated + flows_received flows,
           bytes_sent + bytes_received total_bytes,
           packets_sent + packets_received total_packets,
           cast(first_seen AS LONG) first_seen_us, cast(last_seen AS LONG) last_seen_us
    FROM (${grouped})`;
}

function rowToHost(r: Row): HostSummary {
  return {
    ip: str(r.ip),
    bytesSent: num(r.bytes_sent),
    bytesReceived: num(r.bytes_received),
    packetsSent: num(r.packets_sent),
    packetsReceived: num(r.packets_received),
    flowsInitiated: num(r.flows_initiated),
    flowsReceived: num(r.flows_received),
    flows: num(r.flows),
    peers: num(r.peers),
    firstSeen: num(r.first_seen_us),
    lastSeen: num(r.last_seen_us),
    country: str(r.country),
    asn: num(r.asn),
    asOrg: str(r.as_org),
    network: str(r.network),
  };
}

// ---------------------------------------------------------------------------------------------
// Reads: series

/** A column of a SAMPLE BY series: its aggregate (fixed text) and the point field it fills. */
interface SeriesColumn {
  column: string;
  aggregate: 'sum' | 'max';
  field: string;
}

const TRAFFIC_SERIES: SeriesColumn[] = [
  { column: 'bytes', aggregate: 'sum', field: 'bytes' },
  { column: 'packets', aggregate: 'sum', field: 'packets' },
  { column: 'flows', aggregate: 'sum', field: 'flows' },
];

const HOST_SERIES: SeriesColumn[] = [
  { column: 'bytes_sent', aggregate: 'sum', field: 'bytesSent' },
  { column: 'bytes_received', aggregate: 'sum', field: 'bytesReceived' },
  { column: 'packets_sent', aggregate: 'sum', field: 'packetsSent' },
  { column: 'packets_received', aggregate: 'sum', field: 'packetsReceived' },
  { column: 'flows_initiated', aggregate: 'sum', field: 'flowsInitiated' },
  { column: 'flows_received', aggregate: 'sum', field: 'flowsReceived' },
  // Distinct peers are not additive: the largest per-interval count, as in HostSummary.
  { column: 'peers', aggregate: 'max', field: 'peers' },
];

// ---------------------------------------------------------------------------------------------
// Cancellation

/** What node-postgres keeps of a connection that its typings do not show. */
interface PgClientInternals {
  processID: number | null;
  activeQuery: unknown;
}

/**
 * Sends PostgreSQL's CancelRequest for the query `client` is running: pg's Client#cancel opens a
 * connection of its own to the same server and sends the backend process id and secret key that
 * the server gave `client` at start-up (BackendKeyData). QuestDB's PG wire server handles it and
 * fails the running query; the connection then carries no state anyone needs, and the caller
 * closes it. Best effort: errors of the cancel connection are ignored (the closed connection
 * stops the query in any case, as QuestDB's circuit breaker checks the client socket).
 */
function sendCancelRequest(connectionString: string, client: pg.PoolClient): void {
  const target = client as unknown as PgClientInternals;
  if (target.processID === null || target.processID === undefined || !target.activeQuery) return;
  const canceller = new pg.Client({ connectionString });
  const internals = canceller as unknown as {
    connection: { on(event: string, fn: () => void): void; stream?: { destroy(): void } };
    cancel(client: pg.PoolClient, query: unknown): void;
  };
  internals.connection.on('error', () => undefined);
  try {
    internals.cancel(client, target.activeQuery);
  } catch {
    return;
  }
  // The server closes a cancel connection itself; this only guards against one that does not.
  setTimeout(() => internals.connection.stream?.destroy(), 5_000).unref();
}

// ---------------------------------------------------------------------------------------------
// The store

export interface QuestDbStoreOptions {
  ilp: string;
  /** PostgreSQL wire URL, e.g. postgres://admin:quest@localhost:8812/qdb. */
  pg: string;
  /** TTL in days; 0 leaves the tables' TTL as it is (keep forever on a new database). */
  retentionDays: number;
  spoolDir: string;
  spoolMaxBytes?: number;
  log?: SpoolLogger;
  /** Reads running at once, each on a pg connection of the pool (default 4). */
  readConnections?: number;
  /** Reads waiting for a connection before the next is refused with StoreBusyError (default 256). */
  readQueue?: number;
  /**
   * Reads only (export): no schema statements at start, no ILP writer and no spool (a spool left by
   * a writer is that writer's to replay); write() and flush() throw.
   */
  readOnly?: boolean;
}

/** Rows fetched per round trip by the export's cursor. */
const EXPORT_CHUNK = 1000;
/** How long flush() waits for the WAL apply job to make acknowledged rows visible to queries. */
const WAL_VISIBLE_TIMEOUT_MS = 30_000;

export class QuestDbStore implements FlowStore {
  readonly backend = 'questdb';
  private readonly opts: QuestDbStoreOptions;
  private readonly log: SpoolLogger;
  private pool: pg.Pool | null = null;
  private ilp: IlpWriter | null = null;
  /**
   * Bounds the reads (read-pool.ts): pg.Pool's own queue of waiting requests has no bound, so reads
   * take a slot here first and the pool has one connection more than there are slots (for the
   * schema, flush's WAL polls), so that a read holding a slot never waits in pg.Pool's queue.
   */
  private readonly gate: ReadGate;

  constructor(opts: QuestDbStoreOptions) {
    if (!Number.isInteger(opts.retentionDays) || opts.retentionDays < 0) throw new Error('retentionDays must be a non-negative integer');
    this.opts = opts;
    this.log = opts.log ?? defaultLogger();
    this.gate = new ReadGate({ size: opts.readConnections ?? DEFAULT_READ_POOL_SIZE, queueLimit: opts.readQueue ?? DEFAULT_READ_QUEUE_LIMIT });
  }

  /** The read pool, for metrics and tests. */
  readState(): { pool: ReadGateState } {
    return { pool: this.gate.state() };
  }

  async init(): Promise<void> {
    const pool = new pg.Pool({ connectionString: this.opts.pg, max: this.gate.size + 1 });
    // An idle connection dropped by a QuestDB restart must not crash the process; the next query reconnects.
    pool.on('error', (err) => this.log.warn({ err: err.message }, 'questdb: idle pg connection lost'));
    this.pool = pool;
    if (this.opts.readOnly) return;
    await this.applySchema();
    // The writer starts (and replays any spool) only once the tables exist: ILP would otherwise
    // create them itself, without the designated timestamp name, types and dedup keys above.
    this.ilp = await createIlpWriter({ ilp: this.opts.ilp, spoolDir: this.opts.spoolDir, spoolMaxBytes: this.opts.spoolMaxBytes, log: this.log });
    this.ilp.writer.start();
  }

  private async applySchema(): Promise<void> {
    const all = parseSchemaSql(await readFile(SCHEMA_URL, 'utf8'));
    // DEDUP ENABLE last: its keys may name a column that a migration (ADD COLUMN) adds to an
    // existing table, such as hosts' and traffic's `source`.
    const statements = [...all.filter((s) => !DEDUP_ENABLE.test(s)), ...all.filter((s) => DEDUP_ENABLE.test(s))];
    // Read once the tables exist and have their columns.
    let states: Map<string, TableState> | null = null;
    for (const s of statements) {
      const add = ADD_COLUMN_IF_NOT_EXISTS.exec(s);
      const dedup = DEDUP_ENABLE.exec(s);
      try {
        if (add) await this.addColumnIfMissing(add[1]!, add[2]!, add[3]!);
        else if (dedup) {
          states ??= await this.tableStates();
          if (needsDedupEnable(states.get(dedup[1]!.toLowerCase()), dedup[2]!.split(','))) await this.db().query(s);
        } else await this.db().query(s);
      } catch (err) {
        // Older servers refuse the DDL with messages that do not say why, e.g. 8.1.0 and before:
        // "deduplicate key column can only be fixed size column [column=flow_id, type=VARCHAR]"
        // (VARCHAR dedup keys came with questdb/questdb#4915, in 8.1.1). Only the server's own
        // refusals (pg.DatabaseError) get the hint; a connection failure is rethrown as it is.
        if (!(err instanceof pg.DatabaseError)) throw err;
        throw new Error(`QuestDB refused schema statement "${s.split('\n')[0]}...": ${err.message} (flowlens needs QuestDB 8.2.2 or later)`, { cause: err });
      }
    }
    if (this.opts.retentionDays > 0) {
      // TTL is a whole number of partitions (days here); the number is a validated integer and the
      // table names a fixed list, as DDL cannot take bind parameters. TTL needs QuestDB 8.2.2 or later
      // (added by questdb/questdb#5234, after 8.2.1); older servers refuse the statement.
      // Only where the TTL differs: like DEDUP ENABLE, SET TTL is a metadata change.
      states ??= await this.tableStates();
      for (const t of TABLES) {
        if (needsTtl(states.get(t), this.opts.retentionDays)) await this.db().query(`ALTER TABLE ${t} SET TTL ${this.opts.retentionDays} DAYS`);
      }
    }
  }

  /** flowlens's tables as tables() and table_columns() describe them (docs/reference/function/meta.md). */
  private async tableStates(): Promise<Map<string, TableState>> {
    const states = new Map<string, TableState>();
    const { rows } = await this.db().query('SELECT * FROM tables()');
    const bool = (v: unknown) => v === true || v === 't' || v === 'true';
    for (const r of rows as Row[]) {
      // `table_name` since QuestDB 7.3 (`name` before).
      const name = str(r.table_name ?? r.name).toLowerCase();
      if (!(TABLES as readonly string[]).includes(name)) continue;
      const cols = await this.db().query(`SELECT * FROM table_columns('${name}')`);
      const upsertKeys = (cols.rows as Row[]).filter((c) => bool(c.upsertKey ?? c.upsertkey)).map((c) => str(c.column).toLowerCase());
      states.set(name, { dedup: bool(r.dedup), upsertKeys, ttlHours: ttlHours(r.ttlValue ?? r.ttlvalue, r.ttlUnit ?? r.ttlunit) });
    }
    return states;
  }

  /**
   * Runs a migration `ALTER TABLE t ADD COLUMN IF NOT EXISTS c type` of schema/questdb.sql as a plain
   * ADD COLUMN, and only when table_columns() does not list the column. The statement itself cannot
   * be sent: IF NOT EXISTS came with questdb/questdb#5080 (8.2.2; 8.1 rejects the syntax), and on a
   * WAL table re-running it for a column that exists fails ("statements containing multiple
   * transactions ... are currently not supported for WAL tables", questdb/questdb#5369, open), which
   * is every start here, as the CREATE TABLE statements already have the columns.
   * Table, column and type come from the schema file, never from input.
   */
  private async addColumnIfMissing(table: string, column: string, type: string): Promise<void> {
    const has = async (): Promise<boolean> => {
      // table_columns() has one row per column, its name in `column` (docs/reference/function/meta.md);
      // column names are case-insensitive in QuestDB.
      const { rows } = await this.db().query(`SELECT * FROM table_columns('${table}')`);
      return (rows as Row[]).some((r) => str(r.column).toLowerCase() === column.toLowerCase());
    };
    if (await has()) return;
    try {
      await this.db().query(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    } catch (err) {
      // Another flowlens process starting at the same time may have added it in between. On a WAL
      // table its ALTER is applied asynchronously, so table_columns() may not list the column yet
      // while the server already refuses a second one as existing.
      if (!/already exists/i.test((err as Error).message) && !(await has())) throw err;
    }
  }

  /** A slot of the bounded read pool and a connection for it; the slot is given back if no connection comes. */
  private async checkout(signal?: AbortSignal): Promise<pg.PoolClient> {
    await this.gate.acquire(signal);
    try {
      return await this.db().connect();
    } catch (err) {
      this.gate.release();
      throw err;
    }
  }

  /**
   * A read through the bounded pool. When `signal` aborts while it waits, it leaves the queue; while
   * it runs, QuestDB gets PostgreSQL's cancel request for it (pg sends it on a connection of its
   * own with the backend key the server gave at start-up; QuestDB answers the cancelled query with
   * an error) and the connection is closed rather than returned, so the server drops the query's
   * cursor and memory with it and the pool opens a fresh one; the promise rejects with
   * StoreQueryCancelled at once.
   */
  private async select(sql: string, values: unknown[], signal?: AbortSignal): Promise<Row[]> {
    const client = await this.checkout(signal);
    let broken = false;
    const onAbort = () => {
      broken = true;
      sendCancelRequest(this.opts.pg, client);
      client.release(true);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const work = (async () => {
      try {
        const res = await client.query(sql, values);
        return res.rows as Row[];
      } catch (err) {
        // A failed connection must not go back to the pool.
        if (!(err instanceof pg.DatabaseError)) broken = true;
        throw err;
      } finally {
        signal?.removeEventListener('abort', onAbort);
        if (!signal?.aborted) client.release(broken ? true : undefined);
        this.gate.release();
      }
    })();
    return raceAbort(work, signal);
  }

  private db(): pg.Pool {
    if (!this.pool) throw new Error('QuestDbStore.init() has not been called');
    return this.pool;
  }

  private writer(): IlpWriter {
    if (this.opts.readOnly) throw new Error('the QuestDB store is open read-only');
    if (!this.ilp) throw new Error('QuestDbStore.init() has not been called');
    return this.ilp;
  }

  /** Spool depth, for metrics. */
  spoolDepth(): { batches: number; bytes: number } {
    return this.ilp ? this.ilp.writer.state().spool : { batches: 0, bytes: 0 };
  }

  /**
   * Nothing to do here: the rows carry their source, and the DEDUP UPSERT KEYS of flows (ts,
   * flow_id), hosts (ts, node, ip, source) and traffic (ts, node, source) make a re-run of the same
   * source replace its rows, while rows of other sources add up.
   */
  async beginRun(_source: string): Promise<void> {}

  async write(batch: RecordBatch): Promise<void> {
    await this.writer().write(batch);
  }

  async flush(): Promise<void> {
    const w = this.writer().writer;
    await w.flush();
    const st = w.state();
    // Acknowledged rows become visible once QuestDB's WAL apply job has run; wait for it so that
    // "flush, then read" sees the data. Skipped during an outage (the rows are in the spool).
    if (st.up && st.spool.batches === 0) await this.waitForWalApply();
  }

  /**
   * Waits up to `timeoutMs` for everything written to reach QuestDB: sends what is pending, then
   * replays the outage spool again and again (backing off from 100 ms to 2 s between attempts)
   * until it is empty or the time is up. Returns the spool's depth at the end (0 batches: all sent).
   * An attempt still under way at the deadline goes on in the background; close() waits for it.
   */
  async drainSpool(timeoutMs: number): Promise<SpoolDepth> {
    const w = this.writer().writer;
    const deadline = Date.now() + Math.max(0, timeoutMs);
    let pause = 100;
    for (;;) {
      const attempt = w.flush();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
      });
      try {
        if ((await Promise.race([attempt, timedOut])) === 'timeout') {
          attempt.catch(() => undefined); // its error, if any, is the writer's to report on close
          return w.state().spool;
        }
      } finally {
        clearTimeout(timer);
      }
      const depth = w.state().spool;
      const left = deadline - Date.now();
      if (depth.batches === 0 || left <= 0) return depth;
      await new Promise((r) => setTimeout(r, Math.min(pause, left)));
      pause = Math.min(pause * 2, 2_000);
    }
  }

  private async waitForWalApply(): Promise<void> {
    const deadline = Date.now() + WAL_VISIBLE_TIMEOUT_MS;
    // Two polls in a row must agree: until a table's apply tracker has started (just after a server
    // restart), wal_tables() can report a writerTxn left over from another row
    // (WalTableListFunctionFactory sets only sequencerTxn on that path).
    let caughtUp = 0;
    for (;;) {
      const { rows } = await this.db().query(
        `SELECT name, suspended, writerTxn, sequencerTxn FROM wal_tables() WHERE name IN ('flows', 'hosts', 'traffic', 'anomalies')`,
      );
      let behind = false;
      for (const r of rows as Row[]) {
        if (r.suspended === true) throw new Error(`QuestDB table ${str(r.name)} is suspended (WAL apply failed); see ALTER TABLE ... RESUME WAL`);
        if (num(r.writerTxn ?? r.writertxn) < num(r.sequencerTxn ?? r.sequencertxn)) behind = true;
      }
      caughtUp = behind ? 0 : caughtUp + 1;
      if (caughtUp >= 2) return;
      if (Date.now() > deadline) {
        this.log.warn({}, 'questdb: rows acknowledged but not yet visible after 30 s (WAL apply lagging)');
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    this.gate.rejectWaiting(new Error('QuestDB store is closing'));
    try {
      if (this.ilp) await this.ilp.close();
    } finally {
      this.ilp = null;
      const pool = this.pool;
      this.pool = null;
      if (pool) await pool.end();
    }
  }

  async health(): Promise<StoreHealth> {
    const st = this.ilp?.writer.state();
    const spooled = st?.spool.batches ?? 0;
    let queryError: string | null = null;
    try {
      await this.select('SELECT 1', []);
    } catch (err) {
      queryError = (err as Error).message;
    }
    const problems: string[] = [];
    if (queryError) problems.push(`queries failing: ${queryError}`);
    if (st && !st.up) problems.push(`ILP writes failing since ${new Date(st.downSince ?? Date.now()).toISOString()}: ${st.lastError ?? ''}`);
    if (spooled > 0) problems.push(`${spooled} batches (${st?.spool.bytes ?? 0} bytes) in the outage spool`);
    return { backend: this.backend, ok: queryError === null && (st?.up ?? true), spooled, ...(problems.length ? { detail: problems.join('; ') } : {}) };
  }

  async queryFlows(q: FlowQuery, opts?: QueryOptions): Promise<FlowPage> {
    const { order, cursor } = checkFlowQuery(q);
    const filter = q.filter ?? {};
    const after = cursor ?? null;

    const countP = new Params();
    const countSql = `SELECT count() n FROM (${flowSource(countP, q, filter).source})`;
    const pageP = new Params();
    const [{ rows, hasNext }, countRows] = await Promise.all([
      this.flowPage(pageP, flowSource(pageP, q, filter).source, order, after, q.first, opts?.signal),
      this.select(countSql, countP.values, opts?.signal),
    ]);
    const edges = rows.map((node) => ({ node, cursor: flowCursor(order, node) }));
    return {
      edges,
      pageInfo: { hasNextPage: hasNext, endCursor: edges.length ? edges[edges.length - 1]!.cursor : null },
      totalCount: num((countRows[0] as Row | undefined)?.n),
    };
  }

  /** One keyset page: rows strictly after the cursor in the page's order, plus whether more follow. */
  private async flowPage(
    p: Params,
    source: string,
    order: FlowOrder,
    after: { value: number; flowId: string } | null,
    first: number,
    signal?: AbortSignal,
  ): Promise<{ rows: FlowSummary[]; hasNext: boolean }> {
    let where = '';
    if (after) {
      // QuestDB has no row-value comparison, so (a, b) > (x, y) is spelled out.
      const key = order === 'time' ? 'first_seen_us' : 'total_bytes';
      const cmp = order === 'time' ? '>' : '<';
      where = `WHERE ${key} ${cmp} ${p.add(after.value)} OR (${key} = ${p.add(after.value)} AND flow_id > ${p.add(after.flowId)})`;
    }
    // LIMIT takes a literal: `first` is a validated integer (checkFlowQuery).
    const sql = `SELECT * FROM (${source}) ${where} ORDER BY ${FLOW_ORDER_SQL[order]} LIMIT ${first + 1}`;
    const flows = (await this.select(sql, p.values, signal)).map(rowToFlow);
    const hasNext = flows.length > first;
    return { rows: hasNext ? flows.slice(0, first) : flows, hasNext };
  }

  async topHosts(q: HostQuery, opts?: QueryOptions): Promise<HostSummary[]> {
    const orderSql = HOST_ORDER_SQL[checkHostQuery(q)];
    const p = new Params();
    const sql = `${hostSource(p, q, q.node, undefined, q)} ORDER BY ${orderSql} LIMIT ${q.limit}`;
    return (await this.select(sql, p.values, opts?.signal)).map(rowToHost);
  }

  async trafficSeries(q: TrafficQuery, opts?: QueryOptions): Promise<TrafficPoint[]> {
    const points = await this.series('traffic', TRAFFIC_SERIES, q, (p) => (q.node ? [`node = ${p.add(q.node)}`] : []), opts?.signal);
    return points as unknown as TrafficPoint[];
  }

  async hostSummary(q: HostIpQuery, opts?: QueryOptions): Promise<HostSummary | null> {
    checkHostIpQuery(q);
    const p = new Params();
    const rows = await this.select(hostSource(p, q, q.node, q.ip), p.values, opts?.signal);
    return rows.length ? rowToHost(rows[0]!) : null;
  }

  async hostSeries(q: HostSeriesQuery, opts?: QueryOptions): Promise<HostPoint[]> {
    checkHostIpQuery(q);
    const points = await this.series('hosts', HOST_SERIES, q, (p) => [`ip = ${p.add(q.ip)}`, ...(q.node ? [`node = ${p.add(q.node)}`] : [])], opts?.signal);
    return points as unknown as HostPoint[];
  }

  async hostPeers(q: HostTopQuery, opts?: QueryOptions): Promise<HostPeer[]> {
    // The other end: the server when the host is the client, else the client.
    const rows = await this.hostFlows(
      q,
      (p) => `CASE WHEN client_ip = ${p.add(q.ip)} THEN server_ip ELSE client_ip END peer_ip`,
      'peer_ip',
      'peer_ip ASC',
      opts?.signal,
    );
    return rows.map((r) => ({ ip: str(r.peer_ip), bytes: num(r.bytes), packets: num(r.packets), flows: num(r.flows) }));
  }

  async hostPorts(q: HostTopQuery, opts?: QueryOptions): Promise<HostPort[]> {
    // The service port is the server's, whichever end the host is.
    const rows = await this.hostFlows(q, () => 'transport, server_port', 'transport, server_port', 'transport ASC, server_port ASC', opts?.signal);
    return rows.map((r) => ({ transport: str(r.transport), port: num(r.server_port), bytes: num(r.bytes), packets: num(r.packets), flows: num(r.flows) }));
  }

  /**
   * The host's flow segments in the range (either end), grouped by `keys` and summed, top by bytes.
   * Segments are first grouped per flow as well, so that counting the groups' rows counts distinct flows.
   */
  private async hostFlows(q: HostTopQuery, keyColumns: (p: Params) => string, keys: string, tieBreak: string, signal?: AbortSignal): Promise<Row[]> {
    checkHostTopQuery(q);
    const p = new Params();
    const projected = keyColumns(p);
    const where = [`ts >= ${p.add(isoMicros(q.from))}`, `ts < ${p.add(isoMicros(q.to))}`, `(client_ip = ${p.add(q.ip)} OR server_ip = ${p.add(q.ip)})`];
    if (q.node) where.push(`node = ${p.add(q.node)}`);
    const segments = `
      SELECT ${projected}, flow_id, client_bytes + server_bytes seg_bytes, client_packets + server_packets seg_packets
      FROM flows
      WHERE ${where.join(' AND ')}`;
    const perFlow = `SELECT ${keys}, flow_id, sum(seg_bytes) flow_bytes, sum(seg_packets) flow_packets FROM (${segments}) GROUP BY ${keys}, flow_id`;
    const grouped = `SELECT ${keys}, sum(flow_bytes) bytes, sum(flow_packets) packets, count() flows FROM (${perFlow}) GROUP BY ${keys}`;
    return this.select(`SELECT * FROM (${grouped}) ORDER BY bytes DESC, ${tieBreak} LIMIT ${q.limit}`, p.values, signal);
  }

  /**
   * One SAMPLE BY series over [from, to) of `table`'s rows in range that match `filters`, in buckets
   * of `step` aligned to the epoch as the DuckDB back end aligns them: the first bucket starts at
   * floor(from / step) · step, at or before `from`, and only rows at or after `from` count.
   *
   * FROM makes SAMPLE BY start its buckets at the FROM timestamp (QuestDB's SampleBy FROM-TO tests;
   * questdb/questdb#5381 shows the same on 8.2.2), so FROM is that aligned start. FROM, TO and the
   * stride are literals built from validated integers, not bind variables (see the header comment).
   * No FILL: the empty buckets are laid out here, which also keeps the answer independent of FILL
   * details of one QuestDB version or another.
   */
  private async series(
    table: string,
    columns: SeriesColumn[],
    q: TrafficQuery,
    filters: (p: Params) => string[],
    signal?: AbortSignal,
  ): Promise<Record<string, number>[]> {
    const { first, buckets } = checkSeriesQuery(q);
    if (buckets === 0) return [];
    const stride = sampleByStride(q.step);
    const p = new Params();
    const where = [`ts >= ${p.add(isoMicros(q.from))}`, `ts < ${p.add(isoMicros(q.to))}`, ...filters(p)];
    const sampled = `
      SELECT ts, ${columns.map((c) => `${c.aggregate}(${c.column}) ${c.column}`).join(', ')}
      FROM ${table}
      WHERE ${where.join(' AND ')}
      SAMPLE BY ${stride} FROM '${isoMicros(first)}' TO '${isoMicros(q.to)}' ALIGN TO CALENDAR`;
    const rows = await this.select(`SELECT cast(ts AS LONG) ts_us, ${columns.map((c) => c.column).join(', ')} FROM (${sampled})`, p.values, signal);
    // Lay the result on the grid the contract promises (first + k·step, every bucket present).
    const points: Record<string, number>[] = [];
    for (let i = 0; i < buckets; i++) {
      const pt: Record<string, number> = { ts: first + i * q.step };
      for (const c of columns) pt[c.field] = 0;
      points.push(pt);
    }
    for (const r of rows) {
      const offset = num(r.ts_us) - first;
      // A bucket off the grid would mean QuestDB aligned SAMPLE BY differently from FROM; its sum
      // would straddle two of ours, so fail rather than answer wrongly.
      if (offset < 0 || offset % q.step !== 0)
        throw new Error(`QuestDB returned a SAMPLE BY bucket at ${isoMicros(num(r.ts_us))}, off the ${stride} grid from ${isoMicros(first)}`);
      const pt = points[offset / q.step];
      if (!pt) continue;
      for (const c of columns) {
        const v = num(r[c.column]);
        pt[c.field] = c.aggregate === 'max' ? Math.max(pt[c.field]!, v) : pt[c.field]! + v;
      }
    }
    return points;
  }

  async queryAnomalies(q: AnomalyQuery, opts?: QueryOptions): Promise<AnomalyRecord[]> {
    checkAnomalyQuery(q);
    const p = new Params();
    // ts = started_at, so "started before `to`" prunes partitions; DEDUP has already reduced each
    // anomaly to its latest version, so no LATEST ON is needed (all versions share one ts anyway).
    const where = [`ts < ${p.add(isoMicros(q.to))}`, `last_seen >= ${p.add(isoMicros(q.from))}`];
    if (q.kind) where.push(`kind = ${p.add(q.kind)}`);
    if (q.host) where.push(`(source = ${p.add(q.host)} OR target_ip = ${p.add(q.host)})`);
    if (q.node) where.push(`node = ${p.add(q.node)}`);
    const sql = `
      SELECT ${ANOMALY_SELECT}
      FROM anomalies
      WHERE ${where.join(' AND ')}
      ORDER BY ts_us DESC, anomaly_id ASC
      LIMIT ${q.limit}`;
    return (await this.select(sql, p.values, opts?.signal)).map(rowToAnomaly);
  }

  /**
   * Every flow in one query, ordered by first seen then flow id, read through a server-side cursor
   * (pg-cursor: a named portal executed EXPORT_CHUNK rows at a time, the way QuestDB's
   * docs/pgwire/large-result-sets.md reads large results from Node.js), so the table is aggregated
   * once however many flows there are, and only one chunk is held in memory.
   */
  /** Explore in one statement (explore.ts questdbExploreSql). */
  async explore(q: ExploreQuery, opts?: QueryOptions): Promise<ExploreItem[]> {
    const { first, buckets } = checkExploreQuery(q);
    const p = new Params();
    const sql = questdbExploreSql(q, (v) => p.add(v), isoMicros);
    const rows = await this.select(sql, p.values, opts?.signal);
    // LONGs arrive as strings (num() makes them numbers); keys are text already.
    const mapped = rows.map((r) => {
      const row: Record<string, unknown> = { bytes: num(r.bytes), packets: num(r.packets), flows: num(r.flows), bucket: num(r.bucket) };
      for (let i = 0; i < q.dimensions.length; i++) row[`k${i}`] = r[`k${i}`] ?? null;
      row.bBytes = num(r.b_bytes);
      row.bPackets = num(r.b_packets);
      row.bFlows = num(r.b_flows);
      return row;
    });
    return exploreItems(mapped, q.dimensions.length, first, buckets, q.step);
  }

  async dataExtent(opts?: QueryOptions): Promise<DataExtent | null> {
    // Each table's span per run (source) on its designated timestamp, merged here: the runs are
    // few (one per import or capture start) and three plain GROUP BYs need no UNION.
    const runs = new Map<string, { first: number; last: number }>();
    for (const table of ['flows', 'hosts', 'traffic']) {
      const rows = await this.select(
        `SELECT source, cast(min(ts) AS LONG) first_us, cast(max(ts) AS LONG) last_us FROM ${table} GROUP BY source`,
        [],
        opts?.signal,
      );
      for (const r of rows) {
        const first = num(r.first_us);
        const last = num(r.last_us);
        const run = runs.get(str(r.source));
        if (run) {
          run.first = Math.min(run.first, first);
          run.last = Math.max(run.last, last);
        } else runs.set(str(r.source), { first, last });
      }
    }
    let extent: DataExtent | null = null;
    for (const run of runs.values()) {
      if (!extent) extent = { first: run.first, last: run.last, runFirst: run.first };
      else {
        extent.first = Math.min(extent.first, run.first);
        if (run.last > extent.last) {
          extent.last = run.last;
          extent.runFirst = run.first;
        }
      }
    }
    return extent;
  }

  async *exportFlows(): AsyncIterable<FlowSummary> {
    const p = new Params();
    const sql = `SELECT * FROM (${flowSource(p, null, {}).source}) ORDER BY ${FLOW_ORDER_SQL.time}`;
    for await (const rows of this.stream(sql, p.values)) yield* rows.map(rowToFlow);
  }

  /** Every host, by bytes, in one query read through a cursor (see exportFlows). */
  async *exportHosts(): AsyncIterable<HostSummary> {
    const p = new Params();
    const sql = `SELECT * FROM (${hostSource(p, null, undefined)}) ORDER BY ${HOST_ORDER_SQL.bytes}`;
    for await (const rows of this.stream(sql, p.values)) yield* rows.map(rowToHost);
  }

  /**
   * One query's rows in chunks of EXPORT_CHUNK through a cursor, on a connection of the read pool held
   * until the last chunk (or until the consumer stops: the portal is closed, and the connection
   * dropped if that fails).
   */
  private async *stream(sql: string, values: unknown[]): AsyncGenerator<Row[]> {
    const client = await this.checkout();
    let broken = false;
    const cursor = client.query(new Cursor<Row>(sql, values));
    try {
      for (;;) {
        let rows: Row[];
        try {
          rows = await cursor.read(EXPORT_CHUNK);
        } catch (err) {
          if (!(err instanceof pg.DatabaseError)) broken = true;
          throw err;
        }
        if (rows.length === 0) return;
        yield rows;
      }
    } finally {
      if (!broken) {
        try {
          await cursor.close();
        } catch {
          broken = true;
        }
      }
      client.release(broken ? true : undefined);
      this.gate.release();
    }
  }
}
