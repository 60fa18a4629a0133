// @runs-alone (test/run.ts): captures on lo and queries its drop counter
// deploy/prometheus for real: promtool checks the configurations and runs the alert rules' unit
// tests, then Debian's Prometheus, started on loopback with the compose scrape configuration
// (its addresses, token file and intervals rewritten for this run), scrapes a real `flowlens serve`
// and a real `flowlens capture -i lo`: both targets are up with the bearer token, flowlens's metrics
// come back, the alert rules load and evaluate, and every query of the capture-health dashboard runs.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from './helpers/cli.js';
import { DEPLOY, readYaml, startCli, stopChild, waitFor, yamlUnavailable, type Proc } from './helpers/deploy.js';
import { missingTool } from './helpers/netns.js';

const PROM = join(DEPLOY, 'prometheus');
const promtoolMissing = missingTool('promtool') ? 'needs promtool (apt-get install prometheus)' : yamlUnavailable();

function promtool(args: string[], cwd = PROM) {
  return spawnSync('promtool', args, { cwd, encoding: 'utf8' });
}

interface RuleFile {
  groups: { name: string; rules: { alert: string; expr: string }[] }[];
}
interface RuleTests {
  rule_files: string[];
  tests: { name: string; alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
}

describe('deploy/prometheus with promtool', { skip: promtoolMissing ?? false }, () => {
  it('the compose configuration parses (its token file exists only in the stack: syntax only here)', () => {
    const r = promtool(['check', 'config', '--syntax-only', 'prometheus.yml']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('the alert rules pass check rules', () => {
    const r = promtool(['check', 'rules', 'flowlens-alerts.yml']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS: 9 rules found/);
  });

  it('the unit tests pass, and every alert has one that fires and one that does not', () => {
    const r = promtool(['test', 'rules', 'flowlens-alerts.test.yml']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /SUCCESS/);
    const rules = readYaml<RuleFile>(join(PROM, 'flowlens-alerts.yml'));
    const tests = readYaml<RuleTests>(join(PROM, 'flowlens-alerts.test.yml'));
    assert.deepEqual(tests.rule_files, ['flowlens-alerts.yml']);
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    const alerts = rules.groups.flatMap((g) => g.rules.map((rule) => rule.alert));
    assert.equal(alerts.length, 9);
    for (const alert of alerts) {
      assert.ok(
        cases.some((c) => c.alertname === alert && c.exp_alerts.length > 0),
        `${alert}: no test where it fires`,
      );
      assert.ok(
        cases.some((c) => c.alertname === alert && c.exp_alerts.length === 0),
        `${alert}: no test where it stays quiet`,
      );
    }
  });

  it('a broken rule fails the unit tests (they can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowlens-prom-'));
    try {
      // The drops threshold raised past the 20 frames/s the test feeds: the firing case must fail.
      const rules = readFileSync(join(PROM, 'flowlens-alerts.yml'), 'utf8');
      const broken = rules.replace('(rate(flowlens_capture_drops_total{iface!=""}[5m])) > 10', '(rate(flowlens_capture_drops_total{iface!=""}[5m])) > 100');
      assert.notEqual(broken, rules, 'the drops rule changed: update this test');
      writeFileSync(join(dir, 'flowlens-alerts.yml'), broken);
      copyFileSync(join(PROM, 'flowlens-alerts.test.yml'), join(dir, 'flowlens-alerts.test.yml'));
      const r = promtool(['test', 'rules', 'flowlens-alerts.test.yml'], dir);
      assert.notEqual(r.status, 0);
      assert.match(r.stdout + r.stderr, /FlowlensCaptureDrops/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const liveSkip =
  (process.getuid?.() !== 0 ? 'needs root (live capture on lo)' : null) ??
  (missingTool('prometheus', 'promtool') ? 'needs prometheus and promtool (apt-get install prometheus)' : null) ??
  yamlUnavailable();

interface PromResponse<T> {
  status: string;
  data: T;
  error?: string;
}
interface Target {
  labels: Record<string, string>;
  health: string;
  lastError: string;
}

describe('Prometheus scrapes a real flowlens serve and capture with the compose configuration', { skip: liveSkip ?? false, timeout: 90_000 }, () => {
  const token = 'deploy-test-token-0123456789abcdef';
  let dir = '';
  let serve: Proc | undefined;
  let capture: Proc | undefined;
  let prometheus: Proc | undefined;
  let promBase = '';
  let apiPort = 0;
  let metricsPort = 0;
  let traffic: NodeJS.Timeout | undefined;

  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${promBase}${path}`);
    const body = (await res.json()) as PromResponse<T>;
    assert.equal(body.status, 'success', `${path}: ${body.error}`);
    return body.data;
  };
  const query = (q: string) =>
    api<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(q)}`);
  const output = () => `--- serve\n${serve?.output()}\n--- capture\n${capture?.output()}\n--- prometheus\n${prometheus?.output().slice(-3000)}`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-prom-live-'));
    writeFileSync(join(dir, 'api-token'), `${token}\n`);
    [apiPort, metricsPort] = [await freePort(), await freePort()];
    const promPort = await freePort();
    promBase = `http://127.0.0.1:${promPort}`;

    serve = startCli(['serve', '--port', String(apiPort), '--db', join(dir, 'api.duckdb')], { FLOWLENS_TOKEN: token });
    capture = startCli(
      ['capture', '--interface', 'lo', '--db', join(dir, 'capture.duckdb'), '--interval', '1', '--metrics-listen', `127.0.0.1:${metricsPort}`],
      {
        FLOWLENS_METRICS_TOKEN: token,
        FLOWLENS_NODE: 'deploy-test',
      },
    );

    // The compose configuration, pointed at this run's processes; each replaced text must be there.
    let config = readFileSync(join(PROM, 'prometheus.yml'), 'utf8');
    for (const [from, to] of [
      ['scrape_interval: 15s', 'scrape_interval: 1s'],
      ['evaluation_interval: 15s', 'evaluation_interval: 1s'],
      ['"127.0.0.1:4000"', `"127.0.0.1:${apiPort}"`],
      ['"127.0.0.1:9464"', `"127.0.0.1:${metricsPort}"`],
      ['"127.0.0.1:9090"', `"127.0.0.1:${promPort}"`],
    ]) {
      assert.ok(config.includes(from), `prometheus.yml no longer has ${from}: update this test`);
      config = config.replace(from, to);
    }
    assert.equal(config.split('/run/flowlens/api-token').length, 3, 'both flowlens jobs read the API token file');
    config = config.replaceAll('/run/flowlens/api-token', join(dir, 'api-token'));
    writeFileSync(join(dir, 'prometheus.yml'), config);
    copyFileSync(join(PROM, 'flowlens-alerts.yml'), join(dir, 'flowlens-alerts.yml'));

    const check = promtool(['check', 'config', 'prometheus.yml'], dir);
    assert.equal(check.status, 0, `promtool check config (with its files): ${check.stdout}${check.stderr}`);

    prometheus = startPrometheus(dir, promPort);
    // Loopback traffic for the capture to count.
    traffic = setInterval(() => void fetch(`http://127.0.0.1:${apiPort}/health`).catch(() => {}), 200);
  });

  after(async () => {
    if (traffic) clearInterval(traffic);
    await Promise.all([prometheus?.stop(), capture?.stop(), serve?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reports both flowlens targets up, scraped with the token', async () => {
    const targets = await waitFor(
      async () => {
        const t = (await api<{ activeTargets: Target[] }>('/api/v1/targets')).activeTargets;
        const byJob = (job: string) => t.find((x) => x.labels.job === job);
        return byJob('flowlens-api')?.health === 'up' && byJob('flowlens-capture')?.health === 'up' ? t : undefined;
      },
      45_000,
      output,
    );
    assert.deepEqual(targets.map((t) => t.labels.job).sort(), ['flowlens-api', 'flowlens-capture', 'prometheus']);
    assert.equal(targets.find((t) => t.labels.job === 'flowlens-capture')?.labels.instance, `127.0.0.1:${metricsPort}`);
  });

  it("returns flowlens's metrics: packets counted on lo, the stores up", async () => {
    const packets = await waitFor(
      async () => {
        const r = await query('flowlens_capture_packets_total{job="flowlens-capture",iface="lo",node="deploy-test"}');
        return r.result.length === 1 && Number(r.result[0].value[1]) > 0 ? Number(r.result[0].value[1]) : undefined;
      },
      30_000,
      output,
    );
    assert.ok(packets > 0);
    const up = await query('flowlens_store_up');
    assert.deepEqual(up.result.map((s) => [s.metric.job, s.value[1]]).sort(), [
      ['flowlens-api', '1'],
      ['flowlens-capture', '1'],
    ]);
    const drops = await query('flowlens_capture_drops_total{iface="lo"}');
    assert.deepEqual(drops.result.map((s) => s.metric.where).sort(), ['interface', 'kernel', 'ring']);
    const writes = await waitFor(
      async () => {
        const r = await query('flowlens_store_writes_total{job="flowlens-capture",result="ok"}');
        return r.result.length === 1 && Number(r.result[0].value[1]) > 0 ? r : undefined;
      },
      15_000,
      output,
    );
    assert.ok(writes);
    const ring = await query('flowlens_capture_ring_fill_ratio{job="flowlens-capture",node="deploy-test"}');
    assert.ok(ring.result.length >= 1, 'one ring fill series per decode worker');
    for (const s of ring.result) assert.ok(Number(s.value[1]) >= 0 && Number(s.value[1]) <= 1, `ring fill ${s.value[1]}`);
    const uptime = await query('flowlens_uptime_seconds{job="flowlens-api"}');
    assert.equal(uptime.result.length, 1, 'an API metric comes back');
  });

  it('loads the alert rules, evaluates them without error, and none fires for a healthy pair', async () => {
    const groups = await waitFor(
      async () => {
        const g = (await api<{ groups: { name: string; rules: { name: string; health: string; state: string; lastError?: string }[] }[] }>('/api/v1/rules'))
          .groups;
        return g.length === 4 && g.every((x) => x.rules.every((r) => r.health === 'ok')) ? g : undefined;
      },
      20_000,
      output,
    );
    const rules = groups.flatMap((g) => g.rules);
    assert.equal(rules.length, 9);
    assert.deepEqual(
      rules.filter((r) => r.state === 'firing'),
      [],
    );
  });

  it('runs every query of the capture-health dashboard, and the capture ones return series', async () => {
    const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'dashboards', 'flowlens-capture-health.json'), 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
    assert.ok(exprs.length >= 12, `only ${exprs.length} queries`);
    // Wait for two samples of the capture counters, so that rate() has something to say.
    await waitFor(
      async () => (Number((await query('count_over_time(flowlens_capture_packets_total{iface="lo"}[1m])')).result[0]?.value[1] ?? 0) > 2 ? true : undefined),
      20_000,
      output,
    );
    for (const { title, expr } of exprs) {
      const q = expr.replaceAll('$__rate_interval', '1m').replaceAll('$node', '.*');
      assert.doesNotMatch(q, /\$/, `${title}: a variable the test does not fill: ${q}`);
      const r = await query(q);
      if (/flowlens_capture_|flowlens_store_|up\{/.test(q)) assert.ok(r.result.length > 0, `${title}: no series for ${q}`);
    }
  });
});

function startPrometheus(dir: string, port: number): Proc {
  const args = [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`];
  return startTool('prometheus', args);
}

function startTool(cmd: string, args: string[]): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  return { child, output: () => out, stop: () => stopChild(child) };
}
