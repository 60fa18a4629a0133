// The range a query takes when it names none: the data's own most recent range, so that an imported
// capture (months or years old) is in view at once, while a live capture keeps "now".
//
// The rule (defaultRange below), with H = one hour:
// - "now" basis, [now - H, now): a live capture runs (interfaces or fleet workers report), or the
//   store is empty, or its newest row is less than H old (the last hour before now holds it);
// - "latest data" basis, otherwise: the range ends at the end of the aggregation interval holding
//   the newest row and starts H earlier, or where the run (import or capture) that wrote the newest
//   row began when that is later: the last hour of data held, or the whole span of the latest
//   import when it is shorter. Both ends fall on interval boundaries, as the stored buckets do.
// The whole data range runs from the interval of the earliest row to the same end.
import type { StatusProvider } from '../records/status.js';
import type { DataExtent, StoreReader, TimeRange } from '../store/types.js';

/** Length of the default range: one hour. */
export const DEFAULT_RANGE_US = 3600 * 1_000_000;

/** How long a computed default range is reused (a burst of queries from one page reads it once). */
const DEFAULT_RANGE_TTL_MS = 1000;

export type RangeBasis = 'now' | 'latest-data';

export interface DefaultRange extends TimeRange {
  basis: RangeBasis;
  /** Why this range, in words (the web client shows it). */
  reason: string;
  /** Every stored row's interval, earliest to latest; null when the store is empty. */
  data: TimeRange | null;
}

const floorTo = (us: number, step: number) => Math.floor(us / step) * step;

/** The default range for the store's extent at `nowUs` (µs); `live` when a capture is running. */
export function defaultRange(extent: DataExtent | null, nowUs: number, live: boolean, intervalUs: number): DefaultRange {
  const data = extent ? { from: floorTo(extent.first, intervalUs), to: floorTo(extent.last, intervalUs) + intervalUs } : null;
  const lastHour = (reason: string): DefaultRange => ({ from: nowUs - DEFAULT_RANGE_US, to: nowUs, basis: 'now', reason, data });
  if (live) return lastHour('the last hour before now: a live capture is running');
  if (!extent || !data) return lastHour('the last hour before now: the store holds no data yet');
  if (extent.last >= nowUs - DEFAULT_RANGE_US) return lastHour('the last hour before now, which holds the newest data');
  const runStart = floorTo(extent.runFirst, intervalUs);
  const hourStart = data.to - DEFAULT_RANGE_US;
  return runStart > hourStart
    ? { from: runStart, to: data.to, basis: 'latest-data', reason: 'the whole span of the latest import or capture (shorter than an hour)', data }
    : { from: hourStart, to: data.to, basis: 'latest-data', reason: 'the last hour of data held', data };
}

/** The server's default range, computed at most once a second and shared by concurrent queries. */
export class DefaultRanges {
  private cached?: { at: number; range: Promise<DefaultRange> };

  constructor(
    private readonly store: Pick<StoreReader, 'dataExtent'>,
    private readonly status: StatusProvider,
    private readonly intervalUs: number,
  ) {}

  get(): Promise<DefaultRange> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < DEFAULT_RANGE_TTL_MS) return this.cached.range;
    const live = this.status.interfaces().length > 0 || this.status.workers().length > 0;
    const range = this.store.dataExtent().then((extent) => defaultRange(extent, now * 1000, live, this.intervalUs));
    const entry = { at: now, range };
    this.cached = entry;
    // A failure is not kept: the next query tries again.
    range.catch(() => {
      if (this.cached === entry) this.cached = undefined;
    });
    return range;
  }

  /** New data arrived (an import finished): the next query computes the range again. */
  invalidate(): void {
    this.cached = undefined;
  }
}
