// IMAP (RFC 9051): the server greets "* OK ... IMAP..." (or "* PREAUTH"), the client sends tagged
// commands ("a1 CAPABILITY", "a1 LOGIN"). A STARTTLS upgrade makes it IMAPS, as nDPI names it.
import { lineEnd, startsWith, startsWithUpper } from '../bytes.js';
import { RISK_CLEAR_TEXT_CREDENTIALS } from '../risks.js';
import { followMail } from './mail.js';
import { FOLLOW, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const COMMANDS = ['CAPABILITY', 'LOGIN ', 'AUTHENTICATE ', 'STARTTLS', 'NOOP', 'ID '];

/** Whether buf[off..] is a tagged command, and which (an index into COMMANDS, -1 when not). */
function taggedCommand(buf: Buffer, off: number, len: number): number {
  // A tag is a short run of letters and digits, then a space and a known command.
  let i = 0;
  while (
    i < len &&
    i < 16 &&
    ((buf[off + i] >= 0x30 && buf[off + i] <= 0x39) || ((buf[off + i] | 0x20) >= 0x61 && (buf[off + i] | 0x20) <= 0x7a) || buf[off + i] === 0x2e)
  )
    i++;
  if (i === 0 || i >= len || buf[off + i] !== 0x20) return -1;
  for (let c = 0; c < COMMANDS.length; c++) if (startsWithUpper(buf, off + i + 1, len - i - 1, COMMANDS[c])) return c;
  return -1;
}

const LOGIN = COMMANDS.indexOf('LOGIN ');

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const command = ctx.fromClient ? taggedCommand(buf, off, len) : -1;
  // LOGIN carries the password in clear (before any STARTTLS: once it was seen, TLS follows).
  if (command === LOGIN && !(ctx.hasExtra() && ctx.extra().info?.imap === 2)) ctx.extra().risks |= RISK_CLEAR_TEXT_CREDENTIALS;
  const followed = followMail(ctx, buf, off, len, 'imap', 'STARTTLS', 'IMAPS');
  if (followed !== null) return followed;
  let yes = false;
  if (!ctx.fromClient && (startsWith(buf, off, len, '* OK') || startsWith(buf, off, len, '* PREAUTH'))) {
    const le = lineEnd(buf, off, Math.min(off + len, off + 512));
    yes = ctx.serverPort === 143 || (le > 0 && buf.toString('latin1', off, le).toUpperCase().includes('IMAP'));
  } else if (command >= 0) yes = true;
  if (!yes) return ctx.dirPackets >= 2 ? NO : MORE;
  ctx.extra().info = { imap: 1 };
  return FOLLOW;
}

export const imap: Dissector = { app: 'IMAP', transports: TRANSPORT_TCP, ports: [143], inspect };
