// Flows on the client: the fields the tables ask for, filtering (the API's filter language, shared
// with the server) and sorting of live flows, and the applications' shares of a page of flows.
// Pure (tested in node).
import { checkFlowFilter, type FlowFilter as CheckedFilter, FlowFilterError, flowPredicate } from '../../../src/records/flow-filter.js';
import type { FlowFields } from './flow-fields.js';
import type { FlowFilter, ResultOf } from './graphql.js';

// The fields the tables and the detail panel show: every scalar field of Flow, generated from the
// schema (web/codegen.ts), so that a field added to the flow record needs no edit here.
export { FLOW_FIELD_DOCS, FlowFields } from './flow-fields.js';

export type Flow = ResultOf<typeof FlowFields>;

export interface FlowFilterText {
  host: string;
  port: string;
  app: string;
  serverName: string;
}

export const EMPTY_FILTER: FlowFilterText = { host: '', port: '', app: '', serverName: '' };

/** The label a flow's application goes by: its identified app, else transport/server port. */
export function appLabel(f: Pick<Flow, 'app' | 'transport' | 'serverPort'>): string {
  if (f.app) return f.app;
  if (f.transport === 'tcp' || f.transport === 'udp' || f.transport === 'sctp') return `${f.transport}/${f.serverPort}`;
  return f.transport;
}

/**
 * The learned classifier's guess where DPI named no application: its application, else its
 * category; '' where DPI named one or there is no guess. Shown beside the label, marked as a guess,
 * never as the label itself (sorting and grouping by application use appLabel).
 */
export function predictedName(f: Pick<Flow, 'app' | 'predictedCategory' | 'predictedApp'>): string {
  if (f.app || !f.predictedCategory) return '';
  return f.predictedApp || f.predictedCategory;
}

/** What a predicted label says when asked (its tooltip and the flow detail). */
export function predictedText(f: Pick<Flow, 'predictedCategory' | 'predictedApp' | 'predictedConfidence'>): string {
  const what = f.predictedApp ? `${f.predictedCategory}, ${f.predictedApp}` : (f.predictedCategory ?? '');
  return `${what} (${f.predictedConfidence ?? 0}% sure): predicted by the learned classifier from the first packets' sizes and timing and the server port, not identified by DPI`;
}

/**
 * The filter as the API's FlowFilter input, checked by the one filter language that the API, the
 * stores and export use (src/records/flow-filter.ts): hosts by address or CIDR prefix, ports,
 * applications in any case, server names in any case or by glob (`*.example.com`). A value that
 * can never match is a message saying why.
 */
export function apiFilter(q: FlowFilterText): { filter: FlowFilter } | { error: string } {
  const input: Record<string, string> = {};
  for (const key of ['host', 'port', 'app', 'serverName'] as const) if (q[key].trim()) input[key] = q[key].trim();
  try {
    return { filter: checkFlowFilter(input) as FlowFilter };
  } catch (e) {
    if (e instanceof FlowFilterError) return { error: e.message };
    throw e;
  }
}

/**
 * Live flows' filter: the same language, decided in the browser exactly as the stores decide it
 * (flowPredicate). A filter with an error keeps no flow (the error says why).
 */
export function livePredicate(q: FlowFilterText): { match: (f: Flow) => boolean; error?: string } {
  const checked = apiFilter(q);
  if ('error' in checked) return { match: () => false, error: checked.error };
  return { match: flowPredicate(checked.filter as CheckedFilter) };
}

export type SortKey = 'firstSeen' | 'lastSeen' | 'client' | 'server' | 'transport' | 'app' | 'serverName' | 'packets' | 'bytes' | 'duration';
export type SortDir = 'asc' | 'desc';

function ipKey(ip: string): string {
  // IPv4 sorts numerically; IPv6 after, as text.
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  return m
    ? `4${m
        .slice(1)
        .map((x) => x.padStart(3, '0'))
        .join('.')}`
    : `6${ip}`;
}

function sortValue(f: Flow, key: SortKey): string | number {
  switch (key) {
    case 'firstSeen':
      return f.firstSeen;
    case 'lastSeen':
      return f.lastSeen;
    case 'client':
      return `${ipKey(f.clientIp)}:${String(f.clientPort).padStart(5, '0')}`;
    case 'server':
      return `${ipKey(f.serverIp)}:${String(f.serverPort).padStart(5, '0')}`;
    case 'transport':
      return f.transport;
    case 'app':
      return appLabel(f);
    case 'serverName':
      return f.serverName ?? '';
    case 'packets':
      return f.clientPackets + f.serverPackets;
    case 'bytes':
      return f.bytes;
    case 'duration':
      return Date.parse(`${f.lastSeen.slice(0, 23)}Z`) - Date.parse(`${f.firstSeen.slice(0, 23)}Z`);
  }
}

/** A sorted copy; ties keep the id order so rows do not jump around between updates. */
export function sortFlows(flows: Flow[], key: SortKey, dir: SortDir): Flow[] {
  const sign = dir === 'asc' ? 1 : -1;
  const keyed = flows.map((f) => ({ f, v: sortValue(f, key) }));
  keyed.sort((a, b) => (a.v < b.v ? -sign : a.v > b.v ? sign : a.f.id < b.f.id ? -1 : a.f.id > b.f.id ? 1 : 0));
  return keyed.map((k) => k.f);
}

export interface Share {
  key: string;
  bytes: number;
  packets: number;
  flows: number;
}

/** Bytes, packets and flows per application label, largest first. */
export function topApps(flows: Flow[], limit = 10): Share[] {
  const m = new Map<string, Share>();
  for (const f of flows) {
    const key = appLabel(f);
    const s = m.get(key) ?? { key, bytes: 0, packets: 0, flows: 0 };
    s.bytes += f.bytes;
    s.packets += f.clientPackets + f.serverPackets;
    s.flows += 1;
    m.set(key, s);
  }
  return [...m.values()].sort((a, b) => b.bytes - a.bytes || b.flows - a.flows || (a.key < b.key ? -1 : 1)).slice(0, limit);
}
