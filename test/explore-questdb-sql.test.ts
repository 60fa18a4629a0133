/**
 * Explore's QuestDB statement (src/store/explore.ts questdbExploreSql) offline: for every dimension,
 * pair and filter kind it is one statement that QuestDB's own SQL parser (@questdb/sql-parser)
 * accepts, calls only QuestDB functions, and carries every caller value as a bound parameter (none
 * in the SQL text). Running it is the store contract suite's part (test/store-contract.test.ts,
 * with FLOWLENS_QUESTDB and FLOWLENS_QUESTDB_PG set).
 */
import { hostSql, serverNameSql } from '../src/store/flow-filter.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { functions as QUESTDB_FUNCTIONS, parseToAst } from '@questdb/sql-parser';
import { EXPLORE_DIMENSIONS, type ExploreDimension, type ExploreFilter, type ExploreQuery, questdbExploreSql } from '../src/store/explore.js';
import { isoMicros } from '../src/store/questdb.js';

const DAY = 86_400_000_000;
const FROM = Date.UTC(2024, 4, 1) * 1000;

function build(q: ExploreQuery): { sql: string; values: unknown[] } {
  const values: unknown[] = [];
  const sql = questdbExploreSql(
    q,
    (v) => {
      values.push(v);
      return `$${values.length}`;
    },
    isoMicros,
  );
  return { sql, values };
}

/** The statement with its parameters as literals (the parser takes no $n), as QuestDB would see it bound. */
const withLiterals = (sql: string, values: unknown[]) =>
  sql.replace(/\$(\d+)/g, (_, n) => {
    const v = values[Number(n) - 1];
    return typeof v === 'number' ? String(v) : `'${String(v).replaceAll("'", "''")}'`;
  });

describe('explore on QuestDB: the statement', () => {
  const known = new Set((QUESTDB_FUNCTIONS as string[]).map((f) => f.toLowerCase()));
  // Addresses as CIDR prefixes (bound as regular expressions) and an address; other values with a quote.
  const filterValue: Partial<Record<ExploreDimension, string>> = {
    port: '443',
    clientAsn: '64500',
    serverAsn: '15169',
    host: '10.1.0.0/16',
    client: '2001:db8::/32',
    server: '192.0.2.7',
  };
  const dims = EXPLORE_DIMENSIONS.filter((d) => d !== 'peer');
  const requests: ExploreQuery[] = [];
  for (const d of dims) {
    requests.push({ from: FROM, to: FROM + DAY, dimensions: [d], metric: 'bytes', limit: 10, step: 3_600_000_000 });
    const other = d === 'host' ? 'peer' : dims[(dims.indexOf(d) + 3) % dims.length]!;
    const filters: ExploreFilter[] = [{ dimension: d, value: filterValue[d] ?? "o'quote ; DROP TABLE flows" }];
    requests.push({ from: FROM + 123, to: FROM + DAY, dimensions: [d, other], metric: 'flows', limit: 20, step: 900_000_000, filters });
  }
  // A server-name glob (bound as a case-insensitive regular expression).
  requests.push({
    from: FROM,
    to: FROM + DAY,
    dimensions: ['app'],
    metric: 'bytes',
    limit: 10,
    step: 3_600_000_000,
    filters: [{ dimension: 'serverName', value: "*.o'quote*" }],
  });

  it(`parses as one statement with QuestDB functions only (${requests.length} requests)`, () => {
    const problems: string[] = [];
    for (const q of requests) {
      const { sql, values } = build(q);
      const text = withLiterals(sql, values);
      const r = parseToAst(text);
      if (r.errors.length) problems.push(`${JSON.stringify(q)}: ${r.errors.map((e) => e.message).join('; ')}`);
      else if (r.ast.length !== 1) problems.push(`${JSON.stringify(q)}: ${r.ast.length} statements`);
      const calls = [...text.replace(/'(?:[^']|'')*'/g, "''").matchAll(/\b([a-z_]+)\(/gi)].map((m) => m[1]!.toLowerCase());
      for (const f of calls) if (!known.has(f)) problems.push(`${JSON.stringify(q)}: ${f}() is no QuestDB function`);
      // Caller values are bound: neither the range's text nor a filter's value is in the SQL.
      for (const f of q.filters ?? []) assert.ok(!sql.includes(f.value), `${f.value} is bound, not inlined`);
      assert.ok(!sql.includes(isoMicros(q.from)));
    }
    assert.deepEqual(problems, []);
    // The parser does refuse a broken statement (this check can fail).
    assert.ok(parseToAst(`${withLiterals(build(requests[0]!).sql, build(requests[0]!).values)} GROUP`).errors.length > 0);
  });

  it('the flow filter language (host prefixes, server-name globs) is QuestDB SQL, every value bound', () => {
    for (const [host, name] of [
      ['10.0.0.0/8', '*.example.com'],
      ['2001:db8::/33', "*o'quote*"],
      ['192.0.2.1', 'Example.COM'],
      ['::/0', ''],
    ]) {
      const values: unknown[] = [];
      const bind = (v: unknown) => {
        values.push(v);
        return `$${values.length}`;
      };
      const sql = `SELECT * FROM flows WHERE ${hostSql('questdb', ['client_ip', 'server_ip'], host!, bind)} AND ${serverNameSql('questdb', 'server_name', name!, bind)}`;
      for (const v of values) assert.ok(!sql.includes(String(v)) || String(v) === '', `${v} is bound`);
      const r = parseToAst(withLiterals(sql, values));
      assert.deepEqual(
        r.errors.map((e) => e.message),
        [],
        sql,
      );
    }
  });

  it('checks the request as the other stores do', () => {
    assert.throws(() => build({ from: FROM, to: FROM + DAY, dimensions: ['peer'], metric: 'bytes', limit: 10, step: 3_600_000_000 }), /pair it with host/);
    assert.throws(() => build({ from: FROM, to: FROM + DAY, dimensions: ['app'], metric: 'bytes', limit: 0, step: 3_600_000_000 }), /limit/);
  });
});
