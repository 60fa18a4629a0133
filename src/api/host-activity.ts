// One host's activity, derived from its flows: the store has no per-host query (topHosts ranks
// all hosts and cannot pick one, and there is no per-host series), so `host(ip)` sums the flows
// the host took part in. Flow segments count in the range their segment started in, so a
// series is exact to the flow export period (active timeout), not to the host interval.
// Wanted from the store instead: hostSummary(ip, range) and hostSeries(ip, range, step).
import { MAX_PAGE_SIZE, type FlowStore, type FlowSummary, type HostSummary, type TimeRange } from '../store/types.js';
import { userError } from './schema/builder.js';

/**
 * The store's HostSummary, with flows = flows with traffic in the range and peers = distinct other
 * ends in the range (not per interval).
 */
export type HostActivity = HostSummary;

/** Flows summed per request at most: beyond it the caller must narrow the range. */
export const MAX_HOST_FLOWS = 50_000;

export class FlowBudget {
  constructor(public remaining: number = MAX_HOST_FLOWS) {}
  take(n: number): void {
    this.remaining -= n;
    if (this.remaining < 0) throw userError(`the host has more than ${MAX_HOST_FLOWS} flows in the range: narrow the range or use a larger step`);
  }
}

export async function hostActivity(store: FlowStore, ip: string, range: TimeRange, budget: FlowBudget): Promise<HostActivity> {
  const a: HostActivity = { ip, bytesSent: 0, bytesReceived: 0, packetsSent: 0, packetsReceived: 0, flowsInitiated: 0, flowsReceived: 0, flows: 0, peers: 0, firstSeen: range.to, lastSeen: range.from };
  const peers = new Set<string>();
  let after: string | undefined;
  for (;;) {
    const page = await store.queryFlows({ ...range, filter: { host: ip }, first: MAX_PAGE_SIZE, after, orderBy: 'time' });
    if (after === undefined) budget.take(page.totalCount);
    for (const { node: f } of page.edges) {
      if (f.clientIp === ip) addSide(a, f, 'client', range.from, peers);
      if (f.serverIp === ip) addSide(a, f, 'server', range.from, peers);
      a.flows++;
      // Flow times are the whole flow's; the host's activity is reported within the range.
      a.firstSeen = Math.min(a.firstSeen, Math.max(f.firstSeen, range.from));
      a.lastSeen = Math.max(a.lastSeen, Math.min(f.lastSeen, range.to - 1));
    }
    if (!page.pageInfo.hasNextPage || page.pageInfo.endCursor === null) break;
    after = page.pageInfo.endCursor;
  }
  peers.delete(ip);
  a.peers = peers.size;
  return a;
}

/** Adds a flow to the host that is its `side` end. */
function addSide(a: HostActivity, f: FlowSummary, side: 'client' | 'server', from: number, peers: Set<string>): void {
  const other = side === 'client' ? 'server' : 'client';
  a.bytesSent += f[`${side}Bytes`];
  a.packetsSent += f[`${side}Packets`];
  a.bytesReceived += f[`${other}Bytes`];
  a.packetsReceived += f[`${other}Packets`];
  // Started in the range: counted like the host records' flowsInitiated / flowsReceived.
  if (f.firstSeen >= from) {
    if (side === 'client') a.flowsInitiated++;
    else a.flowsReceived++;
  }
  peers.add(f[`${other}Ip`]);
}
