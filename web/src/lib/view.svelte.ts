// Page settings kept while moving between pages (filters, sort; the range is in ./range.svelte).
import { EMPTY_FILTER, type FlowFilterText, type SortDir, type SortKey } from './flows';

export const view = $state({
  liveFilter: { ...EMPTY_FILTER } as FlowFilterText,
  liveSort: { key: 'firstSeen' as SortKey, dir: 'desc' as SortDir },
  historyFilter: { ...EMPTY_FILTER } as FlowFilterText,
});
