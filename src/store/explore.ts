// Explore (issue 21): top-N of the flow segments in a range by one dimension or a pair, measured in
// bytes, packets or flows, with each top item's series over the range; filters are the items an
// analyst clicked (drill-down), each a dimension equal to a value. The query's shape and its checks
// live here, with the DuckDB statement; a back end answers it in one SQL statement.
//
// Dimensions are columns of the flows table, except the two that look at either end of a flow:
// `host` counts a segment once at each end (a flow between A and B is traffic of A and of B), and
// `peer` is the other end of that same row, so it only comes paired with `host`.
import { parseHostSpec } from '../records/flow-filter.js';
import { type Bind, duckdbAppSql, hostSql, questdbAppSql, serverNameSql } from './flow-filter.js';
import { checkRange } from './query-check.js';
import { type QueryOptions, StoreQueryError, type TimeRange } from './types.js';

export const EXPLORE_DIMENSIONS = [
  'host',
  'peer',
  'client',
  'server',
  'port',
  'transport',
  'app',
  'serverName',
  'node',
  'iface',
  // Enrichment of the ends (src/enrich): country, AS number, network name.
  'clientCountry',
  'serverCountry',
  'clientAsn',
  'serverAsn',
  'clientNetwork',
  'serverNetwork',
] as const;
export type ExploreDimension = (typeof EXPLORE_DIMENSIONS)[number];

/** Dimensions whose values are addresses: a filter on them takes an address or a CIDR prefix. */
export const HOST_DIMENSIONS: ReadonlySet<ExploreDimension> = new Set(['host', 'peer', 'client', 'server']);

export const EXPLORE_METRICS = ['bytes', 'packets', 'flows'] as const;
export type ExploreMetric = (typeof EXPLORE_METRICS)[number];

/** Top items asked for at most (each comes with its series). */
export const MAX_EXPLORE_ITEMS = 100;
/** Series points of all items together at most (items × buckets): the answer stays small. */
export const MAX_EXPLORE_POINTS = 5_000;

export interface ExploreFilter {
  dimension: ExploreDimension;
  /** The value as the item showed it (a port as its decimal text). */
  value: string;
}

export interface ExploreQuery extends TimeRange {
  /** One dimension, or two (a pair). */
  dimensions: ExploreDimension[];
  metric: ExploreMetric;
  /** 1..MAX_EXPLORE_ITEMS. */
  limit: number;
  /** Every one must hold (AND). */
  filters?: ExploreFilter[];
  /** Bucket width of the series (µs), as trafficSeries takes it. */
  step: number;
}

export interface ExplorePoint {
  ts: number;
  bytes: number;
  packets: number;
  /** Flows that began in the bucket (as a traffic point counts them). */
  flows: number;
}

export interface ExploreItem {
  /** One value per dimension, in the query's order (ports as decimal text). */
  keys: string[];
  bytes: number;
  packets: number;
  /** Distinct flows with a segment in the range. */
  flows: number;
  /** Every bucket of the range, zeros where the item had no segment. */
  series: ExplorePoint[];
}

/**
 * A back end that answers explore queries (DuckDB so far; the API says so when the store has none).
 * Each answers one in one SQL statement.
 */
export interface ExploreReader {
  explore(q: ExploreQuery, opts?: QueryOptions): Promise<ExploreItem[]>;
}

export function canExplore(store: object): store is ExploreReader {
  return typeof (store as Partial<ExploreReader>).explore === 'function';
}

/** Checks an explore query; returns the first bucket and the bucket count of its series. */
export function checkExploreQuery(q: ExploreQuery): { first: number; buckets: number } {
  checkRange(q);
  const dims = q.dimensions;
  if (!Array.isArray(dims) || dims.length < 1 || dims.length > 2) throw new StoreQueryError('dimensions: give one dimension or a pair');
  for (const d of dims) if (!EXPLORE_DIMENSIONS.includes(d)) throw new StoreQueryError(`dimension must be one of ${EXPLORE_DIMENSIONS.join(', ')}`);
  if (dims.length === 2 && dims[0] === dims[1]) throw new StoreQueryError('dimensions: a pair of two different dimensions');
  if (dims.includes('peer') && !dims.includes('host')) throw new StoreQueryError('dimension peer is the other end of a host: pair it with host');
  if (!EXPLORE_METRICS.includes(q.metric)) throw new StoreQueryError(`metric must be one of ${EXPLORE_METRICS.join(', ')}`);
  if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_EXPLORE_ITEMS) throw new StoreQueryError(`limit must be 1..${MAX_EXPLORE_ITEMS}`);
  for (const f of q.filters ?? []) {
    if (!EXPLORE_DIMENSIONS.includes(f.dimension)) throw new StoreQueryError(`filter dimension must be one of ${EXPLORE_DIMENSIONS.join(', ')}`);
    if (f.dimension === 'port' && !/^\d{1,5}$/.test(f.value)) throw new StoreQueryError(`filter port: not a port number: ${JSON.stringify(f.value)}`);
    if (HOST_DIMENSIONS.has(f.dimension)) {
      try {
        parseHostSpec(f.value);
      } catch (e) {
        throw new StoreQueryError(`filter ${f.dimension}: ${(e as Error).message.replace(/^host: /, '')}`);
      }
    }
    if ((f.dimension === 'clientAsn' || f.dimension === 'serverAsn') && !/^\d{1,10}$/.test(f.value)) {
      throw new StoreQueryError(`filter ${f.dimension}: not an AS number: ${JSON.stringify(f.value)}`);
    }
  }
  if (!Number.isInteger(q.step) || q.step <= 0) throw new StoreQueryError('step must be a positive number of microseconds');
  const first = Math.floor(q.from / q.step) * q.step;
  const buckets = Math.ceil((q.to - first) / q.step);
  // Each item carries every bucket: bound the whole answer, not one series.
  if (buckets * q.limit > MAX_EXPLORE_POINTS) {
    throw new StoreQueryError(
      `step too small: ${q.limit} series of ${buckets} points exceed ${MAX_EXPLORE_POINTS} points; ask for fewer items or a wider step`,
    );
  }
  return { first, buckets };
}

/** The SQL value of a dimension on a row of `sides` (flows with a `side` column when a dimension looks at either end). */
const DIMENSION_SQL: Record<ExploreDimension, string> = {
  host: 'CASE WHEN side = 0 THEN client_ip ELSE server_ip END',
  peer: 'CASE WHEN side = 0 THEN server_ip ELSE client_ip END',
  client: 'client_ip',
  server: 'server_ip',
  port: 'CAST(server_port AS VARCHAR)',
  transport: 'transport',
  app: 'app',
  serverName: 'server_name',
  node: 'node',
  iface: 'iface',
  clientCountry: 'client_country',
  serverCountry: 'server_country',
  clientAsn: 'CAST(client_asn AS VARCHAR)',
  serverAsn: 'CAST(server_asn AS VARCHAR)',
  clientNetwork: 'client_network',
  serverNetwork: 'server_network',
};

/**
 * A filter on a segment (either end for host and peer: as a filter they name an address at either
 * end). Addresses may be CIDR prefixes and server names globs, as everywhere (flow-filter.ts).
 */
function filterSql(f: ExploreFilter, bind: Bind): string {
  switch (f.dimension) {
    case 'host':
    case 'peer':
      return hostSql('duckdb', ['client_ip', 'server_ip'], f.value, bind);
    case 'client':
    case 'server':
      return hostSql('duckdb', [DIMENSION_SQL[f.dimension]], f.value, bind);
    case 'serverName':
      return serverNameSql('duckdb', 'server_name', f.value, bind);
    case 'port':
      return `server_port = CAST(${bind(f.value)} AS USMALLINT)`;
    case 'clientAsn':
    case 'serverAsn':
      return `${f.dimension === 'clientAsn' ? 'client_asn' : 'server_asn'} = CAST(${bind(f.value)} AS UBIGINT)`;
    case 'app':
      return duckdbAppSql('app', bind(f.value));
    default:
      return `${DIMENSION_SQL[f.dimension]} = ${bind(f.value)}`;
  }
}

const METRIC_SQL: Record<ExploreMetric, string> = { bytes: 'bytes', packets: 'packets', flows: 'flows' };

/**
 * DuckDB: one statement. The range's segments (filtered) become rows keyed by the dimensions (two
 * rows per segment when a dimension looks at either end), the top items are chosen by the metric,
 * and each top item's buckets come beside it, one row per item and bucket. Ties break on the keys,
 * so that equal items come in a fixed order.
 *
 * Distinct flows without a count(DISTINCT) over every flow id (it cost more than the rest of the
 * statement): a flow's first segment starts at its firstSeen, so each flow that began in the range
 * is its one segment with ts = first_seen; only flows that began before the range are counted
 * distinct, and those are few (the ones running at its start; the zone maps of first_seen skip
 * most of the table for them). flow_id, the costliest column to read, is read only for those.
 */
export function duckdbExploreSql(q: ExploreQuery): { sql: string; params: Record<string, string | number> } {
  const params: Record<string, string | number> = { from: q.from, to: q.to, step: q.step, limit: q.limit };
  const where = ['ts >= make_timestamp($from::BIGINT) AND ts < make_timestamp($to::BIGINT)'];
  let bound = 0;
  const bind: Bind = (value) => {
    const name = `f${bound++}`;
    params[name] = value as string;
    return `$${name}`;
  };
  for (const f of q.filters ?? []) where.push(filterSql(f, bind));
  const bothEnds = q.dimensions.some((d) => d === 'host' || d === 'peer');
  const keys = q.dimensions.map((d, i) => `${DIMENSION_SQL[d]} AS k${i}`).join(', ');
  const keyCols = q.dimensions.map((_, i) => `k${i}`).join(', ');
  const topKeys = q.dimensions.map((_, i) => `top.k${i}`).join(', ');
  const sides = bothEnds ? 'CROSS JOIN (VALUES (0), (1)) AS s(side)' : '';
  const metric = METRIC_SQL[q.metric];
  const older = `first_seen < make_timestamp($from::BIGINT)`;
  // Keys are joined as equal when both are NULL too (an item whose key is NULL keeps its flows and series).
  const gKeys = q.dimensions.map((_, i) => `g.k${i} AS k${i}`).join(', ');
  const same = (a: string, b: string) => q.dimensions.map((_, i) => `${a}.k${i} IS NOT DISTINCT FROM ${b}.k${i}`).join(' AND ');
  // One pass over the segments into (item, bucket) sums; the items' totals and the top come from
  // those few rows, and the top items' buckets are read back from them.
  const sql = `
    WITH g AS (
      SELECT ${keys}, epoch_us(ts) // $step::BIGINT * $step::BIGINT AS bucket,
             sum(client_bytes + server_bytes) AS bytes, sum(client_packets + server_packets) AS packets,
             sum((ts = first_seen)::INTEGER) AS started
      FROM flows ${sides}
      WHERE ${where.join(' AND ')}
      GROUP BY ${keyCols}, bucket
    ), older AS (
      SELECT ${keys}, count(DISTINCT flow_id) AS n
      FROM flows ${sides}
      WHERE ${where.join(' AND ')} AND ${older}
      GROUP BY ${keyCols}
    ), top AS (
      SELECT ${gKeys}, sum(g.bytes) AS bytes, sum(g.packets) AS packets, sum(g.started) + coalesce(any_value(older.n), 0) AS flows
      FROM g LEFT JOIN older ON ${same('g', 'older')}
      GROUP BY ${q.dimensions.map((_, i) => `g.k${i}`).join(', ')}
      ORDER BY ${metric} DESC, ${keyCols}
      LIMIT $limit
    )
    SELECT ${topKeys}, top.bytes::DOUBLE AS bytes, top.packets::DOUBLE AS packets, top.flows::DOUBLE AS flows,
           g.bucket AS bucket, g.bytes::DOUBLE AS "bBytes", g.packets::DOUBLE AS "bPackets", g.started::DOUBLE AS "bFlows"
    FROM top JOIN g ON ${same('g', 'top')}
    ORDER BY top.${metric} DESC, ${topKeys}, bucket`;
  return { sql, params };
}

/**
 * The rows of an explore statement (one per item and bucket, items in order) → the items, each
 * series filled to every bucket of the range. Rows hold k0[, k1], the item's bytes, packets and
 * flows, and the bucket's `bucket` (µs), bBytes, bPackets and bFlows.
 */
export function exploreItems(rows: Record<string, unknown>[], dimensions: number, first: number, buckets: number, step: number): ExploreItem[] {
  const items: ExploreItem[] = [];
  let current: ExploreItem | undefined;
  let currentKey = '';
  for (const row of rows) {
    const keys: string[] = [];
    for (let i = 0; i < dimensions; i++) keys.push(String(row[`k${i}`] ?? ''));
    const key = JSON.stringify(keys);
    if (!current || key !== currentKey) {
      current = { keys, bytes: Number(row.bytes), packets: Number(row.packets), flows: Number(row.flows), series: [] };
      for (let b = 0; b < buckets; b++) current.series.push({ ts: first + b * step, bytes: 0, packets: 0, flows: 0 });
      items.push(current);
      currentKey = key;
    }
    const index = Math.round((Number(row.bucket) - first) / step);
    const point = current.series[index];
    if (point) {
      point.bytes = Number(row.bBytes);
      point.packets = Number(row.bPackets);
      point.flows = Number(row.bFlows);
    }
  }
  return items;
}

/** The QuestDB value of a dimension on side 0 or 1 of a segment (as text, as DuckDB's keys are). */
function questdbDimension(d: ExploreDimension, side: 0 | 1): string {
  switch (d) {
    case 'host':
      return side === 0 ? 'client_ip' : 'server_ip';
    case 'peer':
      return side === 0 ? 'server_ip' : 'client_ip';
    case 'client':
      return 'client_ip';
    case 'server':
      return 'server_ip';
    case 'port':
      return 'cast(server_port AS VARCHAR)';
    case 'clientAsn':
      return 'cast(client_asn AS VARCHAR)';
    case 'serverAsn':
      return 'cast(server_asn AS VARCHAR)';
    default:
      // Symbols as text: the keys of both sides and of every CTE have one type.
      return `cast(${DIMENSION_SQL[d]} AS VARCHAR)`;
  }
}

/**
 * QuestDB (8.2.3+): the same query as duckdbExploreSql in one statement, in QuestDB's SQL (WITH,
 * UNION ALL, GROUP BY, LEFT JOIN, ORDER BY, LIMIT; docs/reference/sql/*.md). Differences from
 * DuckDB's: the two ends of a segment are two UNION ALL branches (QuestDB has no VALUES list to
 * cross join), distinct flows that began before the range are counted by grouping per flow and
 * counting the groups (as the QuestDB store's hostFlows does), and buckets are integer arithmetic
 * on the µs timestamp. Caller values are bound ($1, ...: the range as ISO text, filter values);
 * the limit, step and the range start compared with first_seen are validated integers inlined
 * (LIMIT takes a literal; see questdb.ts's header). `bind` adds a value and returns its placeholder.
 */
export function questdbExploreSql(q: ExploreQuery, bind: (value: unknown) => string, iso: (us: number) => string): string {
  checkExploreQuery(q);
  for (const v of [q.from, q.step, q.limit]) if (!Number.isSafeInteger(v)) throw new StoreQueryError(`not an integer: ${v}`);
  const where = [`ts >= ${bind(iso(q.from))}`, `ts < ${bind(iso(q.to))}`];
  for (const f of q.filters ?? []) {
    switch (f.dimension) {
      case 'host':
      case 'peer':
        where.push(hostSql('questdb', ['client_ip', 'server_ip'], f.value, bind));
        break;
      case 'client':
      case 'server':
        where.push(hostSql('questdb', [DIMENSION_SQL[f.dimension]], f.value, bind));
        break;
      case 'serverName':
        where.push(serverNameSql('questdb', 'server_name', f.value, bind));
        break;
      case 'port':
        where.push(`server_port = ${bind(Number(f.value))}`);
        break;
      case 'clientAsn':
      case 'serverAsn':
        where.push(`${f.dimension === 'clientAsn' ? 'client_asn' : 'server_asn'} = ${bind(Number(f.value))}`);
        break;
      case 'app':
        where.push(questdbAppSql('app', f.value, bind));
        break;
      default:
        where.push(`${DIMENSION_SQL[f.dimension]} = ${bind(f.value)}`);
    }
  }
  const dims = q.dimensions;
  const k = dims.map((_, i) => `k${i}`);
  const bothEnds = dims.some((d) => d === 'host' || d === 'peer');
  const branch = (side: 0 | 1) => `
      SELECT ${dims.map((d, i) => `${questdbDimension(d, side)} k${i}`).join(', ')},
             cast(ts AS LONG) / ${q.step} * ${q.step} bucket, cast(ts AS LONG) ts_us, cast(first_seen AS LONG) first_us, flow_id,
             client_bytes + server_bytes seg_bytes, client_packets + server_packets seg_packets
      FROM flows
      WHERE ${where.join(' AND ')}`;
  const on = (a: string, b: string) => k.map((c) => `${a}.${c} = ${b}.${c}`).join(' AND ');
  const metric = q.metric;
  return `
    WITH seg AS (${branch(0)}${bothEnds ? `\n      UNION ALL${branch(1)}` : ''}
    ), g AS (
      SELECT ${k.join(', ')}, bucket, sum(seg_bytes) bytes, sum(seg_packets) packets, sum(CASE WHEN ts_us = first_us THEN 1 ELSE 0 END) started
      FROM seg
      GROUP BY ${k.join(', ')}, bucket
    ), per_flow AS (
      SELECT ${k.join(', ')}, flow_id FROM seg WHERE first_us < ${q.from} GROUP BY ${k.join(', ')}, flow_id
    ), older AS (
      SELECT ${k.join(', ')}, count() n FROM per_flow GROUP BY ${k.join(', ')}
    ), tot AS (
      SELECT ${k.join(', ')}, sum(bytes) bytes, sum(packets) packets, sum(started) started FROM g GROUP BY ${k.join(', ')}
    ), top_items AS (
      SELECT ${k.map((c) => `tot.${c} ${c}`).join(', ')}, tot.bytes bytes, tot.packets packets, tot.started + coalesce(older.n, 0) flows
      FROM tot LEFT JOIN older ON ${on('tot', 'older')}
      ORDER BY ${metric} DESC, ${k.join(', ')}
      LIMIT ${q.limit}
    )
    SELECT ${k.map((c) => `top.${c} ${c}`).join(', ')}, top.bytes bytes, top.packets packets, top.flows flows,
           g.bucket bucket, g.bytes b_bytes, g.packets b_packets, g.started b_flows
    FROM top_items top JOIN g ON ${on('top', 'g')}
    ORDER BY top.${metric} DESC, ${k.map((c) => `top.${c}`).join(', ')}, g.bucket`;
}
