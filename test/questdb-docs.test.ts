// Every ```sql block of README.md and schema/QUESTDB.md runs as written on QuestDB: each is sent,
// unchanged, over the PostgreSQL wire protocol to the server in FLOWLENS_QUESTDB_PG (QuestDB 8.2.3 or
// later), after schema/questdb.sql's CREATE TABLE statements so that the tables exist. The blocks
// are console queries with literal values (no placeholders); a result may be empty. Skipped, with
// the reason, when FLOWLENS_QUESTDB_PG is not set.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { parseSchemaSql, SCHEMA_URL } from '../src/store/questdb.js';
import { REPO_ROOT } from './helpers/cli.js';

/** The ```sql blocks of a Markdown file, each with the line it starts on. */
export function sqlBlocks(file: string): { line: number; sql: string }[] {
  const blocks: { line: number; sql: string }[] = [];
  const lines = readFileSync(join(REPO_ROOT, file), 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```sql') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== '```') end++;
    blocks.push({ line: start + 1, sql: lines.slice(start, end).join('\n').trim() });
    i = end;
  }
  return blocks;
}

const DOCS = ['README.md', 'schema/QUESTDB.md'];
const url = process.env.FLOWLENS_QUESTDB_PG;

describe('SQL blocks of the docs', () => {
  it('every doc has its console queries as ```sql blocks, one statement each', () => {
    for (const doc of DOCS) {
      const blocks = sqlBlocks(doc);
      assert.ok(blocks.length >= 5, `${doc}: ${blocks.length} sql blocks`);
      for (const b of blocks) assert.equal(b.sql.replace(/;$/, '').includes(';'), false, `${doc}:${b.line}: one statement per block`);
    }
  });

  it('every SAMPLE BY ... FILL gives one fill value per aggregate (QuestDB: "not enough fill values")', () => {
    let checked = 0;
    for (const doc of DOCS) {
      for (const b of sqlBlocks(doc)) {
        const fill = /SAMPLE BY \S+(?: FROM \S+ TO \S+)? FILL\(([^)]*)\)/i.exec(b.sql);
        if (!fill) continue;
        const select = b.sql.slice(0, b.sql.search(/\bFROM\b/i));
        const aggregates = select.match(/\b(sum|count|avg|min|max|first|last|last_not_null)\(/gi)?.length ?? 0;
        assert.equal(fill[1]!.split(',').length, aggregates, `${doc}:${b.line}: FILL(${fill[1]}) for ${aggregates} aggregates`);
        checked++;
      }
    }
    assert.ok(checked >= 4);
  });

  describe('run on QuestDB', { skip: url ? false : 'set FLOWLENS_QUESTDB_PG (a QuestDB 8.2.3+ PostgreSQL wire URL) to run the docs’ SQL' }, () => {
    let client: pg.Client;
    before(async () => {
      client = new pg.Client({ connectionString: url });
      await client.connect();
      const schema = parseSchemaSql(readFileSync(SCHEMA_URL, 'utf8'));
      for (const s of schema.filter((x) => /^CREATE TABLE IF NOT EXISTS/i.test(x))) await client.query(s);
    });
    after(async () => {
      await client?.end();
    });
    for (const doc of DOCS) {
      for (const b of sqlBlocks(doc)) {
        it(`${doc}:${b.line}: ${b.sql.split('\n')[0]}`, async () => {
          // Simple query protocol, the statement exactly as the doc shows it (trailing ';' included).
          await client.query(b.sql);
        });
      }
    }
  });
});
