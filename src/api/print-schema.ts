// `npm run schema`: writes the SDL of the code-first schema to schema/schema.graphql, which is
// checked in so clients and reviewers see the API; test/api-schema.test.ts fails when it is stale.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { schemaSdl } from './schema/index.js';

export const SCHEMA_FILE = fileURLToPath(new URL('../../schema/schema.graphql', import.meta.url));

writeFileSync(SCHEMA_FILE, schemaSdl());
process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
