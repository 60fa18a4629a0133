// RDP (MS-RDPBCGR): the client's X.224 Connection Request in a TPKT (03 00 len), usually with a
// "Cookie: mstshash=" line; the server's Connection Confirm answers it.
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (len < 11 || buf[off] !== 3 || buf[off + 1] !== 0) return ctx.dirPackets >= 2 ? NO : MORE;
  const tlen = (buf[off + 2] << 8) | buf[off + 3];
  const li = buf[off + 4];
  const code = buf[off + 5] & 0xf0;
  // TPKT length covers the packet; the X.224 length indicator fits inside it; CR 0xe0, CC 0xd0.
  if (tlen !== len || li + 5 > tlen || (code !== 0xe0 && code !== 0xd0)) return NO;
  return MATCH;
}

export const rdp: Dissector = { app: 'RDP', transports: TRANSPORT_TCP, ports: [3389], inspect };
