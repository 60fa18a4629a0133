// `npm run schema`: writes the SDL of the code-first schema to schema/schema.graphql, which is
// checked in so clients and reviewers see the API; test/api-schema.test.ts fails when it is stale.
// It also writes the record tables' DDL into schema/duckdb.sql and schema/questdb.sql (src/records/
// ddl.ts); test/records-schema.test.ts fails when those are stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderSchemaFile, SCHEMA_FILES } from '../records/ddl.js';
import { RECORDS } from '../records/index.js';
import { schemaSdl } from './schema/index.js';

export const SCHEMA_FILE = fileURLToPath(new URL('../../schema/schema.graphql', import.meta.url));

writeFileSync(SCHEMA_FILE, schemaSdl());
process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
for (const dialect of ['duckdb', 'questdb'] as const) {
  const file = SCHEMA_FILES[dialect];
  const text = readFileSync(file, 'utf8');
  const generated = renderSchemaFile(text, dialect, RECORDS);
  if (generated !== text) writeFileSync(file, generated);
  process.stdout.write(`${generated === text ? 'unchanged' : 'wrote'} ${fileURLToPath(file)}\n`);
}
