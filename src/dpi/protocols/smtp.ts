// SMTP (RFC 5321): the server greets with "220 ... SMTP" (or ESMTP), the client says EHLO/HELO.
// A STARTTLS upgrade makes it SMTPS, as nDPI names it.
import { isPrintable, lineEnd, startsWith, startsWithUpper } from '../bytes.js';
import { followMail } from './mail.js';
import { FOLLOW, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function hasWord(buf: Buffer, off: number, end: number, word: string): boolean {
  for (let i = off; i + word.length <= end; i++) if (startsWithUpper(buf, i, end - i, word)) return true;
  return false;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const followed = followMail(ctx, buf, off, len, 'smtp', 'STARTTLS', 'SMTPS');
  if (followed !== null) return followed;
  const end = off + len;
  const le = lineEnd(buf, off, Math.min(end, off + 512));
  if (le < 0 || !isPrintable(buf, off, le)) return ctx.dirPackets >= 2 ? NO : MORE;
  let yes = false;
  if (!ctx.fromClient && (startsWith(buf, off, len, '220 ') || startsWith(buf, off, len, '220-'))) {
    yes = hasWord(buf, off, le, 'SMTP') || hasWord(buf, off, le, 'MAIL') || ctx.serverPort === 25 || ctx.serverPort === 587;
    if (!yes && hasWord(buf, off, le, 'FTP')) return NO;
  } else if (ctx.fromClient && (startsWithUpper(buf, off, len, 'EHLO ') || startsWithUpper(buf, off, len, 'HELO '))) {
    yes = true;
  }
  if (!yes) return ctx.dirPackets >= 2 ? NO : MORE;
  const x = ctx.extra();
  x.info = { smtp: 1 };
  // The greeting starts with the server's host name ("220 mx.example.org ESMTP ...").
  if (!ctx.fromClient && x.serverName === '') {
    let n = off + 4;
    while (n < le && buf[n] !== 0x20) n++;
    x.serverName = buf.toString('latin1', off + 4, n).toLowerCase();
  }
  return FOLLOW;
}

export const smtp: Dissector = { app: 'SMTP', transports: TRANSPORT_TCP, ports: [25, 587, 2525], inspect };
