// NetBIOS over TCP/IP (RFC 1002): the name service on UDP 137 (DNS-like format) and the datagram
// service on UDP 138. Port-bound: the formats are too loose to recognise elsewhere.
import { parseDns } from '../dns-message.js';
import { MATCH, NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.serverPort === 137 || ctx.clientPort === 137) return parseDns(buf, off, len) !== null ? MATCH : NO;
  if (ctx.serverPort === 138 && len >= 14 && buf[off] >= 0x10 && buf[off] <= 0x16) return MATCH;
  return NO;
}

export const netbios: Dissector = { app: 'NetBIOS', transports: TRANSPORT_UDP, ports: [137, 138], inspect };
