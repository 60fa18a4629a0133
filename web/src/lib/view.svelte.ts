// Page settings kept while moving between pages (filters, sort, ranges).
import { EMPTY_FILTER, type FlowFilterText, type SortDir, type SortKey } from './flows';

export const view = $state({
  liveFilter: { ...EMPTY_FILTER } as FlowFilterText,
  liveSort: { key: 'firstSeen' as SortKey, dir: 'desc' as SortDir },
  historyFilter: { ...EMPTY_FILTER } as FlowFilterText,
  historyRange: '1h',
});
