// SIP (RFC 3261) over UDP or TCP: a request line "METHOD sip:... SIP/2.0" or a status line
// "SIP/2.0 200 OK". The User-Agent goes to the details.
import { headerValue, startsWith } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_BOTH, type Dissector, type DpiContext, type Verdict } from '../types.js';

const METHODS = ['INVITE', 'REGISTER', 'OPTIONS', 'ACK', 'BYE', 'CANCEL', 'SUBSCRIBE', 'NOTIFY', 'MESSAGE', 'INFO', 'PRACK', 'UPDATE', 'REFER', 'PUBLISH'];

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  let yes = startsWith(buf, off, len, 'SIP/2.0 ');
  if (!yes) {
    for (const m of METHODS) {
      if (startsWith(buf, off, len, m) && buf[off + m.length] === 0x20) {
        const p = off + m.length + 1;
        yes =
          startsWith(buf, p, len - m.length - 1, 'sip:') || startsWith(buf, p, len - m.length - 1, 'sips:') || startsWith(buf, p, len - m.length - 1, 'tel:');
        break;
      }
    }
  }
  if (!yes) return ctx.dirPackets >= 2 ? NO : ctx.transport === 2 ? NO : MORE;
  const ua = headerValue(buf, off, off + len, 'user-agent:');
  if (ua !== '') ctx.extra().info = { userAgent: ua };
  return MATCH;
}

export const sip: Dissector = { app: 'SIP', transports: TRANSPORT_BOTH, ports: [5060, 5061], inspect };
