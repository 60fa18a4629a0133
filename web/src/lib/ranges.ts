// Time ranges the pickers offer.
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
