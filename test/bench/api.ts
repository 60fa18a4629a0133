// API figures (issue 4): latency of the main GraphQL queries over a store holding a day of
// aggregates, and how many concurrent graphql-ws subscribers of `flowUpdates` one server keeps fed
// with live events while losing none.
//
// The store is a fresh DuckDB file filled with a synthetic but consistent day: 1440 one-minute
// intervals of flow segments (short flows and long ones exported every minute), the per-interval
// host and traffic rows those segments add up to, and some anomalies. The real server listens on
// 127.0.0.1 with an ephemeral port. Queries are timed one after another over HTTP after a warm-up.
// Subscribers live in a child process (this file, forked), so that their parsing does not take the
// server's event loop; on one machine both share the CPU, which the figures report.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { rng } from './synth-pcap.js';
import { emptyRecord, emptySummary, FLOW } from '../../src/records/index.js';
import type { AnomalyRecord, FlowRecord, FlowSummary, HostRecord, RecordBatch, TrafficRecord } from '../../src/store/types.js';

const EMPTY_FLOW = emptyRecord(FLOW);

export interface ApiBenchOptions {
  /** Flow segments over the day (default 300,000). */
  flowRows?: number;
  /** Internal hosts (clients); servers are about twice as many (default 300). */
  hosts?: number;
  /** Timed requests per query (default 30) after `warmup` (default 3). */
  requests?: number;
  warmup?: number;
  /** Subscriber counts tried in order until one loses events. */
  subscriberSteps?: number[];
  /** Flow events published per second and for how long (default 2000/s for 6 s). */
  rate?: number;
  publishSeconds?: number;
  /** How long after the last publish every subscriber must have everything (default 3 s). */
  drainMs?: number;
  /** After the first losing step, how many steps between it and the last good one (default 4). */
  refine?: number;
  log?: (msg: string) => void;
}

export interface QueryLatency {
  query: string;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  note: string;
}

export interface SubscriberStep {
  subscribers: number;
  published: number;
  /** Subscribers that got every event before the deadline. */
  complete: number;
  minReceived: number;
  errors: number;
  /** Server's flowlens_subscription_events_dropped_total{topic="flow"} increase during the step. */
  dropped: number;
  /** Publish-to-receipt delay (sampled), ms. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** How long publishing took (the publisher shares the server's event loop), s. */
  publishedInSeconds: number;
  /** When the last subscriber had everything, after the last publish (NaN: never), ms. */
  lastAfterMs: number;
  /** CPU used during publish + drain, in cores (1 = one core busy the whole time). */
  serverCores: number;
  clientCores: number;
  ok: boolean;
}

export interface ApiBenchResult {
  store: { flowRows: number; hostRows: number; trafficRows: number; anomalies: number; fillSeconds: number };
  queries: QueryLatency[];
  subscribers: SubscriberStep[];
  /** Largest subscriber count with no loss (0: none). */
  maxSubscribers: number;
  rate: number;
  publishSeconds: number;
  drainMs: number;
  /** The dropped-events counter on /metrics at the end. */
  droppedTotal: number;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------
// Synthetic day

/** 2024-05-01T00:00:00Z in µs: a whole day, so 5-minute buckets align with it. */
export const DAY_START_US = Date.UTC(2024, 4, 1) * 1000;
const MINUTE_US = 60_000_000;
const INTERVALS = 1440;

interface AppProfile {
  app: string;
  transport: 'tcp' | 'udp';
  port: number;
  weight: number;
}
const APPS: AppProfile[] = [
  { app: 'TLS', transport: 'tcp', port: 443, weight: 50 },
  { app: 'DNS', transport: 'udp', port: 53, weight: 22 },
  { app: 'QUIC', transport: 'udp', port: 443, weight: 12 },
  { app: 'HTTP', transport: 'tcp', port: 80, weight: 6 },
  { app: 'SSH', transport: 'tcp', port: 22, weight: 1 },
  { app: 'NTP', transport: 'udp', port: 123, weight: 3 },
  { app: '', transport: 'tcp', port: 8443, weight: 6 },
];
const APP_WEIGHT = APPS.reduce((s, a) => s + a.weight, 0);

function pickApp(r: number): AppProfile {
  let x = r * APP_WEIGHT;
  for (const a of APPS) if ((x -= a.weight) < 0) return a;
  return APPS[0];
}

const clientIp = (i: number) => `10.1.${i >> 8}.${i & 255}`;
const serverIp = (i: number) => `${[203, 198, 151, 104][i & 3]}.${(i >> 2) & 255}.${(i * 7) & 255}.${1 + (i % 250)}`;

export interface DaySize {
  flowRows: number;
  hosts: number;
}

/** Busy host for the filtered queries: client 0 gets the largest share. */
export const BUSY_HOST = clientIp(0);

/**
 * The day as batches of 10 intervals. Flow segments: 85% of flows are short (one segment), the rest
 * last 2-10 minutes and are exported every minute; bytes follow a heavy tail. Host and traffic rows
 * are the segments of each interval summed.
 */
export function* syntheticDay(size: DaySize): Generator<RecordBatch> {
  const rand = rng(4);
  const servers = size.hosts * 2;
  // Segments per interval: a daily curve (quiet at night, busy in the afternoon).
  const curve = Array.from({ length: INTERVALS }, (_, m) => 0.35 + 0.65 * Math.max(0, Math.sin(((m - 360) / 1440) * 2 * Math.PI)) + 0.1 * rand());
  const curveSum = curve.reduce((a, b) => a + b, 0);
  let nextFlow = 0;
  /** Long flows still running: their next segment falls in a later interval. */
  let running: { rec: FlowRecord; left: number }[] = [];
  let batch: RecordBatch = { flows: [], hosts: [], traffic: [], anomalies: [] };
  let segmentsSoFar = 0;
  for (let m = 0; m < INTERVALS; m++) {
    const intervalUs = DAY_START_US + m * MINUTE_US;
    const target = Math.round((size.flowRows * curve.slice(0, m + 1).reduce((a, b) => a + b, 0)) / curveSum);
    const segments: FlowRecord[] = [];
    // Continue the long flows first.
    const still: typeof running = [];
    for (const r of running) {
      const bytesC = Math.round(r.rec.clientBytes * (0.5 + rand()));
      const bytesS = Math.round(r.rec.serverBytes * (0.5 + rand()));
      const ts = intervalUs + Math.floor(rand() * 1_000_000);
      const seg: FlowRecord = {
        ...r.rec,
        ts,
        lastSeen: intervalUs + 59_000_000,
        clientBytes: bytesC,
        serverBytes: bytesS,
        clientPackets: Math.max(1, Math.round(bytesC / 400)),
        serverPackets: Math.max(1, Math.round(bytesS / 1200)),
        final: r.left === 1,
        tcpState: r.rec.transport === 'tcp' ? (r.left === 1 ? 'closed' : 'established') : '',
      };
      segments.push(seg);
      if (r.left > 1) still.push({ rec: seg, left: r.left - 1 });
    }
    running = still;
    // New flows up to the interval's share.
    while (segmentsSoFar + segments.length < target) {
      const a = pickApp(rand());
      // Client 0 is busy; the others roughly Zipf-like.
      const c = rand() < 0.05 ? 0 : Math.floor(size.hosts * rand() ** 2);
      const s = Math.floor(servers * rand() ** 1.5);
      const first = intervalUs + Math.floor(rand() * 59_000_000);
      const heavy = rand() < 0.02;
      const serverBytes = a.app === 'DNS' ? 80 + Math.floor(rand() * 300) : Math.round(2000 / (0.02 + rand()) ** 1.3) * (heavy ? 200 : 1);
      const clientBytes = a.app === 'DNS' ? 60 + Math.floor(rand() * 40) : Math.round(serverBytes / (5 + rand() * 20)) + 300;
      const long = a.app !== 'DNS' && a.app !== 'NTP' && rand() < 0.15;
      const duration = long ? 59_000_000 - (first - intervalUs) : Math.floor(rand() * 5_000_000);
      const tcp = a.transport === 'tcp';
      const rec: FlowRecord = {
        ...EMPTY_FLOW,
        ts: first,
        flowId: `1${(nextFlow++).toString(16).padStart(15, '0')}`,
        node: 'bench',
        source: '',
        iface: 'eth0',
        firstSeen: first,
        lastSeen: first + duration,
        transport: a.transport,
        ipProto: tcp ? 6 : 17,
        clientIp: clientIp(c),
        clientPort: 32768 + Math.floor(rand() * 28000),
        serverIp: serverIp(s),
        serverPort: a.port,
        clientPackets: Math.max(1, Math.round(clientBytes / 400)),
        clientBytes,
        serverPackets: Math.max(1, Math.round(serverBytes / 1200)),
        serverBytes,
        clientTcpFlags: tcp ? 0x1b : 0,
        serverTcpFlags: tcp ? 0x1b : 0,
        tcpState: tcp ? (long ? 'established' : 'closed') : '',
        final: !long,
        app: a.app,
        serverName: a.app === '' || a.app === 'NTP' || a.app === 'SSH' ? '' : `svc${s % 500}.example.${['com', 'net', 'org'][s % 3]}`,
        confidence: a.app === '' ? 'unknown' : a.app === 'NTP' ? 'port' : 'dpi',
        firstPackets: tcp ? '+74 -74 +66 +583 -1434 +66 -1434 -1434' : '+72 -180',
        appInfo:
          a.app === 'TLS'
            ? '{"ja4":"t13d1516h2_8daaf6152771_02713d6af862","alpn":"h2","version":"TLSv1.3"}'
            : a.app === 'DNS'
              ? '{"qtype":"A","rcode":"NOERROR"}'
              : '',
        duration,
        endReason: long ? 'active-timeout' : 'idle',
      };
      segments.push(rec);
      if (long) running.push({ rec, left: 1 + Math.floor(rand() * 9) });
    }
    segmentsSoFar += segments.length;

    // The interval's host and traffic rows from its segments.
    const hosts = new Map<string, HostRecord & { peerSet: Set<string> }>();
    const host = (ip: string) => {
      let h = hosts.get(ip);
      if (!h) {
        h = {
          ts: intervalUs,
          node: 'bench',
          source: '',
          ip,
          bytesSent: 0,
          bytesReceived: 0,
          packetsSent: 0,
          packetsReceived: 0,
          flowsInitiated: 0,
          flowsReceived: 0,
          peers: 0,
          country: '',
          asn: 0,
          asOrg: '',
          network: '',
          peerSet: new Set(),
        };
        hosts.set(ip, h);
      }
      return h;
    };
    const traffic: TrafficRecord = { ts: intervalUs, node: 'bench', bytes: 0, packets: 0, flows: 0, source: '' };
    for (const f of segments) {
      const c = host(f.clientIp);
      const s = host(f.serverIp);
      c.bytesSent += f.clientBytes;
      c.packetsSent += f.clientPackets;
      c.bytesReceived += f.serverBytes;
      c.packetsReceived += f.serverPackets;
      s.bytesSent += f.serverBytes;
      s.packetsSent += f.serverPackets;
      s.bytesReceived += f.clientBytes;
      s.packetsReceived += f.clientPackets;
      c.peerSet.add(f.serverIp);
      s.peerSet.add(f.clientIp);
      const started = f.firstSeen >= intervalUs;
      if (started) {
        c.flowsInitiated++;
        s.flowsReceived++;
        traffic.flows++;
      }
      traffic.bytes += f.clientBytes + f.serverBytes;
      traffic.packets += f.clientPackets + f.serverPackets;
    }
    batch.flows.push(...segments);
    for (const { peerSet, ...h } of hosts.values()) batch.hosts.push({ ...h, peers: peerSet.size });
    batch.traffic.push(traffic);
    // An anomaly every half hour or so.
    if (m % 29 === 7) batch.anomalies!.push(syntheticAnomaly(m, intervalUs, rand));
    if (m % 10 === 9 || m === INTERVALS - 1) {
      yield batch;
      batch = { flows: [], hosts: [], traffic: [], anomalies: [] };
    }
  }
}

function syntheticAnomaly(m: number, at: number, rand: () => number): AnomalyRecord {
  const kinds = ['SYN_FLOOD', 'PORT_SCAN', 'HOST_SCAN', 'UDP_FLOOD', 'ICMP_FLOOD'] as const;
  const kind = kinds[m % kinds.length];
  const lastSeen = at + Math.floor((1 + rand() * 10) * MINUTE_US);
  return {
    ts: at,
    anomalyId: `a${m.toString(16).padStart(15, '0')}`,
    node: 'bench',
    kind,
    severity: (['low', 'medium', 'high', 'critical'] as const)[m % 4],
    source: kind === 'SYN_FLOOD' || kind === 'UDP_FLOOD' ? 'distributed' : serverIp(m),
    targetIp: clientIp(m % 50),
    targetPort: kind === 'PORT_SCAN' || kind === 'HOST_SCAN' || kind === 'ICMP_FLOOD' ? 0 : 443,
    startedAt: at,
    lastSeen,
    state: 'ended',
    packets: 10_000 + Math.floor(rand() * 100_000),
    bytes: 1_000_000 + Math.floor(rand() * 50_000_000),
    evidence: '{"rate":12000,"threshold":5000}',
    summary: `${kind} against ${clientIp(m % 50)}`,
    evidenceFlows: '',
  };
}

// ---------------------------------------------------------------------------------------------
// Queries

export const FLOW_FIELDS = `id firstSeen lastSeen node iface transport ipProto clientIp clientPort serverIp serverPort
  clientPackets clientBytes serverPackets serverBytes bytes clientTcpFlags serverTcpFlags tcpState app serverName
  confidence appInfo firstPackets`;
const FLOWS_QUERY = `query Flows($from: DateTime, $to: DateTime, $filter: FlowFilter, $first: Int, $orderBy: FlowOrder) {
  flows(from: $from, to: $to, filter: $filter, first: $first, orderBy: $orderBy) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { ${FLOW_FIELDS} } } } }`;

interface BenchQuery {
  name: string;
  query: string;
  variables: Record<string, unknown>;
  /** What the answer holds, for the notes column (and to check it is not empty). */
  describe: (data: any) => string;
}

function benchQueries(): BenchQuery[] {
  const from = new Date(DAY_START_US / 1000).toISOString();
  const to = new Date(DAY_START_US / 1000 + 86_400_000).toISOString();
  const day = { from, to };
  const page = (d: any) => `${d.flows.edges.length} of ${d.flows.totalCount}`;
  return [
    { name: 'flows by time, first 100', query: FLOWS_QUERY, variables: { ...day, first: 100, orderBy: 'TIME' }, describe: page },
    { name: 'flows by bytes, first 100', query: FLOWS_QUERY, variables: { ...day, first: 100, orderBy: 'BYTES' }, describe: page },
    {
      name: 'flows host=X app=TLS, by bytes',
      query: FLOWS_QUERY,
      variables: { ...day, first: 100, orderBy: 'BYTES', filter: { host: BUSY_HOST, app: 'TLS' } },
      describe: page,
    },
    {
      name: 'hosts top 20',
      query: `query($from: DateTime, $to: DateTime) { hosts(from: $from, to: $to, limit: 20) { ip bytes bytesSent bytesReceived packetsSent packetsReceived flows peers firstSeen lastSeen } }`,
      variables: day,
      describe: (d) => `${d.hosts.length} hosts`,
    },
    {
      name: 'host(ip) + series (10 min)',
      query: `query($ip: String!, $from: DateTime, $to: DateTime) { host(ip: $ip, from: $from, to: $to) { ip bytes bytesSent bytesReceived flows peers firstSeen lastSeen
        series(step: 600) { ts bytesSent bytesReceived packetsSent packetsReceived flows } } }`,
      variables: { ...day, ip: BUSY_HOST },
      describe: (d) => `${d.host?.series.length ?? 0} points`,
    },
    {
      name: 'traffic 24h, step 5 min',
      query: `query($from: DateTime, $to: DateTime) { traffic(from: $from, to: $to, step: 300) { ts bytes packets flows } }`,
      variables: day,
      describe: (d) => `${d.traffic.length} points`,
    },
    {
      name: 'anomalies 24h',
      query: `query($from: DateTime, $to: DateTime) { anomalies(from: $from, to: $to, limit: 100) { id kind severity source targetIp targetPort startedAt lastSeen state packets bytes evidence summary } }`,
      variables: day,
      describe: (d) => `${d.anomalies.length} anomalies`,
    },
  ];
}

async function post(url: string, query: string, variables: Record<string, unknown>): Promise<any> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: unknown; errors?: { message: string }[] };
  if (res.status !== 200 || body.errors?.length || !body.data) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body.errors ?? body).slice(0, 300)}`);
  return body.data;
}

/** Nearest-rank percentile. */
export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

// ---------------------------------------------------------------------------------------------
// Subscribers (child process)

const CHILD_ENV = 'FLOWLENS_BENCH_API_SUBSCRIBERS';
const SUBSCRIPTION = `subscription { flowUpdates { type flow { ${FLOW_FIELDS} } } }`;

type ToChild = { cmd: 'open'; url: string; count: number } | { cmd: 'expect'; n: number } | { cmd: 'stats' } | { cmd: 'close' };
type FromChild =
  | { ev: 'opened'; failed: number }
  | { ev: 'complete'; at: number }
  | { ev: 'stats'; received: number[]; errors: number; latencies: number[]; cpuUs: number }
  | { ev: 'closed' };

/** The child: K raw graphql-transport-ws connections, each with one flowUpdates subscription. */
function subscriberChild(): void {
  let sockets: WebSocket[] = [];
  let received: number[] = [];
  let errors = 0;
  let latencies: number[] = [];
  let expected = Infinity;
  let incomplete = 0;
  let cpuStart = process.cpuUsage();
  const send = (m: FromChild) => process.send!(m);
  process.on('message', async (m: ToChild) => {
    if (m.cmd === 'open') {
      received = new Array(m.count).fill(0);
      errors = 0;
      latencies = [];
      expected = Infinity;
      let failed = 0;
      const opened = Array.from({ length: m.count }, (_, i) => {
        return new Promise<void>((resolve) => {
          const ws = new WebSocket(m.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
          sockets.push(ws);
          ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: {} })));
          ws.on('message', (raw: Buffer) => {
            const text = raw.toString('utf8');
            // Cheap test first: a `next` message starts {"id":"1","type":"next"...
            const head = text.slice(0, 40);
            if (head.includes('"type":"next"')) {
              const n = ++received[i];
              // Sample the delay from publish (firstSeen is the publish time) to here.
              if (n % 25 === 1) {
                const ts = /"firstSeen":"([^"]+)"/.exec(text)?.[1];
                if (ts) latencies.push(Date.now() - Date.parse(ts));
              }
              if (n === expected && --incomplete === 0) send({ ev: 'complete', at: Date.now() });
              return;
            }
            const msg = JSON.parse(text) as { type: string };
            if (msg.type === 'connection_ack') {
              ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: SUBSCRIPTION } }));
              resolve();
            } else if (msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong' }));
            else if (msg.type === 'error' || msg.type === 'complete') errors++;
          });
          ws.on('error', () => {
            failed++;
            resolve();
          });
          ws.on('close', () => resolve());
        });
      });
      await Promise.all(opened);
      send({ ev: 'opened', failed });
    } else if (m.cmd === 'expect') {
      expected = m.n;
      incomplete = received.filter((r) => r < m.n).length;
      cpuStart = process.cpuUsage();
      if (incomplete === 0) send({ ev: 'complete', at: Date.now() });
    } else if (m.cmd === 'stats') {
      const cpu = process.cpuUsage(cpuStart);
      send({ ev: 'stats', received, errors, latencies, cpuUs: cpu.user + cpu.system });
    } else if (m.cmd === 'close') {
      await Promise.all(
        sockets.map(
          (ws) =>
            new Promise<void>((resolve) => {
              if (ws.readyState === WebSocket.CLOSED) return resolve();
              ws.once('close', () => resolve());
              ws.close(1000);
              setTimeout(() => {
                ws.terminate();
                resolve();
              }, 2000).unref();
            }),
        ),
      );
      sockets = [];
      send({ ev: 'closed' });
    }
  });
  process.on('disconnect', () => process.exit(0));
}

class ChildLink {
  private readonly waiters: { ev: FromChild['ev']; resolve: (m: FromChild) => void }[] = [];
  constructor(readonly child: ChildProcess) {
    child.on('message', (m: FromChild) => {
      const i = this.waiters.findIndex((w) => w.ev === m.ev);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
    });
  }
  send(m: ToChild): void {
    this.child.send(m);
  }
  /** The next message `ev`, or undefined after `timeoutMs`. */
  wait<E extends FromChild['ev']>(ev: E, timeoutMs: number): Promise<Extract<FromChild, { ev: E }> | undefined> {
    return new Promise((resolve) => {
      const w = { ev, resolve: resolve as (m: FromChild) => void };
      this.waiters.push(w);
      setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) {
          this.waiters.splice(i, 1);
          resolve(undefined);
        }
      }, timeoutMs).unref();
    });
  }
  /** Drops a pending wait (so that a late answer is not taken for the next one). */
  cancel(ev: FromChild['ev']): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) if (this.waiters[i].ev === ev) this.waiters.splice(i, 1);
  }
}

function liveFlow(n: number, nowUs: number): FlowSummary {
  return {
    ...emptySummary(FLOW),
    flowId: `2${n.toString(16).padStart(15, '0')}`,
    node: 'bench',
    iface: 'eth0',
    firstSeen: nowUs,
    lastSeen: nowUs,
    transport: 'tcp',
    ipProto: 6,
    clientIp: clientIp(n % 300),
    clientPort: 32768 + (n % 28000),
    serverIp: serverIp(n % 600),
    serverPort: 443,
    clientPackets: 3,
    clientBytes: 583,
    serverPackets: 2,
    serverBytes: 2868,
    clientTcpFlags: 0x1a,
    serverTcpFlags: 0x12,
    tcpState: 'established',
    app: 'TLS',
    serverName: `svc${n % 500}.example.com`,
    confidence: 'dpi',
    firstPackets: '+74 -74 +66 +583 -1434 -1434',
    appInfo: '{"alpn":"h2","version":"TLSv1.3"}',
    duration: 0,
    endReason: '',
  };
}

async function droppedOnMetrics(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = /^flowlens_subscription_events_dropped_total\{topic="flow"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------

export async function runApiBench(opts: ApiBenchOptions = {}): Promise<ApiBenchResult> {
  const log = opts.log ?? ((msg: string) => process.stderr.write(`${msg}\n`));
  const size: DaySize = { flowRows: opts.flowRows ?? 300_000, hosts: opts.hosts ?? 300 };
  const requests = opts.requests ?? 30;
  const warmup = opts.warmup ?? 3;
  const steps = opts.subscriberSteps ?? [10, 50, 100, 250, 500, 1000];
  const rate = opts.rate ?? 2000;
  const publishSeconds = opts.publishSeconds ?? 6;
  const drainMs = opts.drainMs ?? 3000;
  const refine = opts.refine ?? 4;
  const t0 = performance.now();

  const { pino } = await import('pino');
  const { MemoryBus } = await import('../../src/bus/memory.js');
  const { startApiServer } = await import('../../src/api/server.js');
  const { openStore } = await import('../../src/store/index.js');

  const dir = mkdtempSync(join(tmpdir(), 'flowlens-bench-api-'));
  const bus = new MemoryBus();
  let store: Awaited<ReturnType<typeof openStore>> | undefined;
  let server: Awaited<ReturnType<typeof startApiServer>> | undefined;
  let child: ChildProcess | undefined;
  try {
    // ---- fill
    store = await openStore({ db: join(dir, 'day.duckdb') });
    const counts = { flowRows: 0, hostRows: 0, trafficRows: 0, anomalies: 0, fillSeconds: 0 };
    const tf = performance.now();
    for (const b of syntheticDay(size)) {
      counts.flowRows += b.flows.length;
      counts.hostRows += b.hosts.length;
      counts.trafficRows += b.traffic.length;
      counts.anomalies += b.anomalies?.length ?? 0;
      await store.write(b);
    }
    await store.flush();
    counts.fillSeconds = (performance.now() - tf) / 1000;
    log(
      `api: store filled with a day: ${counts.flowRows} flow segments, ${counts.hostRows} host rows (${Math.round(counts.hostRows / INTERVALS)} per interval), ${counts.trafficRows} traffic rows, ${counts.anomalies} anomalies in ${counts.fillSeconds.toFixed(1)} s`,
    );

    server = await startApiServer({ store, bus, logger: pino({ level: 'silent' }), host: '127.0.0.1', port: 0, flow: { intervalSec: 60 }, webRoot: null });
    const url = server.url;
    const base = url.replace(/\/graphql$/, '');

    // ---- queries
    const queries: QueryLatency[] = [];
    for (const q of benchQueries()) {
      let note = '';
      for (let i = 0; i < warmup; i++) note = q.describe(await post(url, q.query, q.variables));
      const times: number[] = [];
      for (let i = 0; i < requests; i++) {
        const s = performance.now();
        await post(url, q.query, q.variables);
        times.push(performance.now() - s);
      }
      const r = { query: q.name, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99), requests, note };
      queries.push(r);
      log(`api: ${q.name}: p50 ${r.p50Ms.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms (${note})`);
    }

    // ---- subscribers
    child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, [CHILD_ENV]: '1' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const link = new ChildLink(child);
    const active = () => server!.metrics.value('flowlens_subscriptions_active', { field: 'flowUpdates' });
    const subscribers: SubscriberStep[] = [];
    let maxSubscribers = 0;
    let flowNo = 0;
    const tryStep = async (k: number): Promise<SubscriberStep> => {
      link.send({ cmd: 'open', url, count: k });
      const opened = await link.wait('opened', 30_000);
      const readyBy = Date.now() + 15_000;
      while (active() < k && Date.now() < readyBy) await sleep(20);
      if (!opened || opened.failed > 0 || active() < k) {
        log(`api: ${k} subscribers: only ${active()} subscriptions became active (${opened ? `${opened.failed} connections failed` : 'timed out opening'})`);
        const failed = {
          subscribers: k,
          published: 0,
          complete: active(),
          minReceived: 0,
          errors: opened?.failed ?? k,
          dropped: 0,
          latencyP50Ms: NaN,
          latencyP99Ms: NaN,
          publishedInSeconds: NaN,
          lastAfterMs: NaN,
          serverCores: NaN,
          clientCores: NaN,
          ok: false,
        };
        link.send({ cmd: 'close' });
        await link.wait('closed', 15_000);
        return failed;
      }
      const total = Math.round(rate * publishSeconds);
      const droppedBefore = await droppedOnMetrics(base);
      let whenDue = () => {};
      link.send({ cmd: 'expect', n: total });
      // Judged by wall-clock times, not by a timer here: a busy event loop runs timers late.
      const complete = new Promise<Extract<FromChild, { ev: 'complete' }> | undefined>((resolve) => {
        void link.wait('complete', 120_000).then(resolve);
        whenDue = () => resolve(undefined);
      });
      // ---- publish `total` distinct flows at `rate`, in 10 ms ticks; no flow repeats, so coalescing keeps every one.
      const cpu0 = process.cpuUsage();
      const p0 = performance.now();
      let published = 0;
      let publishedIn = 0;
      let publishEnd = Date.now();
      // The publisher shares the server's event loop: when the loop is too busy to keep the rate
      // (25% late), the step has lost (a capture would be dropping packets by then).
      const giveUpAt = p0 + publishSeconds * 1250;
      while (published < total && performance.now() < giveUpAt) {
        const due = Math.min(total, Math.floor(((performance.now() - p0) / 1000) * rate));
        const nowUs = Date.now() * 1000;
        for (; published < due; published++) bus.publish('flow', { type: 'start', flow: liveFlow(flowNo++, nowUs) });
        publishedIn = (performance.now() - p0) / 1000;
        publishEnd = Date.now();
        if (published < total) await sleep(10);
      }
      const deadline = publishEnd + drainMs;
      const grace = setTimeout(() => whenDue(), drainMs + 2000);
      const last = await complete;
      clearTimeout(grace);
      link.cancel('complete');
      const done = published === total && last !== undefined && last.at <= deadline;
      const elapsed = (performance.now() - p0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      link.send({ cmd: 'stats' });
      const stats = (await link.wait('stats', 10_000))!;
      const dropped = (await droppedOnMetrics(base)) - droppedBefore;
      const got = stats.received;
      const step: SubscriberStep = {
        subscribers: k,
        published,
        complete: got.filter((n) => n >= total).length,
        minReceived: Math.min(...got),
        errors: stats.errors,
        dropped,
        latencyP50Ms: percentile(stats.latencies, 50),
        latencyP99Ms: percentile(stats.latencies, 99),
        serverCores: (cpu.user + cpu.system) / 1e6 / elapsed,
        clientCores: stats.cpuUs / 1e6 / elapsed,
        publishedInSeconds: publishedIn,
        lastAfterMs: last ? last.at - publishEnd : NaN,
        ok: done && got.every((n) => n === total) && stats.errors === 0 && dropped === 0,
      };
      log(
        `api: ${k} subscribers, ${published}/${total} events at ${rate}/s: ${step.complete}/${k} got all (min ${step.minReceived}), dropped ${dropped}, delay p50 ${step.latencyP50Ms.toFixed(0)} ms p99 ${step.latencyP99Ms.toFixed(0)} ms, CPU server ${step.serverCores.toFixed(2)} client ${step.clientCores.toFixed(2)} cores${step.ok ? '' : ' -> LOSING'}`,
      );
      link.send({ cmd: 'close' });
      await link.wait('closed', 30_000);
      const goneBy = Date.now() + 10_000;
      while (active() > 0 && Date.now() < goneBy) await sleep(20);
      return step;
    };
    // The steps in order until one loses; then halve the gap to the last good one a few times.
    let losing = 0;
    for (const k of steps) {
      const step = await tryStep(k);
      subscribers.push(step);
      if (!step.ok) {
        losing = k;
        break;
      }
      maxSubscribers = k;
    }
    for (let i = 0; i < refine && losing && losing - maxSubscribers > 1; i++) {
      const k = Math.round((maxSubscribers + losing) / 2);
      const step = await tryStep(k);
      subscribers.push(step);
      if (step.ok) maxSubscribers = k;
      else losing = k;
    }
    const droppedTotal = await droppedOnMetrics(base);
    return { store: counts, queries, subscribers, maxSubscribers, rate, publishSeconds, drainMs, droppedTotal, seconds: (performance.now() - t0) / 1000 };
  } finally {
    if (child && child.exitCode === null) {
      child.disconnect();
      const exited = new Promise((r) => child!.once('exit', r));
      if (!(await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]))) child.kill('SIGKILL');
    }
    await server?.close();
    await bus.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The figures as printed by `npm run bench`. */
export function formatApiBench(r: ApiBenchResult): string {
  const out: string[] = [];
  const s = r.store;
  out.push(
    `API over a day of aggregates (DuckDB): ${s.flowRows} flow segments, ${s.hostRows} host rows, ${s.trafficRows} traffic rows, ${s.anomalies} anomalies`,
  );
  out.push(`(sequential requests over HTTP on 127.0.0.1, ${r.queries[0]?.requests ?? 0} timed per query after a warm-up)`);
  out.push(`${'query'.padEnd(34)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}  answer`);
  for (const q of r.queries) out.push(`${q.query.padEnd(34)}${q.p50Ms.toFixed(1).padStart(9)}${q.p99Ms.toFixed(1).padStart(9)}  ${q.note}`);
  out.push('');
  out.push(`flowUpdates subscribers (graphql-ws, one connection each), ${Math.round(r.rate * r.publishSeconds)} distinct flow events at ${r.rate}/s, all due ${r.drainMs} ms after the last
('last at': when the last subscriber had all, after the last publish; 'pub s': how long publishing took on the server's loop; delay: publish to receipt, sampled):`);
  out.push(
    `${'subscribers'.padStart(11)}${'complete'.padStart(10)}${'min got'.padStart(9)}${'dropped'.padStart(9)}${'delay p50'.padStart(11)}${'p99 ms'.padStart(8)}${'last at ms'.padStart(11)}${'pub s'.padStart(7)}${'CPU srv'.padStart(9)}${'client'.padStart(8)}`,
  );
  for (const x of r.subscribers) {
    out.push(
      `${String(x.subscribers).padStart(11)}${`${x.complete}/${x.subscribers}`.padStart(10)}${String(x.minReceived).padStart(9)}${String(x.dropped).padStart(9)}${x.latencyP50Ms.toFixed(0).padStart(11)}${x.latencyP99Ms.toFixed(0).padStart(8)}${(Number.isNaN(x.lastAfterMs) ? 'never' : x.lastAfterMs.toFixed(0)).padStart(11)}${x.publishedInSeconds.toFixed(1).padStart(7)}${x.serverCores.toFixed(2).padStart(9)}${x.clientCores.toFixed(2).padStart(8)}${x.ok ? '' : '  LOSING'}`,
    );
  }
  const capped = r.subscribers.every((x) => x.ok) ? ' (no step lost events: the real figure is higher)' : '';
  out.push(
    `subscribers kept fed with every event: ${r.maxSubscribers}${capped}; server's flowlens_subscription_events_dropped_total{topic="flow"}: ${r.droppedTotal}`,
  );
  out.push(`(subscribers and server share this machine's CPU; API bench took ${r.seconds.toFixed(0)} s)`);
  return out.join('\n');
}

if (process.env[CHILD_ENV] === '1' && process.send) subscriberChild();
