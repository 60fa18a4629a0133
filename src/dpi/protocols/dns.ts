// DNS over UDP and TCP (port 53; TCP messages carry a 2-byte length prefix). The query's name is
// the server name; its type and, once the response is seen, the response code go to the details.
import { dnsRcodeName, dnsTypeName, parseDns, type DnsMessage } from '../dns-message.js';
import { FOLLOW, MATCH, MORE, NO, TRANSPORT_BOTH, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

/** Messages a DNS-format flow is followed for: the first and five more, as nDPI does. */
const MAX_MESSAGES = 6;

/**
 * A DNS name as nDPI reports it for classic DNS: lower case; letters, digits, '-' and '_' kept,
 * any other printable character '_' and any other byte '?'. Names on the wire that need this are
 * damaged or crafted, and the result is safe to print, log and compare.
 */
export function normalizeDnsName(name: string): string {
  // Only ASCII is left once the others are replaced, so lower-casing cannot bring any back.
  return (HOSTNAME.test(name) ? name : name.replace(NOT_HOSTNAME_CHAR, (ch) => (ch > ' ' && ch < '\x7f' ? '_' : '?'))).toLowerCase();
}

const HOSTNAME = /^[A-Za-z0-9._-]*$/;
const NOT_HOSTNAME_CHAR = /[^A-Za-z0-9._-]/g;

/**
 * Records a parsed message in the flow: the name, the query's type, the response code. The name
 * is the last message's that has one (nDPI's choice: the response's question over the query's, a
 * later question over an earlier one; they differ only when one is damaged or the flow carries
 * several). An mDNS announcement has no question: the name it announces (its first answer's) is
 * the name. `classic`: plain DNS, whose names are normalised (normalizeDnsName); mDNS and LLMNR
 * names are only lower-cased (names are case-insensitive: kept lower case, so that filters and
 * group-bys find them as one), as mDNS names are UTF-8 text ("Luca’s iMac").
 */
export function recordDns(ctx: DpiContext, msg: DnsMessage, classic = false): void {
  const e = ctx.extra();
  const name = msg.qname !== '' ? msg.qname : msg.aname;
  if (name !== '') e.serverName = classic ? normalizeDnsName(name) : name.toLowerCase();
  const info = e.info ?? {};
  if (msg.qdcount > 0 && info.qtype === undefined) info.qtype = dnsTypeName(msg.qtype);
  if (msg.response && info.rcode === undefined) info.rcode = dnsRcodeName(msg.rcode);
  e.info = info;
}

/**
 * Generic inspection for DNS-format protocols: FOLLOW after a query (for the response), MATCH
 * after a response or MAX_MESSAGES messages. `classic`: DNS on port 53 (see parseDns, recordDns).
 */
export function inspectDnsLike(ctx: DpiContext, buf: Buffer, off: number, len: number, classic = false): Verdict {
  const seen = (ctx.state() as number | null) ?? 0;
  const following = seen > 0;
  if (ctx.transport === TRANSPORT_TCP) {
    if (len < 14) return following || ctx.dirPackets < 2 ? MORE : NO;
    const mlen = (buf[off] << 8) | buf[off + 1];
    if (mlen < 12) return following ? MORE : NO;
    off += 2;
    len = Math.min(len - 2, mlen);
  }
  const msg = parseDns(buf, off, len, classic);
  if (msg === null) return following ? MORE : NO;
  recordDns(ctx, msg, classic);
  ctx.setState(seen + 1);
  return msg.response || seen + 1 >= MAX_MESSAGES ? MATCH : FOLLOW;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  // DNS on port 53 only: the format is too loose to claim payloads of other ports.
  if (ctx.serverPort !== 53 && ctx.clientPort !== 53) return NO;
  return inspectDnsLike(ctx, buf, off, len, true);
}

export const dns: Dissector = { app: 'DNS', transports: TRANSPORT_BOTH, ports: [53], inspect };
