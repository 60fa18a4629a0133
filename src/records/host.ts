// Per-interval aggregates: hosts and traffic. Written once per interval (and node); live capture
// merges the workers' records of one interval by summing their counters (see sumCounters).
import { col, defineRecord, type RecordOf } from './define.js';

/** Per-host aggregate for one interval. */
export const HOST = defineRecord(
  'hosts',
  {
    /** Interval start (µs). */
    ts: col.time({ designated: true }),
    node: col.str({ questdb: 'SYMBOL' }),
    ip: col.str({ ip: true }),
    bytesSent: col.counter(),
    bytesReceived: col.counter(),
    packetsSent: col.counter(),
    packetsReceived: col.counter(),
    /** Flows started in this interval with the host as client / as server. */
    flowsInitiated: col.counter(),
    flowsReceived: col.counter(),
    /** Distinct other ends of the host's flows that carried traffic in this interval. */
    peers: col.counter(),
    /**
     * The run that wrote the row (src/capture/source.ts): an import's names the content it read, a
     * live capture's is new at every start. Rows of one source replace each other (a re-import, a
     * replayed batch); rows of different sources add up.
     */
    source: col.str({ questdb: 'SYMBOL', added: true, gql: false, export: false }),
    /**
     * The host's country (ISO 3166 alpha-2), AS number and organisation and named network (else
     * special range) as enrichment found them when the record was written (src/enrich); '' / 0
     * when unknown or enrichment is off. Stored so that the host list filters on them.
     */
    country: col.str({ questdb: 'SYMBOL', added: true }),
    asn: col.counter({ added: true }),
    asOrg: col.str({ questdb: 'SYMBOL', added: true }),
    network: col.str({ questdb: 'SYMBOL', added: true }),
  },
  { questdbDedupKeys: ['ts', 'node', 'ip', 'source'] },
);

/** Traffic totals for one interval. */
export const TRAFFIC = defineRecord(
  'traffic',
  {
    /** Interval start (µs). */
    ts: col.time({ designated: true }),
    node: col.str({ questdb: 'SYMBOL' }),
    bytes: col.counter(),
    packets: col.counter(),
    /** Flows started in the interval. */
    flows: col.counter(),
    /**
     * The run that wrote the row (src/capture/source.ts): an import's names the content it read, a
     * live capture's is new at every start. Rows of one source replace each other (a re-import, a
     * replayed batch); rows of different sources add up.
     */
    source: col.str({ questdb: 'SYMBOL', added: true, gql: false, export: false }),
  },
  { questdbDedupKeys: ['ts', 'node', 'source'] },
);

export type HostRecord = RecordOf<typeof HOST>;
export type TrafficRecord = RecordOf<typeof TRAFFIC>;
