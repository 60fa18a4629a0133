// @runs-alone (test/run.ts): captures on lo and on veths and compares drops under a flood
/**
 * Live capture with real traffic: two network namespaces joined by a veth pair, real programs
 * (python3 http.server + curl, ping, dig against a tiny DNS responder, nmap, hping3, iperf3), and
 * `flowlens capture` running inside namespace A on its veth next to tcpdump on the same veth. After
 * SIGINT the store's flows must match tshark's reading of tcpdump's capture flow by flow (packets
 * and bytes), host and traffic records must add up, and nothing may be written twice.
 *
 * Needs root; skips with a message otherwise.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_ARGV, REPO_ROOT, type FlowRecord } from './helpers/cli.js';
import { collect, createNsPair, missingTool, netnsUnavailable, sleep, waitForOutput, type NsPair } from './helpers/netns.js';
import { shardOf } from '../src/capture/shard.js';
import { DecodedPacket } from '../src/decode/packet.js';

const unavailable =
  netnsUnavailable() ??
  (missingTool('tcpdump', 'tshark', 'curl', 'ping', 'dig', 'nmap', 'hping3', 'iperf3', 'python3')
    ? `needs ${missingTool('tcpdump', 'tshark', 'curl', 'ping', 'dig', 'nmap', 'hping3', 'iperf3', 'python3')}`
    : null);
if (unavailable) console.log(`# capture-live: skipped: ${unavailable}`);

const NODE = process.execPath;

/** A DNS responder: answers every query with its own question and one A record. */
const DNS_RESPONDER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5353))
print('dns ready', flush=True)
while True:
    q, a = s.recvfrom(512)
    r = q[:2] + b'\\x81\\x80' + q[4:6] + b'\\x00\\x01\\x00\\x00\\x00\\x00' + q[12:] + b'\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x3c\\x00\\x04\\x0a\\x00\\x00\\x01'
    s.sendto(r, a)
`;

interface CaptureRun {
  code: number | null;
  summary: Summary;
  stderr: string;
}

interface Summary {
  packets: number;
  bytes: number;
  flows: number;
  nonIp: number;
  drops: number;
  workers: number;
  workerPackets: number[];
  ringPeakFill: number[];
  interfaces: { name: string; packets: number; drops: number; kernelDrops: number; ringDrops: number }[];
}

/** What `export flows --format jsonl` writes (test/helpers/cli.ts). */
type ExportedFlow = FlowRecord;

/** Starts `flowlens capture` inside namespace A; `stop()` sends SIGINT and parses the JSON summary. */
async function startCapture(net: NsPair, args: string[], env: Record<string, string> = {}): Promise<{ stop: () => Promise<CaptureRun> }> {
  const child = net.spawnIn(net.nsA, [NODE, ...CLI_ARGV, 'capture', '-i', net.vethA, '--json', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, FLOWLENS_LOG_FORMAT: 'json', NO_COLOR: '1', ...env },
  });
  const out = collect(child);
  await waitForOutput(child, /decode worker/);
  await sleep(300);
  return {
    stop: async () => {
      child.kill('SIGINT');
      const { code } = await out.done;
      let summary: Summary;
      try {
        summary = JSON.parse(out.stdout().trim().split('\n').pop() ?? '') as Summary;
      } catch {
        throw new Error(`no JSON summary (exit ${code}): ${out.stdout()}\n${out.stderr()}`);
      }
      return { code, summary, stderr: out.stderr() };
    },
  };
}

/**
 * tcpdump on the same veth, for the cross-check. -B 65536: a 64 MB kernel buffer; veth frames carry
 * up to 64 KB (iperf3 with segmentation offload), so tcpdump's default 2 MB holds ~30 of them and
 * a busy machine made the reference drop (7 of 302 frames once).
 */
async function startTcpdump(net: NsPair, file: string): Promise<{ stop: () => Promise<string> }> {
  const child = net.spawnIn(net.nsA, ['tcpdump', '-i', net.vethA, '-n', '--immediate-mode', '-U', '-s', '0', '-B', '65536', '-w', file]);
  const out = collect(child);
  await waitForOutput(child, /listening on/);
  return {
    stop: async () => {
      await sleep(200);
      child.kill('SIGINT');
      await out.done;
      return out.stderr();
    },
  };
}

function exportFlows(db: string): ExportedFlow[] {
  const r = spawnSync(NODE, [...CLI_ARGV, 'export', 'flows', '--db', db], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim()
    ? r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as ExportedFlow)
    : [];
}

interface Conversation {
  packets: number;
  bytes: number;
}

/** tshark's reading of a capture: per bidirectional conversation (flowlens's flow key), and frames that are not IPv4. */
function tsharkConversations(file: string): {
  conv: Map<string, Conversation>;
  nonIp: number;
  frames: number;
  bytesByIp: Map<string, { sent: number; received: number }>;
} {
  const r = spawnSync(
    'tshark',
    [
      '-r',
      file,
      '-n',
      '-T',
      'fields',
      '-E',
      'separator=,',
      '-E',
      'occurrence=f',
      '-e',
      'frame.len',
      '-e',
      'ip.proto',
      '-e',
      'ip.src',
      '-e',
      'ip.dst',
      '-e',
      'tcp.srcport',
      '-e',
      'tcp.dstport',
      '-e',
      'udp.srcport',
      '-e',
      'udp.dstport',
    ],
    { encoding: 'utf8', maxBuffer: 256 << 20 },
  );
  assert.equal(r.status, 0, r.stderr);
  const conv = new Map<string, Conversation>();
  const bytesByIp = new Map<string, { sent: number; received: number }>();
  let nonIp = 0;
  let frames = 0;
  for (const line of r.stdout.split('\n')) {
    if (!line) continue;
    frames++;
    const [len, proto, src, dst, tsp, tdp, usp, udp] = line.split(',');
    if (!proto) {
      nonIp++;
      continue;
    }
    const p = Number(proto);
    const sp = p === 6 ? Number(tsp) : p === 17 ? Number(usp) : 0;
    const dp = p === 6 ? Number(tdp) : p === 17 ? Number(udp) : 0;
    const k = key(p, src, sp, dst, dp);
    const c = conv.get(k) ?? { packets: 0, bytes: 0 };
    c.packets++;
    c.bytes += Number(len);
    conv.set(k, c);
    for (const [ip, dir] of [
      [src, 'sent'],
      [dst, 'received'],
    ] as const) {
      const h = bytesByIp.get(ip) ?? { sent: 0, received: 0 };
      h[dir] += Number(len);
      bytesByIp.set(ip, h);
    }
  }
  return { conv, nonIp, frames, bytesByIp };
}

function key(proto: number, a: string, ap: number, b: string, bp: number): string {
  const x = `${a}:${ap}`;
  const y = `${b}:${bp}`;
  return `${proto} ${x < y ? `${x} ${y}` : `${y} ${x}`}`;
}

const PROTO: Record<string, number> = { tcp: 6, udp: 17, icmp: 1 };

function flowlensConversations(flows: ExportedFlow[]): Map<string, Conversation> {
  const conv = new Map<string, Conversation>();
  for (const f of flows) {
    const k = key(PROTO[f.transport] ?? -1, f.clientIp, f.clientPort, f.serverIp, f.serverPort);
    const c = conv.get(k) ?? { packets: 0, bytes: 0 };
    c.packets += f.clientPackets + f.serverPackets;
    c.bytes += f.clientBytes + f.serverBytes;
    conv.set(k, c);
  }
  return conv;
}

/** Real programs between A and B: every kind of flow the test expects. Returns the payload bytes iperf3 says it sent. */
async function generateTraffic(
  net: NsPair,
  opts: { curls?: number; nmap?: boolean; hping?: boolean; iperf?: boolean; servers?: string[] } = {},
): Promise<{ iperfBytes: number }> {
  let iperfBytes = 0;
  const servers = opts.servers ?? [net.ipsB[0]];
  for (const ip of servers) {
    for (let i = 0; i < (opts.curls ?? 1); i++) {
      const r = net.exec(net.nsA, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${ip}:8080/`]);
      assert.equal(r.stdout, '200', `curl ${ip}: ${r.stderr}`);
    }
  }
  const ping = net.exec(net.nsA, ['ping', '-c', '3', '-i', '0.2', '-W', '1', servers[0]]);
  assert.equal(ping.status, 0, ping.stderr + ping.stdout);
  const dig = net.exec(net.nsA, ['dig', `@${servers[0]}`, '-p', '5353', '+tries=1', '+time=2', 'flowlens.test', 'A']);
  assert.match(dig.stdout, /status: NOERROR/, dig.stdout + dig.stderr);
  if (opts.nmap) {
    const nmap = net.exec(net.nsA, ['nmap', '-n', '-Pn', '-sS', '--max-retries', '0', '-p', '7000-7009', servers[0]]);
    assert.equal(nmap.status, 0, nmap.stderr);
  }
  if (opts.hping) {
    net.exec(net.nsA, ['hping3', '-q', '-S', '-p', '9000', '-c', '3', '-i', 'u100000', servers[0]]);
  }
  if (opts.iperf) {
    const iperf = net.exec(net.nsA, ['iperf3', '-c', servers[0], '-p', '5201', '-t', '1', '-b', '40M', '-J'], { timeoutMs: 20_000 });
    assert.equal(iperf.status, 0, iperf.stderr + iperf.stdout);
    iperfBytes = (JSON.parse(iperf.stdout) as { end: { sum_sent: { bytes: number } } }).end.sum_sent.bytes;
  }
  await sleep(500);
  return { iperfBytes };
}

describe('live capture on a veth pair', { skip: unavailable ?? false }, () => {
  let net: NsPair;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-live-'));
    chmodSync(dir, 0o777);
    net = createNsPair(3);
    try {
      const web = net.spawnIn(net.nsB, ['python3', '-m', 'http.server', '8080', '--bind', '0.0.0.0'], { cwd: dir });
      net.spawnIn(net.nsB, ['iperf3', '-s', '-p', '5201']);
      const dns = net.spawnIn(net.nsB, ['python3', '-c', DNS_RESPONDER, '0.0.0.0']);
      await waitForOutput(dns, /dns ready/);
      // http.server prints its banner only when stdout is a terminal; poll the port instead.
      for (let i = 0; i < 50; i++) {
        if (net.exec(net.nsA, ['curl', '-s', '-o', '/dev/null', `http://${net.ipsB[0]}:8080/`]).status === 0) break;
        await sleep(100);
      }
      void web;
    } catch (err) {
      net.destroy();
      throw err;
    }
  });

  after(() => {
    net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('flows match tshark flow by flow (curl, ping, dig, nmap, hping3, iperf3); host and traffic records add up', async () => {
    const db = join(dir, 'all.duckdb');
    const pcap = join(dir, 'all.pcap');
    const tcpdump = await startTcpdump(net, pcap);
    // Segments every second: a long flow (iperf3) is written in several pieces that must add up.
    const cap = await startCapture(net, ['--db', db, '--interval', '1', '--active-timeout', '1']);
    const { iperfBytes } = await generateTraffic(net, { curls: 3, nmap: true, hping: true, iperf: true });
    // Both stop together, so that the reference does not go on capturing while flowlens writes its
    // last flows (seconds on a busy machine).
    const [run, tcpdumpLog] = await Promise.all([cap.stop(), tcpdump.stop()]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(tcpdumpLog, /^0 packets dropped by kernel/m, tcpdumpLog);
    assert.equal(run.summary.drops, 0, `flowlens dropped packets: ${JSON.stringify(run.summary.interfaces)}`);
    // The ring's high-water mark: frames went through it, and it never filled.
    assert.equal(run.summary.ringPeakFill.length, 1);
    assert.ok(run.summary.ringPeakFill[0] > 0 && run.summary.ringPeakFill[0] < 1, `ring peak ${run.summary.ringPeakFill}`);

    const ts = tsharkConversations(pcap);
    const flows = exportFlows(db);
    const ours = flowlensConversations(flows);
    const missing = [...ts.conv.keys()].filter((k) => !ours.has(k));
    const extra = [...ours.keys()].filter((k) => !ts.conv.has(k));
    const differ = [...ts.conv]
      .filter(([k, c]) => ours.has(k) && (ours.get(k)!.packets !== c.packets || ours.get(k)!.bytes !== c.bytes))
      .map(([k, c]) => `${k}: tshark ${c.packets}/${c.bytes}, flowlens ${ours.get(k)!.packets}/${ours.get(k)!.bytes}`);
    assert.deepEqual({ missing, extra, differ }, { missing: [], extra: [], differ: [] });
    console.log(
      `# ${ts.conv.size} conversations, ${ts.frames} frames (${ts.nonIp} non-IP): flowlens matches tshark on every one; ${flows.length} flows exported`,
    );

    // What was sent is there.
    const to = (port: number, transport: string) => flows.filter((f) => f.serverPort === port && f.transport === transport);
    assert.equal(to(8080, 'tcp').length, 3, 'curl: one connection each');
    assert.equal(flows.filter((f) => f.transport === 'icmp').length, 1);
    assert.equal(to(5353, 'udp').length, 1);
    assert.equal(flows.filter((f) => f.transport === 'tcp' && f.serverPort >= 7000 && f.serverPort <= 7009).length, 10, 'nmap: one flow per port');
    assert.equal(to(9000, 'tcp').length, 3, 'hping3: one flow per source port');
    const iperf = to(5201, 'tcp');
    assert.ok(iperf.length >= 2, 'iperf3: control and data connections');
    // iperf3's own count of the payload it sent; the frames that carried it are larger.
    const iperfWire = iperf.reduce((n, f) => n + f.clientBytes, 0);
    assert.ok(
      iperfBytes > 100_000 && iperfWire > iperfBytes,
      `iperf3 sent ${iperfBytes} payload bytes; flowlens saw ${iperfWire} bytes of frames from the client`,
    );
    assert.ok(flows.every((f) => f.iface === net.vethA));

    // Every IP frame is the test's own traffic and must be decoded. Non-IP frames (ARP, IPv6
    // neighbour discovery) come when the kernel pleases; tcpdump starts before flowlens and stops
    // with it, so one at the edges may reach only the reference (2 such frames, in 2 of 5 runs).
    assert.equal(run.summary.packets - run.summary.nonIp, ts.frames - ts.nonIp, 'every IP frame decoded');
    assert.ok(run.summary.nonIp <= ts.nonIp, `non-IP frames: flowlens ${run.summary.nonIp}, tcpdump ${ts.nonIp}`);
  });

  test('a BPF filter is applied: only tcp port 8080 reaches the store', async () => {
    const db = join(dir, 'filter.duckdb');
    const cap = await startCapture(net, ['--db', db, '-f', 'tcp port 8080']);
    await generateTraffic(net);
    const run = await cap.stop();
    assert.equal(run.code, 0, run.stderr);
    const flows = exportFlows(db);
    assert.equal(flows.length, 1, JSON.stringify(flows));
    assert.ok(flows.every((f) => f.transport === 'tcp' && f.serverPort === 8080));
    assert.equal(run.summary.nonIp, 0, 'ARP filtered out');
    assert.equal(run.summary.packets, flows[0].clientPackets + flows[0].serverPackets);
  });

  test('promiscuous mode by default; --no-promisc or FLOWLENS_PROMISC=false leaves the interface out of it', async () => {
    // IFF_PROMISC (include/uapi/linux/if.h) in the interface's flags, read inside its namespace.
    const promiscuous = () => (Number(net.exec(net.nsA, ['cat', `/sys/class/net/${net.vethA}/flags`]).stdout.trim()) & 0x100) !== 0;
    assert.equal(promiscuous(), false, 'not promiscuous before any capture');
    for (const [args, env, expected] of [
      [[], {}, true],
      [['--no-promisc'], {}, false],
      [[], { FLOWLENS_PROMISC: 'false' }, false],
      [[], { FLOWLENS_PROMISC: 'yes' }, true],
    ] as const) {
      const cap = await startCapture(net, ['--db', join(dir, 'promisc.duckdb'), ...args], env);
      const during = promiscuous();
      const run = await cap.stop();
      assert.equal(run.code, 0, run.stderr);
      assert.equal(during, expected, `${args.join(' ')} ${JSON.stringify(env)}`);
      assert.equal(promiscuous(), false, 'left promiscuous mode on exit');
    }
  });

  test('two decode workers: flows as with one, host and traffic records merged per interval', async () => {
    const db = join(dir, 'workers.duckdb');
    const servers = net.ipsB;
    const frame = (a: string, b: string) => {
      const buf = Buffer.alloc(34);
      buf.writeUInt16BE(0x0800, 12);
      buf[14] = 0x45;
      buf.writeUInt16BE(20, 16); // total length: a whole header, as the decoder wants it
      Buffer.from(a.split('.').map(Number)).copy(buf, 26);
      Buffer.from(b.split('.').map(Number)).copy(buf, 30);
      return buf;
    };
    const scratch = new DecodedPacket();
    const shards = new Set(servers.map((s) => shardOf(1, frame(net.ipA, s), 0, 34, 34, scratch, 2)));
    const pcap = join(dir, 'workers.pcap');
    const tcpdump = await startTcpdump(net, pcap);
    const cap = await startCapture(net, ['--db', db, '--workers', '2', '--interval', '3600']);
    await generateTraffic(net, { servers });
    const [run] = await Promise.all([cap.stop(), tcpdump.stop()]); // together, as above
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.summary.workers, 2);
    if (shards.size === 2)
      assert.ok(
        run.summary.workerPackets.every((n) => n > 0),
        `both workers decode: ${run.summary.workerPackets}`,
      );
    else console.log('# all host pairs of this run hash to one worker; the merge is still exercised by ARP in worker 0');

    const ts = tsharkConversations(pcap);
    const ours = flowlensConversations(exportFlows(db));
    assert.deepEqual([...ours.entries()].sort(), [...ts.conv.entries()].sort());

    const { DuckDBInstance } = await import('@duckdb/node-api');
    const inst = await DuckDBInstance.create(db, { access_mode: 'READ_ONLY' });
    const conn = await inst.connect();
    try {
      const rows = async (sql: string) => (await conn.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
      const trafficDupes = await rows('SELECT ts, node, count(*) AS n FROM traffic GROUP BY ts, node HAVING count(*) > 1');
      assert.deepEqual(trafficDupes, [], 'one traffic row per interval and node (QuestDB dedups on it)');
      const hostDupes = await rows('SELECT ts, node, ip, count(*) AS n FROM hosts GROUP BY ts, node, ip HAVING count(*) > 1');
      assert.deepEqual(hostDupes, [], 'one host row per interval, node and ip');
      const [t] = await rows('SELECT sum(packets)::BIGINT AS packets, sum(bytes)::BIGINT AS bytes FROM traffic');
      assert.equal(Number(t.packets), ts.frames);
      for (const [ip, b] of ts.bytesByIp) {
        const [h] = await rows(
          `SELECT sum(bytes_sent)::BIGINT AS sent, sum(bytes_received)::BIGINT AS received, max(peers) AS peers, count(*) AS n FROM hosts WHERE ip = '${ip}'`,
        );
        assert.equal(Number(h.sent), b.sent, `${ip} bytes sent`);
        assert.equal(Number(h.received), b.received, `${ip} bytes received`);
        if (ip === net.ipA && Number(h.n) === 1) assert.equal(Number(h.peers), servers.length, 'peers of A summed over workers, exactly');
      }
    } finally {
      conn.closeSync();
      inst.closeSync();
    }
  });

  test('a restart appends: each run writes its own flows once, nothing is counted twice', async () => {
    const db = join(dir, 'restart.duckdb');
    const pcap = join(dir, 'restart.pcap');
    const tcpdump = await startTcpdump(net, pcap);
    for (let i = 0; i < 2; i++) {
      // A long active timeout: the flows are still open at SIGINT, so the shutdown writes them.
      const cap = await startCapture(net, ['--db', db, '--active-timeout', '600', '--tcp-closed-timeout', '600']);
      const r = net.exec(net.nsA, ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${net.ipsB[0]}:8080/`]);
      assert.equal(r.stdout, '200');
      await sleep(300);
      const run = await cap.stop();
      assert.equal(run.code, 0, run.stderr);
    }
    await tcpdump.stop();
    const ts = tsharkConversations(pcap);
    const flows = exportFlows(db);
    assert.equal(flows.length, 2, JSON.stringify(flows));
    assert.deepEqual([...flowlensConversations(flows).entries()].sort(), [...ts.conv.entries()].sort());
  });

  test('a port scan is detected live: the anomaly is in the store', async () => {
    const db = join(dir, 'scan.duckdb');
    const cap = await startCapture(net, ['--db', db]);
    const nmap = net.exec(net.nsA, ['nmap', '-n', '-Pn', '-sS', '--max-retries', '0', '-p', '7000-7100', net.ipsB[0]]);
    assert.equal(nmap.status, 0, nmap.stderr);
    await sleep(500);
    const run = await cap.stop();
    assert.equal(run.code, 0, run.stderr);
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const inst = await DuckDBInstance.create(db, { access_mode: 'READ_ONLY' });
    const conn = await inst.connect();
    try {
      const rows = (await conn.runAndReadAll('SELECT kind, target_ip FROM anomalies')).getRowObjectsJson() as { kind: string; target_ip: string }[];
      assert.ok(
        rows.some((r) => r.kind === 'PORT_SCAN' && r.target_ip === net.ipsB[0]),
        JSON.stringify(rows),
      );
    } finally {
      conn.closeSync();
      inst.closeSync();
    }
  });

  test('a flood on a tiny buffer: drops are counted and logged', async () => {
    const db = join(dir, 'flood.duckdb');
    const cap = await startCapture(net, ['--db', db, '--buffer-mb', '1', '--ring-mb', '1']);
    // iperf3 unthrottled on a veth: GSO frames of up to 64 KiB at several GB/s, far more than
    // a 1 MiB kernel buffer and a 1 MiB decode ring take.
    const iperf = net.exec(net.nsA, ['iperf3', '-c', net.ipsB[0], '-p', '5201', '-t', '2', '-P', '2'], { timeoutMs: 20_000 });
    assert.equal(iperf.status, 0, iperf.stderr + iperf.stdout);
    await sleep(500);
    const run = await cap.stop();
    assert.equal(run.code, 0, run.stderr);
    const i = run.summary.interfaces[0];
    console.log(`# flood: ${i.packets} frames received, ${run.summary.packets} decoded, drops: kernel ${i.kernelDrops}, ring ${i.ringDrops}`);
    assert.ok(run.summary.drops > 0, `expected drops: ${JSON.stringify(i)}`);
    // A ring that dropped was full at least once; one that did not, never was.
    assert.equal(run.summary.ringPeakFill[0] === 1, i.ringDrops > 0, `ring peak ${run.summary.ringPeakFill}, ring drops ${i.ringDrops}`);
    assert.match(run.stderr, /packets dropped/);
  });
});

describe('capture errors', { skip: netnsUnavailable() ?? false }, () => {
  const cli = (args: string[], user?: number) => {
    const cmd = [NODE, ...CLI_ARGV, ...args];
    const r =
      user === undefined
        ? spawnSync(cmd[0], cmd.slice(1), { cwd: REPO_ROOT, encoding: 'utf8' })
        : spawnSync('setpriv', [`--reuid=${user}`, `--regid=${user}`, '--clear-groups', '--inh-caps=-all', ...cmd], { cwd: REPO_ROOT, encoding: 'utf8' });
    return { code: r.status, stderr: r.stderr };
  };
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-capture-err-'));
    chmodSync(dir, 0o777);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('an unknown interface: one line naming it, exit 1', () => {
    const r = cli(['capture', '-i', 'nosuch9', '--db', join(dir, 'a.duckdb')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^flowlens: no such interface: nosuch9 \(interfaces: .*lo.*\)\n$/);
  });

  test('an invalid filter: one line quoting it, exit 1', () => {
    const r = cli(['capture', '-i', 'lo', '-f', 'tcp prot 80', '--db', join(dir, 'b.duckdb')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^flowlens: invalid capture filter 'tcp prot 80': .*syntax error.*\n$/);
  });

  test('no interface given: usage error', () => {
    const r = cli(['capture', '--db', join(dir, 'c.duckdb')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /capture needs an interface: -i IFACE/);
  });

  test('without capture privileges: which privilege and how to grant it, exit 77', { skip: missingTool('setpriv') ? 'needs setpriv' : false }, () => {
    const r = cli(['capture', '-i', 'lo', '--db', join(dir, 'd.duckdb')], 65534);
    assert.equal(r.code, 77, r.stderr);
    assert.match(
      r.stderr,
      /^flowlens: cannot capture on lo: .*CAP_NET_RAW and CAP_NET_ADMIN.*setcap cap_net_raw,cap_net_admin\+eip \$\(readlink -f \$\(which node\)\)/,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
});
