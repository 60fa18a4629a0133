// The anomaly record, as of its latest update. Written again on every update with the same
// anomalyId and startedAt; the store keeps only the latest version (QuestDB: DEDUP UPSERT KEYS(ts,
// anomaly_id) with ts = startedAt; DuckDB: primary key anomaly_id, INSERT OR REPLACE).
import { col, defineRecord, type RecordOf } from './define.js';

/**
 * RULE: a user rule over flows fired (src/alert/rules.ts); WATCHLIST: a flow touched a watchlist
 * entry (src/alert/watchlist.ts); BEACON: one host calling one service at a regular period
 * (src/detect/beacon.ts).
 */
export const ANOMALY_KINDS = ['SYN_FLOOD', 'PORT_SCAN', 'HOST_SCAN', 'UDP_FLOOD', 'ICMP_FLOOD', 'RULE', 'WATCHLIST', 'BEACON'] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const ANOMALY_STATES = ['active', 'ended'] as const;

export const ANOMALY = defineRecord(
  'anomalies',
  {
    /** = startedAt (µs). Designated timestamp. */
    ts: col.time({ designated: true, gql: false, export: false }),
    anomalyId: col.str({ gql: { name: 'id', type: 'ID' } }),
    node: col.str({ questdb: 'SYMBOL', gql: { nullable: true } }),
    kind: col.str({ questdb: 'SYMBOL', values: ANOMALY_KINDS, gql: { type: 'AnomalyKind' } }),
    severity: col.str({ questdb: 'SYMBOL', values: SEVERITIES, gql: { type: 'Severity' } }),
    /** Source IP, or 'distributed' when there is no single source. */
    source: col.str({ gql: { description: "Source IP, or 'distributed'." } }),
    targetIp: col.str(),
    /** 0 when the anomaly is not about one port. */
    targetPort: col.u16({ gql: { nullable: true, description: 'Null when the anomaly is not about one port.' } }),
    startedAt: col.time(),
    lastSeen: col.time(),
    /** 'active' while it lasts, 'ended' after its quiet period. */
    state: col.str({ questdb: 'SYMBOL', values: ANOMALY_STATES, gql: { type: 'AnomalyState' } }),
    packets: col.counter(),
    bytes: col.counter(),
    /** JSON object: the figures that crossed the threshold. */
    evidence: col.str({ gql: { description: 'JSON object: the figures that crossed the threshold.' } }),
    /** One human sentence. */
    summary: col.str(),
    /**
     * The flows its detector counted as evidence (src/detect/evidence.ts): '' when not recorded (an
     * anomaly stored before detectors named them), else the number of distinct flows, then the ids
     * of the first and the last EVIDENCE_FLOW_IDS of them, space separated ('0': it names none, an
     * ARP sweep).
     */
    evidenceFlows: col.str({
      added: true,
      gql: {
        description:
          "The flows of its evidence: null when not recorded (older anomalies), else the number of distinct flows then the ids of the first 100 and the last 100 of them, space separated ('0': none, e.g. an ARP sweep).",
        nullable: true,
      },
    }),
  },
  { duckdbPrimaryKey: 'anomalyId', questdbDedupKeys: ['ts', 'anomalyId'] },
);

export type AnomalyRecord = RecordOf<typeof ANOMALY>;

/** Flow ids an anomaly lists at most at each end: the first and the last this many. */
export const EVIDENCE_FLOW_IDS = 100;

/** An anomaly's evidenceFlows: null when not recorded, else the count of all and the ids listed. */
export function parseEvidenceFlows(text: string): { count: number; ids: string[] } | null {
  if (text === '') return null;
  const [count, ...ids] = text.split(' ');
  return { count: Number(count), ids };
}
