// Per-flow connection state as Zeek keeps it, for its conn.log (src/store/export-zeek.ts) and for
// analysts who read `ShADadFf` faster than flag masks: which end Zeek calls the originator, each
// TCP endpoint's state (conn_state derives from the pair), the history letters, payload bytes from
// TCP sequence numbers (gaps included), IP bytes (IP total lengths) and the bytes missed in gaps;
// and the flow's Community ID (src/enrich/community-id.ts), computed once when the flow starts.
//
// State lives in typed arrays indexed by the flow table's slots (per-endpoint arrays at
// slot*2 + end, end 0 = Zeek's originator, 1 = responder), so a packet allocates nothing. The
// arrays grow with the flow table (ensure()), which bounds them.
//
// Where Zeek's own rules are followed (its TCP analyser, conn.zeek's conn_state): the originator
// is the sender of the first packet, except that a TCP flow starting without a SYN (or with a
// SYN-ACK) and a UDP flow are turned round when the source port is a likely server port and the
// destination port is not (history then starts with `^`); history letters are upper case for the
// originator; A, D, I and Q are recorded once per direction, S, H, F and R again only when the
// sequence number changed, T (retransmission), G (gap) and W (zero window) at 1, 10, 100... times.
import type { DecodedPacket } from '../decode/packet.js';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../decode/packet.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../decode/ip.js';
import { communityIdOfWords } from '../enrich/community-id.js';
import type { FlowRecord } from '../records/index.js';
import type { Originator } from '../records/flow.js';
import { u32be } from '../decode/bytes.js';

/** The flow record's fields that this module fills in. */
export type ZeekFields = Pick<
  FlowRecord,
  | 'communityId'
  | 'originator'
  | 'connState'
  | 'history'
  | 'clientPayloadBytes'
  | 'serverPayloadBytes'
  | 'clientIpBytes'
  | 'serverIpBytes'
  | 'missedBytes'
  | 'zeekDuration'
  | 'icmpType'
  | 'icmpCode'
  | 'tunnelParents'
  | 'zeekSplits'
>;

/**
 * Zeek's timers that end a connection which flowlens's flow outlives (Zeek's defaults, µs): the
 * next packet starts a new Zeek connection (a new conn.log row) within the same flowlens flow.
 * tcp_attempt_delay: a SYN unanswered this long; tcp_close_delay (and tcp_reset_delay): this long
 * after a close is complete (both FINs, a RST, or a FIN or RST from an end whose peer sent nothing);
 * dns_session_timeout: DNS over UDP quiet 9 s when its timer fires (every 10 s from the start); and the
 * inactivity timeouts (TCP 5 min, others 1 min).
 */
const ATTEMPT_DELAY_US = 5_000_000;
const CLOSE_DELAY_US = 5_000_000;
const DNS_SESSION_TIMEOUT_US = 10_000_000;
const TCP_INACTIVITY_US = 300_000_000;
const OTHER_INACTIVITY_US = 60_000_000;
/** The ports of Zeek's DNS analyser over UDP (DNS, NetBIOS name service, mDNS, LLMNR). */
const DNS_PORTS = new Set([53, 137, 5353, 5355]);
/** Earlier Zeek connections kept per flow; past it the earliest are dropped (the count says how many). */
export const MAX_ZEEK_SPLITS = 16;

/** One earlier Zeek connection of a flow (the record's Zeek fields, in client/server terms), in zeekSplits. */
export interface ZeekSplit {
  /** Its first packet (µs). */
  ts: number;
  originator: Originator;
  connState: string;
  history: string;
  clientPackets: number;
  serverPackets: number;
  clientPayloadBytes: number;
  serverPayloadBytes: number;
  clientIpBytes: number;
  serverIpBytes: number;
  missedBytes: number;
  zeekDuration: number;
}

/**
 * zeekSplits of a flow Zeek saw as more than one connection: the earlier ones and the current one.
 * (The record's own Zeek fields are the current connection's, but their segments combine by max.)
 */
export interface ZeekSplits {
  earlier: ZeekSplit[];
  /** Earlier connections dropped past MAX_ZEEK_SPLITS. */
  dropped: number;
  current: ZeekSplit | null;
}

/** Tunnel carriers kept per flow (Zeek's tunnel_parents); an inner flow rarely has more than two. */
export const MAX_TUNNEL_PARENTS = 4;

// TCP endpoint states (Zeek's TCP_ENDPOINT_*).
const INACTIVE = 0;
const SYN_SENT = 1;
const SYN_ACK_SENT = 2;
const PARTIAL = 3;
const ESTABLISHED = 4;
const CLOSED = 5;
const RESET = 6;

/** Letters kept per flow; Zeek's history is not bounded, but past this it only repeats scaled letters. */
export const HISTORY_MAX = 32;

// Once-per-direction history bits (shifted by 8 for the responder).
const H_SYN = 1;
const H_FIN = 2;
const H_RST = 4;
const H_ACK = 8;
const H_DATA = 16;
const H_FIN_RST = 32;
const H_MULTI = 64;

/**
 * Ports Zeek's analysers register (Analyzer::register_for_ports with its default scripts): a flow
 * that starts from one of these to another port is turned round. Zeek's bare mode (-b) loads fewer.
 */
const LIKELY_SERVER_PORTS = new Set([
  21, 22, 23, 25, 53, 67, 69, 80, 81, 88, 102, 110, 111, 123, 135, 137, 138, 139, 143, 161, 162, 389, 443, 445, 465, 500, 502, 514, 563, 585, 587, 614, 631,
  636, 749, 750, 989, 990, 992, 993, 995, 1080, 1194, 1812, 1813, 2049, 2123, 2152, 2811, 3128, 3268, 3306, 3389, 3478, 3544, 4500, 4754, 4789, 5060, 5072,
  5222, 5223, 5269, 5353, 5355, 5900, 6081, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 11211, 20000, 47808,
]);

/** Where the TCP header of the packet starts (the decoder keeps only where its payload does), or -1. */
function tcpHeaderAt(buf: Buffer, pkt: DecodedPacket, frameStart: number): number {
  for (let hl = 20; hl <= 60; hl += 4) {
    const h = pkt.payloadOffset - hl;
    if (h < frameStart) break;
    if (buf[h + 12] >> 4 === hl >> 2 && ((buf[h] << 8) | buf[h + 1]) === pkt.srcPort && ((buf[h + 2] << 8) | buf[h + 3]) === pkt.dstPort) return h;
  }
  return -1;
}

/** The IP packet's length as its header gives it (IPv4 total length, IPv6 40 + payload length), bounded by the frame. */
function ipTotalLength(buf: Buffer, pkt: DecodedPacket): number {
  const at = pkt.ipOffset;
  const declared = pkt.ipVersion === 4 ? (buf[at + 2] << 8) | buf[at + 3] : 40 + ((buf[at + 4] << 8) | buf[at + 5]);
  return declared === 0 || declared > pkt.wireEnd - at ? pkt.wireEnd - at : declared;
}

export class ZeekConn {
  private cap = 0;
  communityId: string[] = [];
  /** 1 when Zeek's originator is flowlens's client. */
  origIsClient = new Uint8Array(0);
  /** Last time that counts for Zeek's duration (µs). */
  lastTime = new Float64Array(0);
  historyLen = new Uint8Array(0);
  history = new Uint8Array(0);
  historyOnce = new Uint16Array(0);
  /** Type and code of the ICMP message that started the flow. */
  icmpType = new Uint8Array(0);
  icmpCode = new Uint8Array(0);
  // Per endpoint (slot*2 + end).
  state = new Uint8Array(0);
  /** Sequence number the endpoint's relative sequence space starts at (its SYN's, or one before its first byte). */
  seqStart = new Float64Array(0);
  seqKnown = new Uint8Array(0);
  /** Highest relative sequence number sent (SYN and FIN count one). */
  seqEnd = new Float64Array(0);
  /** Highest relative sequence number of this endpoint acknowledged by its peer. */
  ackedEnd = new Float64Array(0);
  finSeen = new Uint8Array(0);
  lastSyn = new Float64Array(0);
  lastFin = new Float64Array(0);
  lastRst = new Float64Array(0);
  /** Payload bytes of UDP, ICMP and other protocols (TCP's come from sequence numbers). */
  payload = new Float64Array(0);
  ipBytes = new Float64Array(0);
  missed = new Float64Array(0);
  retransmits = new Uint32Array(0);
  /** Per endpoint: the sequence range [holeStart, holeEnd) skipped and not yet filled nor acknowledged (empty when equal). */
  holeStart = new Float64Array(0);
  holeEnd = new Float64Array(0);
  gaps = new Uint32Array(0);
  zeroWindows = new Uint32Array(0);
  packets = new Float64Array(0);
  /** Flow ids (high, low words) of the carriers of a tunnelled flow: slot*MAX_TUNNEL_PARENTS*2. */
  parentIds = new Uint32Array(0);
  parentCount = new Uint8Array(0);
  /** First packet of the current Zeek connection, and its last packet of any kind (µs). */
  startTime = new Float64Array(0);
  lastPacket = new Float64Array(0);
  /** When Zeek's close or attempt timer ends the connection (µs), 0 when not set. */
  deleteAt = new Float64Array(0);
  attemptAt = new Float64Array(0);
  /** Per endpoint: Zeek's did_close (the endpoint's close has been seen). */
  didClose = new Uint8Array(0);
  /** 1 for a UDP flow on a port of Zeek's DNS analyser (its 10 s session timeout applies). */
  dnsPorts = new Uint8Array(0);
  /** Earlier Zeek connections of the flow (null for most flows: never split). */
  splits: (ZeekSplits | null)[] = [];

  ensure(cap: number): void {
    if (cap <= this.cap) return;
    const grow = <T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(old: T, n: number): T => {
      const next = new (old.constructor as new (n: number) => T)(n);
      next.set(old);
      return next;
    };
    this.origIsClient = grow(this.origIsClient, cap);
    this.lastTime = grow(this.lastTime, cap);
    this.historyLen = grow(this.historyLen, cap);
    this.history = grow(this.history, cap * HISTORY_MAX);
    this.historyOnce = grow(this.historyOnce, cap);
    this.icmpType = grow(this.icmpType, cap);
    this.icmpCode = grow(this.icmpCode, cap);
    this.state = grow(this.state, cap * 2);
    this.seqStart = grow(this.seqStart, cap * 2);
    this.seqKnown = grow(this.seqKnown, cap * 2);
    this.seqEnd = grow(this.seqEnd, cap * 2);
    this.ackedEnd = grow(this.ackedEnd, cap * 2);
    this.finSeen = grow(this.finSeen, cap * 2);
    this.lastSyn = grow(this.lastSyn, cap * 2);
    this.lastFin = grow(this.lastFin, cap * 2);
    this.lastRst = grow(this.lastRst, cap * 2);
    this.payload = grow(this.payload, cap * 2);
    this.ipBytes = grow(this.ipBytes, cap * 2);
    this.missed = grow(this.missed, cap * 2);
    this.retransmits = grow(this.retransmits, cap * 2);
    this.holeStart = grow(this.holeStart, cap * 2);
    this.holeEnd = grow(this.holeEnd, cap * 2);
    this.gaps = grow(this.gaps, cap * 2);
    this.zeroWindows = grow(this.zeroWindows, cap * 2);
    this.packets = grow(this.packets, cap * 2);
    this.parentIds = grow(this.parentIds, cap * MAX_TUNNEL_PARENTS * 2);
    this.parentCount = grow(this.parentCount, cap);
    this.startTime = grow(this.startTime, cap);
    this.lastPacket = grow(this.lastPacket, cap);
    this.deleteAt = grow(this.deleteAt, cap);
    this.attemptAt = grow(this.attemptAt, cap);
    this.didClose = grow(this.didClose, cap * 2);
    this.dnsPorts = grow(this.dnsPorts, cap);
    this.splits.length = cap;
    this.communityId.length = cap;
    this.cap = cap;
  }

  /**
   * A new flow: its Community ID, and Zeek's originator. `senderIsClient` is flowlens's choice for
   * the packet's sender; `buf`/`frameStart` the frame (for the ICMP code).
   */
  start(f: number, pkt: DecodedPacket, buf: Buffer, senderIsClient: boolean, ts: number): void {
    this.splits[f] = null;
    this.parentCount[f] = 0;
    this.begin(f, pkt, buf, senderIsClient, ts);
  }

  /** A Zeek connection starts with this packet (a new flow's first, or the first after a split). */
  private begin(f: number, pkt: DecodedPacket, buf: Buffer, senderIsClient: boolean, ts: number): void {
    const proto = pkt.ipProto;
    let sport = pkt.hasPorts ? pkt.srcPort : 0;
    let dport = pkt.hasPorts ? pkt.dstPort : 0;
    const icmp = proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6;
    if (icmp && pkt.icmpType >= 0) {
      sport = pkt.icmpType;
      dport = buf[pkt.payloadOffset - 3]; // the code, after the type
    }
    this.dnsPorts[f] = proto === IPPROTO_UDP && (DNS_PORTS.has(sport) || DNS_PORTS.has(dport)) ? 1 : 0;
    this.icmpType[f] = icmp ? sport : 0;
    this.icmpCode[f] = icmp ? dport : 0;
    this.communityId[f] = communityIdOfWords(pkt.ipVersion, proto, concatWords(pkt), 0, 4, sport, dport);

    let flip = false;
    if (proto === IPPROTO_UDP || (proto === IPPROTO_TCP && ((pkt.tcpFlags & TCP_SYN) === 0 || (pkt.tcpFlags & TCP_ACK) !== 0))) {
      // A broadcast or multicast destination is no originator (Zeek keeps a DHCP server's broadcast offer as sent).
      if (LIKELY_SERVER_PORTS.has(sport) && !groupAddressed(pkt)) {
        flip = LIKELY_SERVER_PORTS.has(dport) ? proto === IPPROTO_TCP && (pkt.tcpFlags & TCP_SYN) === 0 && sport < dport : true;
      }
    }
    this.origIsClient[f] = senderIsClient !== flip ? 1 : 0;
    this.historyLen[f] = 0;
    this.historyOnce[f] = 0;
    this.startTime[f] = ts;
    this.lastTime[f] = ts;
    this.lastPacket[f] = ts;
    this.deleteAt[f] = 0;
    this.attemptAt[f] = 0;
    if (flip) this.addHistory(f, 0x5e); // '^'
    for (let e = f * 2; e < f * 2 + 2; e++) {
      this.state[e] = INACTIVE;
      this.seqKnown[e] = 0;
      this.seqEnd[e] = 0;
      this.ackedEnd[e] = 0;
      this.finSeen[e] = 0;
      this.lastSyn[e] = this.lastFin[e] = this.lastRst[e] = -1;
      this.payload[e] = 0;
      this.ipBytes[e] = 0;
      this.missed[e] = 0;
      this.holeStart[e] = this.holeEnd[e] = 0;
      this.retransmits[e] = this.gaps[e] = this.zeroWindows[e] = 0;
      this.packets[e] = 0;
      this.didClose[e] = 0;
    }
  }

  /**
   * Whether Zeek would have ended flow f's connection before a packet at `ts` (its timers, see
   * ATTEMPT_DELAY_US...): then split() starts the next one with that packet.
   */
  expired(f: number, ts: number, proto: number): boolean {
    const last = this.lastPacket[f];
    if (proto === IPPROTO_TCP) {
      if (this.deleteAt[f] > 0 && ts >= this.deleteAt[f]) return true;
      const os = this.state[f * 2];
      if (this.attemptAt[f] > 0 && ts >= this.attemptAt[f] && (os === SYN_SENT || os === SYN_ACK_SENT) && this.state[f * 2 + 1] === INACTIVE) return true;
      return ts - last > TCP_INACTIVITY_US;
    }
    if (ts - last > OTHER_INACTIVITY_US) return true;
    if (proto === IPPROTO_UDP && this.dnsPorts[f]) {
      // The DNS analyser's timer fires every 10 s from the start and ends a connection quiet for
      // 9 s of them (Zeek allows a second for the timer's own lateness).
      const start = this.startTime[f];
      const quiet = DNS_SESSION_TIMEOUT_US - 1_000_000;
      const fires = start + Math.max(1, Math.ceil((last + quiet - start) / DNS_SESSION_TIMEOUT_US)) * DNS_SESSION_TIMEOUT_US;
      return ts >= fires;
    }
    return false;
  }

  /**
   * Zeek's connection of flow f ended (expired()): its fields are kept as an earlier connection of
   * the flow and a new one starts with this packet.
   */
  split(f: number, pkt: DecodedPacket, buf: Buffer, senderIsClient: boolean, ts: number, proto: number): void {
    let splits = this.splits[f];
    if (splits === null) {
      splits = { earlier: [], dropped: 0, current: null };
      this.splits[f] = splits;
    }
    if (splits.earlier.length >= MAX_ZEEK_SPLITS) {
      splits.earlier.shift();
      splits.dropped++;
    }
    splits.earlier.push(this.connection(f, proto));
    this.begin(f, pkt, buf, senderIsClient, ts);
  }

  /** One packet of flow f; `fromClient` in flowlens's terms. Later fragments count as IP bytes only. */
  packet(f: number, pkt: DecodedPacket, buf: Buffer, frameStart: number, ts: number, fromClient: boolean): void {
    const end = fromClient === (this.origIsClient[f] === 1) ? 0 : 1;
    const e = f * 2 + end;
    const ipLen = ipTotalLength(buf, pkt);
    this.ipBytes[e] += ipLen;
    this.packets[e]++;
    this.lastPacket[f] = ts;
    if (pkt.laterFragment) {
      this.lastTime[f] = ts;
      return;
    }
    const proto = pkt.ipProto;
    const wirePayload = pkt.ipOffset + ipLen - pkt.payloadOffset;
    if (proto === IPPROTO_TCP) {
      if (this.tcp(f, end, pkt, buf, frameStart, wirePayload, ts)) this.lastTime[f] = ts;
      return;
    }
    this.lastTime[f] = ts;
    if (proto === IPPROTO_UDP) {
      this.payload[e] += Math.max(0, wirePayload);
      this.once(f, end, H_DATA, 0x44); // D
    } else if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) {
      // The decoder's payload starts after type, code and checksum; Zeek's after the 8-byte header.
      this.payload[e] += Math.max(0, wirePayload - 4);
    }
  }

  /** A TCP segment; false when it is a trailing packet that Zeek's duration leaves out. */
  private tcp(f: number, end: number, pkt: DecodedPacket, buf: Buffer, frameStart: number, len: number, ts: number): boolean {
    const e = f * 2 + end;
    const peer = f * 2 + (1 - end);
    const h = tcpHeaderAt(buf, pkt, frameStart);
    if (h < 0) return true;
    const flags = pkt.tcpFlags;
    const seq = u32be(buf, h + 4);
    const ack = u32be(buf, h + 8);
    const window = (buf[h + 14] << 8) | buf[h + 15];
    const syn = (flags & TCP_SYN) !== 0;
    const fin = (flags & TCP_FIN) !== 0;
    const rst = (flags & TCP_RST) !== 0;
    if (len < 0) len = 0;

    if (!this.seqKnown[e] || (syn && this.state[e] === INACTIVE)) {
      // Without a SYN the space starts one before the first byte, as though there had been one.
      this.seqStart[e] = syn ? seq : (seq - 1) >>> 0;
      this.seqKnown[e] = 1;
      this.seqEnd[e] = syn ? 0 : 1;
    }
    const rel = (seq - this.seqStart[e]) >>> 0;
    const alreadyClosed = this.state[e] === CLOSED && this.state[peer] === CLOSED;
    const isNewData = len > 0 && rel + len > this.seqEnd[e];

    // History (Zeek's update_history, then the scaled letters).
    const bits = (syn ? 1 : 0) + (fin ? 1 : 0) + (rst ? 1 : 0);
    if (bits > 1) {
      if (fin && rst)
        this.once(f, end, H_FIN_RST, 0x49); // I
      else this.once(f, end, H_MULTI, 0x51); // Q
    } else if (bits === 1) {
      if (syn) {
        const code = flags & TCP_ACK ? 0x48 : 0x53; // H, S
        if (this.once(f, end, H_SYN, code) && rel !== this.lastSyn[e]) this.addHistory(f, end === 0 ? code : code + 32);
        this.lastSyn[e] = rel;
      }
      if (fin) {
        const finSeq = rel + len;
        if (this.once(f, end, H_FIN, 0x46) && finSeq !== this.lastFin[e]) this.addHistory(f, end === 0 ? 0x46 : 0x66);
        this.lastFin[e] = finSeq;
      }
      if (rst) {
        if (this.once(f, end, H_RST, 0x52) && rel !== this.lastRst[e]) this.addHistory(f, end === 0 ? 0x52 : 0x72);
        this.lastRst[e] = rel;
      }
    } else if (len > 0)
      this.once(f, end, H_DATA, 0x44); // D
    else if (flags & TCP_ACK) this.once(f, end, H_ACK, 0x41); // A
    if (len > 0 && !syn) {
      if (rel + len <= this.seqEnd[e]) this.scaled(f, end, this.retransmits, 0x54); // T (also a segment that arrives late)
      if (rel > this.seqEnd[e] && this.seqEnd[e] > 0) {
        // A hole: a gap only once the peer acknowledges past it unseen (Zeek's reassembler), as
        // segments that arrive out of order fill it. One hole is held; a second declares the first.
        if (this.holeEnd[e] > this.holeStart[e]) this.declareGap(f, end, this.holeEnd[e]);
        this.holeStart[e] = this.seqEnd[e];
        this.holeEnd[e] = rel;
      } else if (rel < this.holeEnd[e] && rel + len > this.holeStart[e]) {
        // Fills the hole's front (or all of it); data inside it leaves only its front open.
        if (rel <= this.holeStart[e]) this.holeStart[e] = Math.min(this.holeEnd[e], rel + len);
        else this.holeEnd[e] = rel;
      }
    }
    if (window === 0 && !syn && !fin && !rst) this.scaled(f, end, this.zeroWindows, 0x57); // W

    // Sequence space: SYN and FIN take one number each.
    const segEnd = rel + len + (syn ? 1 : 0) + (fin ? 1 : 0);
    if (segEnd > this.seqEnd[e] && segEnd < 0x80000000) this.seqEnd[e] = segEnd;
    if (fin) this.finSeen[e] = 1;
    if (flags & TCP_ACK && this.seqKnown[peer]) {
      const acked = (ack - this.seqStart[peer]) >>> 0;
      if (acked > this.ackedEnd[peer] && acked < 0x80000000) this.ackedEnd[peer] = acked;
      if (acked > this.holeStart[peer] && this.holeEnd[peer] > this.holeStart[peer] && acked < 0x80000000) this.declareGap(f, 1 - end, acked);
    }

    const before = this.state[e];
    this.transition(e, peer, end === 0, flags, len);
    this.timers(f, e, peer, end === 0, before, syn, ts);
    // Zeek's duration ends at the last packet that carried something: not at the ACKs (nor a RST,
    // FIN or SYN without new data) after both ends closed.
    return !alreadyClosed || isNewData;
  }

  /** The peer acknowledged the held hole of `end` up to `upTo` unseen: those bytes are missed, a content gap (G). */
  private declareGap(f: number, end: number, upTo: number): void {
    const e = f * 2 + end;
    const to = Math.min(upTo, this.holeEnd[e]);
    this.missed[e] += to - this.holeStart[e];
    this.scaled(f, end, this.gaps, 0x47); // G
    this.holeStart[e] = to;
    if (to >= this.holeEnd[e]) this.holeStart[e] = this.holeEnd[e] = 0;
  }

  /**
   * Zeek's timers that end the connection (TCPSessionAdapter): the attempt timer at the
   * originator's first SYN; at an endpoint's first close, a complete close (a RST, or the peer
   * closed or silent) ends the connection CLOSE_DELAY_US after it, cancelling the attempt timer.
   */
  private timers(f: number, e: number, peer: number, isOrig: boolean, before: number, syn: boolean, ts: number): void {
    const state = this.state[e];
    if (isOrig && syn && before === INACTIVE && this.attemptAt[f] === 0 && this.deleteAt[f] === 0) this.attemptAt[f] = ts + ATTEMPT_DELAY_US;
    if ((state === CLOSED || state === RESET) && !this.didClose[e]) {
      this.didClose[e] = 1;
      if (state === RESET || this.didClose[peer] || this.state[peer] === INACTIVE) {
        this.attemptAt[f] = 0;
        this.deleteAt[f] = ts + CLOSE_DELAY_US;
      }
    }
  }

  /** Zeek's TCP endpoint state machine, reduced to the states conn_state reads. */
  private transition(e: number, peer: number, isOrig: boolean, flags: number, len: number): void {
    const syn = (flags & TCP_SYN) !== 0;
    const fin = (flags & TCP_FIN) !== 0;
    const rst = (flags & TCP_RST) !== 0;
    const ackFlag = (flags & TCP_ACK) !== 0;
    switch (this.state[e]) {
      case INACTIVE:
        if (syn) this.state[e] = isOrig && !ackFlag ? SYN_SENT : SYN_ACK_SENT;
        if (rst) this.state[e] = RESET;
        else if (fin) this.state[e] = CLOSED;
        else if (!syn) this.state[e] = PARTIAL;
        return;
      case SYN_SENT:
      case SYN_ACK_SENT:
        if (fin) this.state[e] = CLOSED;
        else if (rst) this.state[e] = RESET;
        else if (ackFlag && !syn && this.state[peer] !== INACTIVE && this.state[peer] !== CLOSED && this.state[peer] !== RESET) {
          this.state[e] = ESTABLISHED;
          // A peer that only sent ACKs and data so far (a capture that began at the SYN-ACK) is established with it.
          if (this.state[peer] === SYN_ACK_SENT || this.state[peer] === SYN_SENT || this.state[peer] === PARTIAL) this.state[peer] = ESTABLISHED;
        }
        return;
      case PARTIAL:
      case ESTABLISHED:
        if (syn && this.state[e] === PARTIAL && this.state[peer] === INACTIVE && !ackFlag) this.state[e] = SYN_SENT;
        if (rst) this.state[e] = RESET;
        else if (fin) this.state[e] = CLOSED;
        else if (this.state[e] === PARTIAL && (len > 0 || ackFlag) && this.state[peer] === ESTABLISHED) this.state[e] = ESTABLISHED;
        return;
      case CLOSED:
        // Zeek's UpdateClosedState: a RST after both ends closed (a FIN exchange) leaves the states.
        if (rst && this.state[peer] !== CLOSED) this.state[e] = RESET;
        return;
      default:
        return;
    }
  }

  /** Flow f came through the tunnel whose carrier flow has this id (kept once, the first few). */
  addParent(f: number, idHi: number, idLo: number): void {
    const n = this.parentCount[f];
    const at = f * MAX_TUNNEL_PARENTS * 2;
    for (let i = 0; i < n; i++) if (this.parentIds[at + i * 2] === idHi && this.parentIds[at + i * 2 + 1] === idLo) return;
    if (n >= MAX_TUNNEL_PARENTS) return;
    this.parentIds[at + n * 2] = idHi;
    this.parentIds[at + n * 2 + 1] = idLo;
    this.parentCount[f] = n + 1;
  }

  /** The carriers' flow ids, comma-separated ('' for a flow not in a tunnel over UDP). */
  tunnelParentsOf(f: number): string {
    let out = '';
    const at = f * MAX_TUNNEL_PARENTS * 2;
    for (let i = 0; i < this.parentCount[f]; i++) {
      const id = hex8(this.parentIds[at + i * 2]) + hex8(this.parentIds[at + i * 2 + 1]);
      out = out === '' ? id : `${out},${id}`;
    }
    return out;
  }

  /** Records a once-per-direction letter; true when it had been recorded before. */
  private once(f: number, end: number, bit: number, upper: number): boolean {
    const mask = bit << (end * 8);
    if (this.historyOnce[f] & mask) return true;
    this.historyOnce[f] |= mask;
    this.addHistory(f, end === 0 ? upper : upper + 32);
    return false;
  }

  /** Counts an event and records its letter at the 1st, 10th, 100th... occurrence. */
  private scaled(f: number, end: number, counts: Uint32Array, upper: number): void {
    const n = ++counts[f * 2 + end];
    for (let t = 1; t <= n; t *= 10) {
      if (t === n) {
        this.addHistory(f, end === 0 ? upper : upper + 32);
        return;
      }
    }
  }

  private addHistory(f: number, code: number): void {
    const n = this.historyLen[f];
    if (n >= HISTORY_MAX) return;
    this.history[f * HISTORY_MAX + n] = code;
    this.historyLen[f] = n + 1;
  }

  historyOf(f: number): string {
    // One character at a time: String.fromCharCode(...codes) builds an argument list from an
    // iterator, ~8x slower for these few letters, once per flow record.
    const n = this.historyLen[f];
    const at = f * HISTORY_MAX;
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.history[at + i]);
    return s;
  }

  /** The flow record's Zeek fields as of now (those of its current Zeek connection). */
  fields(f: number, proto: number): ZeekFields {
    // Named one by one: an object rest and spread here cost more than the rest of the record (a
    // record per flow segment: 310,000 in the benchmark import).
    const c = this.connection(f, proto);
    return {
      communityId: this.communityId[f] ?? '',
      originator: c.originator,
      connState: c.connState,
      history: c.history,
      clientPayloadBytes: c.clientPayloadBytes,
      serverPayloadBytes: c.serverPayloadBytes,
      clientIpBytes: c.clientIpBytes,
      serverIpBytes: c.serverIpBytes,
      missedBytes: c.missedBytes,
      zeekDuration: c.zeekDuration,
      icmpType: this.icmpType[f],
      icmpCode: this.icmpCode[f],
      tunnelParents: this.tunnelParentsOf(f),
      zeekSplits: this.splitsOf(f, proto),
    };
  }

  /** zeekSplits: '' for a flow that is one Zeek connection, else JSON (ZeekSplits). Built per record, never per packet. */
  splitsOf(f: number, proto: number): string {
    const splits = this.splits[f];
    if (!splits) return '';
    splits.current = this.connection(f, proto);
    return JSON.stringify(splits);
  }

  /** The current Zeek connection of flow f, as a row of zeekSplits. */
  private connection(f: number, proto: number): ZeekSplit {
    const o = f * 2;
    const clientEnd = this.origIsClient[f] === 1 ? 0 : 1;
    return {
      ts: this.startTime[f],
      originator: clientEnd === 0 ? 'client' : 'server',
      connState: this.connState(f, proto),
      history: this.historyOf(f),
      clientPackets: this.packets[o + clientEnd],
      serverPackets: this.packets[o + 1 - clientEnd],
      clientPayloadBytes: this.payloadBytes(f, clientEnd, proto),
      serverPayloadBytes: this.payloadBytes(f, 1 - clientEnd, proto),
      clientIpBytes: this.ipBytes[o + clientEnd],
      serverIpBytes: this.ipBytes[o + 1 - clientEnd],
      missedBytes: this.missed[o] + this.missed[o + 1],
      zeekDuration: Math.max(0, this.lastTime[f] - this.startTime[f]),
    };
  }

  /** Zeek's conn_state (conn.zeek) for flow f of IP protocol `proto`. */
  connState(f: number, proto: number): string {
    const o = f * 2;
    const r = o + 1;
    if (proto === IPPROTO_TCP) {
      const os = this.state[o];
      const rs = this.state[r];
      const oInactive = os === INACTIVE || os === PARTIAL;
      const rInactive = rs === INACTIVE || rs === PARTIAL;
      if (rs === RESET) {
        if (os === SYN_SENT || os === SYN_ACK_SENT || (os === RESET && this.payloadBytes(f, 0, proto) === 0 && this.payloadBytes(f, 1, proto) === 0))
          return 'REJ';
        return oInactive ? 'RSTRH' : 'RSTR';
      }
      if (os === RESET) {
        if (rInactive) return /^\^?S[^HAFGIQ]*R/.test(this.historyOf(f)) ? 'RSTOS0' : 'OTH';
        return 'RSTO';
      }
      if (rs === CLOSED && os === CLOSED) return 'SF';
      if (os === CLOSED) return rInactive ? 'SH' : 'S2';
      if (rs === CLOSED) return oInactive ? 'SHR' : 'S3';
      if (os === SYN_SENT && rs === INACTIVE) return 'S0';
      if (os === ESTABLISHED && rs === ESTABLISHED) return 'S1';
      return 'OTH';
    }
    if (proto === IPPROTO_UDP) {
      const oActive = this.packets[o] > 0;
      const rActive = this.packets[r] > 0;
      if (oActive) return rActive ? 'SF' : 'S0';
      return rActive ? 'SHR' : 'OTH';
    }
    return 'OTH';
  }

  /**
   * Payload bytes an end sent (end 0 originator, 1 responder). TCP's come from its sequence numbers
   * (the highest sent or acknowledged, less the SYN and FIN), so bytes never captured are included.
   */
  payloadBytes(f: number, end: number, proto: number): number {
    const e = f * 2 + end;
    if (proto !== IPPROTO_TCP) return this.payload[e];
    if (!this.seqKnown[e]) return 0;
    let size = this.ackedEnd[e] > this.seqEnd[e] && this.state[e] !== RESET ? this.ackedEnd[e] : this.seqEnd[e];
    if (size > 0) size--; // the SYN (or the one assumed before a flow picked up mid-stream)
    if (this.finSeen[e] && size > 0) size--;
    return size;
  }
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** Whether the packet goes to a broadcast or multicast address (IPv4 224/4 and 255.255.255.255, IPv6 ff00::/8). */
function groupAddressed(pkt: DecodedPacket): boolean {
  const w = pkt.dst[0];
  return pkt.ipVersion === 4 ? w >>> 28 === 0xe || w === 0xffffffff : w >>> 24 === 0xff;
}

/** The packet's source words then its destination words (0..3, 4..7), for the Community ID. */
const pairWords = new Uint32Array(8);
function concatWords(pkt: DecodedPacket): Uint32Array {
  pairWords.set(pkt.src, 0);
  pairWords.set(pkt.dst, 4);
  return pairWords;
}
