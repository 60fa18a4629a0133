// The Explore page's view, all of it in the URL so that a view can be shared (pure, tested in
// node): #/explore?dims=HOST,PEER&metric=BYTES&limit=10&f=APP:TLS&f=HOST:10.0.0.1&range=last:6h&view=area
// (view: table, area or sankey; a Sankey only for a pair).
import { parseRangeParam, type RangeSel, rangeParam } from './ranges.js';

export const DIMENSIONS = [
  { id: 'HOST', label: 'Host' },
  { id: 'PEER', label: 'Peer' },
  { id: 'CLIENT', label: 'Client' },
  { id: 'SERVER', label: 'Server' },
  { id: 'PORT', label: 'Port' },
  { id: 'TRANSPORT', label: 'Transport' },
  { id: 'APP', label: 'Application' },
  { id: 'SERVER_NAME', label: 'Server name' },
  { id: 'NODE', label: 'Node' },
  { id: 'IFACE', label: 'Interface' },
  { id: 'CLIENT_COUNTRY', label: 'Client country' },
  { id: 'SERVER_COUNTRY', label: 'Server country' },
  { id: 'CLIENT_ASN', label: 'Client AS' },
  { id: 'SERVER_ASN', label: 'Server AS' },
  { id: 'CLIENT_NETWORK', label: 'Client network' },
  { id: 'SERVER_NETWORK', label: 'Server network' },
] as const;
export type Dimension = (typeof DIMENSIONS)[number]['id'];

export const METRICS = [
  { id: 'BYTES', label: 'Bytes' },
  { id: 'PACKETS', label: 'Packets' },
  { id: 'FLOWS', label: 'Flows' },
] as const;
export type Metric = (typeof METRICS)[number]['id'];

export const LIMITS = [5, 10, 20, 50] as const;

export interface ExploreFilter {
  dimension: Dimension;
  value: string;
}

export interface ExploreView {
  /** One dimension or a pair (PEER only after HOST). */
  dims: Dimension[];
  metric: Metric;
  limit: number;
  filters: ExploreFilter[];
  /** Table, stacked area of the series, or Sankey (a pair only). */
  view: ExploreViewKind;
  /** The range choice; undefined: the URL names none (the shared choice stays). */
  range?: RangeSel;
}

export const VIEW_KINDS = [
  { id: 'table', label: 'Table' },
  { id: 'area', label: 'Stacked area' },
  { id: 'sankey', label: 'Sankey' },
] as const;
export type ExploreViewKind = (typeof VIEW_KINDS)[number]['id'];

/** The views that suit these dimensions: a Sankey needs a pair (its two columns). */
export const viewsFor = (dims: readonly Dimension[]) => VIEW_KINDS.filter((k) => k.id !== 'sankey' || dims.length === 2);

/** The view kind asked for when it suits the dimensions, else the table. */
export function validViewKind(kind: string | null, dims: readonly Dimension[]): ExploreViewKind {
  return viewsFor(dims).find((k) => k.id === kind)?.id ?? 'table';
}

export const DEFAULT_VIEW: ExploreView = { dims: ['APP'], metric: 'BYTES', limit: 10, filters: [], view: 'table' };

const isDimension = (s: string): s is Dimension => DIMENSIONS.some((d) => d.id === s);
export const dimensionLabel = (d: Dimension) => DIMENSIONS.find((x) => x.id === d)?.label ?? d;
/** Dimensions whose values are addresses (a host page exists for them). */
export const isAddressDimension = (d: Dimension) => d === 'HOST' || d === 'PEER' || d === 'CLIENT' || d === 'SERVER';

/** The dimensions as the API takes them: PEER needs HOST, so a PEER alone or first becomes valid. */
export function validDims(dims: Dimension[]): Dimension[] {
  const unique = dims.filter((d, i) => dims.indexOf(d) === i).slice(0, 2);
  if (unique.length === 0) return [...DEFAULT_VIEW.dims];
  // The other end of a host: without HOST it means nothing, so the pair becomes host and peer.
  if (unique.includes('PEER') && !unique.includes('HOST')) return ['HOST', 'PEER'];
  return unique;
}

/** The view in a route's query string; anything unknown falls back to the default. */
export function parseExploreParams(query: string): ExploreView {
  const p = new URLSearchParams(query);
  const dims = validDims((p.get('dims') ?? '').split(',').filter(isDimension));
  const metricParam = p.get('metric');
  const metric = METRICS.find((m) => m.id === metricParam)?.id ?? DEFAULT_VIEW.metric;
  const limitParam = Number(p.get('limit'));
  const limit = (LIMITS as readonly number[]).includes(limitParam) ? limitParam : DEFAULT_VIEW.limit;
  const filters: ExploreFilter[] = [];
  for (const f of p.getAll('f')) {
    const i = f.indexOf(':');
    const dimension = f.slice(0, i);
    if (i > 0 && isDimension(dimension)) filters.push({ dimension, value: f.slice(i + 1) });
  }
  const view = validViewKind(p.get('view'), dims);
  const rangeText = p.get('range');
  return { dims, metric, limit, filters, view, range: rangeText === null ? undefined : parseRangeParam(rangeText) };
}

/** The route of a view: #/explore?… (the default range spelled `default`, so that it is explicit). */
export function exploreHref(v: ExploreView): string {
  const p = new URLSearchParams();
  p.set('dims', v.dims.join(','));
  p.set('metric', v.metric);
  p.set('limit', String(v.limit));
  for (const f of v.filters) p.append('f', `${f.dimension}:${f.value}`);
  const view = validViewKind(v.view, v.dims);
  if (view !== 'table') p.set('view', view);
  if (v.range) p.set('range', rangeParam(v.range) || 'default');
  return `#/explore?${p.toString()}`;
}

/** The view with one more filter (drill-down); the same filter twice is kept once. */
export function withFilter(v: ExploreView, f: ExploreFilter): ExploreView {
  if (v.filters.some((x) => x.dimension === f.dimension && x.value === f.value)) return v;
  return { ...v, filters: [...v.filters, f] };
}

/** The view filtered on an item's values, one filter per dimension (a Sankey band, a stacked layer). */
export function withItemFilters(v: ExploreView, keys: readonly string[]): ExploreView {
  return keys.reduce((acc, value, j) => (v.dims[j] ? withFilter(acc, { dimension: v.dims[j], value }) : acc), v);
}

/** How an item's values show together: "a → b" for a pair. */
export const itemLabel = (dims: readonly Dimension[], keys: readonly string[]) => keys.map((k, j) => keyLabel(dims[j], k)).join(' → ');

export function withoutFilter(v: ExploreView, index: number): ExploreView {
  return { ...v, filters: v.filters.filter((_, i) => i !== index) };
}

/** How an item's key shows: empty values (no app, no server name) are named. */
export function keyLabel(d: Dimension, value: string): string {
  if (value !== '') return value;
  return d === 'APP' ? '(not identified)' : d === 'SERVER_NAME' ? '(no name)' : '(none)';
}
