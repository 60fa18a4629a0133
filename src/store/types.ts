// The store contract: the records the pipeline writes and the reads the API needs.
// Every back end (DuckDB embedded, QuestDB) implements FlowStore; test/store-contract.test.ts
// runs one suite against each of them.
//
// Time is microseconds since the Unix epoch, as a JS number (exact up to 2^53 µs, year 2255).

// The records themselves are defined as data in src/records (one column table each); they are
// re-exported here so that the store's contract reads in one place.
import type { FlowFilter } from '../records/flow-filter.js';
import type { AnomalyKind, AnomalyRecord, FlowRecord, FlowSummary, HostRecord, TrafficRecord, Transport } from '../records/index.js';

export type {
  AnomalyKind,
  AnomalyRecord,
  EndReason,
  FlowRecord,
  FlowSummary,
  HostRecord,
  Severity,
  TcpState,
  TrafficRecord,
  Transport,
} from '../records/index.js';

/** What the pipeline hands the store in one write. Any of the arrays may be empty. */
export interface RecordBatch {
  flows: FlowRecord[];
  hosts: HostRecord[];
  traffic: TrafficRecord[];
  anomalies?: AnomalyRecord[];
}

// The filter language is defined once, in the records module (src/records/flow-filter.ts).
export type { FlowFilter };

export interface TimeRange {
  /** Inclusive start (µs). */
  from: number;
  /** Exclusive end (µs). */
  to: number;
}

export type FlowOrder = 'time' | 'bytes';

export interface FlowQuery extends TimeRange {
  filter?: FlowFilter;
  /** Page size, 1..maxPageSize of the back end (1000). */
  first: number;
  /** Opaque cursor from a previous page's endCursor / an edge cursor. */
  after?: string;
  /** 'time': by firstSeen ascending then flowId; 'bytes': by total bytes descending then flowId. */
  orderBy?: FlowOrder;
}

export interface FlowPage {
  edges: { node: FlowSummary; cursor: string }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  totalCount: number;
}

export type HostOrder = 'bytes' | 'packets' | 'flows';

export interface HostQuery extends TimeRange {
  orderBy?: HostOrder;
  limit: number;
  node?: string;
  /** Only hosts whose records carry this country (ISO 3166 alpha-2), AS number or network name. */
  country?: string;
  asn?: number;
  network?: string;
}

/** A host's activity summed over a time range. `flows` = flowsInitiated + flowsReceived. */
export interface HostSummary {
  ip: string;
  bytesSent: number;
  bytesReceived: number;
  packetsSent: number;
  packetsReceived: number;
  flowsInitiated: number;
  flowsReceived: number;
  flows: number;
  /** Largest per-interval distinct-peer count in the range (distinct peers are not additive). */
  peers: number;
  firstSeen: number;
  lastSeen: number;
  /** Country, AS number and organisation, network name of the host's latest record in the range ('' / 0 when none). */
  country: string;
  asn: number;
  asOrg: string;
  network: string;
}

/** One host in a time range (its rows of `hosts`, or the flow segments with it at either end). */
export interface HostIpQuery extends TimeRange {
  ip: string;
  node?: string;
}

export interface HostSeriesQuery extends HostIpQuery {
  /** Bucket width (µs), a multiple of the aggregation interval; buckets aligned as trafficSeries aligns them. */
  step: number;
}

export interface HostTopQuery extends HostIpQuery {
  /** 1..MAX_PAGE_SIZE. */
  limit: number;
}

/** One point of a host's series (its `hosts` rows in the bucket); buckets without rows are present with zeros. */
export interface HostPoint extends Omit<HostRecord, 'node' | 'ip'> {
  /** Bucket start (µs). */
  ts: number;
  /** Largest per-interval distinct-peer count in the bucket. */
  peers: number;
}

/** The other end of a host's flows: their segments in the range summed (both directions). */
export interface HostPeer {
  ip: string;
  bytes: number;
  packets: number;
  /** Distinct flows with a segment in the range. */
  flows: number;
}

/** A service port of a host's flows (the server port, whichever end the host was). */
export interface HostPort {
  transport: Transport;
  port: number;
  bytes: number;
  packets: number;
  flows: number;
}

export interface TrafficQuery extends TimeRange {
  /** Bucket width (µs), a multiple of the aggregation interval. */
  step: number;
  node?: string;
}

/** One point of a traffic series; buckets with no traffic are present with zeros. */
export interface TrafficPoint {
  ts: number;
  bytes: number;
  packets: number;
  flows: number;
}

export interface AnomalyQuery extends TimeRange {
  kind?: AnomalyKind;
  /** Anomalies whose source or target is this IP. */
  host?: string;
  limit: number;
  node?: string;
}

/**
 * Where the stored data lies in time, from the designated timestamps (segment starts, interval
 * starts) of flows, hosts and traffic; null when the store holds none. The API's default range is
 * derived from it (src/api/default-range.ts).
 */
export interface DataExtent {
  /** Earliest row (µs). */
  first: number;
  /** Latest row (µs). */
  last: number;
  /** Earliest row of the run (source) that wrote the latest row: where the latest import or capture began (µs). */
  runFirst: number;
}

export interface StoreHealth {
  backend: string;
  ok: boolean;
  detail?: string;
  /** Batches waiting in an outage spool (QuestDB), 0 otherwise. */
  spooled?: number;
}

/**
 * How the caller controls one read. An aborted signal cancels the query in the store (DuckDB's
 * interrupt, QuestDB's cancel request) and the promise rejects with StoreQueryCancelled; a read
 * that finds the store's query pool full rejects with StoreBusyError rather than queueing forever.
 */
export interface QueryOptions {
  signal?: AbortSignal;
}

/** What every back end has, writer or reader. */
export interface StoreBase {
  readonly backend: string;
  /** Creates tables (idempotent) and opens connections. */
  init(): Promise<void>;
  close(): Promise<void>;
  health(): Promise<StoreHealth>;
}

/** What a worker needs: a write-only back end (a sink, an outbox) implements only this. */
export interface StoreWriter extends StoreBase {
  /**
   * A run of this source begins (src/capture/source.ts): what an earlier run of the same source
   * wrote is replaced by what this one writes, never added to. Rows of other sources add up.
   */
  beginRun(source: string): Promise<void>;
  /** Appends a batch. May buffer; `flush` makes everything written so far durable and readable. */
  write(batch: RecordBatch): Promise<void>;
  flush(): Promise<void>;
}

/** What the API and export need. */
export interface StoreReader extends StoreBase {
  queryFlows(q: FlowQuery, opts?: QueryOptions): Promise<FlowPage>;
  topHosts(q: HostQuery, opts?: QueryOptions): Promise<HostSummary[]>;
  trafficSeries(q: TrafficQuery, opts?: QueryOptions): Promise<TrafficPoint[]>;
  /** One host's `hosts` rows in the range summed as topHosts sums them; null when it has none. */
  hostSummary(q: HostIpQuery, opts?: QueryOptions): Promise<HostSummary | null>;
  /** One host's `hosts` rows per bucket of `step`, every bucket present (zeros when empty). */
  hostSeries(q: HostSeriesQuery, opts?: QueryOptions): Promise<HostPoint[]>;
  /** The other ends of the host's flow segments in the range, by bytes descending then ip. */
  hostPeers(q: HostTopQuery, opts?: QueryOptions): Promise<HostPeer[]>;
  /** The server ports of the host's flow segments in the range, by bytes descending then transport, port. */
  hostPorts(q: HostTopQuery, opts?: QueryOptions): Promise<HostPort[]>;
  /** Anomalies active at any time in the range (startedAt < to and lastSeen >= from), newest first. */
  queryAnomalies(q: AnomalyQuery, opts?: QueryOptions): Promise<AnomalyRecord[]>;

  /** Where the data lies in time; null when the store is empty. */
  dataExtent(opts?: QueryOptions): Promise<DataExtent | null>;

  /** Every flow, its segments summed, ordered by firstSeen then flowId (for `flowlens export flows`). */
  exportFlows(): AsyncIterable<FlowSummary>;
  /** Every host, summed over all time, ordered by bytes sent+received descending (for `flowlens export hosts`). */
  exportHosts(): AsyncIterable<HostSummary>;
}

/** A back end that writes and reads (DuckDB, QuestDB): the API server imports through it too. */
export interface FlowStore extends StoreWriter, StoreReader {}

export const MAX_PAGE_SIZE = 1000;

export class StoreQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreQueryError';
  }
}

/** A read stopped by its caller's signal (time limit, client gone); the store freed what it held. */
export class StoreQueryCancelled extends Error {
  constructor(message = 'the query was cancelled') {
    super(message);
    this.name = 'StoreQueryCancelled';
  }
}

/** The store's read pool and its queue are full: the caller should try again later. */
export class StoreBusyError extends Error {
  constructor(message = 'the store is busy: too many queries are waiting; try again shortly') {
    super(message);
    this.name = 'StoreBusyError';
  }
}
