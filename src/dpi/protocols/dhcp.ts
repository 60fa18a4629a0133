// DHCP (RFC 2131) on UDP 67/68: BOOTP header with the magic cookie 63 82 53 63 at offset 236.
// The client's host name (option 12) goes to the server name field, as nDPI reports it, and the
// message type and vendor class (option 60) to the details.
import { ascii } from '../bytes.js';
import { MATCH, NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (len < 240 || (buf[off] !== 1 && buf[off] !== 2)) return NO;
  if (buf[off + 236] !== 0x63 || buf[off + 237] !== 0x82 || buf[off + 238] !== 0x53 || buf[off + 239] !== 0x63) return NO;
  const e = ctx.extra();
  const info = e.info ?? {};
  const end = off + len;
  for (let p = off + 240; p < end; ) {
    const code = buf[p];
    if (code === 255) break;
    if (code === 0) {
      p++;
      continue;
    }
    if (p + 2 > end) break;
    const l = buf[p + 1];
    const v = p + 2;
    if (v + l > end) break;
    if (code === 12 && e.serverName === '') e.serverName = ascii(buf, v, v + l).toLowerCase();
    else if (code === 53 && l >= 1) info.messageType = buf[v];
    else if (code === 60) info.vendorClass = ascii(buf, v, v + l);
    p = v + l;
  }
  e.info = info;
  return MATCH;
}

export const dhcp: Dissector = { app: 'DHCP', transports: TRANSPORT_UDP, ports: [67, 68], inspect };
