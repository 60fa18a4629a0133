// The DPI engine: decides the application protocol of each flow from its first payload packets.
// Per-flow state lives in typed arrays indexed by the flow table's slot (reset when a flow starts
// in the slot), so an undecided flow's packet costs a few array reads plus the dissectors that are
// still in the running, and a decided flow's packets are never handed to the engine at all.
// Results a dissector extracts (server name, JA4, ...) and stream reassembly buffers live in a
// per-flow object created only for flows that need one.
import { newFlowExtra } from './reassembly.js';
import { RISK_KNOWN_PROTO_NON_STD_PORT, RISK_TLS_CERT_EXPIRED, RISK_TLS_CERT_NOT_YET_VALID, riskText, STANDARD_PORTS } from './risks.js';
import { DISSECTORS } from './registry.js';
import { FOLLOW, LIKELY, MATCH, MORE, NO, TRANSPORT_TCP, TRANSPORT_UDP, type Dissector, type DpiContext, type FlowExtra } from './types.js';

/** Payload packets per direction looked at before the flow is decided by fallback. */
export const MAX_DIR_PACKETS = 4;
/** Payload packets looked at in all before the flow is decided by fallback. */
export const MAX_FLOW_PACKETS = 8;
/** While a dissector reassembles a message (a ClientHello over many segments), up to this many per direction. */
export const MAX_REASSEMBLY_PACKETS = 16;
/**
 * Payload packets per direction, and in all, while a dissector that identified the flow follows it
 * for more (a DNS response, the other SSH banner, the ClientHello after a mail STARTTLS): such a
 * flow is known already, and a mail server's greeting, capabilities and "+OK begin TLS" alone used
 * up the 4 of the first budget before the client's ClientHello.
 */
export const MAX_FOLLOW_DIR_PACKETS = 8;
export const MAX_FOLLOW_FLOW_PACKETS = 16;
/** Frame sizes kept per flow (signed by direction) for later classification of encrypted traffic. */
export const FIRST_SIZES = 8;

/** log2 of the number of firstPackets texts kept for reuse. */
const SIZES_TEXT_BITS = 12;

export const CONF_UNKNOWN = 0;
export const CONF_DPI = 1;
export const CONF_PORT = 2;
export const CONF_GUESS = 3;
export const CONFIDENCE_NAMES = ['unknown', 'dpi', 'port', 'guess'] as const;

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/**
 * Protocols that the IP header's protocol number names by itself, under nDPI's names: such a flow
 * is labelled when it starts, with 'dpi' confidence as nDPI gives it (the number is not a guess
 * the way a port is), and nothing of its payload is inspected. ESP and AH are IPsec.
 */
export const IP_PROTOCOL_APPS: ReadonlyMap<number, string> = new Map([
  [1, 'ICMP'],
  [2, 'IGMP'],
  [4, 'IP_in_IP'],
  [8, 'EGP'],
  [41, 'IPv6_in_IPv4'],
  [47, 'GRE'],
  [50, 'IPSec'],
  [51, 'IPSec'],
  [58, 'ICMPV6'],
  [89, 'OSPF'],
  [103, 'IP_PIM'],
  [112, 'VRRP'],
  [113, 'PGM'],
  [132, 'SCTP'],
]);

class Context implements DpiContext {
  transport = 0;
  fromClient = true;
  clientPort = 0;
  serverPort = 0;
  tcpSeq = -1;
  dirPackets = 0;
  slot = 0;
  /** Index of the dissector being called: whose state() it is. */
  dissector = 0;
  constructor(private readonly engine: DpiEngine) {}
  extra(): FlowExtra {
    return this.engine.extraOf(this.slot);
  }
  hasExtra(): boolean {
    return this.engine.extras[this.slot] !== undefined;
  }
  state(): unknown {
    const states = this.engine.extras[this.slot]?.states;
    return states == null ? null : (states[this.dissector] ?? null);
  }
  setState(value: unknown): void {
    if (value === null && !this.hasExtra()) return;
    const e = this.extra();
    (e.states ??= new Array<unknown>(this.engine.dissectors.length).fill(null))[this.dissector] = value;
  }
  addresses(): readonly [string, string] | null {
    return this.engine.addresses?.(this.slot) ?? null;
  }
}

export class DpiEngine {
  cap = 0;
  /** 1 once the flow's app is final: the aggregator stops calling packet() for it. */
  decided = new Uint8Array(0);
  /** Index into appNames (0 = none yet). */
  app = new Uint16Array(0);
  confidence = new Uint8Array(0);
  /** Payload packets inspected per direction (slot*2 + dir). */
  dirPackets = new Uint8Array(0);
  /** Dissectors ruled out (bit i of word slot*2 + (i >> 5)). */
  excluded = new Uint32Array(0);
  /** Dissector index + 1 that found the payload likely its own, 0 if none. */
  likely = new Uint8Array(0);
  /** Dissector index + 1 that identified the flow and follows it for details, 0 if none. */
  follow = new Uint8Array(0);
  /** First frame sizes: positive client to server, negative server to client. */
  sizes = new Int32Array(0);
  sizeCount = new Uint8Array(0);
  extras: (FlowExtra | undefined)[] = [];
  /**
   * The client and server IP addresses of a flow slot, for the dissectors that name a flow by its
   * endpoints (Google's STUN ranges); set by the engine's user.
   */
  addresses: ((f: number) => readonly [string, string]) | null = null;
  // firstPackets texts by their sizes, in slots picked by a hash of them: a few sequences make up
  // most flows (a scan's lone SYN is '+58'), so most exports reuse a text instead of building one.
  private readonly textSizes = new Int32Array(FIRST_SIZES << SIZES_TEXT_BITS);
  /** Sizes in the slot's text, 0 for none. */
  private readonly textCount = new Uint8Array(1 << SIZES_TEXT_BITS);
  private readonly texts = new Array<string>(1 << SIZES_TEXT_BITS).fill('');
  /** Room for FIRST_SIZES signed 32-bit sizes and their spaces. */
  private readonly textBytes = Buffer.alloc(FIRST_SIZES * 12);

  readonly appNames: string[] = [''];
  private readonly appIndex = new Map<string, number>([['', 0]]);
  readonly dissectors: readonly Dissector[];
  private readonly dissectorApp: number[];
  /** Per app index: 1 for peer-to-peer protocols. */
  private readonly peerToPeerApp: Uint8Array;
  /** transport*65536 + port -> indices of dissectors with that well-known port. */
  private readonly byPort = new Map<number, number[]>();
  /** transport*65536 + port -> the port guess's app index where the first dissector names it apart. */
  private readonly portAppOverride = new Map<number, number>();
  private readonly ctx = new Context(this);
  /** IP protocol number -> app index for IP_PROTOCOL_APPS, 0 for the rest. */
  private readonly ipProtocolApp = new Uint16Array(256);

  constructor(dissectors: readonly Dissector[] = DISSECTORS, initialCapacity = 4096) {
    if (dissectors.length > 64) throw new Error('at most 64 dissectors');
    this.dissectors = dissectors;
    this.dissectorApp = dissectors.map((d) => this.intern(d.app));
    this.peerToPeerApp = new Uint8Array(this.appNames.length);
    dissectors.forEach((d, i) => {
      if (d.peerToPeer === true) this.peerToPeerApp[this.dissectorApp[i]] = 1;
    });
    dissectors.forEach((d, i) => {
      for (const t of [TRANSPORT_TCP, TRANSPORT_UDP]) {
        if ((d.transports & t) === 0) continue;
        const ports = t === TRANSPORT_UDP && d.udpPorts ? d.udpPorts : d.ports;
        for (const p of ports) {
          const key = t * 65536 + p;
          let list = this.byPort.get(key);
          if (!list) this.byPort.set(key, (list = []));
          list.push(i);
          const named = d.portApps?.[p];
          if (list.length === 1 && named !== undefined) this.portAppOverride.set(key, this.intern(named));
        }
      }
    });
    for (const [proto, name] of IP_PROTOCOL_APPS) this.ipProtocolApp[proto] = this.intern(name);
    this.grow(initialCapacity);
  }

  intern(name: string): number {
    let i = this.appIndex.get(name);
    if (i === undefined) {
      i = this.appNames.push(name) - 1;
      this.appIndex.set(name, i);
    }
    return i;
  }

  extraOf(f: number): FlowExtra {
    let e = this.extras[f];
    if (e === undefined) {
      e = newFlowExtra();
      this.extras[f] = e;
    }
    return e;
  }

  /** Makes room for slots below cap (the flow table grew). */
  ensure(cap: number): void {
    if (cap > this.cap) this.grow(Math.max(cap, this.cap * 2));
  }

  /** A new flow of IP protocol ipProto starts in slot f. */
  reset(f: number, ipProto: number): void {
    if (f >= this.cap) this.ensure(f + 1);
    if (ipProto === IPPROTO_TCP || ipProto === IPPROTO_UDP) {
      this.decided[f] = 0;
      this.app[f] = 0;
      this.confidence[f] = CONF_UNKNOWN;
    } else {
      // Decided at once: the protocol number says all DPI would (no dissector reads other payloads).
      const app = this.ipProtocolApp[ipProto & 0xff];
      this.decided[f] = 1;
      this.app[f] = app;
      this.confidence[f] = app !== 0 ? CONF_DPI : CONF_UNKNOWN;
    }
    this.dirPackets[f * 2] = this.dirPackets[f * 2 + 1] = 0;
    this.excluded[f * 2] = this.excluded[f * 2 + 1] = 0;
    this.likely[f] = 0;
    this.follow[f] = 0;
    this.sizeCount[f] = 0;
    this.extras[f] = undefined;
  }

  /** Records a frame's size while fewer than FIRST_SIZES are kept (the caller checks sizeCount). */
  size(f: number, bytes: number, fromClient: boolean): void {
    const n = this.sizeCount[f];
    this.sizes[f * FIRST_SIZES + n] = fromClient ? bytes : -bytes;
    this.sizeCount[f] = n + 1;
  }

  /**
   * Inspects one payload of an undecided flow, hence of TCP or UDP (reset() decides the others);
   * tcpSeq is the segment's sequence number or -1.
   */
  packet(f: number, ipProto: number, buf: Buffer, off: number, len: number, fromClient: boolean, clientPort: number, serverPort: number, tcpSeq: number): void {
    const transport = ipProto === IPPROTO_TCP ? TRANSPORT_TCP : TRANSPORT_UDP;
    const dir = fromClient ? 0 : 1;
    const dp = ++this.dirPackets[f * 2 + dir];
    const ctx = this.ctx;
    ctx.slot = f;
    ctx.transport = transport;
    ctx.fromClient = fromClient;
    ctx.clientPort = clientPort;
    ctx.serverPort = serverPort;
    ctx.tcpSeq = tcpSeq;
    ctx.dirPackets = dp;

    const following = this.follow[f];
    if (following > 0) {
      let v: number;
      try {
        ctx.dissector = following - 1;
        v = this.dissectors[following - 1].inspect(ctx, buf, off, len);
      } catch {
        v = NO;
      }
      // It may rename the app on what it learns (TLS after STARTTLS); MATCH or NO end the following.
      const e = this.extras[f];
      if (e !== undefined && e.app !== '') this.app[f] = this.intern(e.app);
      if (v === MATCH || v === NO || dp >= MAX_FOLLOW_DIR_PACKETS || this.dirPackets[f * 2] + this.dirPackets[f * 2 + 1] >= MAX_FOLLOW_FLOW_PACKETS)
        this.finish(f);
      return;
    }

    // Dissectors of the server's well-known port first, so that where two could claim a payload
    // the one the port suggests wins; then every other one still in the running.
    const hinted = this.byPort.get(transport * 65536 + serverPort);
    if (hinted !== undefined) {
      for (let k = 0; k < hinted.length; k++) {
        if (this.run(f, hinted[k], buf, off, len)) return;
      }
    }
    const ds = this.dissectors;
    for (let i = 0; i < ds.length; i++) {
      if ((ds[i].transports & transport) === 0) continue;
      if (hinted?.includes(i)) continue;
      if (this.run(f, i, buf, off, len)) return;
    }

    // Out of budget: decide on what is known. A dissector reassembling a message gets more.
    const total = this.dirPackets[f * 2] + this.dirPackets[f * 2 + 1];
    const e = this.extras[f];
    const reassembling = e !== undefined && e.buf[dir] !== null && e.bufLen[dir] > 0;
    const limit = reassembling ? MAX_REASSEMBLY_PACKETS : MAX_DIR_PACKETS;
    if (dp >= limit || (!reassembling && total >= MAX_FLOW_PACKETS) || this.allExcluded(f, transport)) {
      this.decide(f, clientPort, serverPort, transport);
    }
  }

  /** Runs dissector i unless excluded; true when it decided the flow. */
  private run(f: number, i: number, buf: Buffer, off: number, len: number): boolean {
    const w = f * 2 + (i >> 5);
    const bit = 1 << (i & 31);
    if ((this.excluded[w] & bit) !== 0) return false;
    let v: number;
    try {
      this.ctx.dissector = i;
      v = this.dissectors[i].inspect(this.ctx, buf, off, len);
    } catch {
      v = NO; // a dissector bug must not take the capture down; the fuzz test keeps this path cold
    }
    if (v === MATCH || v === FOLLOW) {
      const e = this.extras[f];
      this.app[f] = e !== undefined && e.app !== '' ? this.intern(e.app) : this.dissectorApp[i];
      this.confidence[f] = CONF_DPI;
      if (v === FOLLOW) this.follow[f] = i + 1;
      else this.finish(f);
      return true;
    }
    if (v === NO) {
      this.excluded[w] |= bit;
      // A later packet that rules the protocol out takes back what an earlier one suggested.
      if (this.likely[f] === i + 1) this.likely[f] = 0;
    } else if (v === LIKELY && this.likely[f] === 0) this.likely[f] = i + 1;
    else if (v !== MORE && v !== LIKELY) this.excluded[w] |= bit;
    return false;
  }

  private finish(f: number): void {
    this.decided[f] = 1;
    this.follow[f] = 0;
    const e = this.extras[f];
    // Reassembly buffers are no longer needed (most flows never had one: see newFlowExtra).
    if (e !== undefined && (e.buf[0] !== null || e.buf[1] !== null)) e.buf[0] = e.buf[1] = null;
  }

  private allExcluded(f: number, transport: number): boolean {
    const ds = this.dissectors;
    for (let i = 0; i < ds.length; i++) {
      if ((ds[i].transports & transport) === 0) continue;
      if ((this.excluded[f * 2 + (i >> 5)] & (1 << (i & 31))) === 0) return false;
    }
    return true;
  }

  /** Ends inspection: a likely dissector, else the well-known port, else unknown. */
  private decide(f: number, clientPort: number, serverPort: number, transport: number): void {
    this.fallback(f, clientPort, serverPort, transport);
    this.finish(f);
  }

  private fallback(f: number, clientPort: number, serverPort: number, transport: number): void {
    const l = this.likely[f];
    if (l > 0) {
      const e = this.extras[f];
      this.app[f] = e !== undefined && e.app !== '' ? this.intern(e.app) : this.dissectorApp[l - 1];
      this.confidence[f] = CONF_GUESS;
      return;
    }
    const app = this.portApp(transport, serverPort, f) || this.portApp(transport, clientPort, f);
    this.app[f] = app;
    this.confidence[f] = app !== 0 ? CONF_PORT : CONF_UNKNOWN;
  }

  /** App of a well-known port, 0 if none. */
  private portApp(transport: number, port: number, _f: number): number {
    const key = transport * 65536 + port;
    const list = this.byPort.get(key);
    if (list === undefined) return 0;
    // The port wins even over a payload its dissector rejected (a capture starting mid-stream, an
    // encrypted or unusual first payload): nDPI does the same, and 'port' says how little it means.
    return this.portAppOverride.get(key) ?? this.dissectorApp[list[0]];
  }

  /**
   * Labels a flow about to be exported. An undecided flow gets its fallback label now without being
   * decided, so that later payload can still identify it.
   */
  label(f: number, ipProto: number, clientPort: number, serverPort: number): void {
    if (this.decided[f] || this.follow[f] > 0) return; // all but TCP and UDP are decided
    const transport = ipProto === IPPROTO_TCP ? TRANSPORT_TCP : TRANSPORT_UDP;
    this.fallback(f, clientPort, serverPort, transport);
  }

  /** Whether DPI (not a port guess) found the flow to be a peer-to-peer protocol. */
  peerToPeer(f: number): boolean {
    const a = this.app[f];
    return this.confidence[f] === CONF_DPI && a < this.peerToPeerApp.length && this.peerToPeerApp[a] === 1;
  }

  appName(f: number): string {
    return this.appNames[this.app[f]];
  }

  confidenceName(f: number): string {
    return CONFIDENCE_NAMES[this.confidence[f]];
  }

  serverName(f: number): string {
    const e = this.extras[f];
    return e === undefined ? '' : e.serverName;
  }

  appInfo(f: number): string {
    const e = this.extras[f];
    return e === undefined || e.info === null ? '' : JSON.stringify(e.info);
  }

  /**
   * The flow's risks (risks.ts), comma-separated: what its dissector found, a protocol DPI
   * identified on a port nDPI does not expect it on, and a certificate outside its validity at
   * `firstSeen` (µs, the flow's first packet: a capture is judged at its own time).
   */
  risks(f: number, clientPort: number, serverPort: number, firstSeen: number): string {
    const e = this.extras[f];
    let mask = e === undefined ? 0 : e.risks;
    if (this.confidence[f] === CONF_DPI) {
      const ports = STANDARD_PORTS[this.appNames[this.app[f]]];
      if (ports !== undefined && !ports.includes(serverPort) && !ports.includes(clientPort)) mask |= RISK_KNOWN_PROTO_NON_STD_PORT;
    }
    if (e !== undefined && e.certNotAfter !== 0) {
      const ms = firstSeen / 1000;
      if (ms > e.certNotAfter) mask |= RISK_TLS_CERT_EXPIRED;
      else if (ms < e.certNotBefore) mask |= RISK_TLS_CERT_NOT_YET_VALID;
    }
    return riskText(mask);
  }

  /** '+74 -74 +66': the first frame sizes, + client to server, - server to client. */
  firstPackets(f: number): string {
    const n = this.sizeCount[f];
    if (n === 0) return '';
    const sizes = this.sizes;
    const at = f * FIRST_SIZES;
    let h = n;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ sizes[at + i], 0x9e3779b1);
    const slot = h >>> (32 - SIZES_TEXT_BITS);
    const c = slot * FIRST_SIZES;
    if (this.textCount[slot] === n) {
      let i = 0;
      while (i < n && this.textSizes[c + i] === sizes[at + i]) i++;
      if (i === n) return this.texts[slot];
    }
    // Written as bytes and decoded once: one string, not three per size.
    const b = this.textBytes;
    let o = 0;
    for (let i = 0; i < n; i++) {
      let v = sizes[at + i];
      this.textSizes[c + i] = v;
      if (i > 0) b[o++] = 0x20;
      if (v > 0) b[o++] = 0x2b;
      else if (v < 0) {
        b[o++] = 0x2d;
        v = -v;
      }
      let e = o;
      for (let d = v; d >= 10; d = Math.floor(d / 10)) e++;
      o = e + 1;
      do {
        b[e--] = 0x30 + (v % 10);
        v = Math.floor(v / 10);
      } while (v > 0);
    }
    const s = b.toString('latin1', 0, o);
    this.textCount[slot] = n;
    this.texts[slot] = s;
    return s;
  }

  private grow(cap: number): void {
    const g = <T extends Uint8Array | Uint16Array | Uint32Array | Int32Array>(a: T, n: number, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a as never);
      return b;
    };
    this.decided = g(this.decided, cap, (n) => new Uint8Array(n));
    this.app = g(this.app, cap, (n) => new Uint16Array(n));
    this.confidence = g(this.confidence, cap, (n) => new Uint8Array(n));
    this.dirPackets = g(this.dirPackets, cap * 2, (n) => new Uint8Array(n));
    this.excluded = g(this.excluded, cap * 2, (n) => new Uint32Array(n));
    this.likely = g(this.likely, cap, (n) => new Uint8Array(n));
    this.follow = g(this.follow, cap, (n) => new Uint8Array(n));
    this.sizes = g(this.sizes, cap * FIRST_SIZES, (n) => new Int32Array(n));
    this.sizeCount = g(this.sizeCount, cap, (n) => new Uint8Array(n));
    this.cap = cap;
  }
}

/** The sequence number of the TCP segment whose payload starts at payloadOffset, or -1. */
export function tcpSeqOf(buf: Buffer, payloadOffset: number, srcPort: number, dstPort: number, frameStart: number): number {
  // The decoder does not keep the TCP header's position; find it back: the header length field
  // must agree with the distance to the payload, and the ports must be the packet's.
  for (let hl = 20; hl <= 60; hl += 4) {
    const h = payloadOffset - hl;
    if (h < frameStart) break;
    if (buf[h + 12] >> 4 === hl >> 2 && ((buf[h] << 8) | buf[h + 1]) === srcPort && ((buf[h + 2] << 8) | buf[h + 3]) === dstPort) {
      return ((buf[h + 4] << 24) >>> 0) + ((buf[h + 5] << 16) | (buf[h + 6] << 8) | buf[h + 7]);
    }
  }
  return -1;
}
