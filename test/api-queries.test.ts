/**
 * GraphQL queries against a real server (127.0.0.1, ephemeral port) over a DuckDB store seeded
 * by importing a generated capture: flows with pagination, filters and orders, hosts, one host's
 * series, traffic series, anomalies, capture status, limits, masked errors, /health and /metrics.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parse, validate } from 'graphql';
import { pino } from 'pino';
import { MemoryBus } from '../src/bus/memory.js';
import { importFiles } from '../src/capture/import.js';
import { depthLimitRule } from '../src/api/limits.js';
import { buildSchema } from '../src/api/schema/index.js';
import { startApiServer } from '../src/api/server.js';
import type { AnomalyRecord, FlowStore } from '../src/store/types.js';
import { BASE, gql, gqlData, isoAt, sampleCapture, startTestServer, type SampleFlow, type TestServer } from './api-helpers.js';

const RANGE = { from: isoAt(0), to: isoAt(300) };
const US = 1_000_000;

function anomaly(id: string, kind: AnomalyRecord['kind'], startSec: number): AnomalyRecord {
  const t = (BASE + startSec) * US;
  return {
    ts: t,
    anomalyId: id,
    node: '',
    kind,
    severity: 'high',
    source: '10.0.0.9',
    targetIp: '10.0.1.1',
    targetPort: kind === 'SYN_FLOOD' ? 443 : 0,
    startedAt: t,
    lastSeen: t + 10 * US,
    state: 'ended',
    packets: 500,
    bytes: 30_000,
    evidence: '{"ports":120}',
    summary: `${kind} from 10.0.0.9`,
    evidenceFlows: '',
  };
}

describe('GraphQL API: queries', () => {
  let t: TestServer;
  let flows: SampleFlow[];
  const FLOW_FIELDS =
    'id firstSeen lastSeen transport clientIp clientPort serverIp serverPort clientPackets clientBytes serverPackets serverBytes tcpState app serverName';

  before(async () => {
    t = await startTestServer({ limits: { maxDepth: 4 } });
    const sample = sampleCapture(join(t.dir, 'sample.pcap'));
    flows = sample.flows;
    const summary = await importFiles([sample.path], { store: t.store, intervalSec: 60, activeTimeoutSec: 60 });
    assert.equal(summary.flows, 16, 'seeded flows');
    await t.store.write({ flows: [], hosts: [], traffic: [], anomalies: [anomaly('a1', 'PORT_SCAN', 10), anomaly('a2', 'SYN_FLOOD', 70)] });
    await t.store.flush();
  });
  after(() => t?.stop());

  it('pages through all flows in time order with cursors, totalCount and hasNextPage', async () => {
    const q = `query($from: DateTime, $to: DateTime, $after: String) {
      flows(from: $from, to: $to, first: 5, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ${FLOW_FIELDS} } } } }`;
    const seen: any[] = [];
    const pages: number[] = [];
    let afterCursor: string | null = null;
    for (;;) {
      const d: any = await gqlData(t.url, q, { ...RANGE, after: afterCursor });
      assert.equal(d.flows.totalCount, 16);
      pages.push(d.flows.edges.length);
      seen.push(...d.flows.edges.map((e: any) => e.node));
      assert.equal(d.flows.pageInfo.endCursor, d.flows.edges.at(-1).cursor);
      if (!d.flows.pageInfo.hasNextPage) break;
      afterCursor = d.flows.pageInfo.endCursor;
    }
    assert.deepEqual(pages, [5, 5, 5, 1]);
    assert.equal(new Set(seen.map((f) => f.id)).size, 16, 'no flow twice');
    const starts = seen.map((f) => f.firstSeen);
    assert.deepEqual(starts, [...starts].sort(), 'ordered by firstSeen');
    assert.equal(seen[0].firstSeen, `${isoAt(0).slice(0, -5)}.000000Z`, 'DateTime with microseconds');

    // Every flow's counts are the capture's.
    for (const want of flows) {
      const got = seen.find((f) => f.clientIp === want.clientIp && f.serverIp === want.serverIp && f.firstSeen.startsWith(isoAt(want.start).slice(0, 19)));
      assert.ok(got, `flow ${want.clientIp} -> ${want.serverIp} at +${want.start}s`);
      assert.deepEqual(
        {
          transport: got.transport,
          clientPackets: got.clientPackets,
          clientBytes: got.clientBytes,
          serverPackets: got.serverPackets,
          serverBytes: got.serverBytes,
        },
        {
          transport: want.transport,
          clientPackets: want.clientPackets,
          clientBytes: want.clientBytes,
          serverPackets: want.serverPackets,
          serverBytes: want.serverBytes,
        },
      );
    }
    const tcp = seen.find((f) => f.transport === 'tcp');
    assert.equal(tcp.tcpState, 'closed');
    assert.equal(seen.find((f) => f.transport === 'udp').tcpState, null, 'no TCP state for UDP');
  });

  it('filters by host, port, transport and minBytes, and orders by bytes', async () => {
    const q = `query($from: DateTime, $to: DateTime, $filter: FlowFilter, $orderBy: FlowOrder) {
      flows(from: $from, to: $to, filter: $filter, orderBy: $orderBy, first: 100) { totalCount edges { node { clientIp serverIp serverPort transport clientBytes serverBytes } } } }`;
    const run = async (filter: object, orderBy = 'TIME') => (await gqlData(t.url, q, { ...RANGE, filter, orderBy })).flows;

    const byHost = await run({ host: '10.0.0.2' });
    assert.equal(byHost.totalCount, 3);
    assert.ok(byHost.edges.every((e: any) => e.node.clientIp === '10.0.0.2'));
    assert.equal((await run({ port: 53 })).totalCount, 3);
    assert.equal((await run({ transport: 'icmp' })).totalCount, 1);
    assert.equal((await run({ host: '10.0.1.5', port: 443, transport: 'tcp' })).totalCount, 1);
    assert.equal((await run({ host: '10.0.1.5', port: 53 })).totalCount, 0);

    const big = flows.filter((f) => f.clientBytes + f.serverBytes >= 8000);
    const minBytes = await run({ minBytes: 8000 }, 'BYTES');
    assert.equal(minBytes.totalCount, big.length);
    const totals = minBytes.edges.map((e: any) => e.node.clientBytes + e.node.serverBytes);
    assert.deepEqual(
      totals,
      [...totals].sort((a: number, b: number) => b - a),
      'bytes descending',
    );
    assert.equal(minBytes.edges[0].node.serverIp, '10.0.1.12', 'largest flow first');
  });

  it('refuses a page larger than 1000, a bad cursor and a reversed range with clear errors', async () => {
    const tooBig = await gql(t.url, `{ flows(first: 1001) { totalCount } }`);
    assert.equal(tooBig.data, null);
    assert.match(tooBig.errors![0].message, /first must be an integer from 1 to 1000/);
    assert.equal(tooBig.errors![0].extensions?.code, 'BAD_USER_INPUT');

    const badCursor = await gql(t.url, `{ flows(first: 5, after: "bm90LWEtY3Vyc29y") { totalCount } }`);
    assert.match(badCursor.errors![0].message, /invalid cursor/, "the store's message reaches the client");

    const reversed = await gql(t.url, `query($from: DateTime, $to: DateTime) { flows(from: $to, to: $from) { totalCount } }`, RANGE);
    assert.match(reversed.errors![0].message, /from must be before to/);

    const badTime = await gql(t.url, `{ flows(from: "yesterday") { totalCount } }`);
    assert.match(badTime.errors![0].message, /DateTime must be ISO 8601/);
  });

  it('rejects queries deeper or costlier than the limits before running them', async () => {
    // This server allows depth 4: flows { edges { node { id } } } is fine, five levels are not.
    assert.ok((await gqlData(t.url, `{ flows(first: 1000) { edges { node { id } } } }`)).flows);
    const deep = await gql(t.url, `{ captureStatus { recentImports { summary { files { name } } } } }`);
    assert.equal(deep.status, 400);
    assert.match(deep.errors![0].message, /query depth 5 exceeds the maximum of 4/);
    // Depth through fragments counts too.
    const viaFragment = await gql(t.url, `fragment S on Import { summary { files { name } } } { captureStatus { recentImports { ...S } } }`);
    assert.match(viaFragment.errors![0].message, /query depth 5 exceeds/);

    const page = `edges { node { id firstSeen lastSeen node iface transport ipProto clientIp clientPort serverIp serverPort clientPackets clientBytes serverPackets serverBytes bytes clientTcpFlags serverTcpFlags tcpState app serverName confidence firstPackets appInfo } }`;
    // Per flow: edge and node 1 each, 24 scalars 0.1 each: 4,400 a page of 1,000 and its store query 1,000; twelve are too many.
    const pages = Array.from({ length: 12 }, (_, i) => `p${i}: flows(first: 1000, orderBy: ${i % 2 ? 'BYTES' : 'TIME'}) { ${page} }`).join(' ');
    const costly = await gql(t.url, `{ ${pages} }`);
    assert.match(costly.errors![0].message, /query cost \d+ exceeds the maximum of 50000/);
    // A store query per host: 1,001 store queries, whatever each one's size.
    const storeQueries = await gql(t.url, `{ hosts(limit: 1000) { ip series { ts bytesSent } } }`);
    assert.match(storeQueries.errors![0].message, /up to 1001 store queries; at most 16/);
    // Introspection obeys the same limits (the security issue: 10,000 aliased __schema took 2.1 GB).
    const introspection = await gql(t.url, `{ __schema { types { fields { type { ofType { ofType { name } } } } } } }`);
    assert.match(introspection.errors![0].message, /query depth 7 exceeds the maximum of 4/);

    // The default depth limit (8) on its own.
    const doc = parse(`{ a { b { c { d { e { f { g { h { i } } } } } } } } }`);
    const errors = validate(buildSchema(), doc, [depthLimitRule(8)]);
    assert.deepEqual(
      errors.map((e) => e.message),
      ['query depth 9 exceeds the maximum of 8'],
    );
  });

  it('serves the traffic series in buckets of the step, zeros included', async () => {
    const q = `query($from: DateTime, $to: DateTime, $step: Int) { traffic(from: $from, to: $to, step: $step) { ts bytes packets flows } }`;
    const d = await gqlData(t.url, q, { from: isoAt(0), to: isoAt(360), step: 60 });
    assert.equal(d.traffic.length, 6);
    assert.deepEqual(
      d.traffic.map((p: any) => p.ts.slice(0, 19)),
      [0, 60, 120, 180, 240, 300].map((s) => isoAt(s).slice(0, 19)),
    );
    const sum = (k: 'bytes' | 'packets' | 'flows') => d.traffic.reduce((n: number, p: any) => n + p[k], 0);
    assert.equal(
      sum('packets'),
      flows.reduce((n, f) => n + f.clientPackets + f.serverPackets, 0),
    );
    assert.equal(
      sum('bytes'),
      flows.reduce((n, f) => n + f.clientBytes + f.serverBytes, 0),
    );
    assert.equal(sum('flows'), 16);
    assert.deepEqual(
      d.traffic.slice(4).map((p: any) => p.packets),
      [0, 0],
      'no traffic after 4 minutes',
    );

    const wide = await gqlData(t.url, q, { from: isoAt(0), to: isoAt(240), step: 120 });
    assert.deepEqual(
      wide.traffic.map((p: any) => p.flows),
      [d.traffic[0].flows + d.traffic[1].flows, d.traffic[2].flows + d.traffic[3].flows],
    );

    const bad = await gql(t.url, q, { from: isoAt(0), to: isoAt(240), step: 30 });
    assert.match(bad.errors![0].message, /step must be a positive multiple of the aggregation interval \(60 s\)/);
  });

  it('ranks hosts with the sent/received split and peers', async () => {
    const d = await gqlData(
      t.url,
      `query($from: DateTime, $to: DateTime) { hosts(from: $from, to: $to, limit: 3) { ip bytesSent bytesReceived packetsSent packetsReceived flows peers } }`,
      RANGE,
    );
    assert.equal(d.hosts.length, 3);
    const top = d.hosts[0];
    assert.equal(top.ip, '10.0.0.1');
    const mine = flows.filter((f) => f.clientIp === '10.0.0.1');
    const pinged = flows.filter((f) => f.serverIp === '10.0.0.1');
    assert.equal(top.bytesSent, mine.reduce((n, f) => n + f.clientBytes, 0) + pinged.reduce((n, f) => n + f.serverBytes, 0));
    assert.equal(top.bytesReceived, mine.reduce((n, f) => n + f.serverBytes, 0) + pinged.reduce((n, f) => n + f.clientBytes, 0));
    assert.equal(top.flows, 13);
    assert.ok(top.peers >= 3, `peers ${top.peers}`);
  });

  it("gives one host's totals and its series per bucket, from the host records, in one store query", async () => {
    const q = `query($ip: String!, $from: DateTime, $to: DateTime) { host(ip: $ip, from: $from, to: $to) {
      ip bytesSent bytesReceived packetsSent packetsReceived flowsInitiated flowsReceived flows peers firstSeen lastSeen
      series(step: 60) { ts bytesSent bytesReceived flowsInitiated flowsReceived flows peers } } }`;
    // Count the store reads the query makes: one series query, no flow scans.
    const spied = t.store as unknown as Record<string, (...args: unknown[]) => unknown>;
    const calls: Record<string, number> = { hostSummary: 0, hostSeries: 0, queryFlows: 0 };
    for (const name of Object.keys(calls)) {
      const original = spied[name];
      spied[name] = (...args) => {
        calls[name]++;
        return original.apply(t.store, args);
      };
    }
    let d: any;
    try {
      d = await gqlData(t.url, q, { ip: '10.0.0.2', from: isoAt(0), to: isoAt(240) });
    } finally {
      for (const name of Object.keys(calls)) delete spied[name]; // the prototype's method again
    }
    assert.deepEqual(calls, { hostSummary: 1, hostSeries: 1, queryFlows: 0 });

    const dns = flows.filter((f) => f.clientIp === '10.0.0.2');
    const sum = (k: 'clientBytes' | 'serverBytes' | 'clientPackets' | 'serverPackets') => dns.reduce((n, f) => n + f[k], 0);
    assert.deepEqual(
      [d.host.bytesSent, d.host.bytesReceived, d.host.packetsSent, d.host.packetsReceived],
      [sum('clientBytes'), sum('serverBytes'), sum('clientPackets'), sum('serverPackets')],
    );
    assert.deepEqual([d.host.flows, d.host.flowsInitiated, d.host.flowsReceived, d.host.peers], [3, 3, 0, 1]);
    // Host records are per interval: first and last seen are the starts of the first and last minute.
    assert.deepEqual([d.host.firstSeen, d.host.lastSeen], [`${isoAt(0).slice(0, 19)}.000000Z`, `${isoAt(120).slice(0, 19)}.000000Z`]);
    assert.deepEqual(
      d.host.series.map((p: any) => p.ts.slice(0, 19)),
      [0, 60, 120, 180].map((s) => isoAt(s).slice(0, 19)),
    );
    assert.deepEqual(
      d.host.series.map((p: any) => [p.flows, p.flowsInitiated, p.flowsReceived, p.peers]),
      [
        [1, 1, 0, 1],
        [1, 1, 0, 1],
        [1, 1, 0, 1],
        [0, 0, 0, 0],
      ],
      'one DNS exchange per minute',
    );
    assert.deepEqual(
      d.host.series.map((p: any) => p.bytesSent),
      [...dns.map((f) => f.clientBytes), 0],
    );
    assert.deepEqual(
      d.host.series.map((p: any) => p.bytesReceived),
      [...dns.map((f) => f.serverBytes), 0],
    );

    const server = await gqlData(t.url, q, { ip: '10.0.2.1', from: isoAt(0), to: isoAt(240) });
    assert.deepEqual([server.host.flowsInitiated, server.host.flowsReceived], [0, 3]);
    assert.equal(server.host.bytesSent, sum('serverBytes'));
    assert.deepEqual(
      server.host.series.map((p: any) => p.flowsReceived),
      [1, 1, 1, 0],
    );

    const none = await gqlData(t.url, q, { ip: '192.0.2.99', from: isoAt(0), to: isoAt(240) });
    assert.equal(none.host, null);
    const elsewhere = await gqlData(t.url, q, { ip: '10.0.0.2', from: isoAt(3600), to: isoAt(7200) });
    assert.equal(elsewhere.host, null, 'no records in the range');
  });

  it("lists a host's top peers and service ports from its flows", async () => {
    const q = `query($ip: String!, $limit: Int) { host(ip: $ip, from: "${RANGE.from}", to: "${RANGE.to}") {
      topPeers(limit: $limit) { ip bytes packets flows } ports(limit: $limit) { transport port bytes packets flows } } }`;
    const total = (fs: SampleFlow[]) => ({
      bytes: fs.reduce((n, f) => n + f.clientBytes + f.serverBytes, 0),
      packets: fs.reduce((n, f) => n + f.clientPackets + f.serverPackets, 0),
      flows: fs.length,
    });

    const dns = flows.filter((f) => f.clientIp === '10.0.0.2');
    const client = await gqlData(t.url, q, { ip: '10.0.0.2' });
    assert.deepEqual(client.host.topPeers, [{ ip: '10.0.2.1', ...total(dns) }]);
    assert.deepEqual(client.host.ports, [{ transport: 'udp', port: 53, ...total(dns) }]);
    const server = await gqlData(t.url, q, { ip: '10.0.2.1' });
    assert.deepEqual(server.host.topPeers, [{ ip: '10.0.0.2', ...total(dns) }]);
    assert.deepEqual(server.host.ports, client.host.ports, 'the service port, whichever end the host is');

    // 10.0.0.1: twelve HTTPS servers (the later, the larger) and one ping it answered.
    const https = flows.filter((f) => f.clientIp === '10.0.0.1');
    const ping = flows.filter((f) => f.serverIp === '10.0.0.1');
    const top = await gqlData(t.url, q, { ip: '10.0.0.1', limit: 2 });
    assert.deepEqual(
      top.host.topPeers,
      [11, 10].map((i) => ({ ip: https[i].serverIp, ...total([https[i]]) })),
    );
    const all = await gqlData(t.url, q, { ip: '10.0.0.1' });
    assert.equal(all.host.topPeers.length, 10, 'default limit');
    assert.deepEqual(all.host.ports, [
      { transport: 'tcp', port: 443, ...total(https) },
      { transport: 'icmp', port: 0, ...total(ping) },
    ]);

    const bad = await gql(t.url, q, { ip: '10.0.0.1', limit: 1001 });
    assert.match(bad.errors![0].message, /limit must be an integer from 1 to 1000/);
  });

  it('lists anomalies in the range, by kind', async () => {
    const q = `query($from: DateTime, $to: DateTime, $kind: AnomalyKind) { anomalies(from: $from, to: $to, kind: $kind) { id kind severity state source targetIp targetPort startedAt packets bytes evidence summary } }`;
    const all = await gqlData(t.url, q, RANGE);
    assert.deepEqual(
      all.anomalies.map((a: any) => a.id),
      ['a2', 'a1'],
      'newest first',
    );
    const scans = await gqlData(t.url, q, { ...RANGE, kind: 'PORT_SCAN' });
    assert.deepEqual(scans.anomalies, [
      {
        id: 'a1',
        kind: 'PORT_SCAN',
        severity: 'HIGH',
        state: 'ENDED',
        source: '10.0.0.9',
        targetIp: '10.0.1.1',
        targetPort: null,
        startedAt: `${isoAt(10).slice(0, 19)}.000000Z`,
        packets: 500,
        bytes: 30000,
        evidence: '{"ports":120}',
        summary: 'PORT_SCAN from 10.0.0.9',
      },
    ]);
    const bad = await gql(t.url, `{ anomalies(kind: DDOS) { id } }`);
    assert.match(bad.errors![0].message, /DDOS/);
  });

  it('reports capture status with the store health', async () => {
    const d = await gqlData(t.url, `{ captureStatus { interfaces { name } packets drops imports { id } store { backend ok spooled } startedAt } }`);
    assert.deepEqual(d.captureStatus.store, { backend: 'duckdb', ok: true, spooled: 0 });
    assert.deepEqual(d.captureStatus.interfaces, []);
    assert.deepEqual(d.captureStatus.imports, []);
    assert.equal(d.captureStatus.packets, 0, 'nothing imported through the server');
    assert.match(d.captureStatus.startedAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  });

  it('answers /health and /metrics', async () => {
    const base = t.url.replace(/\/graphql$/, '');
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok', store: { backend: 'duckdb', ok: true } });
    const metrics = await fetch(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0.0.4/);
    const text = await metrics.text();
    assert.match(text, /^# TYPE flowlens_import_packets_total counter$/m);
    assert.match(text, /^flowlens_import_packets_total 0$/m);
    assert.match(text, /^flowlens_graphql_operations_total\{type="query"\} [1-9]\d*$/m);
    assert.match(text, /^flowlens_store_up 1$/m);
  });
});

describe('GraphQL API: unexpected errors', () => {
  it('masks them: a generic message, no stack trace or internals', async () => {
    // A store whose reads fail with an internal error (as a lost connection would).
    const failing = {
      backend: 'broken',
      health: async () => ({ backend: 'broken', ok: false, detail: 'down' }),
      topHosts: async () => {
        throw new Error('connection to /var/secret/flows.duckdb lost');
      },
    } as unknown as FlowStore;
    const bus = new MemoryBus();
    const server = await startApiServer({ store: failing, bus, logger: pino({ level: 'silent' }), port: 0 });
    try {
      const r = await gql(server.url, `{ hosts { ip } }`);
      assert.equal(r.errors?.length, 1);
      assert.equal(r.errors![0].message, 'Unexpected error.');
      const text = JSON.stringify(r);
      assert.doesNotMatch(text, /secret|stack|at .*\.ts:\d+/);
      const health = await fetch(server.url.replace(/\/graphql$/, '/health'));
      assert.equal(health.status, 503);
    } finally {
      await server.close();
    }
  });
});
