// @runs-alone (test/run.ts): compares capture drops with and without the packet store under iperf3
// The live packet store (--keep-packets) on a veth pair between two network namespaces, with real
// traffic (curl from an HTTP server, ping, an nmap connect scan): the flows' captures from
// `flowlens pcap` hold the same frames, byte for byte, as a tcpdump on the same veth recorded for
// them; with --keep-snaplen and --keep-flow-packets they hold the first packets cut to the snap
// length; the size cap holds over a run that writes several times the cap, the evicted flows
// reported as evicted; and under an iperf3 stream the capture drops no more with the store than
// without, every packet of a flow either kept by the store or counted as dropped by it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CaptureFileReader } from '../src/capture/pcap-file.js';
import { extractPackets } from '../src/packets/extract.js';
import { PacketIndexReader } from '../src/packets/index-reader.js';
import { packetsOfFlows } from '../src/packets/select.js';
import type { FlowRecord } from '../src/records/index.js';
import { REPO_ROOT, CLI_ARGV } from './helpers/cli.js';
import { collect, createNsPair, missingTool, netnsUnavailable, type NsPair, sleep, waitForOutput } from './helpers/netns.js';

const missing = missingTool('tcpdump', 'tshark', 'curl', 'nmap', 'python3', 'iperf3');
const skip = netnsUnavailable() ?? (missing ? `needs ${missing}` : false);
const NODE = process.execPath;
const work = mkdtempSync(join(tmpdir(), 'flowlens-keep-'));
const nets: NsPair[] = [];
after(() => {
  for (const n of nets) n.destroy();
  rmSync(work, { recursive: true, force: true });
});

interface Packet {
  caplen: number;
  wirelen: number;
  data: string;
  ts: number;
}

async function packetsOf(path: string): Promise<Packet[]> {
  const reader = new CaptureFileReader(path);
  const out: Packet[] = [];
  await reader.open();
  try {
    while (
      await reader.readChunk((_l, ts, data, offset, caplen, wirelen) => {
        out.push({ ts, caplen, wirelen, data: data.subarray(offset, offset + caplen).toString('hex') });
      })
    );
  } finally {
    await reader.close();
  }
  return out;
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(NODE, [...CLI_ARGV, ...args], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, FLOWLENS_LOG_LEVEL: 'warn' } });
}

function exportFlows(db: string): FlowRecord[] {
  const r = cli(['export', 'flows', '--db', db]);
  assert.equal(r.status, 0, r.stderr);
  return (
    r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      // The export names fields as the API does: the record's flowId is `id` there.
      .map((l) => {
        const row = JSON.parse(l) as Omit<FlowRecord, 'flowId'> & { id: string };
        return { ...row, flowId: row.id };
      })
  );
}

interface Run {
  summary: {
    packets: number;
    drops: number;
    packetStore?: { kept: number; dropped: number; skipped: number; files: number; evictedFiles: number; bytes: number };
  };
  tcpdump: string;
  flows: FlowRecord[];
  db: string;
  dir: string;
  net: NsPair;
}

/** Serves `bytes` random bytes over HTTP from namespace B, captures in A with `keepArgs` and tcpdump beside it, runs `traffic`. */
async function captureRun(
  tag: string,
  /** null: no packet store. */
  keepArgs: string[] | null,
  traffic: (net: NsPair, url: string) => Promise<void>,
  afterTraffic?: (net: NsPair) => Promise<void>,
): Promise<Run> {
  const net = createNsPair();
  nets.push(net);
  const www = join(work, `${tag}-www`);
  mkdirSync(www);
  writeFileSync(join(www, 'blob'), Buffer.alloc(3 << 20, 7));
  const server = net.spawnIn(net.nsB, ['python3', '-m', 'http.server', '--bind', net.ipsB[0], '8080', '--directory', www]);
  await waitForOutput(server, /Serving HTTP/);
  const ref = join(work, `${tag}-tcpdump.pcap`);
  const tcpdump = net.spawnIn(net.nsA, ['tcpdump', '-i', net.vethA, '-n', '--immediate-mode', '-U', '-s', '0', '-B', '65536', '-w', ref]);
  const tdOut = collect(tcpdump);
  await waitForOutput(tcpdump, /listening on/);
  const db = join(work, `${tag}.duckdb`);
  const dir = join(work, `${tag}-packets`);
  const child = net.spawnIn(
    net.nsA,
    [NODE, ...CLI_ARGV, 'capture', '-i', net.vethA, '--json', '--workers', '2', '--db', db, ...(keepArgs === null ? [] : ['--keep-packets', dir, ...keepArgs])],
    { cwd: REPO_ROOT, env: { ...process.env, FLOWLENS_LOG_FORMAT: 'json' } },
  );
  const out = collect(child);
  await waitForOutput(child, /decode worker/, 90_000);
  await sleep(300);
  await traffic(net, `http://${net.ipsB[0]}:8080/blob`);
  await sleep(300);
  await afterTraffic?.(net);
  child.kill('SIGINT');
  const { code } = await out.done;
  assert.equal(code, 0, out.stderr());
  await sleep(200);
  tcpdump.kill('SIGINT');
  await tdOut.done;
  const summary = JSON.parse(out.stdout().trim().split('\n').pop() ?? '{}') as Run['summary'];
  return { summary, tcpdump: ref, flows: exportFlows(db), db, dir, net };
}

/** tcpdump's frames of a flow: its 5-tuple either way (ICMP: the address pair), in capture order. */
function tcpdumpFlow(ref: string, f: FlowRecord, out: string): void {
  const filter =
    f.transport === 'icmp'
      ? `icmp && ip.addr==${f.clientIp} && ip.addr==${f.serverIp}`
      : `ip.addr==${f.clientIp} && ip.addr==${f.serverIp} && ${f.transport}.port==${f.clientPort} && ${f.transport}.port==${f.serverPort} && !icmp`;
  const r = spawnSync('tshark', ['-r', ref, '-Y', filter, '-F', 'pcap', '-w', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** A flow's frames by direction (IPv4 source: the test networks have no IPv6), each in its order. */
function byDirection(ps: Packet[]): Map<string, Packet[]> {
  const m = new Map<string, Packet[]>();
  for (const p of ps) {
    const src = p.data.slice(52, 60); // Ethernet 14 bytes + IPv4 source at 12: bytes 26..29
    const frames = m.get(src) ?? [];
    frames.push(p);
    m.set(src, frames);
  }
  return m;
}

const frameKey = (p: Packet) => `${p.caplen}/${p.wirelen}/${p.data}`;

/**
 * The same frames, byte for byte and in the same order in each direction. Across directions the
 * interleaving may differ: flowlens's socket and tcpdump's receive a data frame and the other
 * side's ACK a few µs apart in either order (seen: a 64 KB frame stamped 360 µs and an ACK stamped
 * 358 µs, the ACK first in tcpdump's file and second in the store's). The extraction puts them in
 * time order (assertTimeOrder); tcpdump's file keeps its socket's order.
 */
function sameFrames(a: Packet[], b: Packet[]): boolean {
  const x = byDirection(a);
  const y = byDirection(b);
  return x.size === y.size && [...x].every(([src, frames]) => frames.map(frameKey).join() === y.get(src)?.map(frameKey).join());
}

/** The extracted capture is in time order (what `flowlens pcap` promises), whatever the socket's order. */
function assertTimeOrder(ps: Packet[], label: string): void {
  for (let i = 1; i < ps.length; i++) assert.ok(ps[i].ts >= ps[i - 1].ts, `${label}: packet ${i} at ${ps[i].ts} µs comes after one at ${ps[i - 1].ts} µs`);
}

test('live: every flow of curl, ping and an nmap scan comes out of the packet store as tcpdump recorded it', { skip, timeout: 240_000 }, async () => {
  const run = await captureRun('full', ['--keep-file-seconds', '1'], async (net, url) => {
    for (let i = 0; i < 3; i++) assert.equal(net.exec(net.nsA, ['curl', '-s', '-o', '/dev/null', url]).status, 0);
    net.exec(net.nsA, ['ping', '-c', '3', '-i', '0.2', net.ipsB[0]]);
    net.exec(net.nsA, ['nmap', '-sT', '-n', '-Pn', '-p', '20-29,8080', net.ipsB[0]], { timeoutMs: 30_000 });
  });
  const ps = run.summary.packetStore;
  assert.ok(ps && ps.kept > 0 && ps.files > 0, `packet store counters: ${JSON.stringify(ps)}`);
  assert.equal(ps.dropped, 0, 'nothing dropped by the packet store at this rate');
  const chosen = run.flows.filter((f) => f.transport === 'tcp' || f.transport === 'icmp');
  assert.ok(chosen.length >= 3 + 11, `curl, ping and scan flows (${chosen.length})`);
  let packets = 0;
  const index = new PacketIndexReader(run.dir);
  for (const [i, f] of chosen.entries()) {
    const ours = join(work, `live-${f.flowId}.pcapng`);
    if (i === 0) {
      // One through the command line; the others through the same functions in this process.
      const r = cli(['pcap', '--packets-dir', run.dir, '--flow', f.flowId, '-o', ours]);
      assert.equal(r.status, 0, `${f.flowId}: ${r.stderr}`);
    } else {
      const chunks: Buffer[] = [];
      await extractPackets((await packetsOfFlows(index, [f.flowId])).refs, (c) => {
        chunks.push(c);
      });
      writeFileSync(ours, Buffer.concat(chunks));
    }
    const theirs = join(work, `live-${f.flowId}-tcpdump.pcap`);
    tcpdumpFlow(run.tcpdump, f, theirs);
    const a = await packetsOf(ours);
    const b = await packetsOf(theirs);
    assert.equal(a.length, b.length, `${f.transport} ${f.clientIp}:${f.clientPort} ${f.serverIp}:${f.serverPort}: packets`);
    assert.ok(sameFrames(a, b), `${f.flowId}: frames differ from tcpdump's`);
    assertTimeOrder(a, f.flowId);
    // Both read the kernel's time stamp of the frame, each through its own socket.
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i].ts - b[i].ts) < 5000, `${f.flowId}: packet ${i} time ${a[i].ts} against ${b[i].ts}`);
    packets += a.length;
  }
  // veth hands segmentation-offloaded frames of up to 64 KB to both captures.
  assert.ok(packets > 100, `the curl downloads are in (${packets} packets)`);
  // The interface descriptions are the capture's: pcapng with the veth's name.
  const ifaces = spawnSync('capinfos', ['-I', join(work, `live-${chosen[0].flowId}.pcapng`)], { encoding: 'utf8' }).stdout;
  assert.match(ifaces, new RegExp(run.net.vethA));
});

test('live: size cap over a run writing several times it, snap length and first packets per flow; evicted flows said so', {
  skip,
  timeout: 240_000,
}, async () => {
  const cap = 256 << 10;
  const KEEP = 40;
  const SNAP = 8192;
  const DOWNLOADS = 10;
  let metrics = '';
  const run = await captureRun(
    'caps',
    [
      ...[
        '--keep-max-size',
        '256K',
        '--keep-file-size',
        '64K',
        '--keep-file-seconds',
        '1',
        '--keep-snaplen',
        String(SNAP),
        '--keep-flow-packets',
        String(KEEP),
      ],
      ...['--metrics-listen', '127.0.0.1:9464'],
    ],
    async (net, url) => {
      // Each download keeps its first 40 frames cut to 8 KB (~20 of them data): the run writes several times the cap.
      for (let i = 0; i < DOWNLOADS; i++) {
        assert.equal(net.exec(net.nsA, ['curl', '-s', '-o', '/dev/null', url]).status, 0);
        await sleep(700); // the sweeps run every 5 s: let some see the store grow
      }
    },
    async (net) => {
      await sleep(1500); // the workers' counters reach the main thread with their batches (every second)
      const r = net.exec(net.nsA, ['curl', '-s', 'http://127.0.0.1:9464/metrics']);
      metrics = r.stdout;
    },
  );
  const metric = (name: string, label = '') =>
    Number(
      metrics
        .split('\n')
        .find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(label))
        ?.split(' ')
        .pop() ?? Number.NaN,
    );
  assert.ok(metric('flowlens_packet_store_packets_total') >= KEEP * (DOWNLOADS - 1), `packets metric:\n${metrics}`);
  assert.ok(metric('flowlens_packet_store_bytes_total') > 2 * cap, 'bytes metric');
  assert.ok(metric('flowlens_packet_store_dropped_total', 'reason="flow_cap"') > 0, 'first-packets cap counted');
  assert.ok(
    metric('flowlens_packet_store_evicted_files_total') > 0,
    `evictions counted:\n${metrics
      .split('\n')
      .filter((l) => l.includes('packet_store'))
      .join('\n')}\n${JSON.stringify(run.summary.packetStore)}`,
  );
  const size = metric('flowlens_packet_store_size_bytes');
  // Between sweeps (every 5 s) the store may pass the cap by what was written since: the cap is checked at the end.
  assert.ok(size > 0, `store size ${size}`);
  const oldest = metric('flowlens_packet_store_oldest_packet_timestamp_seconds');
  const newest = metric('flowlens_packet_store_newest_packet_timestamp_seconds');
  assert.ok(oldest > 0 && oldest <= newest && newest <= Date.now() / 1000, `age span ${oldest}..${newest}`);
  const ps = run.summary.packetStore!;
  assert.ok(ps.skipped > 0, `packets past the first ${KEEP} of a flow are not kept`);
  assert.ok(ps.bytes > 2 * cap, `the run wrote several times the cap (${ps.bytes} bytes)`);
  assert.ok(ps.evictedFiles > 0, 'files were evicted');
  const names = readdirSync(run.dir);
  const total = names.reduce((n, name) => n + statSync(join(run.dir, name)).size, 0);
  assert.ok(total <= cap, `store ${total} bytes within the 256 KiB cap`);
  console.log(
    `# caps: ${ps.kept} packets (${ps.bytes} bytes) kept in ${ps.files} files, ${ps.dropped} dropped, ${ps.evictedFiles} files evicted, ${ps.skipped} past the first ${KEEP}, store now ${total} bytes (cap ${cap})`,
  );

  const curls = run.flows.filter((f) => f.transport === 'tcp').sort((a, b) => (a.firstSeen < b.firstSeen ? -1 : 1));
  assert.equal(curls.length, DOWNLOADS);
  // The last download is held: its first frames, cut to the snap length, with their wire lengths.
  const last = curls[curls.length - 1];
  const ours = join(work, 'caps-last.pcapng');
  const r = cli(['pcap', '--packets-dir', run.dir, '--flow', last.flowId, '-o', ours]);
  assert.equal(r.status, 0, r.stderr);
  const theirs = join(work, 'caps-last-tcpdump.pcap');
  tcpdumpFlow(run.tcpdump, last, theirs);
  const a = await packetsOf(ours);
  const b = (await packetsOf(theirs)).slice(0, KEEP);
  assert.equal(a.length, KEEP);
  for (let i = 0; i < a.length; i++) {
    assert.equal(a[i].wirelen, b[i].wirelen);
    assert.equal(a[i].caplen, Math.min(SNAP, b[i].caplen));
    assert.equal(a[i].data, b[i].data.slice(0, 2 * SNAP));
  }
  // The first download's files were evicted: said so, exit 1, no capture.
  const first = curls[0];
  const gone = cli(['pcap', '--packets-dir', run.dir, '--flow', first.flowId, '-o', join(work, 'caps-first.pcapng')]);
  assert.equal(gone.status, 1, gone.stderr);
  assert.match(gone.stderr, /which is gone \(evicted or removed\)|are not held/);
});

test('live: under an iperf3 stream at 100 Mbit/s the capture drops no more with the packet store than without; the store counts its drops', {
  skip,
  timeout: 240_000,
}, async () => {
  const flood = async (net: NsPair) => {
    const server = net.spawnIn(net.nsB, ['iperf3', '-s', '-p', '5201', '--forceflush']);
    await waitForOutput(server, /Server listening/);
    const r = net.exec(net.nsA, ['iperf3', '-c', net.ipsB[0], '-p', '5201', '-t', '3', '-b', '100M'], { timeoutMs: 30_000 });
    assert.equal(r.status, 0, r.stderr);
  };
  const off = await captureRun('flood-off', null, async () => {}, flood);
  const on = await captureRun('flood-on', [], async () => {}, flood);
  const ps = on.summary.packetStore!;
  const flowPackets = on.flows.reduce((n, f) => n + f.clientPackets + f.serverPackets, 0);
  console.log(
    `# flood: capture drops ${off.summary.drops} of ${off.summary.packets} without the store, ${on.summary.drops} of ${on.summary.packets} with it; store kept ${ps.kept}, dropped ${ps.dropped}`,
  );
  // Every packet of a flow was either written or counted as dropped by the store: none lost unsaid.
  assert.equal(ps.kept + ps.dropped + ps.skipped, flowPackets, "kept + dropped = the flows' packets");
  // Segmentation offload makes the veth's frames up to 64 KB: 100 Mbit/s for 3 s is ~37 MB in a few thousand frames.
  assert.ok(ps.bytes > 20e6, `a flood (${on.summary.packets} packets, ${ps.bytes} bytes kept)`);
  // Nothing more dropped by the capture with the store on (a hundredth of the packets for the machine's noise).
  assert.ok(
    on.summary.drops / on.summary.packets <= off.summary.drops / off.summary.packets + 0.01,
    `capture drops with the store ${on.summary.drops}/${on.summary.packets}, without ${off.summary.drops}/${off.summary.packets}`,
  );
});

test('live: a writer that takes nothing (its ring full) costs the capture nothing; the store counts its drops and what it kept is as tcpdump recorded it', {
  skip,
  timeout: 240_000,
}, async () => {
  // The store's writer threads stalled behind a 64 KiB ring: the store drops nearly everything.
  process.env.FLOWLENS_PACKET_STORE_STALL = String(64 << 10);
  let run: Run;
  try {
    run = await captureRun('stall', [], async (net, url) => {
      for (let i = 0; i < 3; i++) assert.equal(net.exec(net.nsA, ['curl', '-s', '-o', '/dev/null', url]).status, 0);
    });
  } finally {
    delete process.env.FLOWLENS_PACKET_STORE_STALL;
  }
  const ps = run.summary.packetStore!;
  const flowPackets = run.flows.reduce((n, f) => n + f.clientPackets + f.serverPackets, 0);
  console.log(`# stalled writer: capture ${run.summary.packets} packets, ${run.summary.drops} dropped; store kept ${ps.kept}, dropped ${ps.dropped}`);
  assert.equal(run.summary.drops, 0, 'the capture dropped nothing');
  assert.ok(ps.dropped > 0, `the store dropped, and counted it (${JSON.stringify(ps)})`);
  assert.equal(ps.kept + ps.dropped + ps.skipped, flowPackets, "kept + dropped = the flows' packets");
  // What the store kept of each download is frames tcpdump recorded, byte for byte, in the same
  // order in each direction (sameFrames says why not across), and in time order.
  const index = new PacketIndexReader(run.dir);
  let kept = 0;
  for (const f of run.flows.filter((x) => x.transport === 'tcp')) {
    const chunks: Buffer[] = [];
    const { refs } = await packetsOfFlows(index, [f.flowId]);
    if (refs.length === 0) continue;
    await extractPackets(refs, (c) => {
      chunks.push(c);
    });
    const ours = join(work, `stall-${f.flowId}.pcapng`);
    writeFileSync(ours, Buffer.concat(chunks));
    const theirs = join(work, `stall-${f.flowId}-tcpdump.pcap`);
    tcpdumpFlow(run.tcpdump, f, theirs);
    const a = await packetsOf(ours);
    const b = await packetsOf(theirs);
    assertTimeOrder(a, f.flowId);
    const theirsByDirection = byDirection(b);
    for (const [src, frames] of byDirection(a)) {
      const recorded = (theirsByDirection.get(src) ?? []).map(frameKey);
      let j = 0;
      for (const p of frames) {
        const key = frameKey(p);
        while (j < recorded.length && recorded[j] !== key) j++;
        assert.ok(j < recorded.length, `${f.flowId}: a kept frame tcpdump did not record (or out of order in its direction)`);
        j++;
      }
    }
    kept += a.length;
  }
  assert.equal(kept, ps.kept, 'every kept packet found in its flow');
});
