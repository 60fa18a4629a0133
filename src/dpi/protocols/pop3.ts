// POP3 (RFC 1939): the server greets "+OK", the client sends USER/APOP/CAPA/AUTH/STLS.
// An STLS upgrade makes it POPS, as nDPI names it.
import { startsWith, startsWithUpper } from '../bytes.js';
import { RISK_CLEAR_TEXT_CREDENTIALS } from '../risks.js';
import { followMail } from './mail.js';
import { FOLLOW, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const COMMANDS = ['USER ', 'APOP ', 'CAPA', 'AUTH', 'STLS'];

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  // A password in clear: PASS after USER, or APOP's digest (replayable).
  if (
    ctx.fromClient &&
    (startsWithUpper(buf, off, len, 'PASS ') || startsWithUpper(buf, off, len, 'APOP ')) &&
    ctx.hasExtra() &&
    ctx.extra().info?.pop3 === 1
  ) {
    ctx.extra().risks |= RISK_CLEAR_TEXT_CREDENTIALS;
  }
  const followed = followMail(ctx, buf, off, len, 'pop3', 'STLS', 'POPS');
  if (followed !== null) return followed;
  let yes = false;
  if (!ctx.fromClient && startsWith(buf, off, len, '+OK') && (ctx.serverPort === 110 || len < 512)) {
    // "+OK" alone is thin; on another port ask for the client's command too.
    if (ctx.serverPort !== 110) return MORE;
    yes = true;
  } else if (ctx.fromClient) {
    for (const c of COMMANDS) if (startsWithUpper(buf, off, len, c)) yes = true;
  }
  if (!yes) return ctx.dirPackets >= 2 ? NO : MORE;
  ctx.extra().info = { pop3: 1 };
  return FOLLOW;
}

export const pop3: Dissector = { app: 'POP3', transports: TRANSPORT_TCP, ports: [110], inspect };
