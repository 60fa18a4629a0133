// Records as data: each record the pipeline writes (flow segments, hosts, traffic, anomalies) is one
// column table, and everything that used to spell its fields by hand derives from it: the TypeScript
// types (RecordOf, SummaryOf), both back ends' DDL (./ddl.ts, `npm run schema`), the DuckDB chunk
// layout, the QuestDB ILP serialiser, the row mappers, the SQL that sums a flow's segments, the
// export fields and the GraphQL object fields. Akvorado's common/schema/definition.go is the model.
//
// This module and its siblings import nothing from the pipeline stages; every stage may import them.

/** How a value is held: the TypeScript, DuckDB, QuestDB and GraphQL types follow from it (see TYPES). */
export type ColumnType = 'time' | 'str' | 'u8' | 'u16' | 'counter' | 'bool';

/**
 * How the segments of one flow combine when summed into its summary (FlowSummary):
 * - key: what the segments are grouped by (the flow id);
 * - first: set when the flow starts and the same on every segment (addresses, ports, node);
 * - sum: counters of the segment only;
 * - bitOr: bit masks that accumulate (TCP flags seen so far);
 * - min / max: the smallest / largest of the segments' values;
 * - latest: the value of the latest segment (by ts), even when empty;
 * - latestNonEmpty: the value of the latest segment that has one ('' when none has).
 * A column without a rule is not part of the summary (ts, final).
 */
export type Combine = 'key' | 'first' | 'sum' | 'bitOr' | 'min' | 'max' | 'latest' | 'latestNonEmpty';

export type QuestDbType = 'TIMESTAMP' | 'SYMBOL' | 'VARCHAR' | 'LONG' | 'INT' | 'BOOLEAN';
export type DuckDbType = 'TIMESTAMP' | 'VARCHAR' | 'UTINYINT' | 'USMALLINT' | 'UBIGINT' | 'BOOLEAN';
/** The GraphQL output types of record fields ('ID' for the record's id; enums by their type name). */
export type GqlType = 'ID' | 'String' | 'Int' | 'Counter' | 'DateTime' | 'Boolean' | (string & {});

/** How a record field shows in the GraphQL object of the record. */
export interface GqlField {
  /** Field name when it is not the record's (flowId -> id). */
  name?: string;
  type?: GqlType;
  /** The empty value ('' or 0) reads as null. */
  nullable?: boolean;
  description?: string;
}

export interface ColumnOptions<V> {
  /** SQL column name; default: the field name in snake_case. */
  sql?: string;
  combine?: Combine;
  /** QuestDB type where the default is not wanted (strings: SYMBOL for low-cardinality values). */
  questdb?: QuestDbType;
  /** The designated timestamp (QuestDB TIMESTAMP(ts), ILP at()). */
  designated?: true;
  /** Added after the first release: both DDL files get a migration (ALTER TABLE ... ADD COLUMN). */
  added?: true;
  /** GraphQL object field; false: not in the API. Default: the field, not nullable, no description. */
  gql?: GqlField | false;
  /** Printed by `flowlens export` (default: every summary column). */
  export?: boolean;
  /** The values a string column takes (checked by the bus validator, typed in RecordOf). */
  values?: readonly V[];
  /** An IP address (checked by the bus validator). */
  ip?: true;
}

/** One column: what its builder (col.*) made of it. `V` is its TypeScript value type. */
export interface Column<V = unknown> extends ColumnOptions<V> {
  readonly type: ColumnType;
  /** Phantom: carries V for RecordOf. */
  readonly __value?: V;
}

/** Options given as none. */
type NoOptions = Record<never, never>;

type StrValue<O> = O extends { values: readonly (infer V extends string)[] } ? V : string;

function column<V, O>(type: ColumnType, opts: O): Column<V> & O {
  return { ...opts, type };
}

/** Column builders, one per ColumnType; the options' literal types are kept (SummaryOf reads `combine`). */
export const col = {
  /** µs since the epoch. */
  time: <const O extends ColumnOptions<number> = NoOptions>(opts: O = {} as O) => column<number, O>('time', opts),
  /** Typed as the union of `values` when given. */
  str: <const O extends ColumnOptions<string> = NoOptions>(opts: O = {} as O) => column<StrValue<O>, O>('str', opts),
  u8: <const O extends ColumnOptions<number> = NoOptions>(opts: O = {} as O) => column<number, O>('u8', opts),
  u16: <const O extends ColumnOptions<number> = NoOptions>(opts: O = {} as O) => column<number, O>('u16', opts),
  /** Unsigned 64-bit counter, exact in a JS number up to 2^53. */
  counter: <const O extends ColumnOptions<number> = NoOptions>(opts: O = {} as O) => column<number, O>('counter', opts),
  bool: <const O extends ColumnOptions<boolean> = NoOptions>(opts: O = {} as O) => column<boolean, O>('bool', opts),
};

/** Per ColumnType: the store types, the default GraphQL type and how an empty value reads. */
export const TYPES: Record<ColumnType, { duckdb: DuckDbType; questdb: QuestDbType; gql: GqlType; empty: string }> = {
  time: { duckdb: 'TIMESTAMP', questdb: 'TIMESTAMP', gql: 'DateTime', empty: '0' },
  str: { duckdb: 'VARCHAR', questdb: 'VARCHAR', gql: 'String', empty: "''" },
  u8: { duckdb: 'UTINYINT', questdb: 'INT', gql: 'Int', empty: '0' },
  u16: { duckdb: 'USMALLINT', questdb: 'INT', gql: 'Int', empty: '0' },
  counter: { duckdb: 'UBIGINT', questdb: 'LONG', gql: 'Counter', empty: '0' },
  bool: { duckdb: 'BOOLEAN', questdb: 'BOOLEAN', gql: 'Boolean', empty: 'false' },
};

export type Columns = Record<string, Column<any>>;

/** Table-level options: keys, partitioning and deduplication of each back end. */
export interface TableOptions<C extends Columns> {
  /** DuckDB PRIMARY KEY (the table is then written with INSERT OR REPLACE, not the appender). */
  duckdbPrimaryKey?: keyof C & string;
  /** QuestDB: DEDUP UPSERT KEYS (the designated timestamp first), PARTITION BY, WAL. */
  questdbDedupKeys: readonly (keyof C & string)[];
  questdbPartitionBy?: 'DAY' | 'HOUR' | 'MONTH';
}

/** A column with its field and SQL names resolved, in table order. */
export interface ColumnInfo extends Column {
  field: string;
  sql: string;
  duckdb: DuckDbType;
  questdbType: QuestDbType;
}

/** What code generic over records sees of one (see RecordDef). */
export interface AnyRecordDef {
  readonly table: string;
  /** Every column in table order (the DDL's, the appender's). */
  readonly list: readonly ColumnInfo[];
  /** The columns of the summary (those with a combine rule), in table order. */
  readonly summary: readonly ColumnInfo[];
  readonly options: { duckdbPrimaryKey?: string; questdbDedupKeys: readonly string[]; questdbPartitionBy?: 'DAY' | 'HOUR' | 'MONTH' };
  /** The designated timestamp column. */
  readonly designated: ColumnInfo;
  column(field: string): ColumnInfo;
}

export interface RecordDef<C extends Columns> extends AnyRecordDef {
  readonly columns: C;
  readonly options: TableOptions<C>;
}

/** flowId -> flow_id. */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function defineRecord<C extends Columns>(table: string, columns: C, options: TableOptions<C>): RecordDef<C> {
  const list: ColumnInfo[] = Object.entries(columns).map(([field, c]) => ({
    ...c,
    field,
    sql: c.sql ?? snakeCase(field),
    duckdb: TYPES[c.type].duckdb,
    questdbType: c.questdb ?? TYPES[c.type].questdb,
  }));
  const designated = list.filter((c) => c.designated);
  if (designated.length !== 1 || designated[0].type !== 'time') throw new Error(`record ${table}: needs exactly one designated time column`);
  const byField = new Map(list.map((c) => [c.field, c]));
  return {
    table,
    columns,
    list,
    summary: list.filter((c) => c.combine !== undefined),
    options,
    designated: designated[0],
    column(field: string) {
      const c = byField.get(field);
      if (!c) throw new Error(`record ${table} has no column ${field}`);
      return c;
    },
  };
}

type ValueOf<C> = C extends Column<infer V> ? V : never;

/** The TypeScript record of a definition: one property per column. */
export type RecordOf<D> = D extends RecordDef<infer C> ? { [K in keyof C]: ValueOf<C[K]> } : never;

type SummaryKeys<C> = { [K in keyof C]: C[K] extends { combine: Combine } ? K : never }[keyof C];

/** The summed record (a flow's segments summed): the columns with a combine rule. */
export type SummaryOf<D> = D extends RecordDef<infer C> ? { [K in SummaryKeys<C>]: ValueOf<C[K]> } : never;

/** The fields `flowlens export` prints, in table order. */
export function exportFields(def: AnyRecordDef, columns: readonly ColumnInfo[] = def.summary): string[] {
  return columns.filter((c) => c.export !== false).map((c) => c.field);
}

/** A column as the API shows it: the GraphQL object's field (src/api/schema/record-fields.ts) and `flowlens export flows`. */
export interface ApiField {
  /** The GraphQL field name (gql.name, else the record's field name). */
  name: string;
  column: ColumnInfo;
  nullable: boolean;
  /** The column's value, a nullable column's empty value ('' or 0) read as null. */
  get: (record: object) => unknown;
}

/** The API's fields of `columns` (all but those with gql: false), in table order. */
export function apiFields(def: AnyRecordDef, columns: readonly ColumnInfo[] = def.summary): ApiField[] {
  return columns
    .filter((c) => c.gql !== false)
    .map((c) => {
      const gql = c.gql || {};
      const read = fieldGetter(c.field) as (r: object) => unknown;
      const nullable = gql.nullable ?? false;
      const get = nullable
        ? (r: object) => {
            const v = read(r);
            return v === '' || v === 0 ? null : v;
          }
        : read;
      return { name: gql.name ?? c.field, column: c, nullable, get };
    });
}

/** `record.field` as source for compiled code; throws unless `field` is a plain identifier. */
export function fieldRead(record: string, field: string): string {
  if (!/^[A-Za-z_]\w*$/.test(field)) throw new Error(`not a field name: ${field}`);
  return `${record}.${field}`;
}

/** A getter per column (`r => r.field`), compiled once: one shared `r => r[name]` goes megamorphic on hot paths. */
export function fieldGetter(field: string): (record: unknown) => unknown {
  return new Function('r', `return ${fieldRead('r', field)};`) as (record: unknown) => unknown;
}

/**
 * Adds one record's counter columns into another's (`into.c += add.c` for every column of type
 * counter), leaving the other columns as `into` has them: how live capture merges its workers'
 * records of one interval (src/capture/live.ts), so that a new counter column is merged too.
 */
export function sumCounters<R>(def: AnyRecordDef): (into: R, add: R) => void {
  const fields = def.list.filter((c) => c.type === 'counter').map((c) => c.field);
  return (into, add) => {
    const a = into as Record<string, number>;
    const b = add as Record<string, number>;
    for (const f of fields) a[f] += b[f];
  };
}

/** Each type's empty value: what a column holds before anything sets it. */
export const EMPTY_VALUE: Record<ColumnType, string | number | boolean> = { time: 0, str: '', u8: 0, u16: 0, counter: 0, bool: false };

/**
 * A record with every column empty ('' / 0 / false): what builders of records start from (the
 * benchmark's synthetic rows, tests' fixtures), so that a new column needs no edit there.
 */
export function emptyRecord<D extends AnyRecordDef>(def: D): RecordOf<D> {
  return Object.fromEntries(def.list.map((c) => [c.field, EMPTY_VALUE[c.type]])) as RecordOf<D>;
}

/** A summary (segments summed) with every column empty; see emptyRecord. */
export function emptySummary<D extends AnyRecordDef>(def: D): SummaryOf<D> {
  return Object.fromEntries(def.summary.map((c) => [c.field, EMPTY_VALUE[c.type]])) as SummaryOf<D>;
}
