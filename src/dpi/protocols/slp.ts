// SLP, the Service Location Protocol, on UDP and TCP port 427: version 1 (RFC 2165) and version 2
// (RFC 2608) headers, which every message in both directions starts with.
//   v2: version 2, function 1..11, 24-bit length, flags (only O, F, R of 16 bits may be set), 24-bit
//       next-extension offset (0, or inside the message past the header), XID, language tag length
//       (1..64) and the tag itself (RFC 1766: letters, digits, '-').
//   v1: version 1, function 1..10, 16-bit length, flags (the 3 reserved low bits zero), dialect 0,
//       a two-letter language code, a character encoding (an IANA MIBenum, 3..2999), XID.
// The message length must equal the payload on UDP (one message per datagram) and cover at least
// the header on TCP (a message may span segments, or several share one). Off port 427 the header
// must be fully consistent, the length exactly the payload on TCP too: with the zero reserved bits
// and the textual language tag that leaves random bytes no real chance. On port 427 a first payload
// per direction that does not parse only defers (a capture starting mid-stream); a later one rules
// SLP out.
import { MATCH, MORE, NO, TRANSPORT_BOTH, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const PORT = 427;

const FUNCTIONS = [
  '',
  'SrvRqst',
  'SrvRply',
  'SrvReg',
  'SrvDeReg',
  'SrvAck',
  'AttrRqst',
  'AttrRply',
  'DAAdvert',
  'SrvTypeRqst',
  'SrvTypeRply',
  'SAAdvert',
] as const;

function isLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** Whether buf[off, off+len) is an SLPv2 header; `exact`: the length must be the payload's. */
function v2(buf: Buffer, off: number, len: number, exact: boolean): boolean {
  if (len < 16) return false;
  const fn = buf[off + 1];
  if (fn < 1 || fn > 11) return false;
  const mlen = (buf[off + 2] << 16) | (buf[off + 3] << 8) | buf[off + 4];
  if ((buf[off + 5] & 0x1f) !== 0 || buf[off + 6] !== 0) return false; // reserved flag bits
  const tagLen = (buf[off + 12] << 8) | buf[off + 13];
  const header = 14 + tagLen;
  if (tagLen < 1 || tagLen > 64 || header > len || mlen < header || (exact && mlen !== len)) return false;
  const next = (buf[off + 7] << 16) | (buf[off + 8] << 8) | buf[off + 9];
  if (next !== 0 && (next < header || next >= mlen)) return false;
  const t = off + 14;
  if (!isLetter(buf[t])) return false;
  for (let i = 1; i < tagLen; i++) {
    const c = buf[t + i];
    if (!isLetter(c) && c !== 0x2d && (c < 0x30 || c > 0x39)) return false;
  }
  return true;
}

/** Whether buf[off, off+len) is an SLPv1 header. */
function v1(buf: Buffer, off: number, len: number, exact: boolean): boolean {
  if (len < 12) return false;
  const fn = buf[off + 1];
  if (fn < 1 || fn > 10) return false;
  const mlen = (buf[off + 2] << 8) | buf[off + 3];
  if (exact ? mlen !== len : mlen < 12) return false;
  if ((buf[off + 4] & 0x07) !== 0 || buf[off + 5] !== 0) return false; // reserved flag bits, dialect
  if (!isLetter(buf[off + 6]) || !isLetter(buf[off + 7])) return false;
  const enc = (buf[off + 8] << 8) | buf[off + 9];
  return enc >= 3 && enc < 3000;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const onPort = ctx.serverPort === PORT || ctx.clientPort === PORT;
  const exact = ctx.transport === TRANSPORT_UDP || !onPort;
  const version = len > 0 ? buf[off] : 0;
  const ok = version === 2 ? v2(buf, off, len, exact) : version === 1 ? v1(buf, off, len, exact) : false;
  if (!ok) return onPort && ctx.dirPackets < 2 ? MORE : NO;
  ctx.extra().info = { version, function: FUNCTIONS[buf[off + 1]] };
  return MATCH;
}

export const slp: Dissector = { app: 'Service_Location_Protocol', transports: TRANSPORT_BOTH, ports: [PORT], inspect };
