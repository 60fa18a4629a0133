// The store contract: the records the pipeline writes and the reads the API needs.
// Every back end (DuckDB embedded, QuestDB) implements FlowStore; test/store-contract.test.ts
// runs one suite against each of them.
//
// Time is microseconds since the Unix epoch, as a JS number (exact up to 2^53 µs, year 2255).

/** Transport names used in records and filters; anything else is `ip-<protocol number>`. */
export type Transport = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'sctp' | string;

/** TCP connection state (empty for other transports). */
export type TcpState = 'attempted' | 'established' | 'closed' | 'reset' | '';

/**
 * One segment of a flow: the traffic a flow carried between two exports. A flow is exported
 * when it ends (idle timeout, FIN/RST, end of input) and, while it lasts, every active-timeout
 * period, so that long flows land in the interval in which their traffic was sent (NetFlow style).
 * Summing the segments of one flowId gives the whole flow.
 */
export interface FlowRecord {
  /** Start of this segment: the time of its first packet (µs). Designated timestamp. */
  ts: number;
  /** Stable id of the flow across its segments (16 hex chars). (ts, flowId) is unique. */
  flowId: string;
  /** Worker node and interface (or file) that saw it; '' when not set. */
  node: string;
  iface: string;
  /** First and last packet of the whole flow so far (µs). */
  firstSeen: number;
  lastSeen: number;
  transport: Transport;
  ipProto: number;
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
  /** Counts of this segment only. Bytes are frames' original wire lengths. */
  clientPackets: number;
  clientBytes: number;
  serverPackets: number;
  serverBytes: number;
  /** TCP flags seen so far per direction (bit mask, FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20 ECE=0x40 CWR=0x80). */
  clientTcpFlags: number;
  serverTcpFlags: number;
  tcpState: TcpState;
  /** True on the flow's last segment. */
  final: boolean;
  /** Application protocol (nDPI's master protocol names: TLS, HTTP, DNS...) and server name (DPI; '' until identified). */
  app: string;
  serverName: string;
  /** How `app` was found: 'dpi' (payload), 'guess' (payload looked like it), 'port' (well-known port), 'unknown'. */
  confidence: string;
  /** The first frames' sizes, + client to server, - server to client: '+74 -74 +66 +583 -1434'. */
  firstPackets: string;
  /** Protocol details as a JSON object ('' when none): TLS ja4/alpn/version, HTTP method/userAgent, DNS qtype/rcode... */
  appInfo: string;
}

/** Per-host aggregate for one interval. */
export interface HostRecord {
  /** Interval start (µs). */
  ts: number;
  node: string;
  ip: string;
  bytesSent: number;
  bytesReceived: number;
  packetsSent: number;
  packetsReceived: number;
  /** Flows started in this interval with the host as client / as server. */
  flowsInitiated: number;
  flowsReceived: number;
  /** Distinct other ends of the host's flows that carried traffic in this interval. */
  peers: number;
}

/** Traffic totals for one interval. */
export interface TrafficRecord {
  /** Interval start (µs). */
  ts: number;
  node: string;
  bytes: number;
  packets: number;
  /** Flows started in the interval. */
  flows: number;
}

export type AnomalyKind = 'SYN_FLOOD' | 'PORT_SCAN' | 'HOST_SCAN' | 'UDP_FLOOD' | 'ICMP_FLOOD';
export type Severity = 'low' | 'medium' | 'high' | 'critical';

/**
 * One anomaly, as of its latest update. Written again on every update with the same
 * anomalyId and startedAt; the store keeps only the latest version (QuestDB: DEDUP UPSERT KEYS(ts, anomaly_id)
 * with ts = startedAt; DuckDB: primary key anomaly_id).
 */
export interface AnomalyRecord {
  /** = startedAt (µs). Designated timestamp. */
  ts: number;
  anomalyId: string;
  node: string;
  kind: AnomalyKind;
  severity: Severity;
  /** Source IP, or 'distributed' when there is no single source. */
  source: string;
  targetIp: string;
  /** 0 when the anomaly is not about one port. */
  targetPort: number;
  startedAt: number;
  lastSeen: number;
  /** 'active' while it lasts, 'ended' after its quiet period. */
  state: 'active' | 'ended';
  packets: number;
  bytes: number;
  /** JSON object: the figures that crossed the threshold. */
  evidence: string;
  /** One human sentence. */
  summary: string;
}

/** What the pipeline hands the store in one write. Any of the arrays may be empty. */
export interface RecordBatch {
  flows: FlowRecord[];
  hosts: HostRecord[];
  traffic: TrafficRecord[];
  anomalies?: AnomalyRecord[];
}

/** A flow as the API and exports show it: its segments in the queried range summed. */
export interface FlowSummary {
  flowId: string;
  node: string;
  iface: string;
  firstSeen: number;
  lastSeen: number;
  transport: Transport;
  ipProto: number;
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
  clientPackets: number;
  clientBytes: number;
  serverPackets: number;
  serverBytes: number;
  clientTcpFlags: number;
  serverTcpFlags: number;
  /** State as of the latest segment. */
  tcpState: TcpState;
  app: string;
  serverName: string;
  /** As of the latest segment (see FlowRecord). */
  confidence: string;
  firstPackets: string;
  appInfo: string;
}

export interface TimeRange {
  /** Inclusive start (µs). */
  from: number;
  /** Exclusive end (µs). */
  to: number;
}

export interface FlowFilter {
  /** Either end of the flow. */
  host?: string;
  /** Either port. */
  port?: number;
  transport?: Transport;
  app?: string;
  serverName?: string;
  /** Minimum total bytes (both directions, within the range). */
  minBytes?: number;
  node?: string;
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

export interface FlowStore {
  readonly backend: string;
  /** Creates tables (idempotent) and opens connections. */
  init(): Promise<void>;
  /** Appends a batch. May buffer; `flush` makes everything written so far durable and readable. */
  write(batch: RecordBatch): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
  health(): Promise<StoreHealth>;

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

  /** Every flow, its segments summed, ordered by firstSeen then flowId (for `flowlens export flows`). */
  exportFlows(): AsyncIterable<FlowSummary>;
  /** Every host, summed over all time, ordered by bytes sent+received descending (for `flowlens export hosts`). */
  exportHosts(): AsyncIterable<HostSummary>;
}

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
