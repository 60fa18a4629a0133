// Writes web/src/graphql-env.d.ts, the schema's introspection that gql.tada types the client's
// GraphQL documents with, from schema/schema.graphql (web/tsconfig.json names both):
// `npm run graphql:web`. With --check (run by `npm run typecheck`) it writes nothing and fails when
// the committed file differs from what the schema gives, i.e. when the schema changed without it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateOutput } from '@gql.tada/cli-utils';

const tsconfig = fileURLToPath(new URL('tsconfig.json', import.meta.url));
const committed = fileURLToPath(new URL('src/graphql-env.d.ts', import.meta.url));

if (process.argv.includes('--check')) {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-graphql-env-'));
  try {
    const fresh = join(dir, 'graphql-env.d.ts');
    await generateOutput({ tsconfig, output: fresh, silent: true, disablePreprocessing: false });
    let current = '';
    try {
      current = readFileSync(committed, 'utf8');
    } catch {
      // missing: stale too
    }
    if (readFileSync(fresh, 'utf8') !== current) {
      console.error('web/src/graphql-env.d.ts is stale: schema/schema.graphql changed since it was generated. Run `npm run graphql:web` and commit it.');
      process.exitCode = 1;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
} else {
  await generateOutput({ tsconfig, output: committed, silent: true, disablePreprocessing: false });
  console.log('wrote web/src/graphql-env.d.ts');
}
