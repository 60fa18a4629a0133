// HTTP/1.x: a request line ("GET /x HTTP/1.1") from the client, with its Host (the server name)
// and User-Agent; or a status line from the server when the capture missed the request.
import { ascii, headerValue, startsWith } from '../bytes.js';
import { RISK_CLEAR_TEXT_CREDENTIALS } from '../risks.js';
import { FOLLOW, LIKELY, MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

export const HTTP_METHODS = [
  'GET',
  'POST',
  'HEAD',
  'PUT',
  'DELETE',
  'OPTIONS',
  'CONNECT',
  'PATCH',
  'TRACE',
  'PROPFIND',
  'PROPPATCH',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'UNLOCK',
  'REPORT',
  'SEARCH',
  'SUBSCRIBE',
  'NOTIFY',
  'M-SEARCH',
  'MKCALENDAR',
];

/** Length of the method token if buf[off..] starts with a known method and a space, else 0. */
export function methodLength(buf: Buffer, off: number, len: number): number {
  const c = buf[off];
  if (len < 4 || c < 0x41 || c > 0x5a) return 0;
  for (const m of HTTP_METHODS) {
    if (len > m.length && buf[off + m.length] === 0x20 && startsWith(buf, off, len, m)) return m.length;
  }
  return 0;
}

/** Index just past "HTTP/1.x" at the end of the request line; -1 when the line is not HTTP/1.x, -2 when it is cut. */
function requestLineEnd(buf: Buffer, off: number, end: number): number {
  // Scan for the line end, bounded by the payload; the version is the line's last token.
  let e = off;
  const stop = Math.min(end, off + 8192);
  while (e < stop && buf[e] !== 0x0a && buf[e] !== 0x0d) e++;
  if (e === end) return -2;
  if (e - off < 8) return -1;
  return startsWith(buf, e - 8, 8, 'HTTP/1.') || startsWith(buf, e - 8, 8, 'HTTP/0.') ? e : -1;
}

/** The dissector's state while the request line is cut by the end of its segment. */
const REQUEST_LINE_CUT = 'http-request-line-cut';

/** Start of the line after the one ending at buf[lineEnd] (CR LF or LF). */
function nextLine(buf: Buffer, lineEnd: number): number {
  return buf[lineEnd] === 0x0d ? lineEnd + 2 : lineEnd + 1;
}

/** Takes the server name from a Host header in buf[from, end); false when there is none. */
function recordHost(ctx: DpiContext, buf: Buffer, from: number, end: number): boolean {
  const host = headerValue(buf, from, end, 'host:');
  if (host === '') return false;
  // The Host header may carry a port; the server name is the name alone.
  ctx.extra().serverName = stripPort(host).toLowerCase();
  return true;
}

/** Whether buf[from, end) holds the blank line that ends a header block. */
function headersEnd(buf: Buffer, from: number, end: number): boolean {
  for (let i = Math.max(from, 1); i < end; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i - 1] === 0x0a || (buf[i - 1] === 0x0d && i >= 2 && buf[i - 2] === 0x0a)) return true;
  }
  return false;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const end = off + len;
  const m = methodLength(buf, off, len);
  if (m === 0 && ctx.hasExtra() && ctx.extra().info?.method !== undefined) {
    // A request longer than its first segment: the Host may be in the next ones.
    if (!ctx.fromClient) return MATCH; // the answer came: the request had no Host
    let from = off;
    if (ctx.state() === REQUEST_LINE_CUT) {
      // The request line went on into this segment: it must end as HTTP/1.x does (not RTSP, SIP).
      const lineEnd = requestLineEnd(buf, off, end);
      if (lineEnd === -2) return MORE;
      ctx.setState(null);
      if (lineEnd < 0) return NO;
      from = nextLine(buf, lineEnd);
    }
    if (recordHost(ctx, buf, from, end)) return MATCH;
    return headersEnd(buf, from, end) ? MATCH : FOLLOW;
  }
  if (m > 0) {
    const lineEnd = requestLineEnd(buf, off, end);
    if (lineEnd === -2) {
      // A request line cut by the segment end (a long URL) is likely HTTP; the next segment says
      // whether its version is (another, RTSP or SIP, is not) and may hold the Host.
      ctx.extra().info = { method: ascii(buf, off, off + m) };
      ctx.setState(REQUEST_LINE_CUT);
      return LIKELY;
    }
    if (lineEnd < 0) return NO;
    const e = ctx.extra();
    const headers = nextLine(buf, lineEnd);
    const hasHost = recordHost(ctx, buf, headers, end);
    const info: Record<string, string | number> = { method: ascii(buf, off, off + m) };
    const ua = headerValue(buf, headers, end, 'user-agent:');
    if (ua !== '') info.userAgent = ua;
    // Basic authentication: user and password in base64, in clear.
    if (/^basic /i.test(headerValue(buf, headers, end, 'authorization:'))) e.risks |= RISK_CLEAR_TEXT_CREDENTIALS;
    e.info = info;
    if (m === 7 && startsWith(buf, off, len, 'CONNECT')) e.app = 'HTTP_Connect';
    // No Host yet and the headers go on in the next segment (a large request): follow them.
    return !hasHost && !headersEnd(buf, headers, end) ? FOLLOW : MATCH;
  }
  if (startsWith(buf, off, len, 'HTTP/1.') && len >= 12 && buf[off + 8] === 0x20) {
    if (ctx.fromClient && ctx.dirPackets > 1) return NO;
    // A response first (the capture missed the request): HTTP, and the next request may name the host.
    return FOLLOW;
  }
  // The server's payload before any request is the tail of a response whose start the capture
  // missed: it says nothing, and the client's next request may still name the host. The client's
  // own first packets must be a request.
  if (!ctx.fromClient) return MORE;
  return ctx.dirPackets >= 2 ? NO : MORE;
}

export function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const i = host.indexOf(']');
    return i > 0 ? host.slice(1, i) : host;
  }
  const i = host.indexOf(':');
  return i >= 0 && host.indexOf(':', i + 1) < 0 ? host.slice(0, i) : host;
}

export const http: Dissector = {
  app: 'HTTP',
  transports: TRANSPORT_TCP,
  ports: [80, 81, 8080, 8000, 8008, 8088, 8181, 3128],
  inspect,
};
