// FTP control connection (RFC 959): the server greets "220 ... FTP" (nDPI: FTP_CONTROL); clients
// send USER/AUTH/FEAT first. The greeting is also used by SMTP, so the text or the port decides.
import { lineEnd, startsWith, startsWithUpper } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (!ctx.fromClient && (startsWith(buf, off, len, '220 ') || startsWith(buf, off, len, '220-'))) {
    const le = lineEnd(buf, off, Math.min(off + len, off + 512));
    const line = le > 0 ? buf.toString('latin1', off, le).toUpperCase() : '';
    if (line.includes('SMTP')) return NO;
    if (line.includes('FTP') || ctx.serverPort === 21) return MATCH;
    return MORE;
  }
  if (ctx.fromClient && (startsWithUpper(buf, off, len, 'USER ') || startsWithUpper(buf, off, len, 'AUTH TLS') || startsWithUpper(buf, off, len, 'FEAT'))) {
    return ctx.serverPort === 21 ? MATCH : MORE;
  }
  return ctx.dirPackets >= 2 ? NO : MORE;
}

export const ftp: Dissector = { app: 'FTP_CONTROL', transports: TRANSPORT_TCP, ports: [21], inspect };
