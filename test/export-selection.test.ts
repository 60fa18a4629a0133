/**
 * `flowlens export` with a selection (issue 21): --from/--to, --filter (the API's FlowFilter as
 * key=value terms), --limit, and their variables, through the real CLI over a DuckDB store that
 * `flowlens import` filled; bad values and combinations exit 2 with the reason.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE, sampleCapture, type SampleFlow } from './api-helpers.js';
import { parseJsonl, runCli } from './helpers/cli.js';

const iso = (sec: number) => new Date((BASE + sec) * 1000).toISOString();

describe('export with --from, --to, --filter, --limit', () => {
  let dir: string;
  let db: string;
  let flows: SampleFlow[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-export-sel-'));
    db = join(dir, 'flows.duckdb');
    const sample = sampleCapture(join(dir, 'sample.pcap'));
    flows = sample.flows;
    const r = await runCli(['import', '--db', db, '--no-progress', sample.path]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const exportFlows = async (args: string[], env: Record<string, string> = {}) => {
    const r = await runCli(['export', 'flows', '--db', db, ...args], { env });
    assert.equal(r.code, 0, r.stderr);
    return parseJsonl<{ flowId: string; firstSeen: string; clientIp: string; serverPort: number; transport: string }>(r.stdout);
  };

  it('a range holds the flows with traffic in it, earliest first', async () => {
    const all = await exportFlows([]);
    assert.equal(all.length, flows.length);
    // Segments start at their first packet: [60 s, 120 s) holds the flows that start in it.
    const want = flows.filter((f) => f.start >= 60 && f.start < 120).length;
    const some = await exportFlows(['--from', iso(60), '--to', iso(120)]);
    assert.equal(some.length, want);
    assert.ok(
      some.every((f, i) => i === 0 || some[i - 1].firstSeen <= f.firstSeen),
      'earliest first',
    );
    assert.deepEqual(await exportFlows(['--to', iso(0)]), [], 'nothing before the capture');
    assert.equal((await exportFlows(['--from', String((BASE + 60) * 1_000_000)])).length, flows.filter((f) => f.start >= 60).length, 'µs since the epoch too');
  });

  it('a filter and a limit, from flags or variables', async () => {
    const dns = await exportFlows(['--filter', 'host=10.0.0.2 port=53']);
    assert.deepEqual(
      dns.map((f) => [f.clientIp, f.serverPort]),
      Array(3).fill(['10.0.0.2', 53]),
    );
    const two = await exportFlows(['--filter', 'transport=tcp', '--limit', '2', '--format', 'jsonl']);
    assert.equal(two.length, 2);
    assert.ok(two.every((f) => f.transport === 'tcp'));
    const viaEnv = await exportFlows([], { FLOWLENS_EXPORT_FILTER: 'transport=udp', FLOWLENS_EXPORT_LIMIT: '1' });
    assert.deepEqual(
      viaEnv.map((f) => f.transport),
      ['udp'],
    );
    const csv = await runCli(['export', 'flows', '--db', db, '--format', 'csv', '--filter', 'app=DNS']);
    assert.equal(csv.code, 0, csv.stderr);
    assert.equal(csv.stdout.trimEnd().split('\n').length, 1 + 3, 'header and the 3 DNS flows');
  });

  it('bad values and combinations: exit 2 with the reason, no stack', async () => {
    for (const [args, message] of [
      [['flows', '--from', 'yesterday'], /--from: not a time/],
      [['flows', '--filter', 'hots=10.0.0.1'], /bad filter term 'hots=10.0.0.1'/],
      [['flows', '--filter', 'host=not-an-ip'], /not an IP address/],
      [['flows', '--limit', '0'], /positive integer/],
      [['flows', '--from', iso(100), '--to', iso(50)], /--from must be before --to/],
      [['hosts', '--limit', '5'], /export hosts takes no --from/],
      [['anomalies', '--filter', 'port=53'], /--filter selects flows/],
    ] as [string[], RegExp][]) {
      const r = await runCli(['export', ...args, '--db', db]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      // One line saying why (commander adds its '(run with --help for usage)' to a bad flag's).
      assert.match(r.stderr.trim().split('\n')[0], message);
      assert.ok(r.stderr.trim().split('\n').length <= 2 && !/\n\s+at /.test(r.stderr), `no stack: ${r.stderr}`);
      assert.equal(r.stdout, '');
    }
  });

  it('anomalies take a range and a limit', async () => {
    const r = await runCli(['export', 'anomalies', '--db', db, '--from', iso(0), '--limit', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(parseJsonl(r.stdout).length <= 1);
  });
});
