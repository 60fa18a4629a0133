// SSH (RFC 4253 §4.2): each side opens with a banner line "SSH-protoversion-softwareversion".
// Both banners go to the details; the flow is SSH from the first one. SSH carries no host name, so
// the server's banner (how the server names itself) is the flow's server name, as nDPI reports it.
import { ascii, startsWith } from '../bytes.js';
import { RISK_SSH_OBSOLETE_CLIENT, RISK_SSH_OBSOLETE_SERVER } from '../risks.js';
import { FOLLOW, MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function banner(buf: Buffer, off: number, end: number): string {
  let e = off;
  while (e < end && e < off + 255 && buf[e] !== 0x0d && buf[e] !== 0x0a) e++;
  return ascii(buf, off, e);
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const following = ctx.hasExtra() && ctx.extra().info !== null;
  if (!startsWith(buf, off, len, 'SSH-') || len < 8) {
    if (following) return MORE; // key exchange of the side that already sent its banner
    return ctx.dirPackets >= 2 ? NO : MORE;
  }
  const e = ctx.extra();
  const info = e.info ?? {};
  const line = banner(buf, off, off + len);
  info[ctx.fromClient ? 'clientBanner' : 'serverBanner'] = line;
  if (!ctx.fromClient) e.serverName = line;
  // Protocol 1.x (1.99 means 2.0 with 1.x fallback) is broken beyond repair.
  if (startsWith(buf, off, len, 'SSH-1.') && !startsWith(buf, off, len, 'SSH-1.99'))
    e.risks |= ctx.fromClient ? RISK_SSH_OBSOLETE_CLIENT : RISK_SSH_OBSOLETE_SERVER;
  e.info = info;
  // Wait for the other side's banner unless both are in.
  return info.clientBanner !== undefined && info.serverBanner !== undefined ? MATCH : FOLLOW;
}

export const ssh: Dissector = { app: 'SSH', transports: TRANSPORT_TCP, ports: [22, 2222], inspect };
