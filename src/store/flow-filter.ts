// The filter language of src/records/flow-filter.ts as SQL conditions, for every statement that
// filters flows (History's flow pages, Explore, on DuckDB and QuestDB): one definition per
// dialect, so that a store's SQL and the in-memory answers (the flow cache's views, Explore's
// segment blocks, the bus) decide alike. Values are always bound, never spliced: a prefix or a
// glob is bound as the regular expression the records module made of it.
import { appMatches, parseHostSpec, parseServerNameSpec } from '../records/flow-filter.js';

export { appMatches };

/** Adds a value to the statement's parameters and returns its placeholder. */
export type Bind = (value: unknown) => string;

/** DuckDB: the condition that column `column` holds application `param` (a bound placeholder). */
export function duckdbAppSql(column: string, param: string): string {
  return `lower(${column}) = lower(${param})`;
}

/**
 * QuestDB: the same condition; `app` is a SYMBOL and an empty application is stored as NULL (see
 * questdb.ts's sym), so the empty filter asks for NULL.
 */
export function questdbAppSql(column: string, want: string, bind: Bind): string {
  return want === '' ? `${column} IS NULL` : `lower(cast(${column} AS VARCHAR)) = lower(${bind(want)})`;
}

/**
 * Either of `columns` holds an address of the host filter (an address or a CIDR prefix). An
 * address compares equal (the column's index or zone maps still serve); a prefix is its anchored
 * regular expression: `regexp_full_match` in DuckDB (RE2), `~` in QuestDB (java.util.regex, which
 * finds the anchored pattern exactly as a full match).
 */
export function hostSql(dialect: 'duckdb' | 'questdb', columns: readonly string[], host: string, bind: Bind): string {
  const spec = parseHostSpec(host);
  const p = bind(spec.kind === 'address' ? spec.text : spec.regex);
  const one = (c: string) => (spec.kind === 'address' ? `${c} = ${p}` : dialect === 'duckdb' ? `regexp_full_match(${c}, ${p})` : `${c} ~ ${p}`);
  return `(${columns.map(one).join(' OR ')})`;
}

/**
 * The server name in `column` is the filter's: the whole name in any case, or a glob matched in
 * any case (`(?i)`, which both RE2 and java.util.regex read) that never finds an empty name. The
 * empty filter finds flows without a name (NULL in QuestDB, '' in DuckDB).
 */
export function serverNameSql(dialect: 'duckdb' | 'questdb', column: string, name: string, bind: Bind): string {
  const spec = parseServerNameSpec(name);
  if (spec.kind === 'glob') {
    const p = bind(`(?i)${spec.regex}`);
    return dialect === 'duckdb' ? `(${column} <> '' AND regexp_full_match(${column}, ${p}))` : `${column} ~ ${p}`;
  }
  if (dialect === 'duckdb') return `lower(${column}) = lower(${bind(spec.text)})`;
  return spec.text === '' ? `${column} IS NULL` : `lower(cast(${column} AS VARCHAR)) = lower(${bind(spec.text)})`;
}
