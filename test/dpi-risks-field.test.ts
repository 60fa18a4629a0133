// Flow.risks end to end: a byte-built capture (HTTP Basic on 8080, plain HTTP on 80, an FTP login
// on 21) imported into DuckDB, then read through GraphQL, whole and filtered by risk; an unknown
// risk name is refused with one clear error; live flows are filtered the same way (matchesFlow).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AlertEngine } from '../src/alert/engine.js';
import { parseRules } from '../src/alert/rules.js';
import { matchesFlow } from '../src/api/schema/flows.js';
import { MemoryBus } from '../src/bus/memory.js';
import { importFiles } from '../src/capture/import.js';
import type { AnomalyRecord } from '../src/records/index.js';
import type { FlowSummary } from '../src/store/types.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gql, gqlData, startTestServer } from './api-helpers.js';
import { byTime, ip, LINKTYPE, TCP_FLAGS, type TimedPacket, tcp, toFrames, ts } from './helpers/frames.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';

const BASE = 1_700_000_000;

/** A TCP connection: handshake, then each line sent in turn (ACKed), then FIN both ways. */
function connection(client: string, cport: number, server: string, sport: number, start: number, lines: ['c' | 's', string][]): TimedPacket[] {
  const out: TimedPacket[] = [];
  const seq = { client: 1000, server: 9000 };
  let t = ts(start);
  const send = (from: 'client' | 'server', flags: number, data = '') => {
    const [a, ap, b, bp] = from === 'client' ? [client, cport, server, sport] : [server, sport, client, cport];
    const other = from === 'client' ? 'server' : 'client';
    const body = Buffer.from(data, 'latin1');
    out.push({ ts: t, from, ip: ip({ src: a, dst: b, l4: tcp({ srcPort: ap, dstPort: bp, seq: seq[from], ack: seq[other], flags, payload: body }) }) });
    seq[from] = (seq[from] + body.length + (flags & (TCP_FLAGS.SYN | TCP_FLAGS.FIN) ? 1 : 0)) >>> 0;
    t += 1000n;
  };
  send('client', TCP_FLAGS.SYN);
  send('server', TCP_FLAGS.SYN | TCP_FLAGS.ACK);
  send('client', TCP_FLAGS.ACK);
  for (const [who, text] of lines) send(who === 'c' ? 'client' : 'server', TCP_FLAGS.PSH | TCP_FLAGS.ACK, text);
  send('client', TCP_FLAGS.FIN | TCP_FLAGS.ACK);
  send('server', TCP_FLAGS.FIN | TCP_FLAGS.ACK);
  send('client', TCP_FLAGS.ACK);
  return out;
}

function capture(): Uint8Array {
  const basic = connection('10.7.0.1', 41000, '10.7.0.2', 8080, BASE, [
    ['c', 'GET /admin HTTP/1.1\r\nHost: cam.example\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\n\r\n'],
    ['s', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ]);
  const plain = connection('10.7.0.1', 41001, '10.7.0.3', 80, BASE + 1, [
    ['c', 'GET / HTTP/1.1\r\nHost: www.example\r\n\r\n'],
    ['s', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ]);
  const ftp = connection('10.7.0.1', 41002, '10.7.0.4', 21, BASE + 2, [
    ['s', '220 (vsFTPd 3.0.3)\r\n'],
    ['c', 'USER anna\r\n'],
    ['s', '331 Please specify the password.\r\n'],
    ['c', 'PASS secret\r\n'],
    ['s', '230 Login successful.\r\n'],
  ]);
  return pcap({ linktype: LINKTYPE.ETHERNET }, byTime(toFrames(LINKTYPE.ETHERNET, [...basic, ...plain, ...ftp])));
}

const QUERY = `query($from: DateTime!, $to: DateTime!, $filter: FlowFilter) {
  flows(from: $from, to: $to, first: 100, filter: $filter) { edges { node { serverIp serverPort app risks } } }
}`;

type Node = { serverIp: string; serverPort: number; app: string | null; risks: string | null };

describe('Flow.risks through the store and GraphQL', () => {
  it('each flow carries its risks; the risk filter keeps the flows that have it; an unknown name is one clear error', async () => {
    const t = await startTestServer();
    try {
      const file = writeCapture(join(t.dir, 'risks.pcap'), capture());
      await importFiles([file], { store: t.store });
      await t.store.flush();
      const range = { from: new Date((BASE - 60) * 1000).toISOString(), to: new Date((BASE + 600) * 1000).toISOString() };
      const read = async (filter?: Record<string, unknown>) =>
        (await gqlData<{ flows: { edges: { node: Node }[] } }>(t.url, QUERY, { ...range, filter })).flows.edges.map((e) => e.node);

      const all = new Map((await read()).map((n) => [n.serverIp, n]));
      assert.equal(all.size, 3);
      assert.deepEqual(all.get('10.7.0.2'), {
        serverIp: '10.7.0.2',
        serverPort: 8080,
        app: 'HTTP',
        risks: 'Known Proto on Non Std Port,Clear-Text Credentials',
      });
      assert.deepEqual(all.get('10.7.0.3'), { serverIp: '10.7.0.3', serverPort: 80, app: 'HTTP', risks: null });
      assert.deepEqual(all.get('10.7.0.4'), { serverIp: '10.7.0.4', serverPort: 21, app: 'FTP_CONTROL', risks: 'Clear-Text Credentials' });

      const clear = await read({ risk: 'Clear-Text Credentials' });
      assert.deepEqual(clear.map((n) => n.serverIp).sort(), ['10.7.0.2', '10.7.0.4']);
      assert.deepEqual(
        (await read({ risk: 'Known Proto on Non Std Port' })).map((n) => n.serverIp),
        ['10.7.0.2'],
      );
      assert.deepEqual(await read({ risk: 'Self-signed Cert' }), []);
      // With another filter (the cache's filtered entry and the SQL agree).
      assert.deepEqual(
        (await read({ risk: 'Clear-Text Credentials', port: 21 })).map((n) => n.serverIp),
        ['10.7.0.4'],
      );

      const bad = await gql(t.url, QUERY, { ...range, filter: { risk: 'Clear-Text' } });
      assert.equal(bad.errors?.length, 1, JSON.stringify(bad));
      assert.match(bad.errors![0]!.message, /unknown risk "Clear-Text"; one of: Known Proto on Non Std Port, Clear-Text Credentials/);
    } finally {
      await t.stop();
    }
  });

  it('live flows are filtered by risk as the store filters them', () => {
    // Only the filter's fields are read.
    const f = { risks: 'Obsolete TLS (v1.1 or older),Self-signed Cert' } as FlowSummary;
    assert.equal(matchesFlow(f, { risk: 'Self-signed Cert' }), true);
    assert.equal(matchesFlow(f, { risk: 'TLS Cert Mismatch' }), false);
    assert.equal(matchesFlow({ ...f, risks: '' }, { risk: 'Self-signed Cert' }), false);
    assert.equal(matchesFlow(f, {}), true);
  });

  it('rules match on risks (risk=NAME, _ for a space, globs) and raise RULE anomalies from an import', async () => {
    const set = parseRules('r.rules', 'creds high risk=Clear-Text_Credentials\ncerts medium risk=TLS_Cert_*,Self-signed_Cert\n');
    const base = {
      clientIp: '10.0.0.1',
      serverIp: '10.0.0.2',
      clientPort: 1,
      serverPort: 2,
      transport: 'tcp',
      app: '',
      serverName: '',
      ja4: '',
      node: '',
      iface: '',
    };
    assert.equal(set.rules[0]!.matches({ ...base, risks: 'Known Proto on Non Std Port,Clear-Text Credentials' }), true);
    assert.equal(set.rules[0]!.matches({ ...base, risks: 'Clear-Text' }), false);
    assert.equal(set.rules[0]!.matches({ ...base, risks: '' }), false);
    assert.equal(set.rules[1]!.matches({ ...base, risks: 'TLS Cert Expired' }), true);
    assert.equal(set.rules[1]!.matches({ ...base, risks: 'Obsolete TLS (v1.1 or older)' }), false);

    const dir = mkdtempSync(join(tmpdir(), 'flowlens-risk-rules-'));
    try {
      const file = writeCapture(join(dir, 'risks.pcap'), capture());
      const rulesFile = join(dir, 'risks.rules');
      writeFileSync(rulesFile, 'creds high risk=Clear-Text_Credentials\n');
      const emitted: AnomalyRecord[] = [];
      const engine = new AlertEngine({ rulesFile, sink: (_type, record) => emitted.push({ ...record }), pollMs: 50 });
      const bus = new MemoryBus();
      bus.subscribe('flow', (e) => engine.flow(e));
      await importFiles([file], { store: null, bus, detect: false });
      engine.idle(Date.now() + 3_600_000);
      engine.close();
      const raised = [...new Map(emitted.map((a) => [a.anomalyId, a])).values()];
      assert.deepEqual(raised.map((a) => [a.kind, a.source, a.targetIp, a.targetPort]).sort(), [
        ['RULE', '10.7.0.1', '10.7.0.2', 8080],
        ['RULE', '10.7.0.1', '10.7.0.4', 21],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
