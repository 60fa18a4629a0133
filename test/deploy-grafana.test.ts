// deploy/grafana: the provisioning files agree with docker-compose.yml; every dashboard has the
// shape of the Grafana dashboard schema version it declares (39, Grafana 11.0 to 11.2, the
// compose stack's 11.2.2); every SQL query names only tables and columns of schema/questdb.sql and
// only variables its dashboard defines, and parses with QuestDB's own SQL parser
// (@questdb/sql-parser), calling only QuestDB functions; every PromQL query names only metrics
// flowlens exports.
// With FLOWLENS_QUESTDB or FLOWLENS_QUESTDB_PG set, every SQL query runs on that QuestDB, its macros expanded as
// Grafana's PostgreSQL data source expands them, and returns the columns its panel expects.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { functions as QUESTDB_FUNCTIONS, parseToAst } from '@questdb/sql-parser';
import pg from 'pg';
import { parseSchemaSql, SCHEMA_URL } from '../src/store/questdb.js';
import { REPO_ROOT } from './helpers/cli.js';
import { DEPLOY, readYaml, yamlUnavailable } from './helpers/deploy.js';

const GRAFANA = join(DEPLOY, 'grafana');
const DASHBOARDS = join(GRAFANA, 'dashboards');
const SCHEMA_VERSION = 39;
const QDB_UID = 'flowlens-questdb';
const PROM_UID = 'flowlens-prometheus';

interface Target {
  refId: string;
  datasource: { type: string; uid: string };
  rawSql?: string;
  format?: string;
  rawQuery?: boolean;
  expr?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
  fieldConfig?: { defaults: Record<string, unknown>; overrides: { matcher: { id: string; options: string }; properties: { id: string; value: unknown }[] }[] };
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  datasource: { type: string; uid: string };
  query: string | { query: string };
  multi: boolean;
  includeAll: boolean;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  version: number;
  editable: boolean;
  tags: string[];
  time: { from: string; to: string };
  annotations: { list: unknown[] };
  templating: { list: Variable[] };
  panels: Panel[];
}

const files = readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json'));
const dashboards = files.map((f) => ({ file: f, d: JSON.parse(readFileSync(join(DASHBOARDS, f), 'utf8')) as Dashboard }));
const sqlTargets = dashboards.flatMap(({ d }) =>
  d.panels.flatMap((p) => (p.targets ?? []).filter((t) => t.rawSql !== undefined).map((t) => ({ d, p, t, sql: t.rawSql as string }))),
);
const sqlVariables = dashboards.flatMap(({ d }) =>
  d.templating.list.filter((v) => v.datasource.uid === QDB_UID).map((v) => ({ d, v, sql: v.query as string })),
);

/** Grafana 11's built-in panel types that these dashboards may use. */
const PANEL_TYPES = new Set(['row', 'timeseries', 'stat', 'table', 'barchart', 'piechart', 'bargauge', 'gauge', 'text']);
const BUILTIN_VARIABLES = new Set(['__timeFilter', '__timeFrom', '__timeTo', '__interval', '__interval_ms', '__rate_interval', '__value', '__url_time_range']);

/** The variables a query or link uses: $name, ${name} and ${name:format}. */
function variablesUsed(text: string): string[] {
  return [...text.matchAll(/\$(?:\{([A-Za-z_]\w*)(?:[.:][^}]*)?\}|([A-Za-z_]\w*))/g)].map((m) => m[1] ?? m[2]);
}

// ------------------------------------------------------------------ macros, as Grafana expands them

interface Expansion {
  from: Date;
  to: Date;
  intervalMs: number;
  /** A variable's values; a multi-value or All variable becomes 'a','b' as Grafana's SQL data sources write it. */
  values: Record<string, string[]>;
}

function expand(sql: string, e: Expansion): string {
  const iso = (d: Date) => `'${d.toISOString().replace(/\.\d{3}Z$/, 'Z')}'`;
  const unit =
    e.intervalMs % 86_400_000 === 0
      ? `${e.intervalMs / 86_400_000}d`
      : e.intervalMs % 3_600_000 === 0
        ? `${e.intervalMs / 3_600_000}h`
        : `${e.intervalMs / 60_000}m`;
  return sql
    .replace(/\$__timeFilter\((\w+)\)/g, (_, col: string) => `${col} BETWEEN ${iso(e.from)} AND ${iso(e.to)}`)
    .replaceAll('$__timeFrom()', iso(e.from))
    .replaceAll('$__timeTo()', iso(e.to))
    .replaceAll('$__interval_ms', String(e.intervalMs))
    .replaceAll('$__interval', unit)
    .replace(/'\$(\w+)'/g, (_, name: string) => `'${(e.values[name] ?? ['?'])[0].replaceAll("'", "''")}'`)
    .replace(/\$(\w+)/g, (_, name: string) => (e.values[name] ?? ['?']).map((v) => `'${v.replaceAll("'", "''")}'`).join(','));
}

// ------------------------------------------------------------------ offline SQL check against schema/questdb.sql

const schemaSql = readFileSync(SCHEMA_URL, 'utf8');
const TABLES = new Map<string, Set<string>>();
for (const m of schemaSql.matchAll(/CREATE TABLE IF NOT EXISTS (\w+) \(([\s\S]*?)\) TIMESTAMP/g)) {
  TABLES.set(m[1], new Set([...m[2].matchAll(/^\s*(\w+)\s+[A-Z]+/gm)].map((c) => c[1])));
}
const SQL_WORDS = new Set(
  (
    'select from where and or not in is null as sample by fill order desc asc limit group latest on partition between distinct align to calendar ' +
    'sum count count_distinct max min avg first last last_not_null coalesce dateadd now'
  ).split(' '),
);

/** The words of a query that are neither SQL, nor a column of a table it reads, nor an alias it defines. */
function unknownNames(sql: string): { tables: string[]; unknown: string[] } {
  const text = sql.replace(/'(?:[^']|'')*'/g, "''");
  const tables = [...text.matchAll(/\bFROM\s+(\w+)/gi)].map((m) => m[1]);
  const columns = new Set(tables.flatMap((t) => [...(TABLES.get(t) ?? [])]));
  const aliases = new Set([...text.matchAll(/\bAS\s+(\w+)/gi)].map((m) => m[1]));
  const unknown = [...text.matchAll(/(?<![\w.])[A-Za-z_]\w*/g)]
    .map((m) => m[0])
    .filter((w) => !SQL_WORDS.has(w.toLowerCase()) && !columns.has(w) && !aliases.has(w) && !TABLES.has(w));
  return { tables: tables.filter((t) => !TABLES.has(t)), unknown: [...new Set(unknown)] };
}

const OFFLINE: Expansion = {
  from: new Date('2024-05-01T00:00:00Z'),
  to: new Date('2024-05-01T06:00:00Z'),
  intervalMs: 60_000,
  values: { node: ['edge-1', 'edge-2'], iface: ['eth0'], host: ['10.0.0.5'], kind: ['PORT_SCAN'] },
};

const yamlMissing = yamlUnavailable();

describe('Grafana provisioning', { skip: yamlMissing ?? false }, () => {
  const compose = () =>
    readYaml<{ services: Record<string, { volumes: string[]; environment: Record<string, string> }> }>(join(REPO_ROOT, 'docker-compose.yml')).services.grafana;

  it('provisions the QuestDB (PostgreSQL wire) and Prometheus data sources the dashboards name, from variables compose sets', () => {
    const text = readFileSync(join(GRAFANA, 'provisioning', 'datasources', 'flowlens.yml'), 'utf8');
    const ds = readYaml<{ apiVersion: number; datasources: { uid: string; type: string; url: string; jsonData: Record<string, unknown> }[] }>(
      join(GRAFANA, 'provisioning', 'datasources', 'flowlens.yml'),
    );
    assert.equal(ds.apiVersion, 1);
    assert.deepEqual(ds.datasources.map((d) => [d.uid, d.type]).sort(), [
      [PROM_UID, 'prometheus'],
      [QDB_UID, 'grafana-postgresql-datasource'],
    ]);
    assert.equal(ds.datasources.find((d) => d.uid === QDB_UID)?.jsonData.database, 'qdb');
    const env = compose().environment;
    const used = [...text.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]);
    assert.ok(used.length >= 4);
    for (const name of used) assert.ok(env[name], `compose's grafana service does not set ${name}`);
    assert.equal(env.QUESTDB_PG_ADDRESS, '127.0.0.1:8812', 'QuestDB publishes its PostgreSQL wire port on loopback');
  });

  it('loads the dashboards from the folder compose mounts, and the home dashboard is one of them', () => {
    const prov = readYaml<{ providers: { type: string; options: { path: string } }[] }>(join(GRAFANA, 'provisioning', 'dashboards', 'flowlens.yml'));
    const g = compose();
    const mounts = new Map(g.volumes.map((v) => v.split(':').slice(0, 2) as [string, string]));
    assert.equal(mounts.get('./deploy/grafana/provisioning'), '/etc/grafana/provisioning');
    assert.equal(mounts.get('./deploy/grafana/dashboards'), prov.providers[0].options.path);
    const home = g.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    assert.ok(home.startsWith(`${prov.providers[0].options.path}/`));
    assert.ok(files.includes(home.slice(prov.providers[0].options.path.length + 1)), `${home} is not in deploy/grafana/dashboards`);
  });
});

describe('Grafana dashboards', () => {
  it('are the five: traffic, top talkers and applications, host drill-down, anomalies, capture health', () => {
    assert.deepEqual(dashboards.map(({ d }) => d.uid).sort(), [
      'flowlens-anomalies',
      'flowlens-capture-health',
      'flowlens-host',
      'flowlens-top',
      'flowlens-traffic',
    ]);
  });

  for (const { file, d } of dashboards) {
    it(`${file}: has the shape of dashboard schema version ${SCHEMA_VERSION}`, () => {
      assert.equal(d.schemaVersion, SCHEMA_VERSION);
      assert.match(d.uid, /^[a-zA-Z0-9_-]{1,40}$/);
      assert.equal(`${d.uid}.json`, file);
      assert.equal(typeof d.title, 'string');
      assert.ok(Number.isInteger(d.version));
      assert.equal(typeof d.editable, 'boolean');
      assert.ok(d.tags.includes('flowlens'));
      assert.match(d.time.from, /^now-\d+[mhd]$/);
      assert.equal(d.time.to, 'now');
      assert.ok(Array.isArray(d.annotations.list) && Array.isArray(d.templating.list) && Array.isArray(d.panels));
      const ids = new Set<number>();
      const cells = new Set<string>();
      for (const p of d.panels) {
        assert.ok(Number.isInteger(p.id) && !ids.has(p.id), `${p.title}: panel id ${p.id} missing or repeated`);
        ids.add(p.id);
        assert.ok(PANEL_TYPES.has(p.type), `${p.title}: panel type ${p.type}`);
        const { h, w, x, y } = p.gridPos;
        assert.ok(
          [h, w, x, y].every(Number.isInteger) && h > 0 && w > 0 && x >= 0 && y >= 0 && x + w <= 24,
          `${p.title}: gridPos ${JSON.stringify(p.gridPos)}`,
        );
        // No two panels overlap on the 24-column grid.
        for (let r = y; r < y + h; r++) {
          for (let c = x; c < x + w; c++) {
            assert.ok(!cells.has(`${r},${c}`), `${p.title} overlaps another panel at row ${r}, column ${c}`);
            cells.add(`${r},${c}`);
          }
        }
        if (p.type === 'row') {
          assert.deepEqual(p.panels, []);
          continue;
        }
        assert.ok(p.datasource && [QDB_UID, PROM_UID].includes(p.datasource.uid), `${p.title}: data source ${JSON.stringify(p.datasource)}`);
        assert.ok(p.targets && p.targets.length > 0, `${p.title}: no query`);
        assert.equal(new Set(p.targets.map((t) => t.refId)).size, p.targets.length, `${p.title}: refIds repeat`);
        for (const t of p.targets) {
          assert.deepEqual(t.datasource, p.datasource, `${p.title}/${t.refId}: the query's data source is the panel's`);
          if (t.datasource.uid === QDB_UID) {
            assert.equal(t.rawQuery, true);
            assert.ok(t.format === 'time_series' || t.format === 'table', `${p.title}: format ${t.format}`);
            if (t.format === 'time_series') assert.match(t.rawSql ?? '', /\bts AS time\b/, `${p.title}: a time series query needs a time column`);
          } else {
            assert.equal(typeof t.expr, 'string');
          }
        }
        assert.ok(p.fieldConfig && Array.isArray(p.fieldConfig.overrides), `${p.title}: fieldConfig`);
      }
    });

    it(`${file}: every variable used is defined, and every link goes to a dashboard and variable that exist`, () => {
      const defined = new Set(d.templating.list.map((v) => v.name));
      for (const v of d.templating.list) {
        assert.ok([QDB_UID, PROM_UID].includes(v.datasource.uid), `variable ${v.name}: data source`);
        const q = typeof v.query === 'string' ? v.query : v.query.query;
        for (const name of variablesUsed(q)) assert.ok(BUILTIN_VARIABLES.has(name) || defined.has(name), `variable ${v.name} uses $${name}`);
      }
      for (const p of d.panels) {
        for (const t of p.targets ?? []) {
          for (const name of variablesUsed(t.rawSql ?? t.expr ?? '')) assert.ok(BUILTIN_VARIABLES.has(name) || defined.has(name), `${p.title} uses $${name}`);
        }
        for (const o of p.fieldConfig?.overrides ?? []) {
          for (const prop of o.properties.filter((x) => x.id === 'links')) {
            for (const link of prop.value as { url: string }[]) {
              const m = /^\/d\/([\w-]+)\/[\w-]+\?(.*)$/.exec(link.url);
              assert.ok(m, `${p.title}: link ${link.url}`);
              const target = dashboards.find((x) => x.d.uid === m[1])?.d;
              assert.ok(target, `${p.title}: link to a dashboard that does not exist: ${m[1]}`);
              for (const v of m[2].matchAll(/var-(\w+)=/g))
                assert.ok(
                  target.templating.list.some((x) => x.name === v[1]),
                  `${p.title}: ${m[1]} has no variable ${v[1]}`,
                );
            }
          }
        }
      }
    });
  }

  it("every SQL query reads tables and columns of schema/questdb.sql, the QuestDB console's way", () => {
    const all = [
      ...sqlTargets.map((x) => ({ label: `${x.d.uid}/${x.p.title}`, sql: x.sql })),
      ...sqlVariables.map((x) => ({ label: `${x.d.uid}/$${x.v.name}`, sql: x.sql })),
    ];
    assert.ok(all.length >= 30, `only ${all.length} SQL queries`);
    const problems: string[] = [];
    for (const { label, sql } of all) {
      const expanded = expand(sql, OFFLINE);
      assert.doesNotMatch(expanded, /\$/, `${label}: a macro or variable left: ${expanded}`);
      const { tables, unknown } = unknownNames(expanded);
      if (tables.length) problems.push(`${label}: no such table ${tables.join(', ')}`);
      if (unknown.length) problems.push(`${label}: unknown names ${unknown.join(', ')}`);
      assert.ok(!/;\s*\S/.test(sql), `${label}: one statement`);
    }
    assert.deepEqual(problems, []);
    // The ones a QuestDB user writes: time-series sampling, latest rows, time filters on ts.
    const text = all.map((x) => x.sql).join('\n');
    assert.ok((text.match(/SAMPLE BY \$__interval/g) ?? []).length >= 8);
    assert.ok((text.match(/LATEST ON ts PARTITION BY/g) ?? []).length >= 3);
    for (const x of sqlTargets) assert.match(x.sql, /\$__timeFilter\(ts\)|ts <= \$__timeTo\(\)|LATEST ON ts/, `${x.d.uid}/${x.p.title}: no time filter on ts`);
  });

  it("every SQL query parses with QuestDB's SQL parser and calls only QuestDB functions", () => {
    const known = new Set((QUESTDB_FUNCTIONS as string[]).map((f) => f.toLowerCase()));
    const all = [
      ...sqlTargets.map((x) => ({ label: `${x.d.uid}/${x.p.title}`, sql: x.sql })),
      ...sqlVariables.map((x) => ({ label: `${x.d.uid}/$${x.v.name}`, sql: x.sql })),
    ];
    const problems: string[] = [];
    for (const { label, sql } of all) {
      const expanded = expand(sql, OFFLINE);
      const r = parseToAst(expanded);
      if (r.errors.length) problems.push(`${label}: ${r.errors.map((e) => e.message).join('; ')}`);
      else assert.equal(r.ast.length, 1, `${label}: one statement`);
      const calls = [...expanded.replace(/'(?:[^']|'')*'/g, "''").matchAll(/\b([a-z_]+)\(/gi)].map((m) => m[1].toLowerCase());
      for (const f of calls) if (!known.has(f) && !['fill', 'in'].includes(f)) problems.push(`${label}: ${f}() is no QuestDB function`);
    }
    assert.deepEqual(problems, []);
    // The parser refuses what QuestDB refuses.
    assert.ok(parseToAst('SELECT ts AS time, sum(bytes) FROM traffic SAMPLE BY').errors.length > 0);
    assert.ok(parseToAst("SELECT * FROM hosts WHERE ip = '1' LATEST ON PARTITION BY node").errors.length > 0);
  });

  it('the offline check catches a wrong column (it can fail)', () => {
    assert.deepEqual(unknownNames("SELECT ts AS time, sum(byte_count) AS b FROM traffic WHERE node IN ('a')").unknown, ['byte_count']);
    assert.deepEqual(unknownNames('SELECT ip FROM flows').unknown, ['ip']);
    assert.deepEqual(unknownNames('SELECT x FROM nosuch').tables, ['nosuch']);
  });

  it('every SAMPLE BY ... FILL gives one value per column, and only plain aggregates are filled', () => {
    let checked = 0;
    for (const { d, p, sql } of sqlTargets) {
      const fill = /SAMPLE BY \S+ FILL\(([^)]*)\)/.exec(sql);
      if (!fill) continue;
      checked++;
      // The SELECT that samples: the innermost one before SAMPLE BY (a series query is wrapped in time order).
      const sampling = sql.slice(sql.lastIndexOf('SELECT', fill.index));
      const select = sampling.slice(6, sampling.search(/\bFROM\b/));
      const columns = select.split(/,(?![^(]*\))/).map((c) => c.trim());
      const aggregates = columns.filter((c) => !/^ts AS time$|AS metric$/.test(c));
      for (const a of aggregates) assert.match(a, /^(sum|count|max|min|avg)\(\w*\) AS \w+$/, `${d.uid}/${p.title}: FILL over ${a}`);
      assert.equal(fill[1].split(',').length, aggregates.length, `${d.uid}/${p.title}: FILL(${fill[1]})`);
    }
    assert.ok(checked >= 2, `${checked} queries with FILL`);
  });

  it('are what deploy/grafana/dashboards.mjs writes (the code they come from), and a hand edit is caught', () => {
    const r = spawnSync(process.execPath, [join(GRAFANA, 'dashboards.mjs'), '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const dir = mkdtempSync(join(tmpdir(), 'flowlens-grafana-'));
    try {
      cpSync(join(GRAFANA, 'dashboards.mjs'), join(dir, 'dashboards.mjs'));
      cpSync(DASHBOARDS, join(dir, 'dashboards'), { recursive: true });
      const file = join(dir, 'dashboards', 'flowlens-host.json');
      writeFileSync(file, readFileSync(file, 'utf8').replace('"title": "flowlens / Host"', '"title": "edited"'));
      const edited = spawnSync(process.execPath, [join(dir, 'dashboards.mjs'), '--check'], { encoding: 'utf8' });
      assert.equal(edited.status, 1);
      assert.match(edited.stderr, /flowlens-host\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every PromQL query names metrics that flowlens exports', () => {
    const exported = new Set<string>();
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (e.name.endsWith('.ts')) for (const m of readFileSync(join(dir, e.name), 'utf8').matchAll(/'(flowlens_[a-z_]+)'/g)) exported.add(m[1]);
      }
    };
    walk(join(REPO_ROOT, 'src'));
    const exprs = dashboards.flatMap(({ d }) => [
      ...d.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => (t.expr ? [t.expr] : []))),
      ...d.templating.list.filter((v) => v.datasource.uid === PROM_UID).map((v) => (v.query as { query: string }).query),
    ]);
    assert.ok(exprs.length >= 12);
    for (const e of exprs) for (const m of e.matchAll(/\bflowlens_[a-z_]+/g)) assert.ok(exported.has(m[0]), `${m[0]} is not a metric of flowlens (${e})`);
  });
});

/** FLOWLENS_QUESTDB_PG, or QuestDB's default PostgreSQL wire URL on the host of FLOWLENS_QUESTDB ('http::addr=HOST:9000;' or http://HOST:9000). */
function questdbPgUrl(): string | undefined {
  if (process.env.FLOWLENS_QUESTDB_PG) return process.env.FLOWLENS_QUESTDB_PG;
  const ilp = process.env.FLOWLENS_QUESTDB;
  const host = ilp && (/addr=([^:;]+)/.exec(ilp)?.[1] ?? /^https?:\/\/([^:/]+)/.exec(ilp)?.[1]);
  return host ? `postgres://admin:quest@${host}:8812/qdb` : undefined;
}
const url = questdbPgUrl();

describe('the dashboards’ SQL on QuestDB', {
  skip: url ? false : 'set FLOWLENS_QUESTDB or FLOWLENS_QUESTDB_PG (QuestDB 8.2.3+) to run every dashboard query there',
}, () => {
  let client: pg.Client;
  const now = new Date();
  const live: Expansion = { from: new Date(now.getTime() - 7 * 86_400_000), to: now, intervalMs: 3_600_000, values: {} };

  before(async () => {
    client = new pg.Client({ connectionString: url });
    await client.connect();
    for (const s of parseSchemaSql(schemaSql).filter((x) => /^CREATE TABLE IF NOT EXISTS/i.test(x))) await client.query(s);
    // Variables first, as Grafana does: the panels then run with their values (or a stand-in when a table is empty).
    for (const { v, sql } of sqlVariables) {
      const r = await client.query(expand(sql, live));
      const values = r.rows.map((row) => String(Object.values(row)[0]));
      live.values[v.name] = values.length ? values : [v.name === 'host' ? '10.0.0.5' : 'none'];
    }
  });
  after(async () => {
    await client?.end();
  });

  for (const { d, p, t, sql } of sqlTargets) {
    it(`${d.uid}/${p.title}`, async () => {
      const r = await client.query(expand(sql, live));
      const names = r.fields.map((f) => f.name);
      if (t.format === 'time_series') {
        assert.equal(names[0], 'time', `columns ${names}`);
        assert.ok(names.length >= 2, `columns ${names}`);
      }
      for (const o of p.fieldConfig?.overrides ?? []) {
        if (o.matcher.id === 'byName') assert.ok(names.includes(o.matcher.options), `${p.title}: no column ${o.matcher.options} (has ${names})`);
      }
      const xField = (p as { options?: { xField?: string } }).options?.xField;
      if (xField) assert.ok(names.includes(xField), `${p.title}: no column ${xField} (has ${names})`);
    });
  }
});
