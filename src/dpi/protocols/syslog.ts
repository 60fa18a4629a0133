// Syslog (RFC 3164/5424) on UDP 514: "<PRI>" with PRI 0..191, then text.
import { MATCH, NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.serverPort !== 514 || len < 4 || buf[off] !== 0x3c) return NO;
  let p = off + 1;
  let pri = 0;
  while (p < off + 5 && p < off + len && buf[p] >= 0x30 && buf[p] <= 0x39) pri = pri * 10 + buf[p++] - 0x30;
  return p > off + 1 && buf[p] === 0x3e && pri <= 191 ? MATCH : NO;
}

export const syslog: Dissector = { app: 'Syslog', transports: TRANSPORT_UDP, ports: [514], inspect };
