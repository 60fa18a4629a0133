// STUN (RFC 5389/8489, and classic RFC 3489): a 20-byte header, message type with the top two bits
// zero, a length that is a multiple of 4 matching the payload, the magic cookie 0x2112A442 (or,
// in classic STUN, a known message type). Over TCP the same message, possibly after a 2-byte frame length.
import { ascii } from '../bytes.js';
import { MATCH, NO, TRANSPORT_BOTH, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const CLASSIC_TYPES = new Set([0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112]);

function isStun(buf: Buffer, off: number, len: number): boolean {
  if (len < 20 || (buf[off] & 0xc0) !== 0) return false;
  const type = (buf[off] << 8) | buf[off + 1];
  const mlen = (buf[off + 2] << 8) | buf[off + 3];
  if ((mlen & 3) !== 0 || mlen + 20 > len) return false;
  const cookie = buf[off + 4] === 0x21 && buf[off + 5] === 0x12 && buf[off + 6] === 0xa4 && buf[off + 7] === 0x42;
  // Trailing bytes after the message are allowed only with the cookie (some stacks pad datagrams).
  if (cookie) return true;
  return CLASSIC_TYPES.has(type) && mlen + 20 === len;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  let ok = isStun(buf, off, len);
  if (!ok && ctx.transport === TRANSPORT_TCP && len >= 22 && ((buf[off] << 8) | buf[off + 1]) === len - 2) {
    ok = isStun(buf, off + 2, len - 2);
    if (ok) {
      off += 2;
      len -= 2;
    }
  }
  if (!ok) return NO;
  // SOFTWARE (0x8022) attribute: the implementation, worth keeping.
  const end = off + 20 + ((buf[off + 2] << 8) | buf[off + 3]);
  for (let p = off + 20, n = 0; p + 4 <= end && n < 32; n++) {
    const t = (buf[p] << 8) | buf[p + 1];
    const l = (buf[p + 2] << 8) | buf[p + 3];
    if (p + 4 + l > end) break;
    if (t === 0x8022) ctx.extra().info = { software: ascii(buf, p + 4, p + 4 + l) };
    p += 4 + ((l + 3) & ~3);
  }
  return MATCH;
}

export const stun: Dissector = { app: 'STUN', transports: TRANSPORT_BOTH, ports: [3478, 3479, 5349, 19302], inspect };
