// Which packets a `flowlens pcap` or /pcap request asks for: the packets of one flow, of the flows
// a filter selects in a time range (the API's FlowFilter), or of the flows an anomaly is about.
// Flows are found in the store, their packets in the packet index; the packets of several flows
// are merged into one time order (each flow's own order kept for equal times).
import { isIP } from 'node:net';
import type { AnomalyRecord, FlowFilter, FlowSummary, StoreReader, TimeRange } from '../store/types.js';
import { FlowFilterError, parseFlowFilterText } from '../records/flow-filter.js';
import { parseEvidenceFlows } from '../records/anomaly.js';
import { parseFlowId } from './format.js';
import type { PacketIndexReader, PacketRef } from './index-reader.js';

/** Flows one extraction takes at most (a filter matching more is refused: narrow it). */
export const MAX_FLOWS = 10_000;

/** A request that cannot be answered as asked (bad id, no such anomaly, too many flows): one clear message. */
export class PacketSelectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PacketSelectionError';
  }
}

/**
 * The packets of `flowIds`, in time order; flows the index does not hold are listed in `missing`.
 * A flow of the live packet store is put in time order (the store keeps its socket's order, which
 * across the two directions can be a few µs off: a data frame and the other side's ACK). A flow of
 * an imported capture keeps the file's order, as `tshark -r FILE -Y ... -w` writes it, even where
 * the file itself is not in time order (6 of the 965 flows of the 24 such captures in nDPI's
 * corpus). Several flows are merged by time, each keeping its own order.
 */
export async function packetsOfFlows(index: PacketIndexReader, flowIds: readonly string[]): Promise<{ refs: PacketRef[]; missing: string[] }> {
  const refs: PacketRef[] = [];
  const missing: string[] = [];
  // Each packet's place in the merge: the latest time of its flow so far, which never goes back
  // within a flow (so a merge keeps each flow's order) and is its own time where the flow is in order.
  const at = new Map<PacketRef, number>();
  for (const id of flowIds) {
    if (!parseFlowId(id)) throw new PacketSelectionError(`not a flow id: '${id}' (16 hex digits)`);
    const own = await index.lookup(id);
    if (own.length === 0) missing.push(id);
    if (own.some((r) => r.file.live)) own.sort(byTimeThenOffset);
    let latest = Number.NEGATIVE_INFINITY;
    for (const r of own) {
      latest = Math.max(latest, r.ts);
      at.set(r, latest);
      refs.push(r);
    }
  }
  if (flowIds.length > 1) refs.sort((a, b) => at.get(a)! - at.get(b)! || sameFileOffset(a, b));
  return { refs, missing };
}

/** Equal times: the order they were captured in (a file's offsets), as the capture itself has them. */
const sameFileOffset = (a: PacketRef, b: PacketRef) => (a.file.path === b.file.path ? a.offset - b.offset : 0);
const byTimeThenOffset = (a: PacketRef, b: PacketRef) => a.ts - b.ts || sameFileOffset(a, b);

/**
 * The API's flow filter in its text form (src/records/flow-filter.ts): `key=value` terms separated
 * by spaces or commas, for example `host=10.0.0.0/8 port=443 serverName=*.example.com`.
 */
export function parseFlowFilter(text: string): FlowFilter {
  try {
    return parseFlowFilterText(text);
  } catch (e) {
    if (e instanceof FlowFilterError) throw new PacketSelectionError(e.message);
    throw e;
  }
}

/** The flows the filter selects in the range, oldest first; more than `max` is refused. */
export async function flowsOfFilter(store: StoreReader, range: TimeRange, filter: FlowFilter, max = MAX_FLOWS): Promise<FlowSummary[]> {
  const flows: FlowSummary[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.queryFlows({ ...range, filter, first: 1000, after, orderBy: 'time' });
    if (page.totalCount > max) {
      throw new PacketSelectionError(`the filter selects ${page.totalCount} flows, more than ${max} in one capture: narrow it or the time range`);
    }
    for (const e of page.edges) flows.push(e.node);
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return flows;
    after = page.pageInfo.endCursor;
  }
}

/** The anomaly of this id (its latest version); null when the store has none. */
export async function findAnomaly(store: StoreReader, anomalyId: string): Promise<AnomalyRecord | null> {
  // Anomalies are read newest first, 1000 at most per read: walk back in time as export does
  // (a page's oldest start is where the next read ends; anomalies starting then are read again).
  let to = Number.MAX_SAFE_INTEGER;
  for (;;) {
    const page = await store.queryAnomalies({ from: 0, to, limit: 1000 });
    const found = page.find((a) => a.anomalyId === anomalyId);
    if (found) return found;
    if (page.length < 1000) return null;
    const oldest = Math.min(...page.map((a) => a.startedAt));
    if (oldest + 1 >= to) return null;
    to = oldest + 1;
  }
}

/** Which flows of an anomaly a capture holds, and how they were found. */
export interface AnomalyFlows {
  flowIds: string[];
  /**
   * 'evidence': the flows its detector named (evidenceFlows; all of them when `total` is their
   * number, else the first and the last 100); 'guess': an anomaly stored before detectors named
   * them, whose flows are guessed from its source, target, port and time span.
   */
  basis: 'evidence' | 'guess';
  /** The flows its evidence counted (evidence), or the flows guessed. */
  total: number;
}

/**
 * The flows an anomaly is about: those its detector named as evidence when it did; for an older
 * anomaly, a guess: those of its source (unless 'distributed') with the target (a host, or for a
 * sweep a prefix) at the other end, on its target port when it names one, active while it lasted.
 */
export async function flowsOfAnomaly(store: StoreReader, a: AnomalyRecord, max = MAX_FLOWS): Promise<AnomalyFlows> {
  const named = parseEvidenceFlows(a.evidenceFlows ?? '');
  if (named !== null) return { flowIds: named.ids, basis: 'evidence', total: named.count };
  const distributed = a.source === 'distributed' || !isIP(a.source);
  const filter: FlowFilter = { host: distributed ? a.targetIp.split('/')[0] : a.source };
  if (a.targetPort) filter.port = a.targetPort;
  if (a.node) filter.node = a.node;
  const range = { from: a.startedAt, to: a.lastSeen + 1 };
  const inTarget = prefixMatcher(a.targetIp);
  const flows = await flowsOfFilter(store, range, filter, Number.POSITIVE_INFINITY);
  const chosen = flows.filter((f) => {
    if (distributed) return inTarget(f.clientIp) || inTarget(f.serverIp);
    const other = f.clientIp === a.source ? f.serverIp : f.clientIp;
    return inTarget(other);
  });
  if (chosen.length > max) throw new PacketSelectionError(`the anomaly names ${chosen.length} flows, more than ${max} in one capture`);
  return { flowIds: chosen.map((f) => f.flowId), basis: 'guess', total: chosen.length };
}

/** A test for "address inside `target`", an IP or a CIDR prefix. */
function prefixMatcher(target: string): (ip: string) => boolean {
  const [addr, bitsText] = target.split('/');
  const want = addressBits(addr);
  if (!want) return () => false;
  const bits = bitsText === undefined ? want.length : Number(bitsText);
  return (ip) => {
    const got = addressBits(ip);
    if (!got || got.length !== want.length) return false;
    return got.slice(0, bits) === want.slice(0, bits);
  };
}

/** An address as a string of 32 or 128 bits; null when it is not one. */
function addressBits(ip: string): string | null {
  const v = isIP(ip);
  if (v === 4)
    return ip
      .split('.')
      .map((o) => Number(o).toString(2).padStart(8, '0'))
      .join('');
  if (v !== 6) return null;
  let [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two groups.
  const expand = (groups: string[]) =>
    groups.flatMap((g) => {
      if (!g.includes('.')) return [g];
      const o = g.split('.').map(Number);
      return [((o[0] << 8) | o[1]).toString(16), ((o[2] << 8) | o[3]).toString(16)];
    });
  const hh = expand(h);
  const tt = expand(t);
  const groups = tail === undefined ? hh : [...hh, ...Array(8 - hh.length - tt.length).fill('0'), ...tt];
  head = groups
    .map((g) =>
      Number.parseInt(g || '0', 16)
        .toString(2)
        .padStart(16, '0'),
    )
    .join('');
  return head;
}

/** An ISO 8601 time (or µs since the epoch as digits) to µs. */
export function parseTimeArg(value: string, name: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(Z|[+-]\d\d:?\d\d)$/.exec(value);
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new PacketSelectionError(`${name}: not a time: '${value}' (ISO 8601, e.g. 2024-05-01T12:00:00Z, or µs since the epoch)`);
  return ms * 1000 + (m?.[2] ? Number(m[2].padEnd(6, '0')) : 0);
}

/** What a `flowlens pcap` or /pcap request asks for: exactly one of flow ids, an anomaly, or a filter with a range. */
export interface PacketRequest {
  flow?: string[];
  anomaly?: string;
  filter?: string;
  from?: string;
  to?: string;
}

/**
 * The flow ids a request names, oldest first for a filter. `flagNames` words the errors for the
 * command line (--flow) or the URL (flow=). The store is opened only when needed.
 */
export async function flowIdsOf(
  req: PacketRequest,
  store: () => Promise<StoreReader>,
  names: { flow: string; anomaly: string; filter: string; from: string; to: string },
): Promise<{ flowIds: string[]; anomaly?: AnomalyRecord; anomalyFlows?: AnomalyFlows }> {
  const modes = [req.flow?.length ? names.flow : '', req.anomaly ? names.anomaly : '', req.filter !== undefined ? names.filter : ''].filter(Boolean);
  if (modes.length !== 1) {
    throw new PacketSelectionError(`give one of ${names.flow}, ${names.anomaly} or ${names.filter}${modes.length > 1 ? ` (got ${modes.join(', ')})` : ''}`);
  }
  if (req.flow?.length) {
    const flowIds = req.flow.flatMap((f) => f.split(',')).filter(Boolean);
    for (const id of flowIds) if (!parseFlowId(id)) throw new PacketSelectionError(`not a flow id: '${id}' (16 hex digits)`);
    if (flowIds.length > MAX_FLOWS) throw new PacketSelectionError(`${flowIds.length} flows, more than ${MAX_FLOWS} in one capture`);
    return { flowIds };
  }
  if (req.anomaly) {
    const s = await store();
    const anomaly = await findAnomaly(s, req.anomaly);
    if (!anomaly) throw new PacketSelectionError(`no anomaly ${req.anomaly} in the store`);
    const anomalyFlows = await flowsOfAnomaly(s, anomaly);
    return { flowIds: anomalyFlows.flowIds, anomaly, anomalyFlows };
  }
  if (req.from === undefined || req.to === undefined) throw new PacketSelectionError(`${names.filter} needs ${names.from} and ${names.to}`);
  const from = parseTimeArg(req.from, names.from);
  const to = parseTimeArg(req.to, names.to);
  if (!(to > from)) throw new PacketSelectionError(`${names.to} must be after ${names.from}`);
  const filter = parseFlowFilter(req.filter ?? '');
  return { flowIds: (await flowsOfFilter(await store(), { from, to }, filter)).map((f) => f.flowId) };
}
