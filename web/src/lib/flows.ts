// Flows on the client: the fields the tables ask for, client-side filtering and sorting of live
// flows, and the applications' shares of a page of flows. Pure (tested in node).
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
 * Client-side filter for live flows: host is a prefix of either address, port is either port,
 * app matches the identified app or the transport/port label (case-insensitive), server name is a
 * case-insensitive substring. Empty fields match everything; an invalid port matches nothing.
 */
export function matchesFilter(f: Flow, q: FlowFilterText): boolean {
  const host = q.host.trim();
  if (host && !f.clientIp.startsWith(host) && !f.serverIp.startsWith(host)) return false;
  const port = q.port.trim();
  if (port) {
    const p = Number(port);
    if (!Number.isInteger(p) || (f.clientPort !== p && f.serverPort !== p)) return false;
  }
  const app = q.app.trim().toLowerCase();
  if (app && (f.app ?? '').toLowerCase() !== app && appLabel(f).toLowerCase() !== app) return false;
  const name = q.serverName.trim().toLowerCase();
  if (name && !(f.serverName ?? '').toLowerCase().includes(name)) return false;
  return true;
}

/** The filter as the API's FlowFilter input (exact matches), or a message saying what is wrong. */
export function apiFilter(q: FlowFilterText): { filter: FlowFilter } | { error: string } {
  const filter: FlowFilter = {};
  if (q.host.trim()) filter.host = q.host.trim();
  if (q.port.trim()) {
    const p = Number(q.port.trim());
    if (!Number.isInteger(p) || p < 0 || p > 65535) return { error: 'port must be a number from 0 to 65535' };
    filter.port = p;
  }
  if (q.app.trim()) filter.app = q.app.trim();
  if (q.serverName.trim()) filter.serverName = q.serverName.trim();
  return { filter };
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
