// Telnet (RFC 854): sessions open with option negotiation, IAC (0xff) then WILL/WONT/DO/DONT.
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (len >= 3 && buf[off] === 0xff && buf[off + 1] >= 0xfb && buf[off + 1] <= 0xfe && buf[off + 2] < 50) {
    return ctx.serverPort === 23 || len % 3 === 0 ? MATCH : MORE;
  }
  return ctx.dirPackets >= 2 ? NO : MORE;
}

export const telnet: Dissector = { app: 'Telnet', transports: TRANSPORT_TCP, ports: [23], inspect };
