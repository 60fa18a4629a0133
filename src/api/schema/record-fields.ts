// The GraphQL fields of a record object, generated from its definition (src/records): name, type,
// nullability and description per column, so the SDL follows the definition.
import { apiFields, TYPES, type AnyRecordDef, type ColumnInfo } from '../../records/define.js';

/** What is used of a Pothos object field builder. */
type FieldBuilder = { field(options: any): any };

/**
 * The fields of `def`'s columns that have a GraphQL field (all but `gql: false`), in table order.
 * `types` gives the refs of types named by a column (enums); a nullable column reads its empty
 * value ('' or 0) as null.
 */
export function recordFields(t: FieldBuilder, def: AnyRecordDef, columns: readonly ColumnInfo[], types: Record<string, unknown> = {}): Record<string, any> {
  const fields: Record<string, any> = {};
  for (const f of apiFields(def, columns)) {
    const gql = f.column.gql || {};
    const typeName = gql.type ?? TYPES[f.column.type].gql;
    fields[f.name] = t.field({
      type: types[typeName] ?? typeName,
      nullable: f.nullable,
      ...(gql.description === undefined ? {} : { description: gql.description }),
      resolve: f.get,
    });
  }
  if (Object.keys(fields).length === 0) throw new Error(`${def.table}: no GraphQL fields`);
  return fields;
}
