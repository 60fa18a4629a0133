// The record definitions (src/records) are the one place a record's columns are spelled; these
// checks fail when something derived from them by hand-kept text disagrees with them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { renderSchemaFile, SCHEMA_FILES } from '../src/records/ddl.js';
import { RECORDS } from '../src/records/index.js';

describe('records: schema files', () => {
  for (const dialect of ['duckdb', 'questdb'] as const) {
    it(`schema/${dialect}.sql has the definitions' tables, migrations and keys (run \`npm run schema\` after changing src/records)`, () => {
      const text = readFileSync(SCHEMA_FILES[dialect], 'utf8');
      assert.equal(text, renderSchemaFile(text, dialect, RECORDS));
    });
  }

  it('every added column has its migration, after the CREATE TABLE of its table', () => {
    for (const dialect of ['duckdb', 'questdb'] as const) {
      const text = readFileSync(SCHEMA_FILES[dialect], 'utf8');
      for (const def of RECORDS) {
        const create = text.indexOf(`CREATE TABLE IF NOT EXISTS ${def.table} (`);
        for (const c of def.list.filter((c) => c.added)) {
          const at = text.indexOf(`ALTER TABLE ${def.table} ADD COLUMN IF NOT EXISTS ${c.sql} `);
          assert.ok(at > create, `${dialect}: ${def.table}.${c.sql}`);
        }
      }
    }
  });
});
