// The time range every page shows (Overview, History, Host, Anomalies, Explore): one choice shared
// while moving between pages, and the server's latest `dataRange` (its default range and the span
// of the data), which each page query also asks for so that the choice resolves without a second
// round trip. See ./ranges for the choices.
import { query } from './api.svelte';
import { graphql } from './graphql';
import { type DataRangeInfo, type RangeSel, type RangeVariables, rangeVariables } from './ranges';

export const DataRangeFields = graphql(`
  fragment DataRangeFields on DataRange { from to basis reason dataFrom dataTo }
`);

const DataRangeQuery = graphql(
  `
  query DataRange { dataRange { ...DataRangeFields } }
`,
  [DataRangeFields],
);

export const range = $state({
  sel: { kind: 'default' } as RangeSel,
  /** The newest dataRange the server sent; null before the first. */
  info: null as DataRangeInfo | null,
});

/** Keeps the dataRange a page query returned. */
export function noteDataRange(info: DataRangeInfo): void {
  range.info = info;
}

/**
 * The from/to of the current choice for a page query. Choices anchored on the data (a preset on old
 * data, the whole range) ask the server first when no dataRange has come yet.
 */
export async function currentRangeVariables(sel: RangeSel = range.sel): Promise<RangeVariables> {
  if (sel.kind === 'all' || sel.kind === 'last') {
    const d = await query(DataRangeQuery);
    range.info = d.dataRange;
  }
  return rangeVariables(sel, range.info);
}
