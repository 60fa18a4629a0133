// @runs-alone (test/run.ts): restarts nats-server and times the reconnection
/**
 * The fleet over NATS.
 * - NatsBus against its own nats-server: events flow, the server goes away (a log line, events
 *   dropped meanwhile, no crash), comes back (a log line) and events resume.
 * - Two capture nodes, each inside its own namespace pair, publish to one NATS server with
 *   distinct --node names; a NatsBus subscriber and `flowlens serve --bus` both hear from both.
 *   The capture processes reach NATS at 127.0.0.1:4222 inside their namespace through a small
 *   relay over a unix socket (the filesystem is shared across network namespaces).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsBus } from '../src/bus/nats.js';
import type { FlowEvent, TrafficEvent } from '../src/bus/types.js';
import { flowEvent, memoryLogger, until } from './helpers/bus-events.js';
import { REPO_ROOT, freePort, CLI_ARGV } from './helpers/cli.js';
import { collect, createNsPair, missingTool, netnsUnavailable, sleep, waitForOutput, type NsPair } from './helpers/netns.js';

const NATS_SERVER = ['/usr/sbin/nats-server', 'nats-server'].find((p) => spawnSync(p, ['--version']).status === 0);
if (!NATS_SERVER) console.log('# fleet-nats: skipped: needs nats-server (Debian package nats-server)');

async function startNatsServer(port: number): Promise<ChildProcess> {
  const child = spawn(NATS_SERVER!, ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForOutput(child, /Server is ready/);
  return child;
}

describe('NatsBus', { skip: NATS_SERVER ? false : 'needs nats-server' }, () => {
  test('reconnects forever with a log line each way; events resume', async () => {
    const port = await freePort();
    let server = await startNatsServer(port);
    const pub = memoryLogger();
    const sub = memoryLogger();
    const publisher = new NatsBus({ url: `nats://127.0.0.1:${port}`, node: 'edge.1', logger: pub.logger });
    const subscriber = new NatsBus({ url: `nats://127.0.0.1:${port}`, node: 'central', logger: sub.logger });
    try {
      await Promise.all([publisher.whenConnected(), subscriber.whenConnected()]);
      const got: FlowEvent[] = [];
      subscriber.subscribe('flow', (e) => got.push(e));
      const status = subscriber.fleetStatus();
      await sleep(200);
      let n = 0;
      const timer = setInterval(() => publisher.publish('flow', flowEvent('edge.1', n++)), 50);
      try {
        await until('first events', () => got.length >= 3);
        assert.equal(got[0].flow.node, 'edge.1');
        assert.deepEqual(
          status.workers().map((w) => w.node),
          ['edge_1'],
          'the node as its subject token',
        );

        server.kill('SIGKILL');
        await until('disconnect log lines', () => pub.lines().some((l) => /NATS connection to .* lost/.test(l)) && sub.lines().some((l) => /lost/.test(l)));
        await sleep(1000);
        const droppedWhileDown = publisher.dropped;
        assert.ok(droppedWhileDown > 0, 'events published while down are dropped, not buffered');

        server = await startNatsServer(port);
        await until(
          'reconnect log lines',
          () => pub.lines().some((l) => /NATS reconnected/.test(l)) && sub.lines().some((l) => /NATS reconnected/.test(l)),
          30_000,
        );
        const before = got.length;
        await until('events after the reconnect', () => got.length >= before + 3);
      } finally {
        clearInterval(timer);
      }
    } finally {
      await publisher.close();
      await subscriber.close();
      server.kill('SIGKILL');
    }
  });
});

/** Inside `ns`: 127.0.0.1:4222 → unix socket → (root namespace) NATS at `target`. */
function relay(net: NsPair, ns: string, sock: string): ChildProcess {
  const code = `const net = require('net'); net.createServer((c) => { const u = net.connect(${JSON.stringify(sock)}); c.pipe(u).pipe(c); c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); }).listen(4222, '127.0.0.1', () => console.log('relay ready'));`;
  return net.spawnIn(ns, [process.execPath, '-e', code]);
}

const fleetUnavailable =
  netnsUnavailable() ?? (NATS_SERVER ? null : 'needs nats-server') ?? (missingTool('curl', 'python3') ? `needs ${missingTool('curl', 'python3')}` : null);
if (fleetUnavailable) console.log(`# fleet-nats: two-node fleet skipped: ${fleetUnavailable}`);

describe('a fleet of two capture nodes', { skip: fleetUnavailable ?? false }, () => {
  const nets: NsPair[] = [];
  let dir: string;
  let unixRelay: Server;
  let ownServer: ChildProcess | undefined;
  let natsPort = 4222;
  const nodes = [`edge-${process.pid}-1`, `edge-${process.pid}-2`];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-fleet-'));
    // The machine's NATS server (127.0.0.1:4222, as CI starts it) or our own.
    const up = await new Promise<boolean>((resolve) => {
      const c = createConnection(4222, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (!up) {
      natsPort = await freePort();
      ownServer = await startNatsServer(natsPort);
    }
    const sock = join(dir, 'nats.sock');
    unixRelay = createServer((c) => {
      const t = createConnection(natsPort, '127.0.0.1');
      c.pipe(t).pipe(c);
      c.on('error', () => t.destroy());
      t.on('error', () => c.destroy());
    });
    await new Promise<void>((resolve) => unixRelay.listen(sock, resolve));
    for (let i = 0; i < 2; i++) {
      const net = createNsPair();
      nets.push(net);
      net.spawnIn(net.nsB, ['python3', '-m', 'http.server', '8080', '--bind', net.ipsB[0]], { cwd: dir });
      await waitForOutput(relay(net, net.nsA, sock), /relay ready/);
    }
  });

  after(async () => {
    for (const n of nets) n.destroy();
    await new Promise<void>((resolve) => (unixRelay ? unixRelay.close(() => resolve()) : resolve()));
    ownServer?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('events of both nodes reach a NatsBus subscriber and `flowlens serve --bus`', async () => {
    const { logger } = memoryLogger();
    const subscriber = new NatsBus({ url: `nats://127.0.0.1:${natsPort}`, node: 'test', logger });
    const env = { ...process.env, FLOWLENS_LOG_FORMAT: 'json' };
    const serve = spawn(process.execPath, [...CLI_ARGV, 'serve', '--port', '0', '--db', join(dir, 'serve.duckdb'), '--bus', `nats://127.0.0.1:${natsPort}`], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const serveOut = collect(serve);
    const captures: ChildProcess[] = [];
    try {
      await subscriber.whenConnected();
      const flows: FlowEvent[] = [];
      const traffic: TrafficEvent[] = [];
      subscriber.subscribe('flow', (e) => flows.push(e));
      subscriber.subscribe('traffic', (e) => traffic.push(e));
      const url = /"url":"([^"]+)"/.exec(await waitForOutput(serve, /flowlens API at/))![1];

      for (let i = 0; i < 2; i++) {
        const net = nets[i];
        const c = net.spawnIn(
          net.nsA,
          [
            process.execPath,
            ...CLI_ARGV,
            'capture',
            '-i',
            net.vethA,
            '--db',
            join(dir, `node${i}.duckdb`),
            '--bus',
            'nats://127.0.0.1:4222',
            '--node',
            nodes[i],
            '--interval',
            '1',
            '--json',
          ],
          { cwd: REPO_ROOT, env },
        );
        captures.push(c);
        // Both capturing and connected (in either order: the store opens in between).
        await waitForOutput(c, /NATS connected[\s\S]*decode worker|decode worker[\s\S]*NATS connected/);
      }
      // The capture checks for subscribers every 500 ms: from then on its workers build flow events.
      await sleep(1000);
      for (const net of nets) {
        const r = net.exec(net.nsA, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${net.ipsB[0]}:8080/`]);
        assert.equal(r.stdout, '200', r.stderr);
      }

      await until('flow events from both nodes', () => nodes.every((n) => flows.some((e) => e.flow.node === n && e.flow.serverPort === 8080)));
      await until('traffic points from both nodes', () => nodes.every((n) => traffic.some((e) => e.node === n && e.point.packets > 0)));
      for (let i = 0; i < 2; i++) {
        const e = flows.find((f) => f.flow.node === nodes[i])!;
        assert.equal(e.flow.iface, nets[i].vethA, 'labelled with the interface');
        assert.equal(e.flow.clientIp, nets[i].ipA);
      }

      // serve --bus knows both nodes from their heartbeats (captureStatus).
      const query = async () => {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ captureStatus { workers { node } interfaces { name node packets drops } } }' }),
        });
        return (await res.json()) as {
          data: { captureStatus: { workers: { node: string }[]; interfaces: { name: string; node: string; packets: number }[] } };
        };
      };
      let status = await query();
      await until('both nodes in serve captureStatus', () => {
        void query().then((s) => (status = s));
        return nodes.every((n) => status.data?.captureStatus.workers.some((w) => w.node === n));
      });
      for (let i = 0; i < 2; i++) assert.ok(status.data.captureStatus.interfaces.some((f) => f.node === nodes[i] && f.name === nets[i].vethA));
      console.log(
        `# fleet: ${flows.length} flow events and ${traffic.length} traffic points from ${nodes.length} nodes; serve --bus lists ${status.data.captureStatus.workers.length} workers`,
      );

      for (const c of captures) c.kill('SIGINT');
      const codes = await Promise.all(captures.map((c) => collect(c).done));
      assert.deepEqual(
        codes.map((c) => c.code),
        [0, 0],
      );
    } finally {
      for (const c of captures) if (c.exitCode === null) c.kill('SIGKILL');
      serve.kill('SIGINT');
      await serveOut.done;
      await subscriber.close();
    }
  });
});
