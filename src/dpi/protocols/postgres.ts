// PostgreSQL wire protocol: the client's StartupMessage (length, protocol 3.0, "user\0..."), or its
// SSLRequest / GSSENCRequest (length 8 with the magic codes 80877103 / 80877104).
import { ascii } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (!ctx.fromClient) return ctx.dirPackets >= 2 ? NO : MORE;
  if (len < 8) return NO;
  const mlen = buf.readUInt32BE(off);
  const code = buf.readUInt32BE(off + 4);
  if (mlen === 8 && len === 8 && (code === 80877103 || code === 80877104)) return MATCH;
  if (mlen === len && code === 0x00030000 && buf[off + len - 1] === 0) {
    // Parameters: name\0value\0 pairs; the user and database go to the details.
    const info: Record<string, string | number> = {};
    let p = off + 8;
    const end = off + len - 1;
    for (let n = 0; p < end && n < 16; n++) {
      let q = p;
      while (q < end && buf[q] !== 0) q++;
      let r = q + 1;
      while (r < end && buf[r] !== 0) r++;
      const k = ascii(buf, p, q);
      if (k === 'user' || k === 'database' || k === 'application_name') info[k] = ascii(buf, q + 1, r);
      p = r + 1;
    }
    ctx.extra().info = info;
    return MATCH;
  }
  // CancelRequest (16 bytes, code 80877102) also opens connections.
  return mlen === 16 && len === 16 && code === 80877102 ? MATCH : NO;
}

export const postgres: Dissector = { app: 'PostgreSQL', transports: TRANSPORT_TCP, ports: [5432], inspect };
