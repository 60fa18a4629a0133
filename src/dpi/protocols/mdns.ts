// Multicast DNS (RFC 6762): DNS messages on UDP port 5353; the first question's name is the name,
// or for an announcement (answers, no question) the first answer's.
import { parseDns } from '../dns-message.js';
import { recordDns } from './dns.js';
import { MATCH, NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.serverPort !== 5353 && ctx.clientPort !== 5353) return NO;
  const msg = parseDns(buf, off, len);
  if (msg === null) return NO;
  recordDns(ctx, msg);
  return MATCH;
}

export const mdns: Dissector = { app: 'MDNS', transports: TRANSPORT_UDP, ports: [5353], inspect };
