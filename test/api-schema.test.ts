/**
 * The checked-in SDL (schema/schema.graphql) is what the code builds: run `npm run schema` after
 * changing src/api/schema/*, so clients and reviewers see the API change in the diff.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { schemaSdl } from '../src/api/schema/index.js';

it('schema/schema.graphql matches the schema built from src/api/schema (run `npm run schema`)', () => {
  const file = readFileSync(new URL('../schema/schema.graphql', import.meta.url), 'utf8');
  assert.equal(file, schemaSdl(), 'schema/schema.graphql is stale: run `npm run schema`');
});
