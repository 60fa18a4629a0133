// @runs-alone (test/run.ts): counts the packets on lo, where other suites' traffic would enter
/**
 * The interface packet counter on `lo` (issue 21): 60 pings are 120 packets, and captureStatus
 * said 240. On Linux a frame sent on loopback reaches a packet socket twice (outgoing and
 * incoming); libpcap drops the outgoing copy, but the kernel's ps_recv counts both. The counter
 * is now the frames libpcap delivered. `flowlens run -i lo -f icmp` in a fresh namespace (nothing
 * else on its lo matches icmp); captureStatus read with curl inside it. Needs root.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ARGV, REPO_ROOT } from './helpers/cli.js';
import { collect, createNsPair, missingTool, netnsUnavailable, sleep, waitForOutput, type NsPair } from './helpers/netns.js';

const unavailable = netnsUnavailable() ?? (missingTool('curl', 'ping') ? `needs ${missingTool('curl', 'ping')}` : null);
if (unavailable) console.log(`# capture-lo-count: skipped: ${unavailable}`);

describe('capture on lo: the packet counter', { skip: unavailable ?? false }, () => {
  let net: NsPair;
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-lo-'));
    net = createNsPair();
  });
  after(() => {
    net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('60 pings on lo count 120 packets, not 240', async () => {
    const run = net.spawnIn(net.nsA, [process.execPath, ...CLI_ARGV, 'run', '-i', 'lo', '-f', 'icmp', '--port', '0', '--db', join(dir, 'lo.duckdb')], {
      cwd: REPO_ROOT,
      env: { ...process.env, FLOWLENS_LOG_FORMAT: 'json' },
    });
    const out = collect(run);
    try {
      const log = await waitForOutput(run, /API at/);
      const url = /"url":"([^"]+)"/.exec(log.split('\n').find((l) => l.includes('API at')) ?? '')?.[1];
      assert.ok(url, log);
      const ping = net.exec(net.nsA, ['ping', '-n', '-q', '-c', '60', '-i', '0.01', '127.0.0.1']);
      assert.equal(ping.status, 0, ping.stderr);
      assert.match(ping.stdout, /60 packets transmitted, 60 received/);
      const query = JSON.stringify({ query: '{ captureStatus { interfaces { name packets drops } } }' });
      let iface: { name: string; packets: number; drops: number } | undefined;
      // The counters are read every few seconds: wait until they have caught up, then a little more.
      const end = Date.now() + 30_000;
      while (Date.now() < end) {
        const r = net.exec(net.nsA, ['curl', '-s', '-H', 'content-type: application/json', '--data', query, url]);
        iface = JSON.parse(r.stdout).data?.captureStatus?.interfaces?.[0];
        if (iface && iface.packets >= 120) break;
        await sleep(500);
      }
      await sleep(6000);
      const r = net.exec(net.nsA, ['curl', '-s', '-H', 'content-type: application/json', '--data', query, url]);
      iface = JSON.parse(r.stdout).data.captureStatus.interfaces[0];
      assert.deepEqual(iface, { name: 'lo', packets: 120, drops: 0 });
    } finally {
      run.kill('SIGINT');
      await out.done;
    }
  });
});
