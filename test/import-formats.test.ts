/**
 * Capture formats and link types: the same conversations written as classic
 * pcap (both byte orders, micro- and nanosecond) and pcapng (several
 * interfaces with different link types and timestamp resolutions, both byte
 * orders) must import into the same flows; every supported link type must
 * decode into the right flows. The fixture writer itself is cross-checked
 * against Wireshark's tshark/capinfos first.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  AF,
  LINKTYPE,
  byTime,
  directionTotals,
  encap,
  icmpPing,
  isoMicros,
  qinq,
  tcpConversation,
  toFrames,
  ts,
  udpExchange,
  type EncapOptions,
  type Frame,
  type TimedPacket,
} from './helpers/frames.js';
import { pcap, pcapng, writeCapture, type Endian, type PcapngFrame, type PcapngInterface } from './helpers/pcap-writer.js';
import {
  assertEach,
  assertFlow,
  exportFlows,
  expectedFlow,
  findFlow,
  flowEssence,
  importFiles,
  sortFlows,
  withTempDir,
  type FlowMeta,
  type FlowRecord,
} from './helpers/cli.js';

const BASE = 1_700_000_000; // 2023-11-14T22:13:20Z
/** 1/64 s: exactly representable in µs, ns and 2^-20 s units. */
const STEP = 15_625_000n;

interface Conv {
  name: string;
  packets: TimedPacket[];
  meta: FlowMeta;
}

const F = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16 };

/** A small mixed set of conversations, none overlapping in time. */
function conversations(): Conv[] {
  return [
    {
      name: 'tcp4',
      packets: tcpConversation({
        client: { ip: '10.1.0.1', port: 40001 },
        server: { ip: '10.1.0.2', port: 80 },
        start: ts(BASE, 15625),
        step: STEP,
        data: [
          { from: 'client', bytes: 120 },
          { from: 'server', bytes: 1400 },
        ],
        close: 'fin',
      }),
      meta: {
        transport: 'tcp',
        ipProto: 6,
        clientIp: '10.1.0.1',
        clientPort: 40001,
        serverIp: '10.1.0.2',
        serverPort: 80,
        tcpState: 'closed',
        clientTcpFlags: F.SYN | F.ACK | F.PSH | F.FIN,
        serverTcpFlags: F.SYN | F.ACK | F.PSH | F.FIN,
      },
    },
    {
      name: 'udp4',
      packets: udpExchange({
        client: { ip: '10.1.0.3', port: 50000 },
        server: { ip: '10.1.0.4', port: 5001 },
        start: ts(BASE + 1),
        step: STEP,
        messages: [
          { from: 'client', bytes: 40 },
          { from: 'server', bytes: 120 },
          { from: 'client', bytes: 40 },
          { from: 'server', bytes: 200 },
        ],
      }),
      meta: { transport: 'udp', ipProto: 17, clientIp: '10.1.0.3', clientPort: 50000, serverIp: '10.1.0.4', serverPort: 5001, tcpState: '' },
    },
    {
      name: 'tcp6',
      packets: tcpConversation({
        client: { ip: '2001:db8:1::1', port: 40002 },
        server: { ip: '2001:db8:1::2', port: 443 },
        start: ts(BASE + 2, 500000),
        step: STEP,
        data: [
          { from: 'client', bytes: 200 },
          { from: 'server', bytes: 1200 },
        ],
        close: 'rst',
      }),
      meta: {
        transport: 'tcp',
        ipProto: 6,
        clientIp: '2001:db8:1::1',
        clientPort: 40002,
        serverIp: '2001:db8:1::2',
        serverPort: 443,
        tcpState: 'reset',
        clientTcpFlags: F.SYN | F.ACK | F.PSH | F.RST,
        serverTcpFlags: F.SYN | F.ACK | F.PSH,
      },
    },
    {
      name: 'icmp4',
      packets: icmpPing({ client: '10.1.0.5', server: '10.1.0.6', start: ts(BASE + 3), step: STEP, count: 3 }),
      meta: { transport: 'icmp', ipProto: 1, clientIp: '10.1.0.5', serverIp: '10.1.0.6', tcpState: '' },
    },
    {
      name: 'icmp6',
      packets: icmpPing({ client: '2001:db8:1::5', server: '2001:db8:1::6', start: ts(BASE + 4), step: STEP, count: 2 }),
      meta: { transport: 'icmpv6', ipProto: 58, clientIp: '2001:db8:1::5', serverIp: '2001:db8:1::6', tcpState: '' },
    },
  ];
}

/** Frames of every conversation on one link type, in time order. */
function framesOf(convs: Conv[], linktype: number, o: EncapOptions & { iface?: number } = {}): Map<string, Frame[]> {
  return new Map(convs.map((c) => [c.name, toFrames(linktype, c.packets, o)]));
}

function allFrames(...maps: Map<string, Frame[]>[]): Frame[] {
  return byTime(maps.flatMap((m) => [...m.values()].flat()));
}

/** Assert every conversation appears as exactly the expected flow, and nothing else does. */
function assertConversations(flows: FlowRecord[], convs: Conv[], framesByConv: Map<string, Frame[]>, label: string): void {
  assert.equal(flows.length, convs.length, `${label}: flow count; got ${JSON.stringify(flows)}`);
  for (const c of convs) {
    const frames = framesByConv.get(c.name);
    assert.ok(frames, `no frames for ${c.name}`);
    const actual = findFlow(flows, c.meta.clientIp, c.meta.serverIp);
    assertFlow(actual, expectedFlow(c.meta, frames), `${label}/${c.name}`);
  }
}

// ---------------------------------------------------------------- tshark cross-check

function tsharkFields(file: string, fields: string[]): string[][] {
  const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('|'));
}

function capinfosCount(file: string): number {
  const out = execFileSync('capinfos', ['-M', '-c', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const m = /Number of packets:\s+(\d+)/.exec(out);
  assert.ok(m, `capinfos output: ${out}`);
  return Number(m[1]);
}

function epochString(tsNs: bigint): string {
  return `${tsNs / 1_000_000_000n}.${(tsNs % 1_000_000_000n).toString().padStart(9, '0')}`;
}

/** What tshark should report per frame: epoch time, wire length, captured length. */
function expectedTshark(frames: Frame[], caplenOf: (f: Frame) => number = (f) => f.data.length): string[][] {
  return frames.map((f) => [epochString(f.ts), String(f.origLen ?? f.data.length), String(caplenOf(f))]);
}

const PCAP_VARIANTS: { name: string; endian: Endian; resolution: 'micro' | 'nano' }[] = [
  { name: 'le-micro', endian: 'le', resolution: 'micro' },
  { name: 'be-micro', endian: 'be', resolution: 'micro' },
  { name: 'le-nano', endian: 'le', resolution: 'nano' },
  { name: 'be-nano', endian: 'be', resolution: 'nano' },
];

/** Mixed-link-type pcapng layout: conversation -> interface. */
const NG_INTERFACES: PcapngInterface[] = [
  { linktype: LINKTYPE.ETHERNET, name: 'eth0' }, // no if_tsresol: microseconds
  { linktype: LINKTYPE.LINUX_SLL, name: 'any', tsresol: 9 }, // nanoseconds
  { linktype: LINKTYPE.RAW, name: 'tun0', tsresol: 0x80 | 20 }, // 2^-20 s
];
const NG_PLACEMENT: Record<string, number> = { tcp4: 0, icmp4: 0, udp4: 1, icmp6: 1, tcp6: 2 };

function ngFrames(convs: Conv[]): Map<string, PcapngFrame[]> {
  return new Map(
    convs.map((c) => {
      const iface = NG_PLACEMENT[c.name];
      const frames: PcapngFrame[] = toFrames(NG_INTERFACES[iface].linktype, c.packets, { iface });
      // Exercise the obsolete Packet Block and per-packet options on some frames.
      if (c.name === 'icmp4') for (const f of frames) f.block = 'opb';
      if (c.name === 'tcp4') frames[0].comment = 'first SYN';
      return [c.name, frames];
    }),
  );
}

describe('pcap writer, cross-checked with tshark and capinfos', () => {
  it('classic pcap in both byte orders and resolutions reads back identically', async () => {
    await withTempDir(async (dir) => {
      const frames = allFrames(framesOf(conversations(), LINKTYPE.ETHERNET));
      // One frame with sub-microsecond time: nanosecond files keep it, microsecond files drop it.
      const nsFrame: Frame = { ...frames[0], ts: ts(BASE + 9, 123456, 789) };
      for (const v of PCAP_VARIANTS) {
        const file = writeCapture(
          join(dir, `${v.name}.pcap`),
          pcap({ linktype: LINKTYPE.ETHERNET, endian: v.endian, resolution: v.resolution }, [...frames, nsFrame]),
        );
        const expected = expectedTshark([...frames, { ...nsFrame, ts: v.resolution === 'nano' ? nsFrame.ts : ts(BASE + 9, 123456) }]);
        assert.deepEqual(tsharkFields(file, ['frame.time_epoch', 'frame.len', 'frame.cap_len']), expected, v.name);
        assert.equal(capinfosCount(file), frames.length + 1, v.name);
        const info = execFileSync('capinfos', ['-M', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        assert.match(info, v.resolution === 'nano' ? /nanoseconds/ : /microseconds/, v.name);
      }
    });
  });

  it('snaplen truncation writes caplen < origlen', async () => {
    await withTempDir(async (dir) => {
      const frames = allFrames(framesOf(conversations(), LINKTYPE.ETHERNET));
      const file = writeCapture(join(dir, 'snap.pcap'), pcap({ linktype: LINKTYPE.ETHERNET, snaplen: 80, endian: 'be' }, frames));
      assert.deepEqual(
        tsharkFields(file, ['frame.time_epoch', 'frame.len', 'frame.cap_len']),
        expectedTshark(frames, (f) => Math.min(80, f.data.length)),
      );
      assert.ok(
        frames.some((f) => f.data.length > 80),
        'fixture has frames longer than the snaplen',
      );
    });
  });

  it('pcapng with several interfaces, tsresol values, block types and sections reads back identically', async () => {
    await withTempDir(async (dir) => {
      const byConv = ngFrames(conversations());
      const frames = byTime([...byConv.values()].flat());
      for (const endian of ['le', 'be'] as const) {
        const file = writeCapture(join(dir, `${endian}.pcapng`), pcapng({ options: { endian, interfaces: NG_INTERFACES, trailerBlocks: true }, frames }));
        const rows = tsharkFields(file, ['frame.time_epoch', 'frame.len', 'frame.cap_len', 'frame.interface_id', 'frame.protocols']);
        assert.deepEqual(
          rows.map((r) => r.slice(0, 3)),
          expectedTshark(frames),
          endian,
        );
        assert.deepEqual(
          rows.map((r) => Number(r[3])),
          frames.map((f) => f.iface),
          `${endian}: interface ids`,
        );
        assert.deepEqual(
          rows.map((r) => r[4].split(':')[0]),
          frames.map((f) => ['eth', 'sll', 'raw'][f.iface ?? 0]),
          `${endian}: link layers`,
        );
        assert.equal(capinfosCount(file), frames.length);
      }
      // Two sections of opposite byte order, each with its own interfaces.
      const s1 = byTime([...byConv.get('tcp4')!, ...byConv.get('udp4')!]);
      const s2 = byTime([...byConv.get('tcp6')!, ...byConv.get('icmp6')!]);
      const two = writeCapture(
        join(dir, 'two.pcapng'),
        pcapng(
          { options: { endian: 'be', interfaces: NG_INTERFACES.slice(0, 2) }, frames: s1 },
          { options: { endian: 'le', interfaces: NG_INTERFACES }, frames: s2 },
        ),
      );
      assert.deepEqual(tsharkFields(two, ['frame.time_epoch', 'frame.len', 'frame.cap_len']), expectedTshark([...s1, ...s2]));
    });
  });

  it('simple packet blocks read back with their original lengths', async () => {
    await withTempDir(async (dir) => {
      const frames = LINKTYPE_FIXTURES[0].frames().map((f) => ({ ...f, block: 'spb' as const, iface: 0 }));
      const file = writeCapture(join(dir, 'spb.pcapng'), pcapng({ options: { interfaces: [{ linktype: LINKTYPE.ETHERNET, snaplen: 100 }] }, frames }));
      assert.deepEqual(
        tsharkFields(file, ['frame.len', 'frame.cap_len']),
        frames.map((f) => [String(f.data.length), String(Math.min(100, f.data.length))]),
      );
    });
  });

  it('every link-type fixture dissects to the intended addresses and ports', async () => {
    await withTempDir(async (dir) => {
      for (const lt of LINKTYPE_FIXTURES) {
        const frames = lt.frames();
        const file = writeCapture(join(dir, `${lt.name}.pcap`), pcap({ linktype: lt.linktype, endian: lt.fileEndian ?? 'le' }, frames));
        const rows = tsharkFields(file, ['frame.protocols', 'ip.src', 'ipv6.src', 'tcp.srcport', 'udp.srcport', '_ws.malformed']);
        assert.equal(rows.length, frames.length, lt.name);
        for (const r of rows) {
          assert.ok(r[0].startsWith(lt.tsharkLink), `${lt.name}: protocols ${r[0]}`);
          assert.equal(r[5], '', `${lt.name}: tshark finds the frame malformed: ${r.join('|')}`);
          assert.ok(lt.hosts.includes(r[1] || r[2]), `${lt.name}: source ${r[1] || r[2]}`);
          assert.ok(r[3] !== '' || r[4] !== '', `${lt.name}: no transport ports in ${r.join('|')}`);
        }
      }
    });
  });
});

// ---------------------------------------------------------------- link-type fixtures

interface LinktypeFixture {
  name: string;
  linktype: number;
  encap?: EncapOptions;
  fileEndian?: Endian;
  /** First protocol tshark reports for the frame. */
  tsharkLink: string;
  hosts: string[];
  frames(): Frame[];
  convs: Conv[];
}

function linktypeFixture(
  i: number,
  name: string,
  linktype: number,
  tsharkLink: string,
  o: { encap?: EncapOptions; fileEndian?: Endian; v4?: boolean; v6?: boolean } = {},
): LinktypeFixture {
  const convs: Conv[] = [];
  const start = ts(BASE + 100 * i);
  if (o.v4 !== false) {
    const client = { ip: `10.20.${i}.1`, port: 40000 + i };
    const server = { ip: `10.20.${i}.2`, port: 80 };
    convs.push({
      name: `${name}/tcp4`,
      packets: tcpConversation({
        client,
        server,
        start,
        data: [
          { from: 'client', bytes: 10 + i },
          { from: 'server', bytes: 300 },
        ],
        close: 'fin',
      }),
      meta: {
        transport: 'tcp',
        ipProto: 6,
        clientIp: client.ip,
        clientPort: client.port,
        serverIp: server.ip,
        serverPort: 80,
        tcpState: 'closed',
        clientTcpFlags: 0x1b,
        serverTcpFlags: 0x1b,
      },
    });
  }
  if (o.v6 !== false) {
    const client = { ip: `2001:db8:20:${i}::1`, port: 50000 + i };
    const server = { ip: `2001:db8:20:${i}::2`, port: 5001 };
    convs.push({
      name: `${name}/udp6`,
      packets: udpExchange({
        client,
        server,
        start: start + 50_000_000_000n,
        messages: [
          { from: 'client', bytes: 30 },
          { from: 'server', bytes: 90 },
          { from: 'client', bytes: 31 },
        ],
      }),
      meta: { transport: 'udp', ipProto: 17, clientIp: client.ip, clientPort: client.port, serverIp: server.ip, serverPort: 5001, tcpState: '' },
    });
  }
  return {
    name,
    linktype,
    encap: o.encap,
    fileEndian: o.fileEndian,
    tsharkLink,
    hosts: convs.flatMap((c) => [c.meta.clientIp, c.meta.serverIp]),
    convs,
    frames: () => byTime(convs.flatMap((c) => toFrames(linktype, c.packets, o.encap))),
  };
}

const LINKTYPE_FIXTURES: LinktypeFixture[] = [
  linktypeFixture(1, 'ethernet-vlan', LINKTYPE.ETHERNET, 'eth', { encap: { vlans: [{ vid: 100, pcp: 3 }] } }),
  linktypeFixture(2, 'ethernet-qinq', LINKTYPE.ETHERNET, 'eth', { encap: { vlans: qinq(200, 300) } }),
  linktypeFixture(3, 'sll', LINKTYPE.LINUX_SLL, 'sll'),
  linktypeFixture(4, 'sll2', LINKTYPE.LINUX_SLL2, 'sll'),
  linktypeFixture(5, 'null-le-af30', LINKTYPE.NULL, 'null', { encap: { nullByteOrder: 'le', inet6Family: AF.INET6_DARWIN } }),
  linktypeFixture(6, 'null-be-af28', LINKTYPE.NULL, 'null', { encap: { nullByteOrder: 'be', inet6Family: AF.INET6_FREEBSD }, fileEndian: 'be' }),
  linktypeFixture(7, 'null-le-af24', LINKTYPE.NULL, 'null', { encap: { nullByteOrder: 'le', inet6Family: AF.INET6_NETBSD } }),
  linktypeFixture(8, 'loop-af24', LINKTYPE.LOOP, 'null', { encap: { inet6Family: AF.INET6_NETBSD } }),
  linktypeFixture(9, 'loop-af30', LINKTYPE.LOOP, 'null', { encap: { inet6Family: AF.INET6_DARWIN } }),
  linktypeFixture(10, 'ppp-hdlc', LINKTYPE.PPP, 'ppp', { encap: { pppAddressControl: true } }),
  linktypeFixture(11, 'ppp-bare', LINKTYPE.PPP, 'ppp', { encap: { pppAddressControl: false } }),
  linktypeFixture(12, 'raw-12', LINKTYPE.RAW_12, 'raw'),
  linktypeFixture(13, 'raw-14', LINKTYPE.RAW_14, 'raw'),
  linktypeFixture(14, 'raw-101', LINKTYPE.RAW, 'raw'),
  linktypeFixture(15, 'ipv4-228', LINKTYPE.IPV4, 'ip', { v6: false }),
  linktypeFixture(16, 'ipv6-229', LINKTYPE.IPV6, 'ipv6', { v4: false }),
];

// ---------------------------------------------------------------- flowlens import

describe('flowlens import: capture formats', () => {
  it('pcap LE/BE x micro/nano all give the same flows, exact to the microsecond', async () => {
    await withTempDir(async (dir) => {
      const convs = conversations();
      const byConv = framesOf(convs, LINKTYPE.ETHERNET);
      const frames = allFrames(byConv);
      const totalBytes = frames.reduce((n, f) => n + f.data.length, 0);
      const essences: ReturnType<typeof flowEssence>[][] = [];
      for (const v of PCAP_VARIANTS) {
        const file = writeCapture(join(dir, `${v.name}.pcap`), pcap({ linktype: LINKTYPE.ETHERNET, endian: v.endian, resolution: v.resolution }, frames));
        const db = join(dir, `${v.name}.duckdb`);
        const { summary } = await importFiles(db, [file]);
        assert.equal(summary.packets, frames.length, `${v.name}: packets`);
        assert.equal(summary.bytes, totalBytes, `${v.name}: bytes`);
        assert.equal(summary.flows, convs.length, `${v.name}: flows`);
        assert.equal(summary.hosts, 10, `${v.name}: hosts`);
        assert.equal(summary.malformed, 0, `${v.name}: malformed ${JSON.stringify(summary.malformedByReason)}`);
        assert.equal(summary.nonIp, 0, `${v.name}: nonIp`);
        assert.equal(summary.files.length, 1);
        assert.equal(summary.files[0].packets, frames.length);
        assert.equal(summary.files[0].bytes, totalBytes);
        assert.equal(summary.files[0].error, undefined);
        const flows = await exportFlows(db);
        assertConversations(flows, convs, byConv, v.name);
        essences.push(sortFlows(flows).map(flowEssence));
      }
      for (const e of essences.slice(1)) assert.deepEqual(e, essences[0]);
    });
  });

  it('nanosecond timestamps are exported truncated to the microsecond', async () => {
    await withTempDir(async (dir) => {
      const conv = conversations()[1]; // udp4
      // Shift every packet by +999 ns: the exported microsecond must not change (truncation, like tshark's -t ud).
      const packets = conv.packets.map((p) => ({ ...p, ts: p.ts + 999n }));
      const frames = toFrames(LINKTYPE.ETHERNET, packets);
      const file = writeCapture(join(dir, 'ns.pcap'), pcap({ linktype: LINKTYPE.ETHERNET, resolution: 'nano' }, frames));
      const db = join(dir, 'ns.duckdb');
      await importFiles(db, [file]);
      const [flow] = await exportFlows(db);
      assert.equal(flow.firstSeen, isoMicros(conv.packets[0].ts));
      assert.equal(flow.lastSeen, isoMicros(conv.packets[conv.packets.length - 1].ts));
    });
  });

  it('pcapng with Ethernet, SLL and raw interfaces at µs, ns and 2^-20 s resolution gives the same flows; in either byte order and across sections', async () => {
    await withTempDir(async (dir) => {
      const convs = conversations();
      const byConv = ngFrames(convs);
      const frames = byTime([...byConv.values()].flat());
      const files = [
        writeCapture(join(dir, 'le.pcapng'), pcapng({ options: { endian: 'le', interfaces: NG_INTERFACES, trailerBlocks: true }, frames })),
        writeCapture(join(dir, 'be.pcapng'), pcapng({ options: { endian: 'be', interfaces: NG_INTERFACES, trailerBlocks: true }, frames })),
      ];
      // Two sections: a big-endian one with two interfaces, then a little-endian one with three.
      const inSection1 = new Set(['tcp4', 'udp4']);
      const s1 = byTime(convs.filter((c) => inSection1.has(c.name)).flatMap((c) => byConv.get(c.name)!));
      const s2 = byTime(convs.filter((c) => !inSection1.has(c.name)).flatMap((c) => byConv.get(c.name)!));
      files.push(
        writeCapture(
          join(dir, 'sections.pcapng'),
          pcapng(
            { options: { endian: 'be', interfaces: NG_INTERFACES.slice(0, 2) }, frames: s1 },
            { options: { endian: 'le', interfaces: NG_INTERFACES }, frames: s2 },
          ),
        ),
      );

      // The same conversations as a plain Ethernet pcap: all but bytes must match.
      const ethDb = join(dir, 'eth.duckdb');
      const ethFile = writeCapture(join(dir, 'eth.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, allFrames(framesOf(convs, LINKTYPE.ETHERNET))));
      await importFiles(ethDb, [ethFile]);
      const withoutBytes = (fs: FlowRecord[]): unknown[] => sortFlows(fs).map((f) => ({ ...flowEssence(f), clientBytes: 0, serverBytes: 0 }));
      const reference = withoutBytes(await exportFlows(ethDb));

      for (const file of files) {
        const db = `${file}.duckdb`;
        const { summary } = await importFiles(db, [file]);
        assert.equal(summary.packets, frames.length, `${file}: packets`);
        assert.equal(
          summary.bytes,
          frames.reduce((n, f) => n + f.data.length, 0),
          `${file}: bytes`,
        );
        assert.equal(summary.malformed, 0, `${file}: malformed ${JSON.stringify(summary.malformedByReason)}`);
        const flows = await exportFlows(db);
        assertConversations(flows, convs, byConv, file);
        assert.deepEqual(withoutBytes(flows), reference, `${file}: same flows as the Ethernet pcap`);
      }
    });
  });

  it('pcapng simple packet blocks are imported with their original lengths', async () => {
    await withTempDir(async (dir) => {
      const fx = LINKTYPE_FIXTURES[0];
      const frames = fx.frames().map((f) => ({ ...f, block: 'spb' as const, iface: 0 }));
      const file = writeCapture(join(dir, 'spb.pcapng'), pcapng({ options: { interfaces: [{ linktype: LINKTYPE.ETHERNET, snaplen: 100 }] }, frames }));
      const db = join(dir, 'spb.duckdb');
      const { summary } = await importFiles(db, [file]);
      assert.equal(summary.packets, frames.length);
      assert.equal(
        summary.bytes,
        frames.reduce((n, f) => n + f.data.length, 0),
      );
      assert.equal(summary.malformed, 0, JSON.stringify(summary.malformedByReason));
      // SPBs carry no timestamp, so only the conversation structure is checked.
      const flows = await exportFlows(db);
      for (const c of fx.convs) {
        const t = directionTotals(toFrames(LINKTYPE.ETHERNET, c.packets, fx.encap));
        const f = findFlow(flows, c.meta.clientIp, c.meta.serverIp);
        assert.deepEqual(
          [f.clientPackets + f.serverPackets, f.clientBytes + f.serverBytes],
          [t.clientPackets + t.serverPackets, t.clientBytes + t.serverBytes],
          c.name,
        );
      }
    });
  });

  it('snaplen-truncated packets (cut after the TCP header) count their full wire length and are not malformed', async () => {
    await withTempDir(async (dir) => {
      const convs = conversations().filter((c) => c.name === 'tcp4' || c.name === 'udp4');
      const byConv = framesOf(convs, LINKTYPE.ETHERNET);
      const frames = allFrames(byConv);
      assert.ok(frames.some((f) => f.data.length > 80));
      const file = writeCapture(join(dir, 'snap.pcap'), pcap({ linktype: LINKTYPE.ETHERNET, snaplen: 80 }, frames));
      const ngFile = writeCapture(
        join(dir, 'snap.pcapng'),
        pcapng({ options: { endian: 'be', interfaces: [{ linktype: LINKTYPE.ETHERNET, snaplen: 80 }] }, frames: frames.map((f) => ({ ...f, iface: 0 })) }),
      );
      for (const f of [file, ngFile]) {
        const db = `${f}.duckdb`;
        const { summary } = await importFiles(db, [f]);
        assert.equal(summary.packets, frames.length);
        assert.equal(
          summary.bytes,
          frames.reduce((n, fr) => n + fr.data.length, 0),
          'bytes are original lengths',
        );
        assert.equal(summary.malformed, 0, JSON.stringify(summary.malformedByReason));
        assertConversations(await exportFlows(db), convs, byConv, f);
      }
    });
  });
  it('flows keep the interface (file) they were captured on when several files are imported together', async () => {
    await withTempDir(async (dir) => {
      const [tcp4, udp4] = conversations();
      // The first file's flow is still open (not closed or idle) when the second file starts.
      const first = writeCapture(join(dir, 'first-file.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, toFrames(LINKTYPE.ETHERNET, udp4.packets)));
      const second = writeCapture(
        join(dir, 'second-file.pcap'),
        pcap(
          { linktype: LINKTYPE.ETHERNET },
          toFrames(
            LINKTYPE.ETHERNET,
            tcp4.packets.map((p) => ({ ...p, ts: p.ts + 2_000_000_000n })),
          ),
        ),
      );
      const db = join(dir, 'two.duckdb');
      await importFiles(db, [first, second]);
      const flows = await exportFlows(db);
      const a = findFlow(flows, udp4.meta.clientIp, udp4.meta.serverIp);
      const b = findFlow(flows, tcp4.meta.clientIp, tcp4.meta.serverIp);
      assert.ok(!a.iface.includes('second-file'), `flow from first-file.pcap labelled with iface ${JSON.stringify(a.iface)}`);
      assert.ok(!b.iface.includes('first-file'), `flow from second-file.pcap labelled with iface ${JSON.stringify(b.iface)}`);
    });
  });
});

describe('flowlens import: link types', () => {
  it('VLAN, QinQ, SLL, SLL2, null (both byte orders, AF 24/28/30), loop, PPP (with and without 0xff03) and raw DLT 12/14/101/228/229 decode into the right flows', async () => {
    await withTempDir(async (dir) => {
      const files = LINKTYPE_FIXTURES.map((lt) =>
        writeCapture(join(dir, `${lt.name}.pcap`), pcap({ linktype: lt.linktype, endian: lt.fileEndian ?? 'le' }, lt.frames())),
      );
      const db = join(dir, 'lt.duckdb');
      const { summary } = await importFiles(db, files);
      const totalPackets = LINKTYPE_FIXTURES.reduce((n, lt) => n + lt.frames().length, 0);
      assert.equal(summary.packets, totalPackets);
      assert.equal(summary.malformed, 0, JSON.stringify(summary.malformedByReason));
      assert.equal(summary.nonIp, 0);
      assert.deepEqual(
        summary.files.map((f) => [f.packets, f.malformed, f.error]),
        LINKTYPE_FIXTURES.map((lt) => [lt.frames().length, 0, undefined]),
      );
      const flows = await exportFlows(db);
      const allConvs = LINKTYPE_FIXTURES.flatMap((lt) => lt.convs);
      assertEach(
        LINKTYPE_FIXTURES.flatMap((lt) =>
          lt.convs.map((c): [string, () => void] => [
            c.name,
            () => assertFlow(findFlow(flows, c.meta.clientIp, c.meta.serverIp), expectedFlow(c.meta, toFrames(lt.linktype, c.packets, lt.encap)), c.name),
          ]),
        ),
      );
      assert.equal(flows.length, allConvs.length);
    });
  });

  it('an Ethernet frame padded to the 60-byte minimum keeps its IP payload length (trailer ignored)', async () => {
    await withTempDir(async (dir) => {
      const c = conversations()[0]; // tcp4, pure ACKs are 54 bytes on Ethernet
      const frames = toFrames(LINKTYPE.ETHERNET, c.packets).map((f) =>
        f.data.length < 60 ? { ...f, data: Uint8Array.from([...f.data, ...new Array(60 - f.data.length).fill(0)]) } : f,
      );
      const file = writeCapture(join(dir, 'padded.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, frames));
      const db = join(dir, 'padded.duckdb');
      const { summary } = await importFiles(db, [file]);
      assert.equal(summary.malformed, 0, JSON.stringify(summary.malformedByReason));
      const [flow] = await exportFlows(db);
      assertFlow(flow, expectedFlow(c.meta, frames), 'padded');
      assert.equal(encap(LINKTYPE.ETHERNET, c.packets[2].ip).length, 54, 'fixture: the pure ACK is shorter than the minimum');
    });
  });
});
