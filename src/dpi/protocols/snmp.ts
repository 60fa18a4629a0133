// SNMP (RFC 3416) on UDP 161/162: a BER SEQUENCE holding the version (0 v1, 1 v2c, 3 v3) and, for
// v1/v2c, the community string, then a PDU with a context tag (0xa0..0xa8).
import { MATCH, NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

/** BER length at buf[p]: [length, next] or null. */
function berLen(buf: Buffer, p: number, end: number): [number, number] | null {
  if (p >= end) return null;
  const b = buf[p];
  if (b < 0x80) return [b, p + 1];
  const n = b & 0x7f;
  if (n === 0 || n > 3 || p + 1 + n > end) return null;
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + buf[p + 1 + i];
  return [v, p + 1 + n];
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const end = off + len;
  if (len < 10 || buf[off] !== 0x30) return NO;
  const seq = berLen(buf, off + 1, end);
  if (seq === null || seq[1] + seq[0] !== end) return NO; // one message per datagram
  let p = seq[1];
  if (buf[p] !== 0x02 || buf[p + 1] !== 1) return NO;
  const version = buf[p + 2];
  if (version !== 0 && version !== 1 && version !== 3) return NO;
  p += 3;
  if (version !== 3) {
    if (buf[p] !== 0x04) return NO;
    const c = berLen(buf, p + 1, end);
    if (c === null || c[1] + c[0] >= end) return NO;
    p = c[1] + c[0];
    const tag = buf[p];
    if (tag < 0xa0 || tag > 0xa8) return NO;
  } else if (buf[p] !== 0x30) return NO;
  ctx.extra().info = { version: version === 0 ? 'v1' : version === 1 ? 'v2c' : 'v3' };
  return MATCH;
}

export const snmp: Dissector = { app: 'SNMP', transports: TRANSPORT_UDP, ports: [161, 162], inspect };
