// @runs-alone (test/run.ts): live capture whose counts a drop under load would change
/**
 * Enrichment in a live capture, where flows are made in decode worker threads: `flowlens capture`
 * in namespace A with --workers 2, --networks and --geo-db, real ping and UDP between the two
 * namespaces; the stored flows carry each end's named network, and the Community ID and Zeek
 * fields (conn_state, history) are filled in the workers too. Needs root; skips otherwise.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, CLI_ARGV } from './helpers/cli.js';
import { buildMmdb } from './helpers/mmdb-writer.js';
import { collect, createNsPair, missingTool, netnsUnavailable, sleep, waitForOutput, type NsPair } from './helpers/netns.js';

const unavailable = netnsUnavailable() ?? (missingTool('ping', 'python3') ? `needs ${missingTool('ping', 'python3')}` : null);
if (unavailable) console.log(`# enrich-live: skipped: ${unavailable}`);

describe('enrichment in live capture', { skip: unavailable ?? undefined }, () => {
  let net: NsPair;
  let dir: string;
  before(() => {
    net = createNsPair();
    dir = mkdtempSync(join(tmpdir(), 'flowlens-enrich-live-'));
  });
  after(() => {
    net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('flows made by the capture workers carry named networks, the Community ID and Zeek fields', async () => {
    const nets = join(dir, 'nets.json');
    writeFileSync(
      nets,
      JSON.stringify([
        { prefix: `${net.ipA}/32`, name: 'sensor', role: 'inside' },
        { prefix: `${net.ipsB[0].split('.').slice(0, 3).join('.')}.0/24`, name: 'lab', role: 'inside' },
      ]),
    );
    const geoDb = join(dir, 'geo.mmdb');
    writeFileSync(geoDb, buildMmdb('GeoLite2-Country', [['8.8.8.0/24', { country: { iso_code: 'US' } }]]));
    const db = join(dir, 'live.duckdb');
    const child = net.spawnIn(
      net.nsA,
      [process.execPath, ...CLI_ARGV, 'capture', '-i', net.vethA, '--workers', '2', '--db', db, '--json', '--networks', nets, '--geo-db', geoDb],
      { cwd: REPO_ROOT, env: { ...process.env, FLOWLENS_LOG_FORMAT: 'json' } },
    );
    const out = collect(child);
    await waitForOutput(child, /decode worker/);
    await sleep(300);
    assert.equal(net.exec(net.nsA, ['ping', '-c', '3', '-i', '0.2', net.ipsB[0]]).status, 0, 'ping B from A');
    const udp = `import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(b'x'*100, ('${net.ipsB[0]}', 9999)) for _ in range(3)]`;
    assert.equal(net.exec(net.nsA, ['python3', '-c', udp]).status, 0);
    await sleep(500);
    child.kill('SIGINT');
    const { code } = await out.done;
    assert.equal(code, 0, out.stderr());

    const r = spawnSync(process.execPath, [...CLI_ARGV, 'export', 'flows', '--db', db], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const flows = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string | number>);
    const ping = flows.find((f) => f.transport === 'icmp' && f.clientIp === net.ipA);
    assert.ok(ping, `a ping flow among ${r.stdout}`);
    assert.equal(ping.clientNetwork, 'sensor');
    assert.equal(ping.serverNetwork, 'lab');
    assert.match(String(ping.communityId), /^1:[A-Za-z0-9+/]{27}=$/);
    assert.equal(ping.connState, 'OTH');
    const u = flows.find((f) => f.transport === 'udp' && f.serverPort === 9999);
    assert.ok(u, 'the UDP flow');
    assert.deepEqual([u.clientNetwork, u.serverNetwork, u.connState, u.history, u.clientPayloadBytes], ['sensor', 'lab', 'S0', 'D', 300]);
  });
});
