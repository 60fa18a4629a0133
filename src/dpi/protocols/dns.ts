// DNS over UDP and TCP (port 53; TCP messages carry a 2-byte length prefix). The query's name is
// the server name; its type and, once the response is seen, the response code go to the details.
import { dnsRcodeName, dnsTypeName, parseDns, type DnsMessage } from '../dns-message.js';
import { FOLLOW, MATCH, MORE, NO, TRANSPORT_BOTH, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

/** Records a parsed message in the flow: the name and type of the query, the response code. */
export function recordDns(ctx: DpiContext, msg: DnsMessage): void {
  const e = ctx.extra();
  // Names are case-insensitive: kept lower case, so that filters and group-bys find them as one.
  // The response's question wins over the query's (they differ only when one is damaged). An mDNS
  // announcement has no question: the name it announces (its first answer's) is the name.
  const name = msg.qname !== '' ? msg.qname : msg.aname;
  if ((e.serverName === '' || msg.response) && name !== '') e.serverName = name.toLowerCase();
  const info = e.info ?? {};
  if (msg.qdcount > 0 && info.qtype === undefined) info.qtype = dnsTypeName(msg.qtype);
  if (msg.response && info.rcode === undefined) info.rcode = dnsRcodeName(msg.rcode);
  e.info = info;
}

/** Generic inspection for DNS-format protocols: FOLLOW after a query (for the response), MATCH after a response. */
export function inspectDnsLike(ctx: DpiContext, buf: Buffer, off: number, len: number, following: boolean): Verdict {
  if (ctx.transport === TRANSPORT_TCP) {
    if (len < 14) return following || ctx.dirPackets < 2 ? MORE : NO;
    const mlen = (buf[off] << 8) | buf[off + 1];
    if (mlen < 12) return NO;
    off += 2;
    len = Math.min(len - 2, mlen);
  }
  const msg = parseDns(buf, off, len);
  if (msg === null) return following ? MORE : NO;
  recordDns(ctx, msg);
  return msg.response ? MATCH : FOLLOW;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  // DNS on port 53 only: the format is too loose to claim payloads of other ports.
  if (ctx.serverPort !== 53 && ctx.clientPort !== 53) return NO;
  return inspectDnsLike(ctx, buf, off, len, ctx.hasExtra() && ctx.extra().info?.qtype !== undefined);
}

export const dns: Dissector = { app: 'DNS', transports: TRANSPORT_BOTH, ports: [53], inspect };
