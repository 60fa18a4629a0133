// One contract suite for every store back end (see test/store-backends.ts). The expected results
// come from a small reference implementation of the contract over the records written (summarise
// below), plus literal figures for a few cases so a bug shared by both cannot hide.
//
// A QuestDB server may be shared between runs and keeps what earlier runs wrote, so each run
// writes under its own node names, flow ids and IP prefix, and every query filters on them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { emptyRecord, FLOW } from '../src/records/index.js';
import { DuckDbStore } from '../src/store/duckdb.js';
import { canExplore, type ExploreDimension, type ExploreFilter } from '../src/store/explore.js';
import {
  MAX_PAGE_SIZE,
  StoreQueryError,
  type AnomalyRecord,
  type FlowFilter,
  type FlowOrder,
  type FlowRecord,
  type FlowStore,
  type FlowSummary,
  type HostRecord,
  type TimeRange,
  type TrafficRecord,
} from '../src/store/types.js';
import { flowSummary } from './helpers/records.js';
import { storeBackends, tempDir } from './store-backends.js';

const SECOND = 1_000_000;
const INTERVAL = 10 * SECOND;

/** Everything one run writes, under names no other run uses. */
function makeFixture() {
  const run = randomBytes(4).toString('hex');
  const node = `contract-${run}`;
  const otherNode = `${node}-other`;
  const net = `10.${randomInt(1, 255)}.${randomInt(1, 255)}`;
  // Aligned to the minute so traffic buckets of 10 s and 20 s start exactly at `base`.
  const base = Math.floor(Date.now() / 60_000) * 60 * SECOND;
  const range: TimeRange = { from: base, to: base + 60 * SECOND };
  const flowId = (i: number) => run + i.toString(16).padStart(8, '0');

  const flows: FlowRecord[] = [];
  /** A flow of `segments.length` segments; segment k starts at segments[k] (µs). */
  const addFlow = (i: number, segments: number[], opts: { transport: string; serverPort: number; app: string; serverName: string; node: string }) => {
    const tcp = opts.transport === 'tcp';
    let clientFlags = 0;
    segments.forEach((ts, k) => {
      const final = k === segments.length - 1;
      clientFlags |= tcp ? (k === 0 ? 0x12 : 0x08) | (final ? 0x01 : 0) : 0;
      flows.push({
        ...emptyRecord(FLOW),
        ts,
        flowId: flowId(i),
        node: opts.node,
        source: '',
        iface: 'eth0',
        firstSeen: segments[0],
        lastSeen: ts + SECOND,
        transport: opts.transport,
        ipProto: tcp ? 6 : opts.transport === 'udp' ? 17 : 1,
        clientIp: `${net}.${1 + (i % 3)}`,
        clientPort: opts.transport === 'icmp' ? 0 : 40_000 + i,
        serverIp: `${net}.${100 + (i % 4)}`,
        serverPort: opts.serverPort,
        clientPackets: k + 1 + (i % 3),
        clientBytes: 100 * ((i % 4) + 1),
        serverPackets: 2 * (k + 1),
        serverBytes: 500,
        clientTcpFlags: clientFlags,
        serverTcpFlags: tcp ? 0x12 : 0,
        tcpState: !tcp ? '' : !final ? 'established' : i % 5 === 0 ? 'reset' : 'closed',
        final,
        app: opts.app,
        serverName: opts.serverName,
        confidence: opts.app ? 'dpi' : 'unknown',
        firstPackets: tcp ? '+74 -74 +66 +583' : '+80 -120',
        appInfo: opts.app === 'tls' ? '{"ja4":"t13d1516h2_8daaf6152771_b186095e22b6"}' : '',
        duration: ts + SECOND - segments[0],
        endReason: !final ? 'active-timeout' : tcp ? 'fin' : 'idle',
      });
    });
  };

  // 30 ordinary flows in the range: starts repeat every 12 flows (ties on firstSeen) and so do
  // byte totals (ties on bytes), so both orders need their flowId tie-break.
  for (let i = 0; i < 30; i++) {
    const start = base + (i % 12) * 2.5 * SECOND;
    const segments = Array.from({ length: 1 + (i % 3) }, (_, k) => start + k * INTERVAL);
    const transport = i === 10 || i === 20 ? 'icmp' : i % 4 === 3 ? 'udp' : 'tcp';
    const serverPort = transport === 'icmp' ? 0 : transport === 'udp' ? 53 : [443, 80, 22][i % 3];
    const app = { 443: 'tls', 80: 'http', 22: 'ssh', 53: 'dns', 0: '' }[serverPort]!;
    const serverName = serverPort === 443 ? (i % 2 ? 'a.example' : 'b.example') : '';
    addFlow(i, segments, { transport, serverPort, app, serverName, node: i % 6 === 5 ? otherNode : node });
  }
  const tcp443 = { transport: 'tcp', serverPort: 443, app: 'tls', serverName: 'a.example', node };
  // Started before the range: only its second segment is in it.
  addFlow(100, [base - 5 * SECOND, base + 5 * SECOND], tcp443);
  // Its only segment starts at `to`, which the range excludes.
  addFlow(101, [range.to], tcp443);

  const hosts: HostRecord[] = [];
  const host = (ts: number, ip: string, n: Partial<HostRecord>, onNode = node) =>
    hosts.push({
      ts,
      node: onNode,
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
      ...n,
    });
  const [h1, h2, h3] = [`${net}.1`, `${net}.2`, `${net}.3`];
  // In the range, by bytes h1 > h2 > h3, by packets h2 > h3 > h1, by flows h3 > h1 > h2. h1 and h2
  // carry enrichment (country, AS, network), h3 none.
  const geo1 = { country: 'DE', asn: 3320, asOrg: 'Deutsche Telekom AG', network: 'office' };
  host(base, h1, { bytesSent: 5000, bytesReceived: 1000, packetsSent: 10, packetsReceived: 5, flowsInitiated: 2, peers: 2, ...geo1 });
  host(base + INTERVAL, h1, { bytesSent: 3000, bytesReceived: 1000, packetsSent: 5, packetsReceived: 5, flowsInitiated: 1, peers: 1, ...geo1 });
  for (const [k, received, peers] of [
    [0, 1, 1],
    [1, 1, 3],
    [2, 0, 2],
  ]) {
    host(base + k * INTERVAL, h2, {
      bytesSent: 1000,
      bytesReceived: 1000,
      packetsSent: 20,
      packetsReceived: 10,
      flowsReceived: received,
      peers,
      country: 'FR',
      asn: 12322,
      asOrg: 'Free SAS',
      network: 'guest',
    });
  }
  host(base + 2 * INTERVAL, h3, { bytesSent: 500, bytesReceived: 500, packetsSent: 30, packetsReceived: 20, flowsInitiated: 5, flowsReceived: 2, peers: 4 });
  // Outside the range, and on another node: big enough to change every order if counted.
  host(range.to, h3, { bytesSent: 1e9, packetsSent: 1e9, flowsInitiated: 1000, peers: 50 });
  host(base, h1, { bytesSent: 1e9, packetsSent: 1e9, flowsInitiated: 1000, peers: 50 }, otherNode);

  const traffic: TrafficRecord[] = [
    { ts: base, node, bytes: 100, packets: 1, flows: 1, source: '' },
    { ts: base + INTERVAL, node, bytes: 200, packets: 2, flows: 2, source: '' },
    { ts: base + 4 * INTERVAL, node, bytes: 400, packets: 4, flows: 4, source: '' },
    { ts: range.to, node, bytes: 9999, packets: 99, flows: 9, source: '' },
    { ts: base + 2 * INTERVAL, node: otherNode, bytes: 5000, packets: 50, flows: 5, source: '' },
  ];

  const anomaly = (id: string, startedAt: number, lastSeen: number, n: Partial<AnomalyRecord>): AnomalyRecord => ({
    ts: startedAt,
    anomalyId: `${run}-${id}`,
    node,
    kind: 'SYN_FLOOD',
    severity: 'medium',
    source: `${net}.9`,
    targetIp: `${net}.100`,
    targetPort: 443,
    startedAt,
    lastSeen,
    state: 'active',
    packets: 1000,
    bytes: 64_000,
    evidence: JSON.stringify({ synPerSec: 500 }),
    summary: `${id} started`,
    evidenceFlows: `3 ${'0123456789abcdef'} ${'00000000000000ff'} ${'fedcba9876543210'}`,
    ...n,
  });
  const a1 = anomaly('a1', base + 5 * SECOND, base + 15 * SECOND, {});
  const a1Ended = anomaly('a1', base + 5 * SECOND, base + 35 * SECOND, {
    state: 'ended',
    severity: 'high',
    packets: 5000,
    bytes: 320_000,
    evidence: JSON.stringify({ synPerSec: 900 }),
    summary: 'a1 ended',
  });
  const portScan = { kind: 'PORT_SCAN', source: `${net}.8`, targetIp: `${net}.101`, targetPort: 0 } as const;
  const a2 = anomaly('a2', base + 20 * SECOND, base + 22 * SECOND, portScan);
  const a2Update = anomaly('a2', base + 20 * SECOND, base + 24 * SECOND, { ...portScan, packets: 2000 });
  const a2Latest = anomaly('a2', base + 20 * SECOND, base + 25 * SECOND, { ...portScan, packets: 3000, summary: 'a2 latest' });
  const anomaliesOutside = [
    anomaly('over-before', base - 100 * SECOND, base - 50 * SECOND, {}),
    anomaly('starts-at-to', range.to, range.to + SECOND, {}),
    anomaly('other-node', base + 5 * SECOND, base + 6 * SECOND, { node: otherNode, kind: 'UDP_FLOOD' }),
  ];

  return {
    run,
    node,
    otherNode,
    net,
    base,
    range,
    flows,
    hosts,
    traffic,
    h1,
    h2,
    h3,
    anomalies: { a1, a1Ended, a2, a2Update, a2Latest, outside: anomaliesOutside },
  };
}

/** The contract's flow summary, computed directly: segments with ts in the range, summed per flow. */
function summarise(segments: FlowRecord[], range?: TimeRange): FlowSummary[] {
  const byId = new Map<string, FlowRecord[]>();
  for (const s of segments) {
    if (range && (s.ts < range.from || s.ts >= range.to)) continue;
    byId.set(s.flowId, [...(byId.get(s.flowId) ?? []), s]);
  }
  return [...byId.values()].map((segs) => flowSummary(segs));
}

/**
 * The contract's hostPeers / hostPorts, computed directly: the host's segments in the range on
 * the node (either end), grouped by `key`, summed, distinct flows counted, by bytes then key.
 */
function hostFlowGroups(segments: FlowRecord[], ip: string, range: TimeRange, node: string, key: (s: FlowRecord) => string) {
  const groups = new Map<string, { bytes: number; packets: number; flows: Set<string> }>();
  for (const s of segments) {
    if (s.ts < range.from || s.ts >= range.to || s.node !== node || (s.clientIp !== ip && s.serverIp !== ip)) continue;
    const g = groups.get(key(s)) ?? { bytes: 0, packets: 0, flows: new Set<string>() };
    g.bytes += s.clientBytes + s.serverBytes;
    g.packets += s.clientPackets + s.serverPackets;
    g.flows.add(s.flowId);
    groups.set(key(s), g);
  }
  return [...groups].map(([k, g]) => ({ key: k, bytes: g.bytes, packets: g.packets, flows: g.flows.size }));
}

function expectedPeers(segments: FlowRecord[], ip: string, range: TimeRange, node: string) {
  return hostFlowGroups(segments, ip, range, node, (s) => (s.clientIp === ip ? s.serverIp : s.clientIp))
    .map(({ key, ...g }) => ({ ip: key, ...g }))
    .sort((a, b) => b.bytes - a.bytes || (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
}

function expectedPorts(segments: FlowRecord[], ip: string, range: TimeRange, node: string) {
  return hostFlowGroups(segments, ip, range, node, (s) => `${s.transport}/${s.serverPort}`)
    .map(({ key, ...g }) => ({ transport: key.split('/')[0], port: Number(key.split('/')[1]), ...g }))
    .sort((a, b) => b.bytes - a.bytes || (a.transport < b.transport ? -1 : a.transport > b.transport ? 1 : a.port - b.port));
}

const totalBytes = (f: FlowSummary) => f.clientBytes + f.serverBytes;
const byFlowId = (a: FlowSummary, b: FlowSummary) => (a.flowId < b.flowId ? -1 : a.flowId > b.flowId ? 1 : 0);
const ORDERS: Record<FlowOrder, (a: FlowSummary, b: FlowSummary) => number> = {
  time: (a, b) => a.firstSeen - b.firstSeen || byFlowId(a, b),
  bytes: (a, b) => totalBytes(b) - totalBytes(a) || byFlowId(a, b),
};

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const isQueryError = (err: unknown) => err instanceof StoreQueryError;

for (const backend of storeBackends()) {
  describe(`store contract: ${backend.name}`, { skip: backend.skip }, () => {
    const fx = makeFixture();
    let store: FlowStore;

    before(async () => {
      store = await backend.open();
      // Written as a pipeline would: one batch per interval, with a flush in between, and the
      // anomaly updates arriving in later batches than the versions they replace.
      const inInterval = <T extends { ts: number }>(rows: T[], k: number) =>
        rows.filter((r) => Math.floor((r.ts - fx.base) / INTERVAL) === k || (k === 0 && r.ts < fx.base) || (k === 6 && r.ts >= fx.range.to));
      const { a1, a1Ended, a2, a2Update, a2Latest, outside } = fx.anomalies;
      const anomaliesFor: Record<number, AnomalyRecord[]> = { 0: [a1, ...outside], 2: [a2], 4: [a1Ended, a2Update, a2Latest] };
      for (let k = 0; k <= 6; k++) {
        await store.write({
          flows: inInterval(fx.flows, k),
          hosts: inInterval(fx.hosts, k),
          traffic: inInterval(fx.traffic, k),
          anomalies: anomaliesFor[k] ?? [],
        });
        if (k === 2) await store.flush();
      }
      await store.write({ flows: [], hosts: [], traffic: [] });
      await store.flush();
    });

    after(async () => {
      await store?.close();
    });

    it('reports itself healthy', async () => {
      const health = await store.health();
      assert.equal(health.ok, true, health.detail);
      assert.equal(health.backend, store.backend);
    });

    describe('queryFlows', () => {
      const page = (filter: FlowFilter, first = MAX_PAGE_SIZE, orderBy: FlowOrder = 'time') => store.queryFlows({ ...fx.range, filter, first, orderBy });
      const expected = (keep: (f: FlowSummary) => boolean = () => true) =>
        summarise(fx.flows, fx.range)
          .filter((f) => f.node === fx.node && keep(f))
          .sort(ORDERS.time);

      it('sums the segments of each flow that lie in the range', async () => {
        const result = await page({ node: fx.node });
        assert.deepEqual(
          result.edges.map((e) => e.node),
          expected(),
        );
        assert.equal(result.totalCount, expected().length);
        assert.equal(result.pageInfo.hasNextPage, false);

        // Flow 2 by hand: three segments of 300 + 500 bytes, packets (1+2)+(2+2)+(3+2) and 2+4+6.
        const flow2 = result.edges.find((e) => e.node.flowId === `${fx.run}00000002`)!.node;
        assert.deepEqual([flow2.clientBytes, flow2.serverBytes, flow2.clientPackets, flow2.serverPackets, flow2.tcpState], [900, 1500, 12, 12, 'closed']);
        assert.equal(flow2.firstSeen, fx.base + 5 * SECOND);
        assert.equal(flow2.lastSeen, fx.base + 26 * SECOND);
        assert.equal(flow2.clientTcpFlags, 0x12 | 0x08 | 0x01);
      });

      it('counts only in-range segments of a flow that started earlier, and leaves out a flow starting at `to`', async () => {
        const { edges } = await page({ node: fx.node, serverName: 'a.example', port: 443 });
        const early = edges.find((e) => e.node.flowId === `${fx.run}00000064`)?.node;
        assert.ok(early, 'flow with one segment in the range is listed');
        assert.deepEqual([early.clientBytes, early.serverBytes, early.serverPackets], [100, 500, 4]);
        assert.equal(early.firstSeen, fx.base - 5 * SECOND, "firstSeen is the whole flow's");
        assert.equal(
          edges.some((e) => e.node.flowId === `${fx.run}00000065`),
          false,
        );
      });

      it('reports the TCP state of the latest segment', async () => {
        const { edges } = await page({ node: fx.node, transport: 'tcp' });
        const states = new Map(edges.map((e) => [e.node.flowId, e.node.tcpState]));
        assert.equal(states.get(`${fx.run}00000000`), 'reset'); // one segment, i % 5 === 0
        assert.equal(states.get(`${fx.run}00000004`), 'closed'); // segments established, closed
      });

      const either = (ip: string) => (f: FlowSummary) => f.clientIp === ip || f.serverIp === ip;
      const filterCases: [string, FlowFilter, (f: FlowSummary) => boolean][] = [
        ['host as client', { host: fx.h1 }, either(fx.h1)],
        ['host as server', { host: `${fx.net}.100` }, either(`${fx.net}.100`)],
        ['port as server port', { port: 443 }, (f) => f.serverPort === 443],
        ['port as client port', { port: 40_007 }, (f) => f.clientPort === 40_007],
        ['transport', { transport: 'udp' }, (f) => f.transport === 'udp'],
        ['app', { app: 'ssh' }, (f) => f.app === 'ssh'],
        ['app in another case (one filter language: `dns` finds DNS)', { app: 'SSH' }, (f) => f.app === 'ssh'],
        ['serverName', { serverName: 'a.example' }, (f) => f.serverName === 'a.example'],
        ['serverName in another case', { serverName: 'A.Example' }, (f) => f.serverName === 'a.example'],
        ['serverName glob, a suffix (*.example)', { serverName: '*.example' }, (f) => f.serverName.endsWith('.example')],
        ['serverName glob, a substring (*B.EX*)', { serverName: '*B.EX*' }, (f) => f.serverName.includes('b.ex')],
        ['host as a CIDR prefix (/31: two servers)', { host: `${fx.net}.100/31` }, (f) => f.serverIp === `${fx.net}.100` || f.serverIp === `${fx.net}.101`],
        [
          'host as a CIDR prefix with host bits set (masked)',
          { host: `${fx.net}.103/31` },
          (f) => f.serverIp === `${fx.net}.102` || f.serverIp === `${fx.net}.103`,
        ],
        ['minBytes', { minBytes: 1200 }, (f) => totalBytes(f) >= 1200],
        ['host and port together', { host: fx.h2, port: 53 }, (f) => either(fx.h2)(f) && f.serverPort === 53],
      ];
      for (const [name, filter, keep] of filterCases) {
        it(`filters by ${name}`, async () => {
          const want = expected(keep);
          assert.ok(want.length > 0 && want.length < expected().length, 'the fixture makes this filter narrow the set');
          const result = await page({ ...filter, node: fx.node });
          assert.deepEqual(
            result.edges.map((e) => e.node.flowId),
            want.map((f) => f.flowId),
          );
          assert.equal(result.totalCount, want.length);
        });
      }

      it('filters by node', async () => {
        const other = await page({ node: fx.otherNode });
        const want = summarise(fx.flows, fx.range)
          .filter((f) => f.node === fx.otherNode)
          .sort(ORDERS.time);
        assert.ok(want.length > 0);
        assert.deepEqual(
          other.edges.map((e) => e.node.flowId),
          want.map((f) => f.flowId),
        );
      });

      it('returns an empty page for a range without flows', async () => {
        const result = await store.queryFlows({ from: fx.range.to + 3600 * SECOND, to: fx.range.to + 7200 * SECOND, filter: { node: fx.node }, first: 10 });
        assert.deepEqual(result, { edges: [], pageInfo: { hasNextPage: false, endCursor: null }, totalCount: 0 });
      });

      for (const orderBy of ['time', 'bytes'] as const) {
        for (const first of [4, 7]) {
          it(`pages by ${orderBy}, ${first} at a time, visiting every flow once in order`, async () => {
            const want = expected()
              .sort(ORDERS[orderBy])
              .map((f) => f.flowId);
            const seen: string[] = [];
            let after: string | undefined;
            for (let pages = 0; ; pages++) {
              assert.ok(pages <= want.length, 'pagination terminates');
              const result = await store.queryFlows({ ...fx.range, filter: { node: fx.node }, first, orderBy, after });
              assert.equal(result.totalCount, want.length);
              seen.push(...result.edges.map((e) => e.node.flowId));
              assert.equal(result.pageInfo.endCursor, result.edges.at(-1)?.cursor ?? null);
              if (!result.pageInfo.hasNextPage) break;
              assert.equal(result.edges.length, first, 'only the last page is short');
              after = result.pageInfo.endCursor!;
            }
            assert.deepEqual(seen, want);
          });
        }

        it(`gives stable cursors for order ${orderBy}, from any edge`, async () => {
          const q = { ...fx.range, filter: { node: fx.node }, first: 5, orderBy };
          const one = await store.queryFlows(q);
          const two = await store.queryFlows(q);
          assert.deepEqual(two, one, 'the same query gives the same page and cursors');
          const want = expected()
            .sort(ORDERS[orderBy])
            .map((f) => f.flowId);
          // Continuing after the second edge starts at the third flow.
          const next = await store.queryFlows({ ...q, after: one.edges[1].cursor });
          assert.deepEqual(
            next.edges.map((e) => e.node.flowId),
            want.slice(2, 7),
          );
        });
      }

      it('rejects an invalid cursor, a cursor of the other order and bad page sizes', async () => {
        const q = { ...fx.range, filter: { node: fx.node } };
        await assert.rejects(store.queryFlows({ ...q, first: 5, after: 'not a cursor' }), isQueryError);
        const byTime = await store.queryFlows({ ...q, first: 1, orderBy: 'time' });
        await assert.rejects(store.queryFlows({ ...q, first: 5, orderBy: 'bytes', after: byTime.pageInfo.endCursor! }), isQueryError);
        for (const first of [0, -1, 2.5, MAX_PAGE_SIZE + 1]) {
          await assert.rejects(store.queryFlows({ ...q, first }), isQueryError, `first = ${first}`);
        }
        const largest = await store.queryFlows({ ...q, first: MAX_PAGE_SIZE });
        assert.equal(largest.edges.length, expected().length);
      });
    });

    describe('topHosts', () => {
      const top = (orderBy: 'bytes' | 'packets' | 'flows', limit = 10) => store.topHosts({ ...fx.range, node: fx.node, orderBy, limit });

      it('sums a host over the range, with peers the largest per-interval count', async () => {
        const [first] = await top('bytes');
        assert.deepEqual(first, {
          ip: fx.h1,
          bytesSent: 8000,
          bytesReceived: 2000,
          packetsSent: 15,
          packetsReceived: 10,
          flowsInitiated: 3,
          flowsReceived: 0,
          flows: 3,
          peers: 2,
          firstSeen: fx.base,
          lastSeen: fx.base + INTERVAL,
          country: 'DE',
          asn: 3320,
          asOrg: 'Deutsche Telekom AG',
          network: 'office',
        });
        const h2 = (await top('packets'))[0];
        assert.deepEqual([h2.ip, h2.packetsSent + h2.packetsReceived, h2.flowsReceived, h2.peers], [fx.h2, 90, 2, 3]);
      });

      it('orders by bytes, packets or flows, within the range and node', async () => {
        assert.deepEqual(
          (await top('bytes')).map((h) => h.ip),
          [fx.h1, fx.h2, fx.h3],
        );
        assert.deepEqual(
          (await top('packets')).map((h) => h.ip),
          [fx.h2, fx.h3, fx.h1],
        );
        assert.deepEqual(
          (await top('flows')).map((h) => h.ip),
          [fx.h3, fx.h1, fx.h2],
        );
      });

      it('honours the limit', async () => {
        assert.deepEqual(
          (await top('flows', 2)).map((h) => h.ip),
          [fx.h3, fx.h1],
        );
      });

      it('filters on the country, AS number and network that the host records carry', async () => {
        const only = async (f: { country?: string; asn?: number; network?: string }) =>
          (await store.topHosts({ ...fx.range, node: fx.node, limit: 10, ...f })).map((h) => h.ip);
        assert.deepEqual(await only({ country: 'DE' }), [fx.h1]);
        assert.deepEqual(await only({ asn: 12322 }), [fx.h2]);
        assert.deepEqual(await only({ network: 'office' }), [fx.h1]);
        assert.deepEqual(await only({ country: 'FR', network: 'guest' }), [fx.h2]);
        assert.deepEqual(await only({ country: 'US' }), []);
        const [h2] = await store.topHosts({ ...fx.range, node: fx.node, limit: 10, country: 'FR' });
        assert.deepEqual([h2.country, h2.asn, h2.asOrg, h2.network, h2.bytesSent], ['FR', 12322, 'Free SAS', 'guest', 3000]);
        await assert.rejects(store.topHosts({ ...fx.range, limit: 10, asn: -1 }), StoreQueryError);
      });
    });

    describe('trafficSeries', () => {
      it('sums intervals into steps and zero-fills steps without traffic', async () => {
        const points = await store.trafficSeries({ ...fx.range, step: 2 * INTERVAL, node: fx.node });
        assert.deepEqual(points, [
          { ts: fx.base, bytes: 300, packets: 3, flows: 3 },
          { ts: fx.base + 2 * INTERVAL, bytes: 0, packets: 0, flows: 0 },
          { ts: fx.base + 4 * INTERVAL, bytes: 400, packets: 4, flows: 4 },
        ]);
      });

      it('gives one point per interval at the interval step', async () => {
        const points = await store.trafficSeries({ ...fx.range, step: INTERVAL, node: fx.node });
        assert.deepEqual(
          points.map((p) => p.ts),
          [0, 1, 2, 3, 4, 5].map((k) => fx.base + k * INTERVAL),
        );
        assert.deepEqual(
          points.map((p) => p.bytes),
          [100, 200, 0, 0, 400, 0],
        );
      });

      it('zero-fills a range without any traffic', async () => {
        const from = fx.range.to + 3600 * SECOND;
        const points = await store.trafficSeries({ from, to: from + 4 * INTERVAL, step: 2 * INTERVAL, node: fx.node });
        assert.deepEqual(points, [
          { ts: from, bytes: 0, packets: 0, flows: 0 },
          { ts: from + 2 * INTERVAL, bytes: 0, packets: 0, flows: 0 },
        ]);
      });
    });

    describe('host reads', () => {
      const zero = { bytesSent: 0, bytesReceived: 0, packetsSent: 0, packetsReceived: 0, flowsInitiated: 0, flowsReceived: 0, peers: 0 };

      it("hostSummary sums the host's rows in the range like topHosts, per node or across nodes", async () => {
        const h1 = await store.hostSummary({ ...fx.range, ip: fx.h1, node: fx.node });
        assert.deepEqual(
          h1,
          (await store.topHosts({ ...fx.range, node: fx.node, limit: 10 })).find((h) => h.ip === fx.h1),
        );
        assert.deepEqual(h1, {
          ip: fx.h1,
          bytesSent: 8000,
          bytesReceived: 2000,
          packetsSent: 15,
          packetsReceived: 10,
          flowsInitiated: 3,
          flowsReceived: 0,
          flows: 3,
          peers: 2,
          firstSeen: fx.base,
          lastSeen: fx.base + INTERVAL,
          country: 'DE',
          asn: 3320,
          asOrg: 'Deutsche Telekom AG',
          network: 'office',
        });
        const allNodes = await store.hostSummary({ ...fx.range, ip: fx.h1 });
        assert.deepEqual([allNodes?.bytesSent, allNodes?.flowsInitiated, allNodes?.peers], [1e9 + 8000, 1003, 50]);
        // h3's row at `to` is outside the range.
        const h3 = await store.hostSummary({ ...fx.range, ip: fx.h3, node: fx.node });
        assert.deepEqual([h3?.bytesSent, h3?.flows, h3?.firstSeen, h3?.lastSeen], [500, 7, fx.base + 2 * INTERVAL, fx.base + 2 * INTERVAL]);
      });

      it('hostSummary is null for a host without rows in the range', async () => {
        assert.equal(await store.hostSummary({ ...fx.range, ip: `${fx.net}.250`, node: fx.node }), null);
        assert.equal(await store.hostSummary({ from: fx.range.to + 3600 * SECOND, to: fx.range.to + 7200 * SECOND, ip: fx.h1 }), null);
        assert.equal(await store.hostSummary({ ...fx.range, ip: fx.h1, node: `${fx.node}-none` }), null);
      });

      it("hostSeries sums the host's rows per step, peers the largest per interval, zero-filled", async () => {
        const points = await store.hostSeries({ ...fx.range, ip: fx.h2, step: 2 * INTERVAL, node: fx.node });
        assert.deepEqual(points, [
          { ts: fx.base, bytesSent: 2000, bytesReceived: 2000, packetsSent: 40, packetsReceived: 20, flowsInitiated: 0, flowsReceived: 2, peers: 3 },
          {
            ts: fx.base + 2 * INTERVAL,
            bytesSent: 1000,
            bytesReceived: 1000,
            packetsSent: 20,
            packetsReceived: 10,
            flowsInitiated: 0,
            flowsReceived: 0,
            peers: 2,
          },
          { ts: fx.base + 4 * INTERVAL, ...zero },
        ]);
        const h1 = await store.hostSeries({ ...fx.range, ip: fx.h1, step: INTERVAL, node: fx.node });
        assert.deepEqual(
          h1.map((p) => p.ts),
          [0, 1, 2, 3, 4, 5].map((k) => fx.base + k * INTERVAL),
        );
        assert.deepEqual(
          h1.map((p) => p.bytesSent),
          [5000, 3000, 0, 0, 0, 0],
          'other hosts and nodes are not counted',
        );
      });

      it('hostSeries zero-fills a host without rows', async () => {
        const from = fx.range.to + 3600 * SECOND;
        assert.deepEqual(await store.hostSeries({ from, to: from + 4 * INTERVAL, ip: fx.h1, step: 2 * INTERVAL, node: fx.node }), [
          { ts: from, ...zero },
          { ts: from + 2 * INTERVAL, ...zero },
        ]);
      });

      it("hostPeers sums the host's flow segments in the range per other end, top by bytes", async () => {
        const peers = await store.hostPeers({ ...fx.range, ip: fx.h1, node: fx.node, limit: 10 });
        assert.deepEqual(peers, expectedPeers(fx.flows, fx.h1, fx.range, fx.node));
        // By hand: h1 (client of flows 0, 3, ..., 27) talks to .103 (flows 3, 15, 27: 900 bytes, 3 packets each) most.
        assert.deepEqual(peers[0], { ip: `${fx.net}.103`, bytes: 2700, packets: 9, flows: 3 });
        assert.deepEqual(
          peers.map((p) => p.ip),
          [103, 100, 102, 101].map((n) => `${fx.net}.${n}`),
        );
        // A server: its peers are the clients; flow 100's segment before the range is not counted.
        const server = `${fx.net}.100`;
        assert.deepEqual(await store.hostPeers({ ...fx.range, ip: server, node: fx.node, limit: 10 }), expectedPeers(fx.flows, server, fx.range, fx.node));
        assert.deepEqual(
          (await store.hostPeers({ ...fx.range, ip: fx.h1, node: fx.node, limit: 2 })).map((p) => p.ip),
          [`${fx.net}.103`, `${fx.net}.100`],
        );
      });

      it("hostPorts groups the host's flows by service port, as client or server, top by bytes", async () => {
        const ports = await store.hostPorts({ ...fx.range, ip: fx.h1, node: fx.node, limit: 10 });
        assert.deepEqual(ports, [
          { transport: 'tcp', port: 443, bytes: 4800, packets: 21, flows: 7 },
          { transport: 'udp', port: 53, bytes: 2700, packets: 9, flows: 3 },
        ]);
        assert.deepEqual(ports, expectedPorts(fx.flows, fx.h1, fx.range, fx.node));
        for (const ip of [`${fx.net}.100`, `${fx.net}.101`, fx.h2]) {
          const want = expectedPorts(fx.flows, ip, fx.range, fx.node);
          assert.ok(want.length > 1);
          assert.deepEqual(await store.hostPorts({ ...fx.range, ip, node: fx.node, limit: 10 }), want, ip);
          assert.deepEqual(await store.hostPorts({ ...fx.range, ip, node: fx.node, limit: 1 }), want.slice(0, 1), ip);
        }
      });

      it('hostPeers and hostPorts are empty for a host without flows, and check the limit', async () => {
        const none = { ...fx.range, ip: `${fx.net}.250`, node: fx.node, limit: 10 };
        assert.deepEqual(await store.hostPeers(none), []);
        assert.deepEqual(await store.hostPorts(none), []);
        for (const limit of [0, -1, 2.5, MAX_PAGE_SIZE + 1]) {
          await assert.rejects(store.hostPeers({ ...none, limit }), isQueryError, `limit = ${limit}`);
          await assert.rejects(store.hostPorts({ ...none, limit }), isQueryError, `limit = ${limit}`);
        }
      });
    });

    describe('explore', () => {
      // The contract's explore, computed directly: the node's segments in the range, keyed (a
      // host at either end counts twice), summed, distinct flows, by the metric then the keys.
      type Metric = 'bytes' | 'packets' | 'flows';
      const reference = (keysOf: (s: FlowRecord) => string[][], metric: Metric, keep: (s: FlowRecord) => boolean = () => true) => {
        const groups = new Map<string, { keys: string[]; bytes: number; packets: number; flows: Set<string> }>();
        for (const s of fx.flows) {
          if (s.ts < fx.range.from || s.ts >= fx.range.to || s.node !== fx.node || !keep(s)) continue;
          for (const keys of keysOf(s)) {
            const id = JSON.stringify(keys);
            const g = groups.get(id) ?? { keys, bytes: 0, packets: 0, flows: new Set<string>() };
            g.bytes += s.clientBytes + s.serverBytes;
            g.packets += s.clientPackets + s.serverPackets;
            g.flows.add(s.flowId);
            groups.set(id, g);
          }
        }
        return [...groups.values()]
          .map((g) => ({ keys: g.keys, bytes: g.bytes, packets: g.packets, flows: g.flows.size }))
          .sort((a, b) => b[metric] - a[metric] || (JSON.stringify(a.keys) < JSON.stringify(b.keys) ? -1 : 1));
      };
      const explore = async (dimensions: ExploreDimension[], metric: Metric, filters: ExploreFilter[] = [], limit = 50) => {
        assert.ok(canExplore(store), `${backend.name} answers explore`);
        const step = 10 * SECOND;
        const items = await store.explore({ ...fx.range, dimensions, metric, limit, step, filters: [{ dimension: 'node', value: fx.node }, ...filters] });
        for (const item of items) {
          // Every bucket of the range, and the buckets add up to the item.
          assert.equal(item.series.length, 6);
          assert.equal(
            item.series.reduce((a, p) => a + p.bytes, 0),
            item.bytes,
          );
          assert.equal(
            item.series.reduce((a, p) => a + p.packets, 0),
            item.packets,
          );
        }
        return items.map(({ series: _, ...totals }) => totals);
      };

      it('top applications by bytes, servers by flows, and transport/port pairs by packets', async () => {
        assert.deepEqual(
          await explore(['app'], 'bytes'),
          reference((s) => [[s.app]], 'bytes'),
        );
        assert.deepEqual(
          await explore(['server'], 'flows'),
          reference((s) => [[s.serverIp]], 'flows'),
        );
        assert.deepEqual(
          await explore(['transport', 'port'], 'packets'),
          reference((s) => [[s.transport, String(s.serverPort)]], 'packets'),
        );
      });

      it('hosts count at both ends, host/peer pairs, and a flow that began before the range counts once', async () => {
        const hosts = reference((s) => [[s.clientIp], [s.serverIp]], 'flows');
        assert.deepEqual(await explore(['host'], 'flows'), hosts);
        const pairs = reference(
          (s) => [
            [s.clientIp, s.serverIp],
            [s.serverIp, s.clientIp],
          ],
          'bytes',
        );
        assert.deepEqual(await explore(['host', 'peer'], 'bytes', [], 100), pairs);
      });

      it('drill-down filters (host at either end, port, application) and the limit', async () => {
        const h = `${fx.net}.1`;
        const want = reference(
          (s) => [[s.serverName]],
          'bytes',
          (s) => (s.clientIp === h || s.serverIp === h) && s.serverPort === 443 && s.app === 'tls',
        );
        assert.ok(want.length > 0);
        const filters: ExploreFilter[] = [
          { dimension: 'host', value: h },
          { dimension: 'port', value: '443' },
          { dimension: 'app', value: 'tls' },
        ];
        assert.deepEqual(await explore(['serverName'], 'bytes', filters), want);
        // Applications in any case, as History's filter takes them.
        const upper = filters.map((f) => (f.dimension === 'app' ? { ...f, value: 'TLS' } : f));
        assert.deepEqual(await explore(['serverName'], 'bytes', upper), want);
        // Addresses as CIDR prefixes and server names as globs, as in every filter (flow-filter.ts).
        const two = [`${fx.net}.100`, `${fx.net}.101`];
        const byPrefix = reference(
          (s) => [[s.serverName]],
          'bytes',
          (s) => two.includes(s.clientIp) || two.includes(s.serverIp),
        );
        assert.ok(byPrefix.length > 0);
        assert.deepEqual(await explore(['serverName'], 'bytes', [{ dimension: 'host', value: `${fx.net}.100/31` }]), byPrefix);
        assert.deepEqual(await explore(['serverName'], 'bytes', [{ dimension: 'server', value: `${fx.net}.101/31` }]), byPrefix);
        const byGlob = reference(
          (s) => [[s.app]],
          'bytes',
          (s) => s.serverName.endsWith('a.example'),
        );
        assert.ok(byGlob.length > 0);
        assert.deepEqual(await explore(['app'], 'bytes', [{ dimension: 'serverName', value: '*A.EXAMPLE' }]), byGlob);
        assert.deepEqual(await explore(['app'], 'bytes', [], 2), reference((s) => [[s.app]], 'bytes').slice(0, 2));
      });
    });

    describe('queryAnomalies', () => {
      const { a1Ended, a2Latest } = fx.anomalies;
      const query = (q: { from?: number; kind?: 'SYN_FLOOD' | 'PORT_SCAN'; host?: string; limit?: number } = {}) =>
        store.queryAnomalies({ ...fx.range, node: fx.node, limit: 10, ...q });

      it('keeps only the latest version of each anomaly, newest first, in range', async () => {
        assert.deepEqual(await query(), [a2Latest, a1Ended]);
      });

      it('uses the updated lastSeen for the range', async () => {
        // a1 was first written with lastSeen base+15 s; its update runs to base+35 s.
        assert.deepEqual(await query({ from: fx.base + 30 * SECOND }), [a1Ended]);
      });

      it('filters by kind, by host as source or target, and honours the limit', async () => {
        assert.deepEqual(await query({ kind: 'SYN_FLOOD' }), [a1Ended]);
        assert.deepEqual(await query({ host: `${fx.net}.9` }), [a1Ended]);
        assert.deepEqual(await query({ host: `${fx.net}.101` }), [a2Latest]);
        assert.deepEqual(await query({ limit: 1 }), [a2Latest]);
      });

      it('keeps the latest of many anomalies written in one batch and all updated in the next', async () => {
        // More anomalies than one upsert statement takes (the DuckDB store writes 256 per statement),
        // on a node of their own; every one is written, then updated.
        const manyNode = `${fx.node}-many`;
        const count = 600;
        const version = (i: number, packets: number, state: 'active' | 'ended'): AnomalyRecord => ({
          ts: fx.base + i * 1000,
          anomalyId: `${fx.run}-many-${i}`,
          node: manyNode,
          kind: 'PORT_SCAN',
          severity: 'low',
          source: `${fx.net}.${i % 250}`,
          targetIp: `${fx.net}.250`,
          targetPort: 0,
          startedAt: fx.base + i * 1000,
          lastSeen: fx.base + i * 1000 + 5 * SECOND,
          state,
          packets,
          bytes: packets * 60,
          evidence: '{}',
          summary: `many ${i} ${state}`,
          evidenceFlows: '',
        });
        const empty = { flows: [], hosts: [], traffic: [] };
        await store.write({ ...empty, anomalies: Array.from({ length: count }, (_, i) => version(i, 10, 'active')) });
        await store.flush();
        const latest = Array.from({ length: count }, (_, i) => version(i, 100 + i, 'ended'));
        await store.write({ ...empty, anomalies: latest });
        await store.flush();
        const got = await store.queryAnomalies({ ...fx.range, node: manyNode, limit: 1000 });
        assert.equal(got.length, count);
        const byId = new Map(got.map((a) => [a.anomalyId, a]));
        for (const a of latest) assert.deepEqual(byId.get(a.anomalyId), a);
      });
    });

    describe('exports', () => {
      it('exportFlows returns every flow once, all segments summed, by firstSeen then flowId', async () => {
        const exported = (await collect(store.exportFlows())).filter((f) => f.flowId.startsWith(fx.run));
        assert.deepEqual(exported, summarise(fx.flows).sort(ORDERS.time));
      });

      it('exportHosts returns every host summed over all time and nodes, by bytes', async () => {
        const exported = (await collect(store.exportHosts())).filter((h) => h.ip.startsWith(`${fx.net}.`));
        assert.deepEqual(
          exported.map((h) => h.ip),
          [fx.h1, fx.h3, fx.h2],
        );
        assert.deepEqual(exported[1], {
          ip: fx.h3,
          bytesSent: 1e9 + 500,
          bytesReceived: 500,
          packetsSent: 1e9 + 30,
          packetsReceived: 20,
          flowsInitiated: 1005,
          flowsReceived: 2,
          flows: 1007,
          peers: 50,
          firstSeen: fx.base + 2 * INTERVAL,
          lastSeen: fx.range.to,
          country: '',
          asn: 0,
          asOrg: '',
          network: '',
        });
      });
    });
  });
}

describe('QuestDB ILP configuration', () => {
  // FLOWLENS_QUESTDB may be given as the client's configuration string or as a plain ILP/HTTP URL
  // (http://127.0.0.1:9000); the client itself parses only the former. No server needed.
  it('takes a configuration string as it is and an ILP/HTTP URL as the equivalent string', async () => {
    const { ilpConfigString } = await import('../src/store/questdb.js');
    const { SenderOptions } = await import('@questdb/nodejs-client');
    assert.equal(ilpConfigString('http::addr=localhost:9000;'), 'http::addr=localhost:9000;');
    assert.equal(ilpConfigString('http://127.0.0.1:9000'), 'http::addr=127.0.0.1:9000;');
    assert.equal(ilpConfigString(' https://db.example:9443/ '), 'https::addr=db.example:9443;');
    assert.equal(ilpConfigString('http://admin:a%3Bb@db:9000'), 'http::addr=db:9000;username=admin;password=a;;b;');
    const opts = new SenderOptions(ilpConfigString('http://127.0.0.1:9000'));
    assert.deepEqual([opts.protocol, opts.host, opts.port], ['http', '127.0.0.1', 9000]);
    const auth = new SenderOptions(ilpConfigString('http://admin:a%3Bb@db:9000'));
    assert.deepEqual([auth.username, auth.password], ['admin', 'a;b']);
    assert.equal(new SenderOptions(ilpConfigString('http://db')).port, 9000);
  });
});

describe('DuckDB store', () => {
  const segment = (i: number, ts: number): FlowRecord => ({
    ...emptyRecord(FLOW),
    ts,
    flowId: i.toString(16).padStart(16, '0'),
    node: 'bulk',
    source: '',
    iface: 'trace.pcap',
    firstSeen: ts,
    lastSeen: ts + 10,
    transport: 'tcp',
    ipProto: 6,
    clientIp: '192.0.2.1',
    clientPort: 1024 + (i % 60_000),
    serverIp: '198.51.100.7',
    serverPort: 443,
    clientPackets: 1,
    clientBytes: 60 + (i % 1000),
    serverPackets: 1,
    serverBytes: 60,
    clientTcpFlags: 0x02,
    serverTcpFlags: 0x12,
    tcpState: 'attempted',
    final: true,
    app: '',
    serverName: '',
    confidence: 'port',
    firstPackets: '+74',
    appInfo: '',
    duration: 0,
    endReason: '',
  });

  it('writes 200k flow rows through write() and flush() and reads them all back', async () => {
    const store = new DuckDbStore({ path: join(tempDir('flowlens-bulk-'), 'bulk.duckdb') });
    await store.init();
    try {
      const base = 1_700_000_000 * SECOND;
      const rows = 200_000;
      for (let start = 0; start < rows; start += 10_000) {
        const flows = Array.from({ length: 10_000 }, (_, j) => segment(start + j, base + start + j));
        await store.write({ flows, hosts: [], traffic: [] });
      }
      await store.flush();
      const page = await store.queryFlows({ from: base, to: base + rows, first: 1, orderBy: 'bytes' });
      assert.equal(page.totalCount, rows);
      assert.equal(page.edges[0].node.clientBytes, 60 + 999);
    } finally {
      await store.close();
    }
  });

  it('writes strings and numbers exactly at the edges of its chunk layout, and compares inlined strings by value', async () => {
    // Strings of up to 12 ASCII bytes are written inline into DuckDB's string_t, the rest through
    // DuckDB; counters and times as two 32-bit halves. A batch longer than one data chunk (2048).
    const store = new DuckDbStore({ path: join(tempDir('flowlens-edges-'), 'edges.duckdb') });
    await store.init();
    try {
      const names = ['', 'a', 'twelve-chars', 'thirteen-char', 'héllo', 'naïve-but-long-name.example', '日本', 'x'.repeat(300)];
      const flows = Array.from({ length: 5000 }, (_, i) => ({
        ...segment(i, i < 2 ? -1_000_000 * (i + 1) : 1_000 + i),
        serverName: names[i % names.length],
        app: i % 2 ? 'dns' : 'tls',
        clientBytes: i === 4999 ? 2 ** 53 - 1 : 2 ** 32 + i,
        serverPort: i === 4998 ? 65_535 : 443,
        ipProto: i === 4997 ? 255 : 6,
      }));
      await store.write({ flows, hosts: [], traffic: [] });
      await store.flush();
      const got: FlowSummary[] = [];
      for await (const f of store.exportFlows()) got.push(f);
      assert.equal(got.length, flows.length);
      const byId = new Map(got.map((f) => [f.flowId, f]));
      for (const want of flows) {
        const f = byId.get(want.flowId);
        assert.ok(f, `flow ${want.flowId} read back`);
        assert.deepEqual(
          [f.serverName, f.app, f.clientBytes, f.serverPort, f.ipProto, f.firstSeen],
          [want.serverName, want.app, want.clientBytes, want.serverPort, want.ipProto, want.firstSeen],
          `flow ${want.flowId}`,
        );
      }
      // Equality on an inlined string must find every row that has it (its padding is zeros).
      const page = await store.queryFlows({ from: -10_000_000, to: 10_000_000, first: 1, filter: { serverName: 'twelve-chars' } });
      assert.equal(page.totalCount, flows.filter((f) => f.serverName === 'twelve-chars').length);
      const dns = await store.queryFlows({ from: -10_000_000, to: 10_000_000, first: 1, filter: { app: 'dns' } });
      assert.equal(dns.totalCount, 2500);
    } finally {
      await store.close();
    }
  });

  it('keeps data across a reopen, and opens read-only without accepting writes', async () => {
    const path = join(tempDir('flowlens-reopen-'), 'nested', 'dir', 'flows.duckdb');
    const writer = new DuckDbStore({ path });
    await writer.init();
    await writer.write({ flows: [segment(1, 5 * SECOND), segment(1, 6 * SECOND)], hosts: [], traffic: [] });
    await writer.close(); // closing without flush() still keeps what was written

    const reader = new DuckDbStore({ path, readOnly: true });
    await reader.init();
    try {
      const page = await reader.queryFlows({ from: 0, to: 10 * SECOND, first: 10 });
      assert.equal(page.totalCount, 1);
      assert.equal(page.edges[0].node.clientBytes, 2 * 61);
      await assert.rejects(reader.write({ flows: [segment(2, 7 * SECOND)], hosts: [], traffic: [] }), /read-only/);
    } finally {
      await reader.close();
    }
  });

  it('refuses a bad record without shifting the columns of later rows', async () => {
    const store = new DuckDbStore({ path: join(tempDir('flowlens-bad-'), 'bad.duckdb') });
    await store.init();
    try {
      const bad = { ...segment(2, 2 * SECOND), serverPort: 70_000 }; // does not fit USMALLINT
      await assert.rejects(store.write({ flows: [segment(1, SECOND), bad], hosts: [], traffic: [] }), /bad flows record/);
      await store.write({ flows: [segment(3, 3 * SECOND)], hosts: [], traffic: [] });
      await store.flush();
      const page = await store.queryFlows({ from: 0, to: 10 * SECOND, first: 10 });
      assert.deepEqual(
        page.edges.map((e) => [e.node.flowId, e.node.serverPort, e.node.clientBytes]),
        [[segment(3, 0).flowId, 443, 63]],
      );
    } finally {
      await store.close();
    }
  });

  it('names the file when another process holds its lock', async () => {
    const path = join(tempDir('flowlens-locked-'), 'locked.duckdb');
    // A second process opens the file and keeps it open until its stdin closes.
    const holder = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `
      const { DuckDbStore } = await import(${JSON.stringify(new URL('../src/store/duckdb.ts', import.meta.url).href)});
      const store = new DuckDbStore({ path: ${JSON.stringify(path)} });
      await store.init();
      console.log('ready');
      process.stdin.on('end', () => store.close()).resume();
    `,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const ready = new Promise<void>((resolve, reject) => {
      holder.stdout!.once('data', () => resolve());
      holder.once('exit', (code) => reject(new Error(`the process holding the file exited early (code ${code})`)));
    });
    try {
      await ready;
      for (const readOnly of [false, true]) {
        await assert.rejects(
          new DuckDbStore({ path, readOnly }).init(),
          (err: Error) => err.message.startsWith(`Cannot open DuckDB database ${path}`) && /another process has it open/.test(err.message),
        );
      }
    } finally {
      holder.stdin!.end();
      if (holder.exitCode === null && holder.signalCode === null) await once(holder, 'exit');
    }
  });

  it('names the file when it cannot be opened', async () => {
    const path = join(tempDir('flowlens-corrupt-'), 'corrupt.duckdb');
    writeFileSync(path, 'this is not a DuckDB database file'.repeat(200));
    await assert.rejects(new DuckDbStore({ path }).init(), (err: Error) => err.message.startsWith(`Cannot open DuckDB database ${path}`));
    const missing = join(tempDir('flowlens-missing-'), 'missing.duckdb');
    await assert.rejects(new DuckDbStore({ path: missing, readOnly: true }).init(), (err: Error) => err.message.includes(missing));
  });
});
