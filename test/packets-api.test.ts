// /pcap and the pcapUrl fields on a real server over a DuckDB store: corpus captures imported with
// the packet index; a flow's pcapUrl downloads (with the bearer token) the same bytes as
// `tshark -r ORIGINAL -Y '<its 5-tuple>' -F pcap -w`, under the name a Wireshark user expects; an
// anomaly's, the flows it names as evidence, as tshark writes theirs. The route keeps GraphQL's rules (token,
// cross-site, Host); packets never held are 404 and a null pcapUrl with the reason; packets whose
// file is gone are 410 and said to be evicted, never served as an empty capture.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { startApiServer, type ApiServer } from '../src/api/server.js';
import { MemoryBus } from '../src/bus/memory.js';
import { importFiles } from '../src/capture/import.js';
import { importSource } from '../src/capture/source.js';
import { PacketIndexWriter } from '../src/packets/index-writer.js';
import { openStore } from '../src/store/index.js';
import { EVIDENCE_FLOW_IDS, parseEvidenceFlows } from '../src/records/anomaly.js';
import type { FlowStore } from '../src/store/types.js';
import { gql } from './api-helpers.js';
import { tupleFilter as flowTuples } from './helpers/flow-tuples.js';

const exec = promisify(execFile);
const NDPI = join(import.meta.dirname, '..', '..', 'shared', 'corpus', 'ndpi', 'pcap');
const skip = existsSync(NDPI) ? false : `corpus absent (${NDPI})`;
const TOKEN = 'packets-test-token';
const work = mkdtempSync(join(tmpdir(), 'flowlens-pcap-api-'));
const KXUN = join(work, '1kxun.pcap');
const SCAN = join(work, 'synscan.pcap');
const packetsDir = join(work, 'packets');
let store: FlowStore;
let server: ApiServer;
let bus: MemoryBus;

before(async () => {
  if (skip) return;
  copyFileSync(join(NDPI, '1kxun.pcap'), KXUN);
  copyFileSync(join(NDPI, 'synscan.pcap'), SCAN);
  store = await openStore({ db: join(work, 'flows.duckdb') });
  for (const file of [KXUN, SCAN]) {
    const source = await importSource([file]);
    await importFiles([file], { store, source, packetIndex: new PacketIndexWriter(packetsDir, { source }) });
  }
  bus = new MemoryBus();
  server = await startApiServer({ store, bus, logger: pino({ level: 'silent' }), host: '127.0.0.1', port: 0, token: TOKEN, packetsDir, webRoot: null });
});

after(async () => {
  await server?.close();
  await bus?.close();
  await store?.close();
  rmSync(work, { recursive: true, force: true });
});

interface GqlFlow {
  id: string;
  transport: string;
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
  clientPackets: number;
  serverPackets: number;
  firstSeen: string;
  pcapUrl: string | null;
  packetsUnavailable: string | null;
}

const WHOLE = { from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' };

async function flows(filter: Record<string, unknown>): Promise<GqlFlow[]> {
  const r = await gql<{ flows: { edges: { node: GqlFlow }[] } }>(
    server.url,
    `query($from: DateTime, $to: DateTime, $filter: FlowFilter) { flows(from: $from, to: $to, filter: $filter, first: 1000) { edges { node {
      id transport clientIp clientPort serverIp serverPort clientPackets serverPackets firstSeen pcapUrl packetsUnavailable } } } }`,
    { ...WHOLE, filter },
    TOKEN,
  );
  assert.deepEqual(r.errors ?? [], []);
  return r.data!.flows.edges.map((e) => e.node);
}

const base = () => server.url.replace(/\/graphql$/, '').replace(/\/$/, '');
const get = (path: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) => fetch(`${base()}${path}`, { headers });

async function tsharkPcap(original: string, filter: string): Promise<Buffer> {
  const out = join(work, `tshark-${Math.random().toString(36).slice(2)}.pcap`);
  await exec('tshark', ['-r', original, '-Y', filter, '-F', 'pcap', '-w', out]);
  return readFileSync(out);
}

function largestTcp(list: GqlFlow[]): GqlFlow {
  const key = (f: GqlFlow) => `${f.clientIp}:${f.clientPort} ${f.serverIp}:${f.serverPort}`;
  const count = new Map<string, number>();
  for (const f of list) count.set(key(f), (count.get(key(f)) ?? 0) + 1);
  return list
    .filter((f) => f.transport === 'tcp' && count.get(key(f)) === 1)
    .sort((a, b) => b.clientPackets + b.serverPackets - (a.clientPackets + a.serverPackets))[0];
}

test("a flow's pcapUrl downloads the flow byte for byte as tshark writes it, named for Wireshark", { skip }, async () => {
  const f = largestTcp(await flows({ host: '192.168.2.126' }));
  assert.ok(f, 'a TCP flow of 1kxun');
  assert.equal(f.pcapUrl, `/pcap?flow=${f.id}`);
  assert.equal(f.packetsUnavailable, null);
  const res = await get(f.pcapUrl!);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/vnd.tcpdump.pcap');
  const time = f.firstSeen.replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
  assert.equal(res.headers.get('content-disposition'), `attachment; filename="flowlens-${f.clientIp}-${f.serverIp}-${time}.pcap"`);
  const ours = Buffer.from(await res.arrayBuffer());
  const theirs = await tsharkPcap(KXUN, `ip.addr==${f.clientIp} && ip.addr==${f.serverIp} && tcp.port==${f.clientPort} && tcp.port==${f.serverPort} && !icmp`);
  assert.ok(ours.equals(theirs), `${ours.length} bytes against tshark's ${theirs.length}`);
});

test("an anomaly's pcapUrl downloads the flows it names (an nmap SYN scan) as tshark writes them", { skip }, async () => {
  const r = await gql<{ anomalies: { id: string; kind: string; source: string; targetIp: string; pcapUrl: string | null; evidenceFlows: string }[] }>(
    server.url,
    'query($from: DateTime, $to: DateTime) { anomalies(from: $from, to: $to) { id kind source targetIp pcapUrl packetsUnavailable evidenceFlows } }',
    WHOLE,
    TOKEN,
  );
  assert.deepEqual(r.errors ?? [], []);
  const scan = r.data!.anomalies.find((a) => a.kind === 'PORT_SCAN');
  assert.ok(scan?.pcapUrl, 'the scan has a pcapUrl');
  const res = await get(scan.pcapUrl);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('x-flowlens-anomaly-flows') ?? '', /^evidence; total=\d+$/);
  const ours = Buffer.from(await res.arrayBuffer());
  // The flows it names: the first and the last 100 of its ~1,000 probes.
  const ids = new Set(parseEvidenceFlows(scan.evidenceFlows)?.ids ?? []);
  assert.equal(ids.size, 2 * EVIDENCE_FLOW_IDS);
  const named: GqlFlow[] = [];
  for (let after: string | null = null; ; ) {
    const page: { flows: { edges: { node: GqlFlow }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } = (
      await gql<{ flows: { edges: { node: GqlFlow }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }>(
        server.url,
        `query($from: DateTime, $to: DateTime, $filter: FlowFilter, $after: String) { flows(from: $from, to: $to, filter: $filter, first: 1000, after: $after) {
          edges { node { id transport clientIp clientPort serverIp serverPort } } pageInfo { hasNextPage endCursor } } }`,
        { ...WHOLE, filter: { host: scan.source }, after },
        TOKEN,
      )
    ).data!;
    named.push(...page.flows.edges.map((e) => e.node).filter((f) => ids.has(f.id)));
    if (!page.flows.pageInfo.hasNextPage) break;
    after = page.flows.pageInfo.endCursor;
  }
  assert.equal(named.length, ids.size, 'every flow named is in the store');
  const theirs = await tsharkPcap(SCAN, flowTuples(named));
  assert.ok(theirs.length > 10_000);
  assert.ok(ours.equals(theirs), `${ours.length} bytes against tshark's ${theirs.length}`);
});

test('/pcap keeps the rules of /graphql: token, cross-site, method; bad and unknown requests', { skip }, async () => {
  const f = largestTcp(await flows({ host: '192.168.2.126' }));
  assert.equal((await get(f.pcapUrl!, {})).status, 401, 'no token');
  assert.equal((await get(f.pcapUrl!, { authorization: 'Bearer wrong' })).status, 401, 'wrong token');
  assert.equal((await get(f.pcapUrl!, { authorization: `Bearer ${TOKEN}`, origin: 'https://evil.example' })).status, 403, 'cross-site');
  assert.equal((await fetch(`${base()}${f.pcapUrl}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 405);
  const bad = await get('/pcap?flow=nothex');
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { errors: { message: string }[] }).errors[0].message, /not a flow id: 'nothex'/);
  assert.equal((await get('/pcap')).status, 400, 'nothing asked');
  const unknown = await get('/pcap?flow=0123456789abcdef');
  assert.equal(unknown.status, 404);
  assert.match(((await unknown.json()) as { errors: { message: string }[] }).errors[0].message, /no packets are held for flow 0123456789abcdef/);
  const filtered = await get(`/pcap?filter=${encodeURIComponent(`host=${f.clientIp} port=${f.serverPort}`)}&from=${WHOLE.from}&to=${WHOLE.to}`);
  assert.equal(filtered.status, 200);
  const theirs = await tsharkPcap(KXUN, `ip.addr==${f.clientIp} && tcp.port==${f.serverPort} && !icmp`);
  assert.ok(Buffer.from(await filtered.arrayBuffer()).equals(theirs), 'a filter over a range, as tshark');
});

interface GqlPackets {
  pcapUrl: string | null;
  packetsUnavailable: string | null;
  fileName: string | null;
  packets: {
    ts: string;
    src: string;
    srcPort: number;
    dst: string;
    dstPort: number;
    length: number;
    capturedLength: number;
    tcpFlags: number | null;
    payloadLength: number;
    payloadHex: string;
  }[];
}

async function flowPackets(flow: string, first: number, payloadBytes: number) {
  return gql<{ flowPackets: GqlPackets }>(
    server.url,
    `query($flow: ID!, $first: Int, $payloadBytes: Int) { flowPackets(flow: $flow, first: $first, payloadBytes: $payloadBytes) {
      pcapUrl packetsUnavailable fileName packets { ts src srcPort dst dstPort length capturedLength tcpFlags payloadLength payloadHex } } }`,
    { flow, first, payloadBytes },
    TOKEN,
  );
}

test("flowPackets lists a flow's first packets as tshark reads them: time, ends, lengths, TCP flags, payload", { skip }, async () => {
  const f = largestTcp(await flows({ host: '192.168.2.126' }));
  const r = await flowPackets(f.id, 40, 64);
  assert.deepEqual(r.errors ?? [], []);
  const got = r.data!.flowPackets;
  assert.equal(got.pcapUrl, `/pcap?flow=${f.id}`);
  assert.equal(got.packetsUnavailable, null);
  const time = f.firstSeen.replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
  assert.equal(got.fileName, `flowlens-${f.clientIp}-${f.serverIp}-${time}.pcap`);
  const { stdout } = await exec(
    'tshark',
    [
      '-r',
      KXUN,
      '-Y',
      `ip.addr==${f.clientIp} && ip.addr==${f.serverIp} && tcp.port==${f.clientPort} && tcp.port==${f.serverPort} && !icmp`,
      '-T',
      'fields',
      '-E',
      'separator=|',
      '-e',
      'frame.time_epoch',
      '-e',
      'ip.src',
      '-e',
      'tcp.srcport',
      '-e',
      'ip.dst',
      '-e',
      'tcp.dstport',
      '-e',
      'frame.len',
      '-e',
      'frame.cap_len',
      '-e',
      'tcp.flags',
      '-e',
      'tcp.len',
      '-e',
      'tcp.payload',
    ],
    { maxBuffer: 64 << 20 },
  );
  const theirs = stdout
    .trim()
    .split('\n')
    .map((line) => line.split('|'));
  assert.ok(theirs.length > 40, `the flow has ${theirs.length} packets`);
  assert.equal(got.packets.length, 40);
  got.packets.forEach((p, i) => {
    const [epoch, src, sport, dst, dport, len, caplen, flags, tcpLen, payload] = theirs[i];
    const at = `packet ${i + 1}`;
    const [sec, frac = ''] = epoch.split('.');
    assert.equal(p.ts, `${new Date(Number(sec) * 1000).toISOString().slice(0, 19)}.${frac.padEnd(6, '0').slice(0, 6)}Z`, `${at}: time`);
    assert.deepEqual([p.src, p.srcPort, p.dst, p.dstPort], [src, Number(sport), dst, Number(dport)], at);
    assert.deepEqual([p.length, p.capturedLength, p.tcpFlags, p.payloadLength], [Number(len), Number(caplen), Number(flags), Number(tcpLen)], at);
    assert.equal(p.payloadHex, (payload ?? '').replace(/:/g, '').slice(0, 128), at);
  });
  assert.ok(
    got.packets.some((p) => p.payloadHex.length === 128),
    'payloads cut at payloadBytes',
  );
});

test('flowPackets: bounds and flows whose packets are not held', { skip }, async () => {
  for (const [first, payloadBytes, message] of [
    [201, 10, /first must be 0 to 200; got 201/],
    [10, 4097, /payloadBytes must be 0 to 4096; got 4097/],
    [-1, 10, /first must be 0 to 200/],
  ] as const) {
    const r = await flowPackets('0123456789abcdef', first, payloadBytes);
    assert.match(r.errors?.[0]?.message ?? '', message);
  }
  assert.match((await flowPackets('nothex', 1, 1)).errors?.[0]?.message ?? '', /flow must be a flow id \(16 hex digits\)/);
  const none = await flowPackets('0123456789abcdef', 10, 10);
  assert.deepEqual(none.errors ?? [], []);
  assert.deepEqual(none.data!.flowPackets, {
    pcapUrl: null,
    packetsUnavailable: 'no packets are held for this flow (imported without the packet index, or not kept by the capture)',
    fileName: null,
    packets: [],
  });
});

test('evicted packets: pcapUrl null with the reason, /pcap 410, never an empty capture', { skip }, async () => {
  const f = largestTcp(await flows({ host: '192.168.2.126' }));
  rmSync(KXUN);
  const [after] = (await flows({ host: '192.168.2.126' })).filter((x) => x.id === f.id);
  assert.equal(after.pcapUrl, null);
  assert.match(after.packetsUnavailable ?? '', /1kxun\.pcap, which is gone \(evicted or removed\)/);
  const res = await get(`/pcap?flow=${f.id}`);
  assert.equal(res.status, 410);
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.match(((await res.json()) as { errors: { message: string }[] }).errors[0].message, /which is gone/);
  const listed = await flowPackets(f.id, 10, 10);
  assert.equal(listed.data?.flowPackets.pcapUrl, null);
  assert.match(listed.data?.flowPackets.packetsUnavailable ?? '', /which is gone/);
  assert.deepEqual(listed.data?.flowPackets.packets, []);
});
