// What a filter value matches, one definition for every place that filters flows (issue 21: "one
// filter language"): the stores' SQL (History's flow pages, Explore's statements, on DuckDB and
// QuestDB), the in-memory answers (the flow cache's views, Explore's segment blocks) and the
// flows that come from the bus (Live flows, subscriptions). So far: applications compare
// case-insensitively (`dns` finds DNS, as nDPI and the web client name it).

/** Whether a flow's application `value` is the filter's `want` (any case; an empty `want` finds flows with no application). */
export function appMatches(value: string | null | undefined, want: string): boolean {
  return (value ?? '').toLowerCase() === want.toLowerCase();
}

/** DuckDB: the condition that column `column` holds application `param` (a bound placeholder). */
export function duckdbAppSql(column: string, param: string): string {
  return `lower(${column}) = lower(${param})`;
}

/**
 * QuestDB: the same condition; `app` is a SYMBOL and an empty application is stored as NULL (see
 * questdb.ts's sym), so the empty filter asks for NULL.
 */
export function questdbAppSql(column: string, want: string, bind: (v: unknown) => string): string {
  return want === '' ? `${column} IS NULL` : `lower(cast(${column} AS VARCHAR)) = lower(${bind(want)})`;
}
