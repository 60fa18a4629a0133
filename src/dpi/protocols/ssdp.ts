// SSDP (UPnP discovery): HTTP-style messages over UDP ("M-SEARCH * HTTP/1.1", "NOTIFY * HTTP/1.1",
// or a "HTTP/1.1 200 OK" answer), usually to 239.255.255.250:1900.
import { headerValue, startsWith } from '../bytes.js';
import { MATCH, NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const request = startsWith(buf, off, len, 'M-SEARCH * HTTP/1.') || startsWith(buf, off, len, 'NOTIFY * HTTP/1.');
  // Answers to M-SEARCH go unicast from the device's ephemeral port: recognised by their headers.
  const answer =
    !request &&
    startsWith(buf, off, len, 'HTTP/1.1 200') &&
    (ctx.serverPort === 1900 || ctx.clientPort === 1900 || (headerValue(buf, off, off + len, 'usn:') !== '' && headerValue(buf, off, off + len, 'st:') !== ''));
  if (!request && !answer) return NO;
  const e = ctx.extra();
  // The Host header names the multicast group or device address ("239.255.255.250:1900"), kept as is.
  e.serverName = headerValue(buf, off, off + len, 'host:').toLowerCase();
  const info: Record<string, string | number> = {};
  const ua = headerValue(buf, off, off + len, 'user-agent:') || headerValue(buf, off, off + len, 'server:');
  if (ua !== '') info.userAgent = ua;
  const st = headerValue(buf, off, off + len, 'st:') || headerValue(buf, off, off + len, 'nt:');
  if (st !== '') info.target = st;
  e.info = info;
  return MATCH;
}

export const ssdp: Dissector = { app: 'SSDP', transports: TRANSPORT_UDP, ports: [1900], inspect };
