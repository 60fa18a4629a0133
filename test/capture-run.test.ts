// @runs-alone (test/run.ts): a live capture whose counts a drop under load would change
/**
 * `flowlens run` (what `flowlens` alone does): live capture plus the API in one process, the
 * embedded store shared. Runs inside a namespace on a veth; the API is queried from inside it.
 * Needs root; skips with a message otherwise.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ARGV, REPO_ROOT } from './helpers/cli.js';
import { collect, createNsPair, missingTool, netnsUnavailable, sleep, waitForOutput, type NsPair } from './helpers/netns.js';

const unavailable = netnsUnavailable() ?? (missingTool('curl', 'python3') ? `needs ${missingTool('curl', 'python3')}` : null);
if (unavailable) console.log(`# capture-run: skipped: ${unavailable}`);

describe('flowlens run: capture and API in one process', { skip: unavailable ?? false }, () => {
  let net: NsPair;
  let dir: string;
  const env = { ...process.env, FLOWLENS_LOG_FORMAT: 'json' };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-run-'));
    net = createNsPair();
    net.spawnIn(net.nsB, ['python3', '-m', 'http.server', '8080', '--bind', net.ipsB[0]], { cwd: dir });
  });
  after(() => {
    net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('without a default route and without -i: one clear message, exit 2', () => {
    const r = net.exec(net.nsA, [process.execPath, ...CLI_ARGV, '--db', join(dir, 'none.duckdb')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^flowlens: no default route to pick an interface from: pass -i IFACE\n$/);
  });

  test('no sub-command: captures on the default route interface; captureStatus, flows and /metrics are served', async () => {
    spawnSync('ip', ['-n', net.nsA, 'route', 'add', 'default', 'via', net.ipsB[0]]);
    // The API flags are serve's: the CORS origin comes from its environment variable here.
    const child = net.spawnIn(net.nsA, [process.execPath, ...CLI_ARGV, '--port', '0', '--db', join(dir, 'run.duckdb'), '--interval', '1'], {
      cwd: REPO_ROOT,
      env: { ...env, FLOWLENS_CORS_ORIGIN: 'http://console.test' },
    });
    const out = collect(child);
    try {
      const log = await waitForOutput(child, /API at/);
      const url = /"url":"([^"]+)"/.exec(log.split('\n').find((l) => l.includes('API at'))!)![1];
      assert.match(log, new RegExp(`capturing on ${net.vethA}`));
      for (let i = 0; i < 2; i++) {
        const r = net.exec(net.nsA, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${net.ipsB[0]}:8080/`]);
        assert.equal(r.stdout, '200');
      }
      const gql = (query: string) => {
        const r = net.exec(net.nsA, ['curl', '-s', '-H', 'content-type: application/json', '--data', JSON.stringify({ query }), url]);
        return JSON.parse(r.stdout) as { data: Record<string, unknown>; errors?: unknown };
      };
      let status: { interfaces: { name: string; packets: number; drops: number }[]; packets: number } | undefined;
      const end = Date.now() + 20_000;
      // The drop counters are read every 5 s.
      while (Date.now() < end) {
        status = gql('{ captureStatus { interfaces { name packets drops } packets drops } }').data.captureStatus as typeof status;
        if (status && status.interfaces[0]?.packets > 0) break;
        await sleep(500);
      }
      assert.equal(status!.interfaces[0].name, net.vethA);
      assert.ok(status!.interfaces[0].packets >= 20, JSON.stringify(status));
      assert.equal(status!.interfaces[0].drops, 0);
      const preflight = net.exec(net.nsA, [
        'curl',
        '-s',
        '-i',
        '-X',
        'OPTIONS',
        '-H',
        'Origin: http://console.test',
        '-H',
        'Access-Control-Request-Method: POST',
        url,
      ]).stdout;
      assert.match(preflight, /^access-control-allow-origin: http:\/\/console\.test\r?$/im);
      const metrics = net.exec(net.nsA, ['curl', '-s', url.replace('/graphql', '/metrics')]).stdout;
      assert.match(metrics, new RegExp(`flowlens_capture_packets_total\\{iface="${net.vethA}",node=""\\} [1-9]`));
      assert.match(metrics, /flowlens_capture_drops_total\{iface="[^"]+",node="",where="kernel"\} 0/);
    } finally {
      child.kill('SIGINT');
      const { code } = await out.done;
      assert.equal(code, 0, out.stderr());
    }
    // The flows were written at shutdown into the store the API used.
    const r = spawnSync(process.execPath, [...CLI_ARGV, 'export', 'flows', '--db', join(dir, 'run.duckdb')], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    const flows = r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { serverPort: number; iface: string });
    assert.equal(flows.filter((f) => f.serverPort === 8080).length, 2);
  });
});
