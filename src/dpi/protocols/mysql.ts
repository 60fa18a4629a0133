// MySQL/MariaDB wire protocol: the server speaks first with its handshake (3-byte length, sequence
// 0, protocol version 10, a NUL-terminated version string such as "8.0.36" or "5.5.5-10.11-MariaDB").
import { ascii } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.fromClient) return ctx.dirPackets >= 2 ? NO : MORE;
  if (len < 10) return NO;
  const plen = buf[off] | (buf[off + 1] << 8) | (buf[off + 2] << 16);
  if (plen + 4 !== len || buf[off + 3] !== 0 || buf[off + 4] !== 10) return NO;
  // The version string: digits and dots first, NUL-terminated within the packet.
  const v = off + 5;
  if (buf[v] < 0x30 || buf[v] > 0x39) return NO;
  let e = v;
  while (e < off + len && e < v + 64 && buf[e] !== 0) e++;
  if (e >= off + len || buf[e] !== 0) return NO;
  ctx.extra().info = { serverVersion: ascii(buf, v, e) };
  return MATCH;
}

export const mysql: Dissector = { app: 'MySQL', transports: TRANSPORT_TCP, ports: [3306], inspect };
