// FTP control connection (RFC 959): the server greets "220 ... FTP" (nDPI: FTP_CONTROL); clients
// send USER/AUTH/FEAT first. The greeting is also used by SMTP, so the text or the port decides.
// Once named, the flow is followed to the client's PASS (a clear-text password) or AUTH TLS.
import { lineEnd, startsWith, startsWithUpper } from '../bytes.js';
import { RISK_CLEAR_TEXT_CREDENTIALS } from '../risks.js';
import { FOLLOW, MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const FOLLOWING = 'ftp-following';

function identified(ctx: DpiContext): Verdict {
  ctx.setState(FOLLOWING);
  return FOLLOW;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.state() === FOLLOWING) {
    if (!ctx.fromClient) return MORE;
    if (startsWithUpper(buf, off, len, 'PASS ')) {
      ctx.extra().risks |= RISK_CLEAR_TEXT_CREDENTIALS;
      return MATCH;
    }
    return startsWithUpper(buf, off, len, 'AUTH ') ? MATCH : MORE;
  }
  if (!ctx.fromClient && (startsWith(buf, off, len, '220 ') || startsWith(buf, off, len, '220-'))) {
    const le = lineEnd(buf, off, Math.min(off + len, off + 512));
    const line = le > 0 ? buf.toString('latin1', off, le).toUpperCase() : '';
    if (line.includes('SMTP')) return NO;
    if (line.includes('FTP') || ctx.serverPort === 21) return identified(ctx);
    return MORE;
  }
  if (ctx.fromClient && (startsWithUpper(buf, off, len, 'USER ') || startsWithUpper(buf, off, len, 'AUTH TLS') || startsWithUpper(buf, off, len, 'FEAT'))) {
    return ctx.serverPort === 21 ? identified(ctx) : MORE;
  }
  return ctx.dirPackets >= 2 ? NO : MORE;
}

export const ftp: Dissector = { app: 'FTP_CONTROL', transports: TRANSPORT_TCP, ports: [21], inspect };
