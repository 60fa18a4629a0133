/**
 * `flowlens export flows` as analysts expect it (issue 21): the API's field names and nulls plus
 * `duration` and total `bytes`; and export while a real `flowlens serve` holds the DuckDB file:
 * the direct export says in one line that the file is locked and names --server, and
 * `--server URL` (or FLOWLENS_EXPORT_SERVER, token from --token / FLOWLENS_TOKEN) prints exactly
 * what the direct export printed before the server started.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE, gqlData, sampleCapture } from './api-helpers.js';
import { FLOW_FIELDS, parseJsonl, runCli, stackTraceLines } from './helpers/cli.js';
import { startServe, type ServeProcess } from './helpers/browser.js';

const TOKEN = 'export-test-token-0123456789abcdef';
const iso = (sec: number) => new Date((BASE + sec) * 1000).toISOString();

describe('export flows: the API form, and through a running serve', () => {
  let dir: string;
  let db: string;
  let serve: ServeProcess | undefined;
  /** What the direct export printed before the server took the file, per argument list. */
  const direct = new Map<string, string>();
  const CASES: string[][] = [
    [],
    ['--format', 'csv'],
    ['--format', 'zeek'],
    ['--from', iso(60), '--to', iso(240), '--filter', 'transport=udp'],
    ['--filter', 'host=10.0.0.2 port=53', '--format', 'csv'],
    ['--limit', '3'],
  ];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-export-server-'));
    db = join(dir, 'flows.duckdb');
    const sample = sampleCapture(join(dir, 'sample.pcap'));
    const r = await runCli(['import', '--db', db, '--no-progress', sample.path]);
    assert.equal(r.code, 0, r.stderr);
    for (const args of CASES) {
      const e = await runCli(['export', 'flows', '--db', db, ...args]);
      assert.equal(e.code, 0, e.stderr);
      direct.set(args.join(' '), e.stdout);
    }
  });
  after(async () => {
    await serve?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints the API's field names and nulls, duration and total bytes", async () => {
    const flows = parseJsonl<Record<string, unknown>>(direct.get('') ?? '');
    assert.ok(flows.length > 5, `flows: ${flows.length}`);
    for (const f of flows) {
      assert.deepEqual(Object.keys(f), FLOW_FIELDS, 'the fields, in order');
      assert.match(String(f.id), /^[0-9a-f]{16}$/);
      assert.equal(f.bytes, (f.clientBytes as number) + (f.serverBytes as number));
      const span = Date.parse(String(f.lastSeen)) - Date.parse(String(f.firstSeen));
      assert.ok(Math.abs((f.duration as number) / 1000 - span) < 1, `duration ${f.duration} µs against ${span} ms`);
      assert.equal(f.node, null, "no --node at import: null, as the API says, not ''");
      if (f.transport !== 'tcp') assert.equal(f.tcpState, null, 'no TCP state for other transports');
    }
    assert.ok(
      flows.some((f) => (f.duration as number) > 0),
      'some flow lasts',
    );
    const csv = (direct.get('--format csv') ?? '').trimEnd().split('\n');
    assert.equal(csv[0], FLOW_FIELDS.join(','));
    assert.equal(csv.length, flows.length + 1);
  });

  it('while serve holds the file: one line naming --server; --server prints what the direct export did', async () => {
    serve = await startServe(dir, ['--token', TOKEN]);
    assert.equal(serve.db, db);

    const locked = await runCli(['export', 'flows', '--db', db]);
    assert.equal(locked.code, 1);
    assert.equal(locked.stdout, '');
    assert.deepEqual(stackTraceLines(locked.stderr), []);
    const lines = locked.stderr.trim().split('\n');
    assert.equal(lines.length, 1, locked.stderr);
    assert.match(lines[0], /is locked by .*--server URL \(FLOWLENS_EXPORT_SERVER\)/);

    for (const args of CASES) {
      const r = await runCli(['export', 'flows', '--server', serve.base, '--token', TOKEN, ...args]);
      assert.equal(r.code, 0, r.stderr);
      const want = direct.get(args.join(' ')) ?? '';
      if (args.length === 0 || (args[0] === '--format' && args.length === 2)) {
        // The direct export without a selection lists flows in the store's order; through the
        // API they come earliest first: the same lines (the header first), perhaps in another order.
        // Zeek's #open and #close lines are the time of writing.
        const sorted = (t: string) => {
          const l = t
            .trimEnd()
            .split('\n')
            .filter((x) => !/^#(open|close)\t/.test(x));
          return args[1] === 'csv' ? [l[0], ...l.slice(1).sort()] : l.sort();
        };
        assert.deepEqual(sorted(r.stdout), sorted(want), `export flows ${args.join(' ')}`);
      } else assert.equal(r.stdout, want, `export flows ${args.join(' ')}`);
    }

    // The variables, and the flows equal to what the API itself answers.
    const viaEnv = await runCli(['export', 'flows', '--filter', 'app=DNS'], { env: { FLOWLENS_EXPORT_SERVER: serve.base, FLOWLENS_TOKEN: TOKEN } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const exported = parseJsonl<Record<string, unknown>>(viaEnv.stdout);
    const api = await gqlData<{ flows: { edges: { node: Record<string, unknown> }[] } }>(
      `${serve.base}/graphql`,
      `{ flows(from: "${iso(-60)}", to: "${iso(3600)}", filter: { app: "DNS" }, first: 1000) { edges { node { ${FLOW_FIELDS.join(' ')} } } } }`,
      {},
      TOKEN,
    );
    assert.ok(exported.length > 0);
    assert.deepEqual(
      exported,
      api.flows.edges.map((e) => e.node),
    );
  });

  it('through the server: a wrong token, no server, hosts: one clear line each', async () => {
    assert.ok(serve, 'the server of the previous test');
    const bad = await runCli(['export', 'flows', '--server', serve.base, '--token', 'wrong']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^flowlens export: the server refused the token/);
    const none = await runCli(['export', 'flows', '--server', serve.base]);
    assert.equal(none.code, 1, 'deny by default: no token, no flows');
    assert.equal(none.stdout, '');
    const hosts = await runCli(['export', 'hosts', '--server', serve.base, '--token', TOKEN]);
    assert.equal(hosts.code, 2);
    assert.match(hosts.stderr, /--server exports flows only/);
    await serve.stop();
    const down = await runCli(['export', 'flows', '--server', serve.base, '--token', TOKEN]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^flowlens export: cannot reach http:\/\/127\.0\.0\.1:\d+\/graphql: ECONNREFUSED\n$/);
  });
});
