// Redis (RESP): the client sends arrays of bulk strings ("*2\r\n$3\r\nGET\r\n..."), or inline
// commands ("PING\r\n"); the server answers with "+", "-", ":", "$" or "*" lines.
import { ascii, startsWithUpper } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const INLINE = ['PING\r\n', 'INFO\r\n', 'AUTH ', 'HELLO '];

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (!ctx.fromClient) return ctx.dirPackets >= 2 ? NO : MORE;
  if (len >= 8 && buf[off] === 0x2a) {
    // "*<n>\r\n$<m>\r\n<command>\r\n"
    let p = off + 1;
    while (p < off + len && p < off + 6 && buf[p] >= 0x30 && buf[p] <= 0x39) p++;
    if (p === off + 1 || buf[p] !== 0x0d || buf[p + 1] !== 0x0a || buf[p + 2] !== 0x24) return NO;
    let q = p + 3;
    let m = 0;
    while (q < off + len && q < p + 8 && buf[q] >= 0x30 && buf[q] <= 0x39) m = m * 10 + buf[q++] - 0x30;
    if (buf[q] !== 0x0d || buf[q + 1] !== 0x0a || m === 0 || m > 32 || q + 2 + m + 2 > off + len) return NO;
    if (buf[q + 2 + m] !== 0x0d) return NO;
    ctx.extra().info = { command: ascii(buf, q + 2, q + 2 + m).toUpperCase() };
    return MATCH;
  }
  if (ctx.serverPort === 6379) for (const c of INLINE) if (startsWithUpper(buf, off, len, c)) return MATCH;
  return NO;
}

export const redis: Dissector = { app: 'Redis', transports: TRANSPORT_TCP, ports: [6379], inspect };
