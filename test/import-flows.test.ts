/**
 * Flow semantics of `flowlens import`, checked end to end through
 * `flowlens export flows|hosts`: direction and roles, TCP states, IPv4
 * fragments, IPv6 extension headers, SCTP and other protocols, idle and
 * active timeouts, and per-host aggregates.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  LINKTYPE,
  arpRequest,
  byTime,
  directionTotals,
  fragmentIpv4,
  icmpPing,
  ip,
  ipv6,
  isoMicros,
  payload,
  rawPayload,
  sctp,
  sctpChunk,
  seconds,
  tcp,
  tcpConversation,
  toFrames,
  ts,
  udp,
  udpExchange,
  type Frame,
  type Ipv6Ext,
  type TimedPacket,
} from './helpers/frames.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';
import {
  EXPORTED_RECORD_FIELDS,
  FIRST_RELEASE_FLOW_FIELDS,
  FLOW_FIELDS,
  assertFlow,
  exportAnomalies,
  exportFlows,
  exportHosts,
  expectedFlow,
  findFlow,
  importFiles,
  runCli,
  withTempDir,
  type FlowMeta,
  type FlowRecord,
  type HostRecord,
  type ImportSummary,
} from './helpers/cli.js';

const BASE = 1_700_000_000;
const FIN = 1,
  SYN = 2,
  RST = 4,
  PSH = 8,
  ACK = 16;

/** Write `frames` (Ethernet) to one pcap, import it into a fresh DB, export the flows. */
async function importEthernet(
  dir: string,
  frames: Frame[],
  extra: string[] = [],
  env?: Record<string, string>,
): Promise<{ summary: ImportSummary; flows: FlowRecord[]; db: string }> {
  const file = writeCapture(join(dir, 'in.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, byTime(frames)));
  const db = join(dir, 'flows.duckdb');
  const { summary } = await importFiles(db, [file], { extra, env });
  return { summary, flows: await exportFlows(db), db };
}

const eth = (pkts: TimedPacket[]): Frame[] => toFrames(LINKTYPE.ETHERNET, pkts);

function sumBytes(frames: Frame[]): number {
  return frames.reduce((n, f) => n + (f.origLen ?? f.data.length), 0);
}

describe('flowlens import: flows', () => {
  it('counts packets and bytes per direction and picks client and server (SYN sender, mid-stream well-known port, first UDP sender)', async () => {
    await withTempDir(async (dir) => {
      // a) The SYN sender is the client even from port 22 to an ephemeral port.
      const syn = eth(
        tcpConversation({
          client: { ip: '10.3.0.1', port: 22 },
          server: { ip: '10.3.0.2', port: 60000 },
          start: ts(BASE),
          data: [
            { from: 'client', bytes: 100 },
            { from: 'server', bytes: 700 },
            { from: 'server', bytes: 50 },
          ],
          close: 'fin',
        }),
      );
      // b) Capture starts mid-stream and the first packet is the server's (from port 443).
      const mid = eth(
        tcpConversation({
          client: { ip: '10.3.0.3', port: 52000 },
          server: { ip: '10.3.0.4', port: 443 },
          start: ts(BASE + 1),
          handshake: 'none',
          data: [
            { from: 'server', bytes: 1200 },
            { from: 'client', bytes: 80 },
          ],
          close: 'none',
        }),
      );
      // c) UDP between two ephemeral ports: the first sender is the client.
      const dgram = eth(
        udpExchange({
          client: { ip: '10.3.0.6', port: 45000 },
          server: { ip: '10.3.0.5', port: 40000 },
          start: ts(BASE + 2),
          messages: [
            { from: 'client', bytes: 10 },
            { from: 'client', bytes: 11 },
            { from: 'server', bytes: 500 },
          ],
        }),
      );
      // d) ICMP echo: the requester is the client.
      const ping = eth(icmpPing({ client: '10.3.0.7', server: '10.3.0.8', start: ts(BASE + 3), count: 4 }));
      const all = [...syn, ...mid, ...dgram, ...ping];
      const { summary, flows } = await importEthernet(dir, all);

      assert.equal(summary.packets, all.length);
      assert.equal(summary.bytes, sumBytes(all));
      assert.equal(summary.flows, 4);
      assert.equal(summary.hosts, 8);
      assert.equal(summary.malformed, 0, JSON.stringify(summary.malformedByReason));
      assert.equal(flows.length, 4, JSON.stringify(flows));
      for (const f of flows) assert.deepEqual(Object.keys(f).sort(), [...EXPORTED_RECORD_FIELDS].sort(), 'JSONL record fields');

      assertFlow(
        findFlow(flows, '10.3.0.1', '10.3.0.2'),
        expectedFlow(
          {
            transport: 'tcp',
            ipProto: 6,
            clientIp: '10.3.0.1',
            clientPort: 22,
            serverIp: '10.3.0.2',
            serverPort: 60000,
            tcpState: 'closed',
            clientTcpFlags: SYN | ACK | PSH | FIN,
            serverTcpFlags: SYN | ACK | PSH | FIN,
          },
          syn,
        ),
        'SYN sender',
      );
      assertFlow(
        findFlow(flows, '10.3.0.3', '10.3.0.4'),
        expectedFlow(
          {
            transport: 'tcp',
            ipProto: 6,
            clientIp: '10.3.0.3',
            clientPort: 52000,
            serverIp: '10.3.0.4',
            serverPort: 443,
            tcpState: 'established',
            clientTcpFlags: PSH | ACK,
            serverTcpFlags: PSH | ACK,
          },
          mid,
        ),
        'mid-stream',
      );
      assertFlow(
        findFlow(flows, '10.3.0.6', '10.3.0.5'),
        expectedFlow(
          {
            transport: 'udp',
            ipProto: 17,
            clientIp: '10.3.0.6',
            clientPort: 45000,
            serverIp: '10.3.0.5',
            serverPort: 40000,
            tcpState: '',
            clientTcpFlags: 0,
            serverTcpFlags: 0,
          },
          dgram,
        ),
        'UDP first sender',
      );
      assertFlow(
        findFlow(flows, '10.3.0.7', '10.3.0.8'),
        expectedFlow({ transport: 'icmp', ipProto: 1, clientIp: '10.3.0.7', serverIp: '10.3.0.8', tcpState: '' }, ping),
        'ICMP echo',
      );
      // Direction totals really differ, so a swapped direction cannot pass.
      const t = directionTotals(syn);
      assert.notEqual(t.clientBytes, t.serverBytes);
    });
  });

  it('TCP states: SYN only -> attempted, handshake -> established, FIN -> closed, RST -> reset', async () => {
    await withTempDir(async (dir) => {
      const c = (n: number, port = 40000 + n) => ({ ip: `10.4.0.${n}`, port });
      const attempted = eth(tcpConversation({ client: c(1), server: c(2, 80), start: ts(BASE), step: seconds(1), handshake: 'syn-only', synCount: 3 }));
      const established = eth(tcpConversation({ client: c(3), server: c(4, 80), start: ts(BASE + 10), data: [{ from: 'client', bytes: 50 }], close: 'none' }));
      const closed = eth(
        tcpConversation({
          client: c(5),
          server: c(6, 80),
          start: ts(BASE + 20),
          data: [
            { from: 'client', bytes: 50 },
            { from: 'server', bytes: 150 },
          ],
          close: 'fin',
          closeBy: 'server',
        }),
      );
      const reset = eth(
        tcpConversation({ client: c(7), server: c(8, 80), start: ts(BASE + 30), data: [{ from: 'client', bytes: 50 }], close: 'rst', closeBy: 'server' }),
      );
      const { summary, flows } = await importEthernet(dir, [...attempted, ...established, ...closed, ...reset]);
      assert.equal(summary.flows, 4);
      const meta = (n: number, tcpState: string, clientTcpFlags: number, serverTcpFlags: number): FlowMeta => ({
        transport: 'tcp',
        ipProto: 6,
        clientIp: `10.4.0.${n}`,
        clientPort: 40000 + n,
        serverIp: `10.4.0.${n + 1}`,
        serverPort: 80,
        tcpState,
        clientTcpFlags,
        serverTcpFlags,
      });
      assertFlow(findFlow(flows, '10.4.0.1', '10.4.0.2'), expectedFlow(meta(1, 'attempted', SYN, 0), attempted), 'attempted');
      assertFlow(findFlow(flows, '10.4.0.3', '10.4.0.4'), expectedFlow(meta(3, 'established', SYN | ACK | PSH, SYN | ACK), established), 'established');
      assertFlow(findFlow(flows, '10.4.0.5', '10.4.0.6'), expectedFlow(meta(5, 'closed', SYN | ACK | PSH | FIN, SYN | ACK | PSH | FIN), closed), 'closed');
      assertFlow(findFlow(flows, '10.4.0.7', '10.4.0.8'), expectedFlow(meta(7, 'reset', SYN | ACK | PSH, SYN | ACK | RST), reset), 'reset');
    });
  });

  it('IPv4 fragments: a UDP datagram in 3 fragments is one flow with all 3 packets; summary counts 2 fragments', async () => {
    await withTempDir(async (dir) => {
      const client = { ip: '10.5.0.1', port: 41000 };
      const server = { ip: '10.5.0.2', port: 7000 };
      const frags = fragmentIpv4(
        { src: client.ip, dst: server.ip, id: 0x4242, l4: udp({ srcPort: client.port, dstPort: server.port, payload: payload(3000) }) },
        [1480, 1480],
      );
      assert.equal(frags.length, 3);
      const request: TimedPacket[] = frags.map((f, i) => ({ ts: ts(BASE, 1000 * i), ip: f, from: 'client' }));
      const reply: TimedPacket = {
        ts: ts(BASE, 5000),
        from: 'server',
        ip: ip({ src: server.ip, dst: client.ip, l4: udp({ srcPort: server.port, dstPort: client.port, payload: payload(20) }) }),
      };
      // An unrelated unfragmented flow alongside.
      const other = udpExchange({
        client: { ip: '10.5.0.3', port: 41001 },
        server: { ip: '10.5.0.4', port: 7000 },
        start: ts(BASE, 2500),
        messages: [{ from: 'client', bytes: 64 }],
      });
      const frames = eth([...request, reply]);
      const { summary, flows } = await importEthernet(dir, [...frames, ...eth(other)]);
      assert.equal(summary.fragments, 2, 'non-first fragments');
      assert.equal(summary.malformed, 0, JSON.stringify(summary.malformedByReason));
      assert.equal(summary.packets, 5);
      assert.equal(summary.flows, 2);
      assert.equal(flows.length, 2, JSON.stringify(flows));
      assertFlow(
        findFlow(flows, client.ip, server.ip),
        expectedFlow(
          { transport: 'udp', ipProto: 17, clientIp: client.ip, clientPort: client.port, serverIp: server.ip, serverPort: server.port, tcpState: '' },
          frames,
        ),
        'fragmented flow',
      );
      const f = findFlow(flows, client.ip, server.ip);
      assert.equal(f.clientPackets, 3);
      assert.equal(f.clientBytes, 1514 + 1514 + frames[2].data.length);
    });
  });

  it('IPv6 extension headers (hop-by-hop, destination options, routing, fragment) are skipped to find TCP and UDP', async () => {
    await withTempDir(async (dir) => {
      const chain: Ipv6Ext[] = [{ type: 'hopByHop', optionBytes: 10 }, { type: 'destOpts' }, { type: 'routing' }, { type: 'fragment' }];
      const client = { ip: '2001:db8:6::1', port: 42000 };
      const server = { ip: '2001:db8:6::2', port: 443 };
      // Rebuild each TCP packet of a conversation with the extension-header chain.
      const plain = tcpConversation({
        client,
        server,
        start: ts(BASE),
        data: [
          { from: 'client', bytes: 300 },
          { from: 'server', bytes: 900 },
        ],
        close: 'fin',
      });
      const withExt: TimedPacket[] = plain.map((p) => {
        const tcpBytes = p.ip.subarray(40);
        const [src, dst] = p.from === 'client' ? [client.ip, server.ip] : [server.ip, client.ip];
        return { ...p, ip: ipv6({ src, dst, ext: chain, l4: rawPayload(6, tcpBytes) }) };
      });
      const udpPkts: TimedPacket[] = [0, 1].map((i) => ({
        ts: ts(BASE + 1, i),
        from: 'client',
        ip: ipv6({ src: '2001:db8:6::3', dst: '2001:db8:6::4', ext: [{ type: 'hopByHop' }], l4: udp({ srcPort: 43000, dstPort: 5001, payload: payload(40) }) }),
      }));
      const tcpFrames = eth(withExt);
      const udpFrames = eth(udpPkts);
      const { summary, flows } = await importEthernet(dir, [...tcpFrames, ...udpFrames]);
      assert.equal(summary.malformed, 0, JSON.stringify(summary.malformedByReason));
      assert.equal(flows.length, 2, JSON.stringify(flows));
      assertFlow(
        findFlow(flows, client.ip, server.ip),
        expectedFlow(
          {
            transport: 'tcp',
            ipProto: 6,
            clientIp: client.ip,
            clientPort: client.port,
            serverIp: server.ip,
            serverPort: server.port,
            tcpState: 'closed',
            clientTcpFlags: SYN | ACK | PSH | FIN,
            serverTcpFlags: SYN | ACK | PSH | FIN,
          },
          tcpFrames,
        ),
        'TCP behind 4 extension headers',
      );
      assertFlow(
        findFlow(flows, '2001:db8:6::3', '2001:db8:6::4'),
        expectedFlow(
          { transport: 'udp', ipProto: 17, clientIp: '2001:db8:6::3', clientPort: 43000, serverIp: '2001:db8:6::4', serverPort: 5001, tcpState: '' },
          udpFrames,
        ),
        'UDP behind hop-by-hop',
      );
    });
  });

  it('SCTP flows keep their ports; other IP protocols become ip-<n> flows', async () => {
    await withTempDir(async (dir) => {
      const a = '10.7.0.1',
        b = '10.7.0.2';
      const sctpPkts: TimedPacket[] = [
        {
          from: 'client',
          ts: ts(BASE, 0),
          ip: ip({ src: a, dst: b, l4: sctp({ srcPort: 40100, dstPort: 3868, vtag: 0, chunks: [sctpChunk.init({ initiateTag: 0x1111, initialTsn: 1 })] }) }),
        },
        {
          from: 'server',
          ts: ts(BASE, 1000),
          ip: ip({
            src: b,
            dst: a,
            l4: sctp({ srcPort: 3868, dstPort: 40100, vtag: 0x1111, chunks: [sctpChunk.initAck({ initiateTag: 0x2222, initialTsn: 1 })] }),
          }),
        },
        {
          from: 'client',
          ts: ts(BASE, 2000),
          ip: ip({ src: a, dst: b, l4: sctp({ srcPort: 40100, dstPort: 3868, vtag: 0x2222, chunks: [sctpChunk.data({ tsn: 1, payload: payload(100) })] }) }),
        },
      ];
      const c = '10.7.0.3',
        d = '10.7.0.4';
      const otherPkts: TimedPacket[] = [
        { from: 'client', ts: ts(BASE + 1, 0), ip: ip({ src: c, dst: d, l4: rawPayload(253, payload(60)) }) },
        { from: 'server', ts: ts(BASE + 1, 500), ip: ip({ src: d, dst: c, l4: rawPayload(253, payload(30)) }) },
        { from: 'client', ts: ts(BASE + 1, 900), ip: ip({ src: c, dst: d, l4: rawPayload(253, payload(61)) }) },
      ];
      const sctpFrames = eth(sctpPkts);
      const otherFrames = eth(otherPkts);
      const { summary, flows } = await importEthernet(dir, [...sctpFrames, ...otherFrames]);
      assert.equal(summary.malformed, 0, JSON.stringify(summary.malformedByReason));
      assert.equal(flows.length, 2, JSON.stringify(flows));
      assertFlow(
        findFlow(flows, a, b),
        expectedFlow({ transport: 'sctp', ipProto: 132, clientIp: a, clientPort: 40100, serverIp: b, serverPort: 3868, tcpState: '' }, sctpFrames),
        'SCTP',
      );
      assertFlow(
        findFlow(flows, c, d),
        expectedFlow({ transport: 'ip-253', ipProto: 253, clientIp: c, serverIp: d, tcpState: '' }, otherFrames),
        'protocol 253',
      );
    });
  });

  it('flows of IP protocols that name themselves get their app from the protocol number (ICMP, IPsec ESP/AH, IGMP, SCTP); others stay unknown', async () => {
    const pair = (n: number, l4: (i: number) => ReturnType<typeof rawPayload>, v6 = false): TimedPacket[] => {
      const [c, s] = v6 ? [`2001:db8:9::${n}`, `2001:db8:9::${n + 100}`] : [`10.9.0.${n}`, `10.9.1.${n}`];
      const at = (i: number) => ts(BASE + n, i * 1000);
      const pkt = (i: number, from: 'client' | 'server') => {
        const [src, dst] = from === 'client' ? [c, s] : [s, c];
        return { from, ts: at(i), ip: v6 ? ipv6({ src, dst, l4: l4(i) }) : ip({ src, dst, l4: l4(i) }) };
      };
      return [pkt(0, 'client'), pkt(1, 'server')];
    };
    const cases: [label: string, pkts: TimedPacket[], client: string, transport: string, app: string][] = [
      ['ICMP echo', icmpPing({ client: '10.9.0.1', server: '10.9.1.1', start: ts(BASE + 1), count: 2 }), '10.9.0.1', 'icmp', 'ICMP'],
      ['ICMPv6 echo', icmpPing({ client: '2001:db8:9::2', server: '2001:db8:9::102', start: ts(BASE + 2), count: 2 }), '2001:db8:9::2', 'icmpv6', 'ICMPV6'],
      // ESP: SPI and sequence number, then ciphertext; AH: next header, length, reserved, SPI, sequence, ICV.
      ['ESP', pair(3, (i) => rawPayload(50, Uint8Array.from([0, 0, 0x10, 0x01, 0, 0, 0, i + 1, ...payload(40)]))), '10.9.0.3', 'ip-50', 'IPSec'],
      [
        'ESP over IPv6',
        pair(4, (i) => rawPayload(50, Uint8Array.from([0, 0, 0x10, 0x02, 0, 0, 0, i + 1, ...payload(40)])), true),
        '2001:db8:9::4',
        'ip-50',
        'IPSec',
      ],
      ['AH', pair(5, (i) => rawPayload(51, Uint8Array.from([59, 4, 0, 0, 0, 0, 0x20, 0x01, 0, 0, 0, i + 1, ...payload(12)]))), '10.9.0.5', 'ip-51', 'IPSec'],
      // IGMPv2 membership report for 239.1.1.1; an SCTP INIT alone (pair() would send it back from the same ports).
      ['IGMP', pair(6, () => rawPayload(2, Uint8Array.from([0x16, 0, 0xfa, 0xfc, 239, 1, 1, 1]))), '10.9.0.6', 'ip-2', 'IGMP'],
      [
        'SCTP',
        pair(7, () => sctp({ srcPort: 40200, dstPort: 2905, vtag: 0, chunks: [sctpChunk.init({ initiateTag: 7, initialTsn: 1 })] })).slice(0, 1),
        '10.9.0.7',
        'sctp',
        'SCTP',
      ],
      ['protocol 253 (experimentation)', pair(8, () => rawPayload(253, payload(30))), '10.9.0.8', 'ip-253', ''],
    ];
    await withTempDir(async (dir) => {
      const { summary, flows } = await importEthernet(
        dir,
        cases.flatMap(([, pkts]) => eth(pkts)),
      );
      assert.equal(summary.malformed, 0, JSON.stringify(summary.malformedByReason));
      assert.equal(flows.length, cases.length, JSON.stringify(flows));
      const got = cases.map(([label, , client]) => {
        const f = flows.find((r) => r.clientIp === client);
        return [label, f?.transport, f?.app, f?.confidence];
      });
      assert.deepEqual(
        got,
        cases.map(([label, , , transport, app]) => [label, transport, app, app === '' ? 'unknown' : 'dpi']),
      );
    });
    // DPI off: no labels at all.
    await withTempDir(async (dir) => {
      const { flows } = await importEthernet(dir, eth(cases[2][1]), ['--no-dpi']);
      assert.deepEqual(
        flows.map((f) => [f.transport, f.app, f.confidence]),
        [['ip-50', '', '']],
      );
    });
  });

  it('DPI names the application and server of a flow; --no-dpi or FLOWLENS_DPI=false leaves them empty', async () => {
    // A DNS query for www.example.org: header, one question (QNAME, type A, class IN).
    const labels = 'www.example.org'.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]);
    const query = Uint8Array.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
    const frames = eth([
      { from: 'client', ts: ts(BASE, 0), ip: ip({ src: '10.12.0.1', dst: '10.12.0.2', l4: udp({ srcPort: 40001, dstPort: 53, payload: query }) }) },
    ]);
    const on = ['DNS', 'www.example.org', 'dpi'];
    const off = ['', '', ''];
    for (const [extra, env, expected] of [
      [[], {}, on],
      [['--no-dpi'], {}, off],
      [[], { FLOWLENS_DPI: 'false' }, off],
      [[], { FLOWLENS_DPI: 'OFF' }, off],
      [[], { FLOWLENS_DPI: '1' }, on],
      // The flag wins over the variable.
      [['--no-dpi'], { FLOWLENS_DPI: 'true' }, off],
    ] as const) {
      await withTempDir(async (dir) => {
        const { flows } = await importEthernet(dir, frames, [...extra], env);
        assert.equal(flows.length, 1);
        assert.deepEqual([flows[0].app, flows[0].serverName, flows[0].confidence], expected, `import ${extra.join(' ')} ${JSON.stringify(env)}`);
      });
    }
    // Anything but a boolean word is one clear error, before any file is read.
    await withTempDir(async (dir) => {
      const r = await runCli(['import', join(dir, 'absent.pcap'), '--db', join(dir, 'x.duckdb')], { env: { FLOWLENS_DPI: 'maybe' } });
      assert.equal(r.code, 2, r.stderr);
      assert.deepEqual(r.stderr.trim().split('\n'), [
        "error: environment variable FLOWLENS_DPI must be true or false (1/0, yes/no, on/off), not 'maybe'",
        '(run with --help for usage)',
      ]);
      assert.equal(existsSync(join(dir, 'x.duckdb')), false);
    });
  });

  it('anomaly detection runs on import; --no-detect or FLOWLENS_DETECT=false turns it off', async () => {
    // 10 s of 400 SYN/s from one source to one port, none answered: a SYN flood.
    const flood: TimedPacket[] = Array.from({ length: 4000 }, (_, i) => ({
      from: 'client',
      ts: ts(BASE, i * 2500),
      ip: ip({ src: '10.13.0.1', dst: '10.13.0.2', l4: tcp({ srcPort: 1024 + i, dstPort: 80, flags: SYN }) }),
    }));
    for (const [extra, env, expected] of [
      [[], {}, ['SYN_FLOOD 10.13.0.1 -> 10.13.0.2:80']],
      [['--no-detect'], {}, []],
      [[], { FLOWLENS_DETECT: 'false' }, []],
      [[], { FLOWLENS_DETECT: 'on' }, ['SYN_FLOOD 10.13.0.1 -> 10.13.0.2:80']],
    ] as const) {
      await withTempDir(async (dir) => {
        const { db } = await importEthernet(dir, eth(flood), [...extra], env);
        const found = (await exportAnomalies(db)).map((a) => `${a.kind} ${a.source} -> ${a.targetIp}:${a.targetPort}`);
        assert.deepEqual(found, expected, `import ${extra.join(' ')} ${JSON.stringify(env)}`);
      });
    }
  });

  it('the same UDP 5-tuple after a 10-minute silence is a second flow', async () => {
    await withTempDir(async (dir) => {
      const client = { ip: '10.8.0.1', port: 46000 };
      const server = { ip: '10.8.0.2', port: 5001 };
      const msgs = [
        { from: 'client' as const, bytes: 20 },
        { from: 'server' as const, bytes: 40 },
      ];
      const first = eth(udpExchange({ client, server, start: ts(BASE), messages: msgs }));
      const second = eth(udpExchange({ client, server, start: ts(BASE + 600), messages: [...msgs, { from: 'client', bytes: 21 }] }));
      const { summary, flows } = await importEthernet(dir, [...first, ...second]);
      assert.equal(summary.flows, 2);
      assert.equal(flows.length, 2, JSON.stringify(flows));
      const meta: FlowMeta = {
        transport: 'udp',
        ipProto: 17,
        clientIp: client.ip,
        clientPort: client.port,
        serverIp: server.ip,
        serverPort: server.port,
        tcpState: '',
      };
      assertFlow(
        findFlow(flows, client.ip, server.ip, (f) => f.firstSeen === isoMicros(ts(BASE))),
        expectedFlow(meta, first),
        'before the gap',
      );
      assertFlow(
        findFlow(flows, client.ip, server.ip, (f) => f.firstSeen === isoMicros(ts(BASE + 600))),
        expectedFlow(meta, second),
        'after the gap',
      );
    });
  });

  it('a 5-minute TCP flow spanning several active timeouts exports as ONE flow with all its packets', async () => {
    await withTempDir(async (_dir) => {
      const data = Array.from({ length: 33 }, (_, i) => ({ from: (i % 3 === 2 ? 'server' : 'client') as 'client' | 'server', bytes: 100 + i }));
      const conv = eth(
        tcpConversation({
          client: { ip: '10.9.0.1', port: 47000 },
          server: { ip: '10.9.0.2', port: 22 },
          start: ts(BASE),
          step: seconds(4.2),
          data,
          close: 'fin',
        }),
      );
      const span = Number(conv[conv.length - 1].ts - conv[0].ts) / 1e9;
      assert.ok(span > 280 && span < 300, `fixture spans ${span} s`);
      for (const extra of [[], ['--active-timeout', '30']]) {
        await withTempDir(async (sub) => {
          const { flows } = await importEthernet(sub, conv, extra);
          assert.equal(flows.length, 1, `${extra.join(' ')}: ${JSON.stringify(flows)}`);
          assertFlow(
            flows[0],
            expectedFlow(
              {
                transport: 'tcp',
                ipProto: 6,
                clientIp: '10.9.0.1',
                clientPort: 47000,
                serverIp: '10.9.0.2',
                serverPort: 22,
                tcpState: 'closed',
                clientTcpFlags: SYN | ACK | PSH | FIN,
                serverTcpFlags: SYN | ACK | PSH | FIN,
              },
              conv,
            ),
            `long flow ${extra.join(' ')}`,
          );
        });
      }
    });
  });

  it('hosts export: bytes and packets sent/received, flows initiated/received, peers; ARP counts as non-IP only', async () => {
    await withTempDir(async (dir) => {
      const A = '10.10.0.1',
        B = '10.10.0.2',
        C = '10.10.0.3';
      const ab = eth(
        tcpConversation({
          client: { ip: A, port: 48000 },
          server: { ip: B, port: 80 },
          start: ts(BASE),
          data: [
            { from: 'client', bytes: 200 },
            { from: 'server', bytes: 1300 },
          ],
          close: 'fin',
        }),
      );
      const ac = eth(
        udpExchange({
          client: { ip: A, port: 48001 },
          server: { ip: C, port: 53 },
          start: ts(BASE + 1),
          messages: [
            { from: 'client', bytes: 30 },
            { from: 'server', bytes: 90 },
          ],
        }),
      );
      const bc = eth(
        udpExchange({
          client: { ip: B, port: 48002 },
          server: { ip: C, port: 123 },
          start: ts(BASE + 2),
          messages: [
            { from: 'client', bytes: 48 },
            { from: 'server', bytes: 48 },
            { from: 'client', bytes: 48 },
          ],
        }),
      );
      const arp: Frame = { ts: ts(BASE + 3), data: arpRequest(A, '10.10.0.254') };
      const all = [...ab, ...ac, ...bc, arp];
      const { summary, db } = await importEthernet(dir, all);
      assert.equal(summary.packets, all.length);
      assert.equal(summary.bytes, sumBytes(all));
      assert.equal(summary.nonIp, 1);
      assert.equal(summary.malformed, 0, JSON.stringify(summary.malformedByReason));
      assert.equal(summary.flows, 3);
      assert.equal(summary.hosts, 3);

      const hosts = await exportHosts(db);
      assert.deepEqual(hosts.map((h) => h.ip).sort(), [A, B, C], JSON.stringify(hosts));
      const tot = (frames: Frame[]) => directionTotals(frames);
      const [tab, tac, tbc] = [tot(ab), tot(ac), tot(bc)];
      const expected: Record<string, Partial<HostRecord>> = {
        [A]: {
          bytesSent: tab.clientBytes + tac.clientBytes,
          bytesReceived: tab.serverBytes + tac.serverBytes,
          packetsSent: tab.clientPackets + tac.clientPackets,
          packetsReceived: tab.serverPackets + tac.serverPackets,
          flowsInitiated: 2,
          flowsReceived: 0,
          flows: 2,
          peers: 2,
        },
        [B]: {
          bytesSent: tab.serverBytes + tbc.clientBytes,
          bytesReceived: tab.clientBytes + tbc.serverBytes,
          packetsSent: tab.serverPackets + tbc.clientPackets,
          packetsReceived: tab.clientPackets + tbc.serverPackets,
          flowsInitiated: 1,
          flowsReceived: 1,
          flows: 2,
          peers: 2,
        },
        [C]: {
          bytesSent: tac.serverBytes + tbc.serverBytes,
          bytesReceived: tac.clientBytes + tbc.clientBytes,
          packetsSent: tac.serverPackets + tbc.serverPackets,
          packetsReceived: tac.clientPackets + tbc.clientPackets,
          flowsInitiated: 0,
          flowsReceived: 2,
          flows: 2,
          peers: 2,
        },
      };
      for (const h of hosts) {
        const want = expected[h.ip];
        const got = Object.fromEntries(Object.keys(want).map((k) => [k, h[k as keyof typeof h]]));
        assert.deepEqual(got, want, `host ${h.ip}: ${JSON.stringify(h)}`);
      }
      // Host records are kept per aggregation interval (60 s by default), so first/last seen may be
      // rounded down to the interval start; they must still fall in the interval of the real first/last packet.
      const seen: Record<string, [Frame, Frame]> = { [A]: [ab[0], ac[ac.length - 1]], [B]: [ab[0], bc[bc.length - 1]], [C]: [ac[0], bc[bc.length - 1]] };
      for (const h of hosts) {
        const [first, last] = seen[h.ip];
        for (const [field, frame] of [
          ['firstSeen', first],
          ['lastSeen', last],
        ] as const) {
          const exact = isoMicros(frame.ts);
          const floor = isoMicros(frame.ts - (frame.ts % (60n * 1_000_000_000n)));
          assert.ok(h[field] === exact || h[field] === floor, `host ${h.ip} ${field} ${h[field]}: expected ${exact} (or the interval start ${floor})`);
        }
      }
    });
  });

  it('--dry-run decodes and summarises like an import, opens no store and writes nothing', async () => {
    await withTempDir(async (dir) => {
      const frames = [
        ...eth(
          udpExchange({
            client: { ip: '10.12.0.1', port: 49000 },
            server: { ip: '10.12.0.2', port: 53 },
            start: ts(BASE),
            messages: [
              { from: 'client', bytes: 30 },
              { from: 'server', bytes: 60 },
            ],
          }),
        ),
        ...eth(
          tcpConversation({
            client: { ip: '10.12.0.3', port: 49001 },
            server: { ip: '10.12.0.4', port: 80 },
            start: ts(BASE + 1),
            data: [
              { from: 'client', bytes: 100 },
              { from: 'server', bytes: 900 },
            ],
          }),
        ),
      ];
      const file = writeCapture(join(dir, 'in.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, byTime(frames)));
      const dryDb = join(dir, 'dry', 'never.duckdb');
      const dry = await importFiles(dryDb, [file], { extra: ['--dry-run'] });
      assert.equal(existsSync(join(dir, 'dry')), false, 'a dry run created the store directory');
      assert.equal((dry.summary as ImportSummary & { dryRun?: boolean }).dryRun, true);
      const real = await importFiles(join(dir, 'real.duckdb'), [file]);
      for (const k of ['packets', 'bytes', 'flows', 'hosts', 'malformed'] as const) assert.equal(dry.summary[k], real.summary[k], k);
      assert.equal(dry.summary.flows, 2);
      const text = await runCli(['import', file, '--dry-run', '--no-progress']);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^read \(dry run: nothing written\) 1 file in /);
      const both = await runCli(['import', file, '--dry-run', '--server', 'http://127.0.0.1:1']);
      assert.equal(both.code, 2, both.stderr);
      assert.match(both.stderr, /--dry-run.*cannot be used with.*--server/);
    });
  });

  it('export flows --format csv has a header with the contract field names and one row per flow', async () => {
    await withTempDir(async (dir) => {
      const a = eth(
        udpExchange({
          client: { ip: '10.11.0.1', port: 49000 },
          server: { ip: '10.11.0.2', port: 5001 },
          start: ts(BASE),
          messages: [
            { from: 'client', bytes: 10 },
            { from: 'server', bytes: 20 },
          ],
        }),
      );
      const b = eth(
        tcpConversation({
          client: { ip: '10.11.0.3', port: 49001 },
          server: { ip: '10.11.0.4', port: 80 },
          start: ts(BASE + 1),
          data: [{ from: 'client', bytes: 10 }],
        }),
      );
      const { db } = await importEthernet(dir, [...a, ...b]);
      const out = join(dir, 'flows.csv');
      const r = await runCli(['export', 'flows', '--db', db, '--format', 'csv', '--output', out]);
      assert.equal(r.code, 0, r.stderr);
      const lines = readFileSync(out, 'utf8').trim().split(/\r?\n/);
      const header = lines[0].split(',').map((h) => h.replace(/^"|"$/g, ''));
      assert.deepEqual(header, FLOW_FIELDS);
      // Columns added since the first release come after its columns, which keep their positions.
      assert.deepEqual(header.slice(0, FIRST_RELEASE_FLOW_FIELDS.length), FIRST_RELEASE_FLOW_FIELDS);
      assert.equal(lines.length, 3, lines.join('\n'));
      const col = (name: string) => FLOW_FIELDS.indexOf(name);
      const rows = lines.slice(1).map((l) => l.split(',').map((v) => v.replace(/^"|"$/g, '')));
      const udpRow = rows.find((row) => row[col('clientIp')] === '10.11.0.1');
      assert.ok(udpRow, lines.join('\n'));
      assert.deepEqual([udpRow[col('transport')], udpRow[col('clientPackets')], udpRow[col('serverBytes')]], ['udp', '1', String(a[1].data.length)]);
    });
  });
});
