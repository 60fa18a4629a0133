// IPsec key exchange and NAT traversal: IKE (ISAKMP, RFC 2408 / IKEv2, RFC 7296) on UDP 500 and,
// after the 4-byte zero non-ESP marker, on UDP 4500 (RFC 3948), where the other datagrams are
// ESP-in-UDP (a 4-byte SPI and a 4-byte sequence number) or the one-byte 0xff NAT-keepalive. nDPI
// calls all of it IPSec, and so does a TCP flow on 500/4500 by port (nmap's SYNs in synscan.pcap).
//
// The 28-byte IKE header is checked: a non-zero initiator SPI; version 0x10 or 0x20; an exchange
// type of that version; a responder SPI of zero only in an exchange that opens an SA; the message
// ID of IKE_SA_INIT (and of IKEv1 phase 1) zero; and a length equal to the datagram's, which is the
// strongest part (4 bytes). Off 500/4500 the flags and the next payload type must be valid as well
// (the corpus has IKE on 500/4500 with a damaged next payload or flags byte that nDPI still calls
// IPSec; elsewhere the header must be clean). An ESP datagram alone says little (8 opaque bytes):
// on port 4500 the flow is IPSec when a second datagram of the same direction carries the same SPI
// and a sequence number a little higher. IKE over TCP (RFC 8229) opens with "IKETCP".
import { startsWith, u32 } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_BOTH, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const IKE_PORT = 500;
const NAT_T_PORT = 4500;
const HEADER = 28;

/*
 * The dissector's state (ctx.state()): the last ESP datagram per direction of a flow on 4500,
 * [spi, seq] client, [spi, seq] server (seq 0: none yet); only flows on 4500 that pass the ESP
 * checks get one.
 */

/** Whether buf[o, o+len) is one IKE message; `clean` also asks for valid flags and next payload. */
function isIke(buf: Buffer, o: number, len: number, clean: boolean): boolean {
  if (len < HEADER) return false;
  const version = buf[o + 17];
  if (version !== 0x10 && version !== 0x20) return false;
  // The length, 4 bytes big-endian, covers the whole message, header included.
  if (buf[o + 24] !== 0 || buf[o + 25] !== 0 || ((buf[o + 26] << 8) | buf[o + 27]) !== len) return false;
  if ((buf[o] | buf[o + 1] | buf[o + 2] | buf[o + 3] | buf[o + 4] | buf[o + 5] | buf[o + 6] | buf[o + 7]) === 0) return false;
  const exchange = buf[o + 18];
  const responderZero = (buf[o + 8] | buf[o + 9] | buf[o + 10] | buf[o + 11] | buf[o + 12] | buf[o + 13] | buf[o + 14] | buf[o + 15]) === 0;
  const messageIdZero = (buf[o + 20] | buf[o + 21] | buf[o + 22] | buf[o + 23]) === 0;
  const next = buf[o + 16];
  const flags = buf[o + 19];
  if (version === 0x10) {
    // IKEv1: Base 1, Identity Protection (Main Mode) 2, Authentication Only 3, Aggressive 4,
    // Informational 5, Transaction (Mode Config / XAUTH) 6, Quick Mode 32, New Group Mode 33.
    if (!((exchange >= 1 && exchange <= 6) || exchange === 32 || exchange === 33)) return false;
    // Phase 1 runs before the responder has an SPI, with message ID 0.
    const phase1 = exchange === 1 || exchange === 2 || exchange === 4;
    if (responderZero && !phase1 && exchange !== 5) return false;
    if (phase1 && !messageIdZero) return false;
    // Flags: Encryption, Commit, Authentication Only. Payload types 0..20 (20: NAT-D), 128+ private.
    if (clean && ((flags & 0xf8) !== 0 || (next > 20 && next < 128))) return false;
    return true;
  }
  // IKEv2: IKE_SA_INIT 34, IKE_AUTH 35, CREATE_CHILD_SA 36, INFORMATIONAL 37, IKE_SESSION_RESUME 38,
  // IKE_INTERMEDIATE 43, IKE_FOLLOWUP_KE 44.
  if (!((exchange >= 34 && exchange <= 38) || exchange === 43 || exchange === 44)) return false;
  // Only IKE_SA_INIT (a request, or a response asking for a cookie or another group) has no
  // responder SPI; it is the exchange with message ID 0.
  if (responderZero && exchange !== 34) return false;
  if (exchange === 34 && !messageIdZero) return false;
  // Flags: Initiator, Version, Response. Payload types 33..54, 0 none, 128+ private.
  if (clean && ((flags & 0xc7) !== 0 || (next !== 0 && (next < 33 || next > 54) && next < 128))) return false;
  return true;
}

function inspectTcp(buf: Buffer, off: number, len: number): Verdict {
  // RFC 8229: the initiator's stream starts with "IKETCP", then length-framed IKE or ESP.
  return startsWith(buf, off, len, 'IKETCP') ? MATCH : NO;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.transport === TRANSPORT_TCP) return inspectTcp(buf, off, len);
  const natT = ctx.serverPort === NAT_T_PORT || ctx.clientPort === NAT_T_PORT;
  const onPort = natT || ctx.serverPort === IKE_PORT || ctx.clientPort === IKE_PORT;
  // IKE straight in the datagram (port 500, or IKE on some other port).
  if (isIke(buf, off, len, !onPort)) return MATCH;
  // IKE after the non-ESP marker (RFC 3948: NAT-T on 4500, or on a port of the NAT's choice).
  if (len >= 4 + HEADER && (buf[off] | buf[off + 1] | buf[off + 2] | buf[off + 3]) === 0) {
    return isIke(buf, off + 4, len - 4, !onPort) ? MATCH : natT ? MORE : NO;
  }
  if (!natT) return NO;
  // NAT-keepalive: one 0xff byte, nothing to tell yet.
  if (len === 1 && buf[off] === 0xff) return MORE;
  return inspectEsp(ctx, buf, off, len);
}

/** ESP-in-UDP on 4500: SPI (1..255 reserved), sequence number from 1, then at least an IV or a tag. */
function inspectEsp(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (len < 16) return NO;
  const spi = u32(buf, off);
  const seq = u32(buf, off + 4);
  if (spi < 256 || seq === 0) return NO;
  let st = ctx.state() as Uint32Array | null;
  if (st === null) {
    st = new Uint32Array(4);
    ctx.setState(st);
  }
  const i = ctx.fromClient ? 0 : 2;
  if (st[i + 1] !== 0) {
    if (st[i] !== spi) return NO;
    // The same SA a little further on (a datagram or a few lost, or one reordered: look again).
    const step = seq - st[i + 1];
    if (step > 0 && step <= 64) return MATCH;
    if (step < -64 || step > 64) return NO;
  }
  st[i] = spi;
  st[i + 1] = seq;
  return MORE;
}

export const ipsec: Dissector = { app: 'IPSec', transports: TRANSPORT_BOTH, ports: [IKE_PORT, NAT_T_PORT], inspect };
