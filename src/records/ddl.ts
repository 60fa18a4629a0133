// The DDL of both back ends, generated from the record definitions. schema/duckdb.sql and
// schema/questdb.sql keep their prose; their CREATE TABLE statements, column migrations and (QuestDB)
// DEDUP ENABLE statements are these. `npm run schema` rewrites them (renderSchemaFile) and
// test/records-schema.test.ts fails when the files and the definitions disagree.
import { TYPES, type ColumnInfo, type AnyRecordDef } from './define.js';

export type Dialect = 'duckdb' | 'questdb';
type Def = AnyRecordDef;

/** Columns laid out as `name  TYPE rest`, names and types padded to the widest. */
function columnLines(columns: readonly ColumnInfo[], type: (c: ColumnInfo) => string, rest: (c: ColumnInfo) => string): string[] {
  const nameWidth = Math.max(...columns.map((c) => c.sql.length)) + 1;
  const typeWidth = Math.max(...columns.map((c) => type(c).length));
  return columns.map((c) => {
    const tail = rest(c);
    return `  ${c.sql.padEnd(nameWidth)}${tail ? `${type(c).padEnd(typeWidth)} ${tail}` : type(c)}`.trimEnd();
  });
}

function sqlNames(def: Def, fields: readonly string[]): string {
  return fields.map((f) => def.column(f).sql).join(', ');
}

/** DuckDB: NOT NULL everywhere; columns added later carry the empty value as DEFAULT (old rows get it). */
export function duckdbCreate(def: Def): string {
  const lines = columnLines(
    def.list,
    (c) => c.duckdb,
    (c) => `NOT NULL${c.added ? ` DEFAULT ${TYPES[c.type].empty}` : ''}`,
  );
  const pk = def.options.duckdbPrimaryKey;
  if (pk) lines.push(`  PRIMARY KEY (${def.column(pk).sql})`);
  return `CREATE TABLE IF NOT EXISTS ${def.table} (\n${lines.join(',\n')}\n);`;
}

export function questdbCreate(def: Def): string {
  const lines = columnLines(
    def.list,
    (c) => c.questdbType,
    () => '',
  );
  const partition = def.options.questdbPartitionBy ?? 'DAY';
  return (
    `CREATE TABLE IF NOT EXISTS ${def.table} (\n${lines.join(',\n')}\n) TIMESTAMP(${def.designated.sql}) PARTITION BY ${partition} WAL\n` +
    `DEDUP UPSERT KEYS(${sqlNames(def, def.options.questdbDedupKeys)});`
  );
}

/** The migration of a column added after the first release (one line; see the files' notes). */
export function addColumn(def: Def, c: ColumnInfo, dialect: Dialect): string {
  const type = dialect === 'duckdb' ? `${c.duckdb} DEFAULT ${TYPES[c.type].empty}` : c.questdbType;
  return `ALTER TABLE ${def.table} ADD COLUMN IF NOT EXISTS ${c.sql} ${type};`;
}

export function questdbDedupEnable(def: Def): string {
  return `ALTER TABLE ${def.table} DEDUP ENABLE UPSERT KEYS(${sqlNames(def, def.options.questdbDedupKeys)});`;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Replaces the match of `pattern` in `text` with `statement`, or appends the statement when there is none. */
function put(text: string, pattern: RegExp, statement: string): string {
  if (pattern.test(text)) return text.replace(pattern, statement);
  return `${text.replace(/\n*$/, '\n')}${statement}\n`;
}

/**
 * A schema file with its statements made the definitions': each CREATE TABLE replaced, each
 * migration and DEDUP ENABLE line replaced or, when missing, appended at the end. Everything else
 * (comments, order) stays as it is.
 */
export function renderSchemaFile(text: string, dialect: Dialect, records: readonly Def[]): string {
  let out = text;
  for (const def of records) {
    const create = dialect === 'duckdb' ? duckdbCreate(def) : questdbCreate(def);
    out = put(out, new RegExp(`^CREATE TABLE IF NOT EXISTS ${escapeRegExp(def.table)} \\([\\s\\S]*?\\);$`, 'm'), create);
  }
  for (const def of records) {
    if (dialect === 'questdb') out = put(out, new RegExp(`^ALTER TABLE ${escapeRegExp(def.table)} DEDUP ENABLE .*;$`, 'm'), questdbDedupEnable(def));
  }
  for (const def of records) {
    for (const c of def.list) {
      if (!c.added) continue;
      out = put(
        out,
        new RegExp(`^ALTER TABLE ${escapeRegExp(def.table)} ADD COLUMN IF NOT EXISTS ${escapeRegExp(c.sql)} .*;$`, 'm'),
        addColumn(def, c, dialect),
      );
    }
  }
  return out;
}

export const SCHEMA_FILES: Record<Dialect, URL> = {
  duckdb: new URL('../../schema/duckdb.sql', import.meta.url),
  questdb: new URL('../../schema/questdb.sql', import.meta.url),
};
