// OpenVPN's own protocol (OpenVPN 2.x reference manual, "Protocol" in its source: ssl_pkt.h,
// reliable.c) over UDP or over TCP, where each packet has a 2-byte length before it. A packet is
// opcode << 3 | key_id, then the sender's 8-byte session id; control packets go on with, under
// tls-auth, an HMAC (16 to 64 bytes), a packet id and a time; then the ACK array (a count, the acked
// message ids and the peer's session id) and the message id. Under tls-crypt the packet id and time
// come next in clear and the rest is encrypted. A session starts with a hard reset from each side
// (key id 0): HARD_RESET_CLIENT_V2/V3 (V1 in old versions), answered by HARD_RESET_SERVER_V2, which
// acks the client's reset and so carries the client's session id.
//
// Checked, as nDPI does: the first packet of each direction must be a hard reset with key id 0 (and
// under 1200 bytes: not a QUIC Initial), fitting one of the layouts (no tls-auth: empty ACK array
// and message id 0; tls-auth: packet id small, plausible time, then the same; tls-crypt: small
// packet id and plausible time); later packets must carry the same session id as their direction's
// first. The flow is OpenVPN when the server's reset echoes the client's session id in its ACK
// array; or when both directions sent two packets with consistent session ids (tls-crypt hides the
// ACK array); or when one direction alone sent four (a capture of one direction only). A client's
// hard reset alone is enough only on the well-known port 1194: a 1-byte opcode and 5 zero bytes
// (the common layout) are a weak signature for a dissector tried on every UDP payload.
import { u16, u32 } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_BOTH, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const OPENVPN_PORT = 1194;

const P_CONTROL_HARD_RESET_CLIENT_V1 = 1;
const P_CONTROL_HARD_RESET_SERVER_V1 = 2;
const P_CONTROL_HARD_RESET_CLIENT_V2 = 7;
const P_CONTROL_HARD_RESET_SERVER_V2 = 8;
const P_CONTROL_HARD_RESET_CLIENT_V3 = 10;
const P_CONTROL_WKC_V1 = 11;

/** Opcode, key id and session id. */
const MIN_PACKET = 9;
/** HMAC sizes of tls-auth: MD5, SHA-1, SHA-256, SHA-384, SHA-512. */
const HMAC_SIZES = [16, 20, 32, 48, 64] as const;
/** tls-crypt's HMAC-SHA256 tag, after its packet id and time. */
const TLS_CRYPT_TAG = 32;
/** Longest ACK array accepted (OpenVPN sends up to 4, at most 8 are defined). */
const MAX_ACKS = 8;

/*
 * The dissector's state (ctx.state()): session ids and packet counts per flow, [client id high,
 * low, server id high, low, client packets, server packets] (a count of 0: that direction has sent
 * nothing yet); only flows whose first packet passes as a hard reset get one.
 */

function isServerReset(op: number): boolean {
  return op === P_CONTROL_HARD_RESET_SERVER_V2 || op === P_CONTROL_HARD_RESET_SERVER_V1;
}

function isClientReset(op: number): boolean {
  return op === P_CONTROL_HARD_RESET_CLIENT_V2 || op === P_CONTROL_HARD_RESET_CLIENT_V3 || op === P_CONTROL_HARD_RESET_CLIENT_V1;
}

/** The time of a packet id (seconds since 1970): between 2004 and 2046. */
function plausibleTime(t: number): boolean {
  return t >= 0x40000000 && t < 0x90000000;
}

/** Whether an ACK array starting at p (its count) and the reset's message id 0 fit before end. */
function ackArrayFits(buf: Buffer, p: number, end: number): boolean {
  if (p >= end) return false;
  const n = buf[p];
  if (n > MAX_ACKS) return false;
  const messageId = p + 1 + 4 * n + (n > 0 ? 8 : 0);
  return messageId + 4 <= end && u32(buf, messageId) === 0;
}

/**
 * The layout of the hard reset buf[o, end): the position of its ACK array's count (no tls-auth, or
 * tls-auth with an HMAC of one of the sizes), -2 under tls-crypt (packet id and time in clear, the
 * ACK array encrypted), -1 when none fits.
 */
function resetLayout(buf: Buffer, o: number, end: number): number {
  if (ackArrayFits(buf, o + MIN_PACKET, end)) return o + MIN_PACKET;
  for (const h of HMAC_SIZES) {
    const q = o + MIN_PACKET + h;
    if (q + 9 > end) break;
    // A reset's packet id is 1 (2, 3... when resent).
    const pid = u32(buf, q);
    if (pid >= 1 && pid <= 16 && plausibleTime(u32(buf, q + 4)) && ackArrayFits(buf, q + 8, end)) return q + 8;
  }
  if (end - o >= MIN_PACKET + 8 + TLS_CRYPT_TAG + 5) {
    // tls-crypt-v2 clients set bits in the upper half of the packet id (0x0a010001 in the corpus).
    const pid = u32(buf, o + MIN_PACKET);
    if ((pid & 0xffff) >= 1 && (pid & 0xffff) <= 16 && pid < 0x10000000 && plausibleTime(u32(buf, o + MIN_PACKET + 4))) return -2;
  }
  return -1;
}

function sameId(buf: Buffer, p: number, st: Uint32Array, i: number): boolean {
  return u32(buf, p) === st[i] && u32(buf, p + 4) === st[i + 1];
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.transport === TRANSPORT_TCP) {
    if (len < 2 + MIN_PACKET + 5) return NO;
    const plen = u16(buf, off);
    // A direction's first segment holds its whole reset; a later one may end within its packet.
    if (plen < MIN_PACKET + 5 || (ctx.dirPackets === 1 && plen > len - 2)) return NO;
    off += 2;
    len = Math.min(plen, len - 2);
  }
  if (len < MIN_PACKET + 5) return NO;
  const b0 = buf[off];
  const op = b0 >> 3;
  // Key id 0 during the handshake; opcodes 1..11.
  if ((b0 & 7) !== 0 || op < 1 || op > P_CONTROL_WKC_V1) return NO;
  const dir = ctx.fromClient ? 0 : 2;
  const other = 2 - dir;
  const end = off + len;

  if (ctx.dirPackets === 1) {
    if (!isClientReset(op) && !isServerReset(op)) return NO;
    if (len >= 1200 && op !== P_CONTROL_HARD_RESET_CLIENT_V3) return NO; // V3 carries the client's wrapped key
    const acks = resetLayout(buf, off, end);
    if (acks === -1) return NO;
    if (ctx.fromClient && isClientReset(op) && ctx.serverPort === OPENVPN_PORT) return MATCH;
    let st = ctx.state() as Uint32Array | null;
    // The server's reset acks the client's: the client's session id after the acked message ids.
    if (st !== null && isServerReset(op) && st[4 + (other >> 1)] > 0 && acks >= 0 && buf[acks] > 0 && sameId(buf, acks + 1 + 4 * buf[acks], st, other))
      return MATCH;
    if (st === null) {
      st = new Uint32Array(6);
      ctx.setState(st);
    }
    st[dir] = u32(buf, off + 1);
    st[dir + 1] = u32(buf, off + 5);
    st[4 + (dir >> 1)] = 1;
    return MORE;
  }

  // Later packets: the direction's first was a hard reset (or this dissector would be out).
  const st = ctx.state() as Uint32Array | null;
  if (st === null || st[4 + (dir >> 1)] === 0) return NO;
  if (!sameId(buf, off + 1, st, dir)) return NO;
  const mine = ++st[4 + (dir >> 1)];
  const theirs = st[4 + (other >> 1)];
  if (isServerReset(op) && theirs > 0) {
    // A resent server reset may still ack the client's.
    const acks = resetLayout(buf, off, end);
    if (acks >= 0 && buf[acks] > 0 && sameId(buf, acks + 1 + 4 * buf[acks], st, other)) return MATCH;
  }
  if (mine >= 2 && theirs >= 2) return MATCH;
  if (mine >= 4 && theirs === 0) return MATCH;
  return MORE;
}

export const openvpn: Dissector = { app: 'OpenVPN', transports: TRANSPORT_BOTH, ports: [OPENVPN_PORT], inspect };
