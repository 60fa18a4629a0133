// Microsoft SQL Server's TDS (Tabular Data Stream, [MS-TDS] §2.2.3.1): every message travels in
// packets with an 8-byte header: type, status, 2-byte big-endian length (header included), SPID,
// packet id and window (always 0). A connection opens with the client's PRELOGIN (0x12), answered
// by a tabular result (0x04) carrying the server's PRELOGIN options; older clients send LOGIN7
// (0x10) first. TLS, when negotiated, travels inside PRELOGIN packets (or, with TDS 8.0 strict
// encryption, starts directly on the port: the TLS dissector's then).
//
// An 8-byte header with a length matching the segment is a weak signature on its own (plenty of
// binary protocols start with a type and a 16-bit length), so:
// - on the server's well-known port (1433, and 1434 where nDPI also expects TDS over TCP) a valid
//   header decides: client packets of a client type, or the server's tabular result; the type
//   set, the status bits, the window and the length rule together reject most other payloads;
// - on any other port only a client PRELOGIN whose option table parses ([MS-TDS] §2.2.6.5: VERSION
//   first, 5-byte entries, offsets inside the packet, 0xff terminator), or a LOGIN7 whose own
//   length and TDS version agree, and then the server's answer with a valid 0x04 header.
import { u16 } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const SQL_BATCH = 0x01;
const PRE_TDS7_LOGIN = 0x02;
const RPC = 0x03;
const TABULAR_RESULT = 0x04;
const ATTENTION = 0x06;
const BULK_LOAD = 0x07;
const FEDAUTH_TOKEN = 0x08;
const TRANSACTION_MANAGER = 0x0e;
const LOGIN7 = 0x10;
const SSPI = 0x11;
const PRELOGIN = 0x12;

/**
 * Status bits: 0x01 end of message, 0x02 ignore, 0x04 event notification (seen from SQL clients
 * on RPC packets), 0x08 reset connection, 0x10 reset connection keeping the transaction.
 */
const STATUS_KNOWN = 0x1f;
const STATUS_EOM = 0x01;
/** The smallest packet size a client may negotiate. */
const MIN_PACKET_SIZE = 512;
const PRELOGIN_TERMINATOR = 0xff;
/** Bytes of LOGIN7 before its variable-length strings. */
const LOGIN7_FIXED = 94;
/** PRELOGIN option tokens 0x00 (VERSION) to 0x07 (NONCEOPT); later versions may add a few. */
const PRELOGIN_MAX_TOKEN = 0x0f;

/** Set on the flow after a client opener off the well-known ports, until the server answers. */
const AWAITING_RESPONSE = 'awaiting-response';

function isClientType(t: number): boolean {
  switch (t) {
    case SQL_BATCH:
    case PRE_TDS7_LOGIN:
    case RPC:
    case ATTENTION:
    case BULK_LOAD:
    case FEDAUTH_TOKEN:
    case TRANSACTION_MANAGER:
    case LOGIN7:
    case SSPI:
    case PRELOGIN:
      return true;
    default:
      return false;
  }
}

/**
 * Whether the segment holds valid TDS packet headers: a first packet whose length is the segment's
 * or runs past it (the message continues), or a few whole packets back to back.
 */
function validPackets(buf: Buffer, off: number, len: number, fromClient: boolean): boolean {
  const end = off + len;
  let p = off;
  for (let n = 0; n < 4; n++) {
    if (end - p < 8) return false;
    const type = buf[p];
    if (fromClient ? !isClientType(type) : type !== TABULAR_RESULT && type !== PRELOGIN) return false;
    if ((buf[p + 1] & ~STATUS_KNOWN) !== 0 || buf[p + 7] !== 0) return false;
    const plen = u16(buf, p + 2);
    // A packet that does not end its message is a full packet of the negotiated size, 512 at least
    // (this also tells TPKT, "03 00 len" with small lengths on ISO-on-TCP and RDP, from an RPC).
    if (plen < 8 || ((buf[p + 1] & STATUS_EOM) === 0 && plen < MIN_PACKET_SIZE)) return false;
    // A packet ending the segment ends the check; one running past it continues in the next
    // segment, so this one is full-sized.
    if (p + plen === end) return true;
    if (p + plen > end) return len >= MIN_PACKET_SIZE;
    // A following packet of the same message shares its type; a new message may follow an EOM.
    const eom = (buf[p + 1] & STATUS_EOM) !== 0;
    p += plen;
    if (end - p < 8 || (!eom && buf[p] !== type)) return false;
  }
  return true;
}

/** A PRELOGIN packet, the whole message in the whole segment, whose option table parses. */
function validPrelogin(buf: Buffer, off: number, len: number): boolean {
  if (len < 8 + 6 || buf[off] !== PRELOGIN || buf[off + 1] !== STATUS_EOM || buf[off + 7] !== 0) return false;
  if (u16(buf, off + 2) !== len) return false;
  const data = off + 8;
  const dataLen = len - 8;
  // VERSION (token 0, 6 bytes) comes first.
  if (buf[data] !== 0 || u16(buf, data + 3) !== 6) return false;
  let p = data;
  let prev = -1;
  for (let n = 0; n < 16; n++) {
    if (p >= off + len) return false;
    const token = buf[p];
    if (token === PRELOGIN_TERMINATOR) {
      // Option data starts after the table (right after the terminator, in practice).
      return u16(buf, data + 1) >= p + 1 - data;
    }
    if (p + 5 > off + len || token > PRELOGIN_MAX_TOKEN || token <= prev) return false;
    const o = u16(buf, p + 1);
    const l = u16(buf, p + 3);
    if (o + l > dataLen) return false;
    prev = token;
    p += 5;
  }
  return false;
}

/**
 * A LOGIN7 packet ([MS-TDS] §2.2.6.4): its own little-endian length agrees with the header's, its
 * TDS version is 7.0 to 7.4 or 8.0, and the variable part (host name first) starts after the
 * 94-byte fixed part.
 */
function validLogin7(buf: Buffer, off: number, len: number): boolean {
  if (len < 8 + LOGIN7_FIXED || buf[off] !== LOGIN7 || (buf[off + 1] & ~STATUS_KNOWN) !== 0 || buf[off + 7] !== 0) return false;
  const plen = u16(buf, off + 2);
  if (plen < len || (plen > len && len < MIN_PACKET_SIZE)) return false;
  const loginLen = buf.readUInt32LE(off + 8);
  if (loginLen + 8 < plen || loginLen > 0xffff) return false;
  // TDSVersion, little-endian: 0x70000000 (7.0) to 0x74000004 (7.4), or 0x08000000 (8.0).
  const major = buf[off + 15];
  if ((major < 0x70 || major > 0x74) && major !== 0x08) return false;
  const ibHostName = buf[off + 8 + 36] | (buf[off + 8 + 37] << 8);
  return ibHostName >= LOGIN7_FIXED && ibHostName <= loginLen;
}

function onWellKnownPort(ctx: DpiContext): boolean {
  return ctx.serverPort === 1433 || ctx.serverPort === 1434;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (onWellKnownPort(ctx)) {
    if (validPackets(buf, off, len, ctx.fromClient)) return MATCH;
    // A capture that starts in the middle of a long message: the other side's next packet decides.
    return ctx.dirPackets >= 2 ? NO : MORE;
  }
  const waiting = ctx.state() === AWAITING_RESPONSE;
  if (ctx.fromClient) {
    if (waiting) return MORE; // more of the client's opener before the server's answer
    const t = buf[off];
    if (len < 8 || (t !== PRELOGIN && t !== LOGIN7) || ctx.dirPackets > 1) return NO;
    if (!(t === PRELOGIN ? validPrelogin(buf, off, len) : validLogin7(buf, off, len))) return NO;
    ctx.setState(AWAITING_RESPONSE);
    return MORE;
  }
  if (!waiting) return NO;
  ctx.setState(null);
  return buf[off] === TABULAR_RESULT && validPackets(buf, off, len, false) ? MATCH : NO;
}

export const tds: Dissector = { app: 'MsSQL-TDS', transports: TRANSPORT_TCP, ports: [1433, 1434], inspect };
