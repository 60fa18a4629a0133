// Link-Local Multicast Name Resolution (RFC 4795): DNS format on UDP/TCP port 5355.
import { inspectDnsLike } from './dns.js';
import { NO, TRANSPORT_BOTH, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.serverPort !== 5355) return NO;
  return inspectDnsLike(ctx, buf, off, len);
}

export const llmnr: Dissector = { app: 'LLMNR', transports: TRANSPORT_BOTH, ports: [5355], inspect };
