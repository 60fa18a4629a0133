// Multicast DNS (RFC 6762): DNS messages on UDP port 5353; the name is a question's, or for an
// announcement (answers, no question) the first answer's. A query is followed like DNS's (see
// inspectDnsLike) so that the name is the one of the last message looked at, as nDPI reports it.
import { inspectDnsLike } from './dns.js';
import { NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.serverPort !== 5353 && ctx.clientPort !== 5353) return NO;
  return inspectDnsLike(ctx, buf, off, len);
}

export const mdns: Dissector = { app: 'MDNS', transports: TRANSPORT_UDP, ports: [5353], inspect };
