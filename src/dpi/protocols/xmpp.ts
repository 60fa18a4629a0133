// XMPP (RFC 6120 §4), which nDPI calls Jabber: each side opens its XML stream with an optional
// XML declaration ("<?xml version='1.0'?>", often a packet of its own) and a <stream:stream> tag
// declaring the stream namespace http://etherx.jabber.org/streams and the content namespace
// jabber:client (clients, TCP 5222) or jabber:server (server to server, TCP 5269). The opening
// tag's "to" (the server's domain) goes to the details: nDPI reports no server name for XMPP.
// A stream to TruPhone's domain (im.truphone.com) is TruPhone, as nDPI names it.
//
// What is checked:
// - a <stream:stream ...> tag (after a declaration or not) with one of those namespaces in it; a
//   declaration alone waits for the next payload of that side;
// - a capture that starts mid-stream (nDPI finds those from their first payload too): the closing
//   </stream:stream>, or an <iq>, <presence> or <message> stanza naming an XMPP namespace
//   (jabber:..., http://jabber.org/protocol/..., urn:xmpp:...) within its first bytes;
// - TCP 5223, XMPP's legacy TLS port: TLS there is the TLS dissector's. nDPI also labels Jabber a
//   binary framing found there in its test captures (jabber.pcap, cloudflare-warp.pcap: a type
//   byte and a 2-byte big-endian length equal to the segment's, the client's 0x25 answered by the
//   server's 0x26), so that is checked too, in both directions and on that port only.
// Other payloads cost one byte comparison ('<'), or on 5223 a length comparison.
// No port fallback: nDPI has no default port for Jabber, and 5222 also carries WhatsApp, Threema
// and other non-XMPP chat protocols.
import { ascii, startsWith } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

/** How far into a payload the stream tag and the namespaces are looked for. */
const SCAN = 1024;
const LEGACY_TLS_PORT = 5223;
/** Flow state on 5223 once the client's framed opener was seen. */
const FRAMED_OPENER = 'framed-opener';

const STREAM_NAMESPACES = ['http://etherx.jabber.org/streams', 'jabber:client', 'jabber:server', 'jabber:component:'];
const STANZA_NAMESPACES = ['jabber:', 'http://jabber.org/protocol/', 'urn:xmpp:', 'urn:ietf:params:xml:ns:xmpp-'];

/** Index of the ASCII string s in buf[from, end), -1 if absent. */
function find(buf: Buffer, from: number, end: number, s: string): number {
  const first = s.charCodeAt(0);
  for (let i = from; i + s.length <= end; i++) {
    if (buf[i] === first && startsWith(buf, i, end - i, s)) return i;
  }
  return -1;
}

function findAny(buf: Buffer, from: number, end: number, list: readonly string[]): boolean {
  for (let i = 0; i < list.length; i++) if (find(buf, from, end, list[i]) >= 0) return true;
  return false;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** The value of attribute `name` ("to=") inside the tag buf[from, end), '' when absent. */
function attribute(buf: Buffer, from: number, end: number, name: string): string {
  for (let p = find(buf, from, end, name); p >= 0; p = find(buf, p + 1, end, name)) {
    if (!isSpace(buf[p - 1])) continue; // "xmlns:to=", "reply-to=" are not it
    if (p + name.length >= end) return '';
    const q = buf[p + name.length];
    if (q !== 0x27 && q !== 0x22) return '';
    const v = p + name.length + 1;
    let e = v;
    while (e < end && e < v + 255 && buf[e] !== q) e++;
    return e < end && buf[e] === q ? ascii(buf, v, e) : '';
  }
  return '';
}

/** The stream opening tag starting at p: MATCH when it declares an XMPP namespace. */
function streamTag(ctx: DpiContext, buf: Buffer, p: number, end: number): Verdict {
  let tagEnd = p;
  while (tagEnd < end && buf[tagEnd] !== 0x3e) tagEnd++;
  if (!findAny(buf, p, tagEnd, STREAM_NAMESPACES)) return NO;
  const to = attribute(buf, p, tagEnd, 'to=');
  if (to !== '') ctx.extra().info = { to };
  // TruPhone's VoIP service runs on XMPP; nDPI names such streams by their domain.
  const t = find(buf, p, end, 'im.truphone.com');
  if (t > p && (buf[t - 1] === 0x27 || buf[t - 1] === 0x22)) ctx.extra().app = 'TruPhone';
  return MATCH;
}

/** The client's 0x25 opener or the server's 0x26 answer on 5223, length equal to the segment. */
function framed(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (len < 8 || ((buf[off + 1] << 8) | buf[off + 2]) !== len) return NO;
  if (ctx.fromClient) {
    if (buf[off] !== 0x25 || ctx.dirPackets > 1) return NO;
    ctx.setState(FRAMED_OPENER);
    return MORE;
  }
  if (ctx.state() !== FRAMED_OPENER) return NO;
  ctx.setState(null);
  return buf[off] === 0x26 ? MATCH : NO;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (len < 1 || buf[off] !== 0x3c) {
    return ctx.serverPort === LEGACY_TLS_PORT && len > 0 ? framed(ctx, buf, off, len) : NO;
  }
  const end = Math.min(off + len, off + SCAN);
  let p = off;
  if (startsWith(buf, p, end - p, '<?xml')) {
    const d = find(buf, p + 5, Math.min(end, p + 128), '?>');
    if (d < 0) return NO;
    p = d + 2;
    while (p < end && isSpace(buf[p])) p++;
    // The declaration alone: the stream tag comes in this side's next payload.
    if (p === off + len) return ctx.dirPackets >= 3 ? NO : MORE;
  }
  if (p + 14 < end && startsWith(buf, p, end - p, '<stream:stream') && isSpace(buf[p + 14])) return streamTag(ctx, buf, p + 14, end);
  if (p !== off) return NO; // a declaration followed by something else: another XML protocol
  if (startsWith(buf, p, end - p, '</stream:stream>')) return MATCH;
  if (startsWith(buf, p, end - p, '<iq ') || startsWith(buf, p, end - p, '<presence') || startsWith(buf, p, end - p, '<message ')) {
    return findAny(buf, p, end, STANZA_NAMESPACES) ? MATCH : NO;
  }
  return NO;
}

export const xmpp: Dissector = { app: 'Jabber', transports: TRANSPORT_TCP, ports: [], inspect };
