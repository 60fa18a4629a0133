// SSH (RFC 4253 §4.2): each side opens with a banner line "SSH-protoversion-softwareversion".
// Both banners go to the details; the flow is SSH from the first one. SSH carries no host name, so
// the server's banner (how the server names itself) is the flow's server name, as nDPI reports it.
// The flow is followed to both sides' KEXINIT: protocol 1 or an obsolete cipher offered (RC4, 3DES,
// Blowfish, CAST) is nDPI's "SSH Obsolete Cli/Ser Vers/Cipher".
import { ascii, startsWith } from '../bytes.js';
import { RISK_SSH_OBSOLETE_CLIENT, RISK_SSH_OBSOLETE_SERVER } from '../risks.js';
import { FOLLOW, MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function banner(buf: Buffer, off: number, end: number): string {
  let e = off;
  while (e < end && e < off + 255 && buf[e] !== 0x0d && buf[e] !== 0x0a) e++;
  return ascii(buf, off, e);
}

/** Ciphers nDPI calls obsolete (RC4, 3DES, Blowfish, CAST in CBC mode). */
const OBSOLETE_CIPHERS = new Set(['arcfour', 'arcfour128', 'arcfour256', '3des-cbc', 'blowfish-cbc', 'cast128-cbc']);
const SSH_MSG_KEXINIT = 20;
/** Bits of the dissector's state: what each side has sent so far. */
const CLIENT_BANNER = 1;
const SERVER_BANNER = 2;
const CLIENT_KEX = 4;
const SERVER_KEX = 8;
const ALL = 15;

/**
 * A KEXINIT packet at buf[p, end) (RFC 4253 §7.1: length, padding length, 20, cookie, name-lists):
 * true when it was one (read or cut short); sets the side's risk when the encryption algorithms it
 * offers in its own direction (client to server for the client) include an obsolete cipher.
 */
function kexinit(ctx: DpiContext, buf: Buffer, p: number, end: number): boolean {
  if (p + 6 > end || buf[p + 5] !== SSH_MSG_KEXINIT) return false;
  let q = p + 6 + 16; // cookie
  // kex_algorithms, server_host_key_algorithms, then encryption client-to-server, server-to-client.
  const wanted = ctx.fromClient ? 2 : 3;
  for (let i = 0; q + 4 <= end && i <= wanted; i++) {
    const n = buf.readUInt32BE(q);
    if (q + 4 + n > end) return true; // goes on in the next segment: not read
    if (i === wanted) {
      for (const c of buf.toString('latin1', q + 4, q + 4 + n).split(',')) {
        if (OBSOLETE_CIPHERS.has(c)) {
          ctx.extra().risks |= ctx.fromClient ? RISK_SSH_OBSOLETE_CLIENT : RISK_SSH_OBSOLETE_SERVER;
          break;
        }
      }
    }
    q += 4 + n;
  }
  return true;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const end = off + len;
  let seen = (ctx.state() as number | null) ?? 0;
  const kexBit = ctx.fromClient ? CLIENT_KEX : SERVER_KEX;
  if (!startsWith(buf, off, len, 'SSH-') || len < 8) {
    if (seen === 0) return ctx.dirPackets >= 2 ? NO : MORE;
    // The key exchange of a side that already sent its banner.
    if ((seen & kexBit) === 0 && kexinit(ctx, buf, off, end)) seen |= kexBit;
    ctx.setState(seen);
    return seen === ALL ? MATCH : MORE;
  }
  const e = ctx.extra();
  const info = e.info ?? {};
  const line = banner(buf, off, end);
  info[ctx.fromClient ? 'clientBanner' : 'serverBanner'] = line;
  // nDPI's server name is the first banner seen, whichever side sent it (its "client signature" is
  // the first, and a client often speaks before the server's banner arrives).
  if (e.serverName === '') e.serverName = line;
  // Protocol 1.x (1.99 means 2.0 with 1.x fallback) is broken beyond repair.
  if (startsWith(buf, off, len, 'SSH-1.') && !startsWith(buf, off, len, 'SSH-1.99'))
    e.risks |= ctx.fromClient ? RISK_SSH_OBSOLETE_CLIENT : RISK_SSH_OBSOLETE_SERVER;
  e.info = info;
  seen |= ctx.fromClient ? CLIENT_BANNER : SERVER_BANNER;
  // The KEXINIT often follows the banner in the same segment.
  let p = off + line.length;
  while (p < end && (buf[p] === 0x0d || buf[p] === 0x0a)) p++;
  if (p < end && kexinit(ctx, buf, p, end)) seen |= kexBit;
  ctx.setState(seen);
  // Named from the first banner; followed on for the other banner and both key exchanges.
  return seen === ALL ? MATCH : FOLLOW;
}

export const ssh: Dissector = { app: 'SSH', transports: TRANSPORT_TCP, ports: [22, 2222], inspect };
