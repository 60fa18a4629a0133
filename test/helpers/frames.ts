/**
 * Byte-by-byte frame builders for test fixtures. No libraries: every header is
 * laid out here by hand so that the fixtures do not share code (or bugs) with
 * the decoders under test.
 *
 * Layers compose bottom-up:
 *   l4 builder (tcp/udp/sctp/icmpEcho/icmp6Echo/rawPayload)  -> L4
 *   ipv4()/ipv6()/fragmentIpv4()                              -> IP packet bytes
 *   ethernet()/sll()/sll2()/nullLoop()/loop()/ppp()/encap()   -> link-layer frame
 * and conversation helpers (tcpConversation, udpExchange, icmpPing) produce
 * timestamped IP packets tagged with their direction, which toFrames() wraps
 * into frames of a given link type.
 */

// ---------------------------------------------------------------- bytes

export function concat(...parts: Uint8Array[]): Uint8Array {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function u8(...values: number[]): Uint8Array {
  return Uint8Array.from(values.map((v) => v & 0xff));
}

export function be16(v: number): Uint8Array {
  return u8(v >>> 8, v);
}

export function le16(v: number): Uint8Array {
  return u8(v, v >>> 8);
}

export function be32(v: number): Uint8Array {
  return u8(v >>> 24, v >>> 16, v >>> 8, v);
}

export function le32(v: number): Uint8Array {
  return u8(v, v >>> 8, v >>> 16, v >>> 24);
}

/** Zero bytes up to the next multiple of `align`. */
export function padTo(data: Uint8Array, align: number, fill = 0): Uint8Array {
  const rem = data.length % align;
  if (rem === 0) return data;
  const pad = new Uint8Array(align - rem).fill(fill);
  return concat(data, pad);
}

/** Deterministic payload of `n` bytes (so tests never depend on randomness). */
export function payload(n: number, seed = 0x41): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (seed + i) & 0xff;
  return out;
}

/** RFC 1071 Internet checksum over the concatenation of `parts`. */
export function inetChecksum(...parts: Uint8Array[]): number {
  const data = concat(...parts);
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) {
    sum += (data[i] << 8) | (i + 1 < data.length ? data[i + 1] : 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function setBe16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = (v >>> 8) & 0xff;
  buf[off + 1] = v & 0xff;
}

// ---------------------------------------------------------------- addresses

export function ipv4Addr(s: string): Uint8Array {
  const parts = s.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new Error(`bad IPv4 ${s}`);
  return Uint8Array.from(parts);
}

export function ipv6Addr(s: string): Uint8Array {
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) throw new Error(`bad IPv6 ${s}`);
  const out = new Uint8Array(16);
  for (const [i, g] of groups.entries()) setBe16(out, i * 2, parseInt(g, 16));
  return out;
}

export function isIpv6(s: string): boolean {
  return s.includes(':');
}

export function mac(s: string): Uint8Array {
  const parts = s.split(':').map((p) => parseInt(p, 16));
  if (parts.length !== 6) throw new Error(`bad MAC ${s}`);
  return Uint8Array.from(parts);
}

// ---------------------------------------------------------------- constants

export const IPPROTO = {
  HOPOPTS: 0,
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ROUTING: 43,
  FRAGMENT: 44,
  GRE: 47,
  ICMPV6: 58,
  NONE: 59,
  DSTOPTS: 60,
  SCTP: 132,
  EXPERIMENT: 253,
} as const;

export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

export const ETHERTYPE = { IPV4: 0x0800, ARP: 0x0806, VLAN: 0x8100, QINQ: 0x88a8, IPV6: 0x86dd } as const;

/** pcap/pcapng LINKTYPE_* values used by the fixtures. */
export const LINKTYPE = {
  NULL: 0,
  ETHERNET: 1,
  PPP: 9,
  RAW_12: 12, // DLT_RAW on most BSDs
  RAW_14: 14, // DLT_RAW on OpenBSD
  RAW: 101, // LINKTYPE_RAW
  LOOP: 108,
  LINUX_SLL: 113,
  USER0: 147,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

// ---------------------------------------------------------------- L4

/** A transport payload whose checksum depends on the IP pseudo-header. */
export interface L4 {
  proto: number;
  build(ctx: { src: Uint8Array; dst: Uint8Array }): Uint8Array;
}

function pseudoHeader(src: Uint8Array, dst: Uint8Array, proto: number, length: number): Uint8Array {
  if (src.length === 4) return concat(src, dst, u8(0, proto), be16(length));
  return concat(src, dst, be32(length), u8(0, 0, 0, proto));
}

export const tcpOpt = {
  eol: (): Uint8Array => u8(0),
  nop: (): Uint8Array => u8(1),
  mss: (v: number): Uint8Array => concat(u8(2, 4), be16(v)),
  wscale: (v: number): Uint8Array => u8(3, 3, v),
  sackPermitted: (): Uint8Array => u8(4, 2),
  timestamps: (val: number, echo: number): Uint8Array => concat(u8(8, 10), be32(val), be32(echo)),
};

export interface TcpOptions {
  srcPort: number;
  dstPort: number;
  seq?: number;
  ack?: number;
  flags: number;
  window?: number;
  options?: Uint8Array[];
  payload?: Uint8Array;
  /** Override the data offset (32-bit words) to build malformed segments. */
  dataOffsetWords?: number;
}

export function tcp(o: TcpOptions): L4 {
  return {
    proto: IPPROTO.TCP,
    build({ src, dst }) {
      const opts = padTo(concat(...(o.options ?? [])), 4, 0);
      const words = o.dataOffsetWords ?? 5 + opts.length / 4;
      const seg = concat(
        be16(o.srcPort),
        be16(o.dstPort),
        be32(o.seq ?? 0),
        be32(o.ack ?? 0),
        u8(words << 4, o.flags),
        be16(o.window ?? 64240),
        be16(0), // checksum
        be16(0), // urgent pointer
        opts,
        o.payload ?? new Uint8Array(0),
      );
      setBe16(seg, 16, inetChecksum(pseudoHeader(src, dst, IPPROTO.TCP, seg.length), seg));
      return seg;
    },
  };
}

export function udp(o: { srcPort: number; dstPort: number; payload?: Uint8Array }): L4 {
  return {
    proto: IPPROTO.UDP,
    build({ src, dst }) {
      const data = o.payload ?? new Uint8Array(0);
      const dgram = concat(be16(o.srcPort), be16(o.dstPort), be16(8 + data.length), be16(0), data);
      const sum = inetChecksum(pseudoHeader(src, dst, IPPROTO.UDP, dgram.length), dgram);
      setBe16(dgram, 6, sum === 0 ? 0xffff : sum);
      return dgram;
    },
  };
}

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC32C_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const sctpChunk = {
  data: (o: { tsn: number; stream?: number; ssn?: number; ppid?: number; payload: Uint8Array }): Uint8Array => {
    const body = concat(be32(o.tsn), be16(o.stream ?? 0), be16(o.ssn ?? 0), be32(o.ppid ?? 0), o.payload);
    return padTo(concat(u8(0, 0x03), be16(4 + body.length), body), 4);
  },
  init: (o: { initiateTag: number; initialTsn: number; aRwnd?: number }): Uint8Array =>
    concat(u8(1, 0), be16(20), be32(o.initiateTag), be32(o.aRwnd ?? 65535), be16(10), be16(10), be32(o.initialTsn)),
  initAck: (o: { initiateTag: number; initialTsn: number }): Uint8Array =>
    concat(u8(2, 0), be16(20), be32(o.initiateTag), be32(65535), be16(10), be16(10), be32(o.initialTsn)),
};

export function sctp(o: { srcPort: number; dstPort: number; vtag: number; chunks: Uint8Array[] }): L4 {
  return {
    proto: IPPROTO.SCTP,
    build() {
      const pkt = concat(be16(o.srcPort), be16(o.dstPort), be32(o.vtag), be32(0), ...o.chunks);
      // RFC 4960 appendix B: the CRC32c is stored least significant byte first.
      pkt.set(le32(crc32c(pkt)), 8);
      return pkt;
    },
  };
}

export function icmpEcho(o: { reply?: boolean; id: number; seq: number; payload?: Uint8Array }): L4 {
  return {
    proto: IPPROTO.ICMP,
    build() {
      const msg = concat(u8(o.reply ? 0 : 8, 0), be16(0), be16(o.id), be16(o.seq), o.payload ?? payload(32));
      setBe16(msg, 2, inetChecksum(msg));
      return msg;
    },
  };
}

export function icmp6Echo(o: { reply?: boolean; id: number; seq: number; payload?: Uint8Array }): L4 {
  return {
    proto: IPPROTO.ICMPV6,
    build({ src, dst }) {
      const msg = concat(u8(o.reply ? 129 : 128, 0), be16(0), be16(o.id), be16(o.seq), o.payload ?? payload(32));
      setBe16(msg, 2, inetChecksum(pseudoHeader(src, dst, IPPROTO.ICMPV6, msg.length), msg));
      return msg;
    },
  };
}

/** Any other IP protocol with an opaque payload (e.g. 253, experimental). */
export function rawPayload(proto: number, data: Uint8Array): L4 {
  return { proto, build: () => data };
}

/** GRE (RFC 2784) carrying an inner packet of the given ethertype. */
export function gre(inner: Uint8Array, etherType: number = ETHERTYPE.IPV4): L4 {
  return rawPayload(IPPROTO.GRE, concat(be16(0), be16(etherType), inner));
}

// ---------------------------------------------------------------- IPv4

export interface Ipv4Options {
  src: string;
  dst: string;
  l4: L4;
  ttl?: number;
  id?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** Fragment offset in bytes (must be a multiple of 8). */
  fragmentOffset?: number;
  /** Raw option bytes (padded to 4 with EOL). */
  options?: Uint8Array;
  /** Overrides for malformed packets. */
  ihlWords?: number;
  totalLength?: number;
  /** Use these bytes as the IP payload instead of building l4 (fragments). */
  rawPayloadBytes?: Uint8Array;
  protoOverride?: number;
}

export function ipv4(o: Ipv4Options): Uint8Array {
  const src = ipv4Addr(o.src);
  const dst = ipv4Addr(o.dst);
  const opts = padTo(o.options ?? new Uint8Array(0), 4, 0);
  const body = o.rawPayloadBytes ?? o.l4.build({ src, dst });
  const hdrLen = 20 + opts.length;
  const off = o.fragmentOffset ?? 0;
  if (off % 8 !== 0) throw new Error('fragment offset must be a multiple of 8');
  const flagsFrag = (o.dontFragment ? 0x4000 : 0) | (o.moreFragments ? 0x2000 : 0) | (off / 8);
  const hdr = concat(
    u8(0x40 | (o.ihlWords ?? hdrLen / 4), 0),
    be16(o.totalLength ?? hdrLen + body.length),
    be16(o.id ?? 0x1234),
    be16(flagsFrag),
    u8(o.ttl ?? 64, o.protoOverride ?? o.l4.proto),
    be16(0),
    src,
    dst,
    opts,
  );
  setBe16(hdr, 10, inetChecksum(hdr));
  return concat(hdr, body);
}

/** Record Route option with room for `slots` addresses (for IHL > 5 headers). */
export function ipv4RecordRoute(slots = 2): Uint8Array {
  return concat(u8(7, 3 + 4 * slots, 4), new Uint8Array(4 * slots), u8(1 /* NOP */));
}

/**
 * Split one IPv4 datagram into fragments. `sizes` are the fragment payload sizes
 * (multiples of 8 except the last, which takes the remainder).
 */
export function fragmentIpv4(o: Omit<Ipv4Options, 'moreFragments' | 'fragmentOffset' | 'rawPayloadBytes'>, sizes: number[]): Uint8Array[] {
  const whole = o.l4.build({ src: ipv4Addr(o.src), dst: ipv4Addr(o.dst) });
  const out: Uint8Array[] = [];
  let off = 0;
  for (let i = 0; i <= sizes.length && off < whole.length; i++) {
    const last = i === sizes.length || off + sizes[i] >= whole.length;
    const size = last ? whole.length - off : sizes[i];
    if (!last && size % 8 !== 0) throw new Error('non-final fragment sizes must be multiples of 8');
    out.push(ipv4({ ...o, fragmentOffset: off, moreFragments: !last, rawPayloadBytes: whole.subarray(off, off + size) }));
    off += size;
  }
  return out;
}

// ---------------------------------------------------------------- IPv6

export type Ipv6Ext =
  | { type: 'hopByHop' | 'destOpts'; optionBytes?: number }
  | { type: 'routing'; addresses?: string[] }
  | { type: 'fragment'; offset?: number; more?: boolean; id?: number };

const EXT_PROTO = { hopByHop: IPPROTO.HOPOPTS, destOpts: IPPROTO.DSTOPTS, routing: IPPROTO.ROUTING, fragment: IPPROTO.FRAGMENT } as const;

function extHeader(ext: Ipv6Ext, next: number): Uint8Array {
  switch (ext.type) {
    case 'hopByHop':
    case 'destOpts': {
      // 2 bytes of header + options; fill with a PadN option to a multiple of 8.
      const total = Math.max(8, Math.ceil((2 + (ext.optionBytes ?? 4)) / 8) * 8);
      const padLen = total - 2 - 2;
      return concat(u8(next, total / 8 - 1), u8(1, padLen), new Uint8Array(padLen));
    }
    case 'routing': {
      // Type 0 routing header with segments left = 0 (already at the final hop).
      const addrs = (ext.addresses ?? ['2001:db8::99']).map(ipv6Addr);
      return concat(u8(next, addrs.length * 2, 0, 0), be32(0), ...addrs);
    }
    case 'fragment': {
      const off = ext.offset ?? 0;
      return concat(u8(next, 0), be16(off | (ext.more ? 1 : 0)), be32(ext.id ?? 0xabcd));
    }
  }
}

export function ipv6(o: { src: string; dst: string; l4: L4; hopLimit?: number; ext?: Ipv6Ext[]; payloadLength?: number }): Uint8Array {
  const src = ipv6Addr(o.src);
  const dst = ipv6Addr(o.dst);
  const body = o.l4.build({ src, dst });
  const exts = o.ext ?? [];
  const chain: Uint8Array[] = [];
  for (let i = 0; i < exts.length; i++) {
    const next = i + 1 < exts.length ? EXT_PROTO[exts[i + 1].type] : o.l4.proto;
    chain.push(extHeader(exts[i], next));
  }
  const rest = concat(...chain, body);
  const first = exts.length ? EXT_PROTO[exts[0].type] : o.l4.proto;
  return concat(be32(0x60000000), be16(o.payloadLength ?? rest.length), u8(first, o.hopLimit ?? 64), src, dst, rest);
}

/** IPv4 or IPv6 according to the address family of `src`. */
export function ip(o: { src: string; dst: string; l4: L4; id?: number }): Uint8Array {
  return isIpv6(o.src) ? ipv6(o) : ipv4(o);
}

// ---------------------------------------------------------------- link layers

export interface VlanTag {
  tpid?: number;
  vid: number;
  pcp?: number;
}

export function ethernet(o: { src?: string; dst?: string; etherType: number; payload: Uint8Array; vlans?: VlanTag[] }): Uint8Array {
  const tags = (o.vlans ?? []).map((t) => concat(be16(t.tpid ?? ETHERTYPE.VLAN), be16(((t.pcp ?? 0) << 13) | (t.vid & 0x0fff))));
  return concat(mac(o.dst ?? '02:00:00:00:00:02'), mac(o.src ?? '02:00:00:00:00:01'), ...tags, be16(o.etherType), o.payload);
}

/** 802.1ad QinQ: outer S-tag (0x88a8) then inner C-tag (0x8100). */
export function qinq(outerVid: number, innerVid: number): VlanTag[] {
  return [
    { tpid: ETHERTYPE.QINQ, vid: outerVid },
    { tpid: ETHERTYPE.VLAN, vid: innerVid },
  ];
}

export function arpRequest(senderIp: string, targetIp: string, senderMac = '02:00:00:00:00:01'): Uint8Array {
  const arp = concat(be16(1), be16(ETHERTYPE.IPV4), u8(6, 4), be16(1), mac(senderMac), ipv4Addr(senderIp), new Uint8Array(6), ipv4Addr(targetIp));
  return ethernet({ src: senderMac, dst: 'ff:ff:ff:ff:ff:ff', etherType: ETHERTYPE.ARP, payload: arp });
}

/** Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 16-byte header). */
export function sll(o: { protocol: number; payload: Uint8Array; packetType?: number; hatype?: number; addr?: string }): Uint8Array {
  const addr = mac(o.addr ?? '02:00:00:00:00:01');
  return concat(be16(o.packetType ?? 0), be16(o.hatype ?? 1), be16(addr.length), addr, u8(0, 0), be16(o.protocol), o.payload);
}

/** Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 20-byte header). */
export function sll2(o: { protocol: number; payload: Uint8Array; ifIndex?: number; packetType?: number; hatype?: number; addr?: string }): Uint8Array {
  const addr = mac(o.addr ?? '02:00:00:00:00:01');
  return concat(be16(o.protocol), be16(0), be32(o.ifIndex ?? 2), be16(o.hatype ?? 1), u8(o.packetType ?? 0, addr.length), addr, u8(0, 0), o.payload);
}

/** BSD AF_ values as they appear in DLT_NULL / DLT_LOOP headers. */
export const AF = { INET: 2, INET6_NETBSD: 24, INET6_FREEBSD: 28, INET6_DARWIN: 30 } as const;

/** DLT_NULL: 4-byte address family in the capturing host's byte order. */
export function nullLoop(o: { family: number; payload: Uint8Array; byteOrder: 'le' | 'be' }): Uint8Array {
  return concat(o.byteOrder === 'le' ? le32(o.family) : be32(o.family), o.payload);
}

/** DLT_LOOP: 4-byte address family, always network byte order. */
export function loop(o: { family: number; payload: Uint8Array }): Uint8Array {
  return concat(be32(o.family), o.payload);
}

/** PPP (DLT_PPP) with or without the HDLC-like 0xff 0x03 address/control bytes. */
export function ppp(o: { protocol: number; payload: Uint8Array; addressControl: boolean }): Uint8Array {
  return concat(o.addressControl ? u8(0xff, 0x03) : new Uint8Array(0), be16(o.protocol), o.payload);
}

export const PPP_PROTO = { IPV4: 0x0021, IPV6: 0x0057 } as const;

export interface EncapOptions {
  vlans?: VlanTag[];
  /** DLT_NULL byte order (default little-endian, i.e. an x86 capture host). */
  nullByteOrder?: 'le' | 'be';
  /** AF_INET6 value for DLT_NULL/DLT_LOOP (default 30, macOS). */
  inet6Family?: number;
  pppAddressControl?: boolean;
}

/** Wrap an IP packet in the link-layer header of `linktype`. */
export function encap(linktype: number, ipPacket: Uint8Array, o: EncapOptions = {}): Uint8Array {
  const v6 = ipPacket[0] >> 4 === 6;
  const etherType = v6 ? ETHERTYPE.IPV6 : ETHERTYPE.IPV4;
  const family = v6 ? (o.inet6Family ?? AF.INET6_DARWIN) : AF.INET;
  switch (linktype) {
    case LINKTYPE.ETHERNET:
      return ethernet({ etherType, payload: ipPacket, vlans: o.vlans });
    case LINKTYPE.LINUX_SLL:
      return sll({ protocol: etherType, payload: ipPacket });
    case LINKTYPE.LINUX_SLL2:
      return sll2({ protocol: etherType, payload: ipPacket });
    case LINKTYPE.NULL:
      return nullLoop({ family, payload: ipPacket, byteOrder: o.nullByteOrder ?? 'le' });
    case LINKTYPE.LOOP:
      return loop({ family, payload: ipPacket });
    case LINKTYPE.PPP:
      return ppp({ protocol: v6 ? PPP_PROTO.IPV6 : PPP_PROTO.IPV4, payload: ipPacket, addressControl: o.pppAddressControl ?? true });
    case LINKTYPE.RAW_12:
    case LINKTYPE.RAW_14:
    case LINKTYPE.RAW:
      return ipPacket;
    case LINKTYPE.IPV4:
      if (v6) throw new Error('LINKTYPE_IPV4 carries only IPv4');
      return ipPacket;
    case LINKTYPE.IPV6:
      if (!v6) throw new Error('LINKTYPE_IPV6 carries only IPv6');
      return ipPacket;
    default:
      return ipPacket; // unknown link types: bytes as they are
  }
}

// ---------------------------------------------------------------- timed packets

export const NS_PER_S = 1_000_000_000n;

/** Nanosecond timestamp from seconds + microseconds (+ extra nanoseconds). */
export function ts(sec: number, usec = 0, nsec = 0): bigint {
  return BigInt(sec) * NS_PER_S + BigInt(usec) * 1000n + BigInt(nsec);
}

export function seconds(n: number): bigint {
  return BigInt(Math.round(n * 1e6)) * 1000n;
}

/** ISO-8601 UTC with microseconds, as flowlens exports timestamps. */
export function isoMicros(tsNs: bigint): string {
  const ms = Number(tsNs / 1_000_000n);
  const micros = (tsNs / 1000n) % 1_000_000n;
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${micros.toString().padStart(6, '0')}Z`);
}

export type Direction = 'client' | 'server';

/** An IP packet with its capture time and which end sent it. */
export interface TimedPacket {
  ts: bigint;
  ip: Uint8Array;
  from: Direction;
}

/** A link-layer frame ready for a capture writer. */
export interface Frame {
  ts: bigint;
  data: Uint8Array;
  /** Original wire length if larger than data (truncated capture). */
  origLen?: number;
  /** pcapng interface index. */
  iface?: number;
  from?: Direction;
}

export function toFrames(linktype: number, pkts: TimedPacket[], o: EncapOptions & { iface?: number } = {}): Frame[] {
  return pkts.map((p) => ({ ts: p.ts, data: encap(linktype, p.ip, o), from: p.from, iface: o.iface }));
}

/** Per-direction packet and wire-byte totals of a list of frames. */
export function directionTotals(frames: Frame[]): { clientPackets: number; clientBytes: number; serverPackets: number; serverBytes: number } {
  const t = { clientPackets: 0, clientBytes: 0, serverPackets: 0, serverBytes: 0 };
  for (const f of frames) {
    const len = f.origLen ?? f.data.length;
    if (f.from === 'server') {
      t.serverPackets++;
      t.serverBytes += len;
    } else {
      t.clientPackets++;
      t.clientBytes += len;
    }
  }
  return t;
}

export function byTime<T extends { ts: bigint }>(items: T[]): T[] {
  return [...items].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
}

export interface Endpoint {
  ip: string;
  port: number;
}

export interface TcpConversationOptions {
  client: Endpoint;
  server: Endpoint;
  start: bigint;
  /** Time between consecutive packets (default 1 ms). */
  step?: bigint;
  /** 'full' 3-way handshake, 'syn-only' (no answer), or 'none' (capture starts mid-stream). */
  handshake?: 'full' | 'syn-only' | 'none';
  /** Number of SYNs for 'syn-only' (retransmissions). */
  synCount?: number;
  /** Data segments in order; each is ACKed by the other side unless ackData is false. */
  data?: { from: Direction; bytes: number }[];
  ackData?: boolean;
  close?: 'fin' | 'rst' | 'none';
  /** Which side closes (sends the first FIN, or the RST). */
  closeBy?: Direction;
}

/** A TCP conversation with consistent sequence numbers and timestamps. */
export function tcpConversation(o: TcpConversationOptions): TimedPacket[] {
  const step = o.step ?? 1_000_000n;
  const out: TimedPacket[] = [];
  const seq = { client: 1000, server: 5000 };
  const ipId = { client: 100, server: 200 };
  let t = o.start;
  const send = (from: Direction, flags: number, data?: Uint8Array, options?: Uint8Array[]): void => {
    const [a, b] = from === 'client' ? [o.client, o.server] : [o.server, o.client];
    const other: Direction = from === 'client' ? 'server' : 'client';
    const hasAck = (flags & TCP_FLAGS.ACK) !== 0;
    const l4 = tcp({ srcPort: a.port, dstPort: b.port, seq: seq[from], ack: hasAck ? seq[other] : 0, flags, payload: data, options });
    out.push({ ts: t, from, ip: ip({ src: a.ip, dst: b.ip, l4, id: ipId[from]++ }) });
    seq[from] = (seq[from] + (data?.length ?? 0) + (flags & (TCP_FLAGS.SYN | TCP_FLAGS.FIN) ? 1 : 0)) >>> 0;
    t += step;
  };
  const synOpts = [tcpOpt.mss(1460), tcpOpt.sackPermitted(), tcpOpt.timestamps(1, 0), tcpOpt.nop(), tcpOpt.wscale(7)];
  const hs = o.handshake ?? 'full';
  if (hs === 'syn-only') {
    for (let i = 0; i < (o.synCount ?? 1); i++) {
      send('client', TCP_FLAGS.SYN, undefined, synOpts);
      seq.client = (seq.client - 1) >>> 0; // a retransmitted SYN reuses the ISN
    }
    return out;
  }
  if (hs === 'full') {
    send('client', TCP_FLAGS.SYN, undefined, synOpts);
    send('server', TCP_FLAGS.SYN | TCP_FLAGS.ACK, undefined, synOpts);
    send('client', TCP_FLAGS.ACK);
  }
  for (const d of o.data ?? []) {
    send(d.from, TCP_FLAGS.PSH | TCP_FLAGS.ACK, payload(d.bytes));
    if (o.ackData !== false) send(d.from === 'client' ? 'server' : 'client', TCP_FLAGS.ACK);
  }
  const closer = o.closeBy ?? 'client';
  const peer: Direction = closer === 'client' ? 'server' : 'client';
  if (o.close === 'fin' || o.close === undefined) {
    send(closer, TCP_FLAGS.FIN | TCP_FLAGS.ACK);
    send(peer, TCP_FLAGS.FIN | TCP_FLAGS.ACK);
    send(closer, TCP_FLAGS.ACK);
  } else if (o.close === 'rst') {
    send(closer, TCP_FLAGS.RST | TCP_FLAGS.ACK);
  }
  return out;
}

/** UDP datagrams between two endpoints, in the given order. */
export function udpExchange(o: {
  client: Endpoint;
  server: Endpoint;
  start: bigint;
  step?: bigint;
  messages: { from: Direction; bytes: number }[];
}): TimedPacket[] {
  const step = o.step ?? 1_000_000n;
  return o.messages.map((m, i) => {
    const [a, b] = m.from === 'client' ? [o.client, o.server] : [o.server, o.client];
    return {
      ts: o.start + BigInt(i) * step,
      from: m.from,
      ip: ip({ src: a.ip, dst: b.ip, id: 300 + i, l4: udp({ srcPort: a.port, dstPort: b.port, payload: payload(m.bytes) }) }),
    };
  });
}

/** `count` echo request/reply pairs (ICMP or ICMPv6 by address family). */
export function icmpPing(o: { client: string; server: string; start: bigint; step?: bigint; count: number; id?: number }): TimedPacket[] {
  const step = o.step ?? 1_000_000n;
  const v6 = isIpv6(o.client);
  const echo = v6 ? icmp6Echo : icmpEcho;
  const out: TimedPacket[] = [];
  for (let i = 0; i < o.count; i++) {
    const id = o.id ?? 0x77;
    out.push({ ts: o.start + BigInt(2 * i) * step, from: 'client', ip: ip({ src: o.client, dst: o.server, id: 400 + i, l4: echo({ id, seq: i + 1 }) }) });
    out.push({
      ts: o.start + BigInt(2 * i + 1) * step,
      from: 'server',
      ip: ip({ src: o.server, dst: o.client, id: 500 + i, l4: echo({ id, seq: i + 1, reply: true }) }),
    });
  }
  return out;
}

/** Offsets in synFrame() (an untagged Ethernet + IPv4 + TCP frame) of what floods rewrite in place. */
export const SYN_FRAME = { SRC_IP_AT: 14 + 12, SRC_PORT_AT: 14 + 20, IP_ID_AT: 14 + 4, IP_CHECKSUM_AT: 14 + 10 } as const;

/** A SYN from 1.0.0.1:1024 to 10.9.9.9:80: the template of the tests' byte-built SYN floods. */
export function synFrame(): Buffer {
  return Buffer.from(
    ethernet({ etherType: ETHERTYPE.IPV4, payload: ipv4({ src: '1.0.0.1', dst: '10.9.9.9', l4: tcp({ srcPort: 1024, dstPort: 80, flags: TCP_FLAGS.SYN }) }) }),
  );
}
