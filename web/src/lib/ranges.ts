// Time ranges the pages show (pure, tested in node). One choice is shared by every page:
// - default: the server's default range (`dataRange`): the data's own most recent range, so that
//   an imported capture, however old, is in view at once; "now" while a live capture runs;
// - last: a preset length ending where the default range ends (the data's end, or now);
// - all: the whole span of the stored data;
// - custom: two instants chosen by the user.
import { parseTime } from './format.js';

export interface RangeChoice {
  id: string;
  label: string;
  seconds: number;
}

export const RANGES: RangeChoice[] = [
  { id: '15m', label: '15 min', seconds: 15 * 60 },
  { id: '1h', label: '1 hour', seconds: 3600 },
  { id: '6h', label: '6 hours', seconds: 6 * 3600 },
  { id: '24h', label: '24 hours', seconds: 86400 },
  { id: '7d', label: '7 days', seconds: 7 * 86400 },
];

export function rangeById(id: string): RangeChoice {
  return RANGES.find((r) => r.id === id) ?? RANGES[1];
}

/** The last `seconds` up to now, as API DateTimes. */
export function lastSeconds(seconds: number, now = Date.now()): { from: string; to: string } {
  return { from: new Date(now - seconds * 1000).toISOString(), to: new Date(now + 1000).toISOString() };
}

export type CustomRange = { kind: 'custom'; from: number; to: number };
export type RangeSel = { kind: 'default' } | { kind: 'last'; id: string } | { kind: 'all' } | CustomRange;

/** The API's `dataRange`: the default range, why, and the span of the stored data. */
export interface DataRangeInfo {
  from: string;
  to: string;
  basis: 'NOW' | 'LATEST_DATA';
  reason: string;
  dataFrom: string | null;
  dataTo: string | null;
}

/** A query's from/to for a choice; both null let the server take its default range. */
export interface RangeVariables {
  from: string | null;
  to: string | null;
}

/** The variables of a choice, given the latest `dataRange` the server sent (null: none yet). */
export function rangeVariables(sel: RangeSel, info: DataRangeInfo | null, now = Date.now()): RangeVariables {
  switch (sel.kind) {
    case 'default':
      return { from: null, to: null };
    case 'last': {
      // Anchored where the default range ends: the end of old data, or now.
      const end = info?.basis === 'LATEST_DATA' ? parseTime(info.to) : now + 1000;
      return { from: new Date(end - rangeById(sel.id).seconds * 1000).toISOString(), to: new Date(end).toISOString() };
    }
    case 'all':
      return info?.dataFrom && info.dataTo ? { from: info.dataFrom, to: info.dataTo } : { from: null, to: null };
    case 'custom':
      return { from: new Date(sel.from).toISOString(), to: new Date(sel.to).toISOString() };
  }
}

/** The range a query covered (ms): its variables, or the server's default range when it sent none. */
export function shownRange(vars: RangeVariables, info: DataRangeInfo): { from: number; to: number } {
  return vars.from && vars.to ? { from: parseTime(vars.from), to: parseTime(vars.to) } : { from: parseTime(info.from), to: parseTime(info.to) };
}

/** Why the pages show this range, in words. */
export function rangeReason(sel: RangeSel, info: DataRangeInfo | null): string {
  switch (sel.kind) {
    case 'default':
      return info ? `default: ${info.reason}` : 'default range';
    case 'last':
      return `the last ${rangeById(sel.id).label} ${info?.basis === 'LATEST_DATA' ? 'of data held' : 'before now'}`;
    case 'all':
      return info?.dataFrom ? 'the whole data range' : 'the whole data range (the store holds no data yet)';
    case 'custom':
      return 'a custom range';
  }
}

/** A choice as a URL parameter: '' (default), 'last:1h', 'all', or 'FROM..TO' (ISO instants). */
export function rangeParam(sel: RangeSel): string {
  switch (sel.kind) {
    case 'default':
      return '';
    case 'last':
      return `last:${sel.id}`;
    case 'all':
      return 'all';
    case 'custom':
      return `${new Date(sel.from).toISOString()}..${new Date(sel.to).toISOString()}`;
  }
}

/** The inverse of rangeParam; anything else is the default range. */
export function parseRangeParam(text: string | null | undefined): RangeSel {
  if (!text) return { kind: 'default' };
  if (text === 'all') return { kind: 'all' };
  const last = /^last:(\w+)$/.exec(text);
  if (last && RANGES.some((r) => r.id === last[1])) return { kind: 'last', id: last[1] };
  const [a, b, extra] = text.split('..');
  if (b !== undefined && extra === undefined) {
    const from = Date.parse(a);
    const to = Date.parse(b);
    if (Number.isFinite(from) && Number.isFinite(to) && from < to) return { kind: 'custom', from, to };
  }
  return { kind: 'default' };
}

/**
 * The range of an import's packets (ISO instants from its summary), widened to whole minutes so
 * that the interval buckets holding its first and last packets are inside it.
 */
export function importRange(firstPacket: string, lastPacket: string): CustomRange | null {
  const first = parseTime(firstPacket);
  const last = parseTime(lastPacket);
  if (!Number.isFinite(first) || !Number.isFinite(last) || last < first) return null;
  const MIN = 60_000;
  return { kind: 'custom', from: Math.floor(first / MIN) * MIN, to: Math.floor(last / MIN) * MIN + MIN };
}

/** ms → the value of a datetime-local input (local time, minutes). */
export function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}
