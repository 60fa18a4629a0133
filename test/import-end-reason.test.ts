/**
 * Flow.duration and Flow.endReason (src/records/flow.ts), end to end: a byte-built capture whose
 * flows end by FIN, RST, idle timeout, active timeout and end of input, imported, then read back
 * through `flowlens export flows` and through GraphQL.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { importFiles as importIntoStore } from '../src/capture/import.js';
import { gqlData, startTestServer } from './api-helpers.js';
import { exportFlows, findFlow, importFiles, withTempDir, type FlowRecord } from './helpers/cli.js';
import { byTime, LINKTYPE, seconds, tcpConversation, toFrames, ts, udpExchange, type Frame } from './helpers/frames.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';

/** On a minute boundary, so that the aggregation intervals (60 s) start at BASE + 60k. */
const BASE = 1_700_000_100;

/**
 * - fin / rst: TCP conversations closed at the start, expired (closed: 10 s) when traffic resumes;
 * - idle: a UDP exchange at the start, quiet past the UDP idle timeout (60 s) by then;
 * - active-timeout: UDP from +100 s to +110 s, exported at the +160 s interval boundary while it
 *   lasts, then quiet until it expires with nothing new to export;
 * - shutdown: UDP every 10 s from +100 s to the end of the capture (+300 s).
 */
function capture(): Frame[] {
  const fin = tcpConversation({
    client: { ip: '10.9.0.1', port: 40001 },
    server: { ip: '10.9.0.2', port: 80 },
    start: ts(BASE),
    data: [{ from: 'client', bytes: 100 }],
    close: 'fin',
  });
  const rst = tcpConversation({
    client: { ip: '10.9.0.3', port: 40002 },
    server: { ip: '10.9.0.4', port: 80 },
    start: ts(BASE + 1),
    data: [{ from: 'client', bytes: 100 }],
    close: 'rst',
  });
  const idle = udpExchange({
    client: { ip: '10.9.0.5', port: 40003 },
    server: { ip: '10.9.0.6', port: 53 },
    start: ts(BASE + 2),
    messages: [
      { from: 'client', bytes: 40 },
      { from: 'server', bytes: 120 },
    ],
  });
  const active = udpExchange({
    client: { ip: '10.9.0.7', port: 40004 },
    server: { ip: '10.9.0.8', port: 5000 },
    start: ts(BASE + 100),
    step: seconds(2),
    messages: Array.from({ length: 6 }, (_, i) => ({ from: i % 2 ? ('server' as const) : ('client' as const), bytes: 200 })),
  });
  const shutdown = udpExchange({
    client: { ip: '10.9.0.9', port: 40005 },
    server: { ip: '10.9.0.10', port: 5001 },
    start: ts(BASE + 100),
    step: seconds(10),
    messages: Array.from({ length: 21 }, () => ({ from: 'client' as const, bytes: 300 })),
  });
  return toFrames(LINKTYPE.ETHERNET, [...fin, ...rst, ...idle, ...active, ...shutdown]);
}

const EXPECTED: [client: string, server: string, reason: string][] = [
  ['10.9.0.1', '10.9.0.2', 'fin'],
  ['10.9.0.3', '10.9.0.4', 'rst'],
  ['10.9.0.5', '10.9.0.6', 'idle'],
  ['10.9.0.7', '10.9.0.8', 'active-timeout'],
  ['10.9.0.9', '10.9.0.10', 'shutdown'],
];

/** '2023-11-14T22:15:00.123456Z' -> µs. */
function micros(iso: string): number {
  return Date.parse(`${iso.slice(0, 19)}Z`) * 1000 + Number(iso.slice(20, 26));
}

describe('flow duration and end reason', () => {
  it('flowlens export flows gives each flow its end reason and its duration', async () => {
    await withTempDir(async (dir) => {
      const file = writeCapture(join(dir, 'in.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, byTime(capture())));
      const db = join(dir, 'flows.duckdb');
      await importFiles(db, [file]);
      const flows: FlowRecord[] = await exportFlows(db);
      assert.equal(flows.length, EXPECTED.length, JSON.stringify(flows));
      for (const [client, server, reason] of EXPECTED) {
        const f = findFlow(flows, client, server);
        assert.equal(f.endReason, reason, `${client} -> ${server}: ${JSON.stringify(f)}`);
        assert.equal(f.duration, micros(f.lastSeen) - micros(f.firstSeen), `${client} -> ${server} duration`);
      }
      assert.equal(findFlow(flows, '10.9.0.9', '10.9.0.10').duration, 200_000_000);
    });
  });

  it('GraphQL Flow.endReason and Flow.duration', async () => {
    const t = await startTestServer();
    try {
      const file = writeCapture(join(t.dir, 'in.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, byTime(capture())));
      await importIntoStore([file], { store: t.store, intervalSec: 60, activeTimeoutSec: 60 });
      await t.store.flush();
      const from = new Date((BASE - 60) * 1000).toISOString();
      const to = new Date((BASE + 600) * 1000).toISOString();
      const data = await gqlData<{ flows: { edges: { node: { clientIp: string; serverIp: string; endReason: string | null; duration: number } }[] } }>(
        t.url,
        `query($from: DateTime!, $to: DateTime!) { flows(from: $from, to: $to, first: 100) { edges { node { clientIp serverIp endReason duration } } } }`,
        { from, to },
      );
      const got = new Map(data.flows.edges.map((e) => [`${e.node.clientIp} ${e.node.serverIp}`, e.node]));
      for (const [client, server, reason] of EXPECTED) assert.equal(got.get(`${client} ${server}`)?.endReason, reason, `${client} -> ${server}`);
      assert.equal(got.get('10.9.0.9 10.9.0.10')?.duration, 200_000_000);
    } finally {
      await t.stop();
    }
  });
});
