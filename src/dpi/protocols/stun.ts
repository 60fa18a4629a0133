// STUN and TURN (RFC 5389/8489, TURN RFC 8656, classic RFC 3489): a 20-byte header, message type with
// the top two bits zero, a length that is a multiple of 4 matching the payload, the magic cookie
// 0x2112A442 (or, in classic STUN, a known message type). Over TCP the same message, possibly after
// a 2-byte frame length (RFC 4571); Microsoft's multiplexed TURN puts a 12-byte header before it.
//
// Once a flow is STUN its next messages are read too, for what nDPI reports of them: the REALM as
// the server name, the SOFTWARE, the mapped, relayed, peer, response-origin and other addresses
// (the first of each kind in the flow), whether it is TURN, and the service the attributes or the
// realm betray (nDPI's sub-protocol: WhatsAppCall, Zoom, Skype_TeamsCall, GoogleCall, TelegramVoip,
// SignalVoip, FacebookVoip, ViberVoip), all under appInfo.
import { ascii } from '../bytes.js';
import { FOLLOW, MORE, NO, TRANSPORT_BOTH, TRANSPORT_TCP, type Dissector, type DpiContext, type FlowExtra, type Verdict } from '../types.js';

const CLASSIC_TYPES = new Set([0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112]);
const MAGIC_COOKIE = 0x2112a442;
const HEADER = 20;

/** The dissector's state once the flow is STUN: following its later messages. */
const FOLLOWING = 'stun-following';

/** WhatsApp's own message types (nDPI: STUN.WhatsAppCall). */
const WHATSAPP_TYPES = new Set([0x0800, 0x0801, 0x0802, 0x0804, 0x0805]);

/** TURN methods (RFC 8656, RFC 6062): a flow using one is TURN. */
const TURN_METHODS = new Set([0x003, 0x004, 0x005, 0x006, 0x007, 0x008, 0x009, 0x00a, 0x00b, 0x00c]);

/** Attribute types and the appInfo key of the address each carries (XOR-coded or plain). */
const ADDRESS_ATTRIBUTES = new Map<number, { key: string; xor: boolean }>([
  [0x0001, { key: 'mappedAddress', xor: false }],
  [0x0020, { key: 'mappedAddress', xor: true }],
  [0x0016, { key: 'relayedAddress', xor: true }],
  [0x0012, { key: 'peerAddress', xor: true }],
  [0x802b, { key: 'responseOrigin', xor: false }],
  [0x802c, { key: 'otherAddress', xor: false }],
]);

/** Attributes that name the service (as nDPI's stun.c reads them): where several do, the last one read wins. */
const SERVICE_ATTRIBUTES = new Map<number, string>([
  [0x0101, 'Zoom'],
  [0x0103, 'Zoom'],
  [0x4000, 'WhatsAppCall'],
  [0x4001, 'WhatsAppCall'],
  [0x4002, 'WhatsAppCall'],
  [0x4003, 'WhatsAppCall'],
  [0x4004, 'WhatsAppCall'],
  [0x4007, 'WhatsAppCall'],
  // Microsoft's: candidate identifier, implementation version, service quality, multiplexed session...
  [0x8054, 'Skype_TeamsCall'],
  [0x24df, 'Skype_TeamsCall'],
  [0x3802, 'Skype_TeamsCall'],
  [0x8036, 'Skype_TeamsCall'],
  [0x8095, 'Skype_TeamsCall'],
  [0x0800, 'Skype_TeamsCall'],
  [0x8006, 'Skype_TeamsCall'],
  [0x8070, 'Skype_TeamsCall'],
  [0x8055, 'Skype_TeamsCall'],
  [0xff03, 'GoogleCall'],
]);

/** Realm substrings that name the service. */
const REALM_SERVICES: readonly [string, string][] = [
  ['google.com', 'GoogleCall'],
  ['whispersystems.org', 'SignalVoip'],
  ['signal.org', 'SignalVoip'],
  ['facebook', 'FacebookVoip'],
  ['telegram', 'TelegramVoip'],
  ['viber', 'ViberVoip'],
];

function isStun(buf: Buffer, off: number, len: number): boolean {
  if (len < HEADER || (buf[off] & 0xc0) !== 0) return false;
  const type = (buf[off] << 8) | buf[off + 1];
  const mlen = (buf[off + 2] << 8) | buf[off + 3];
  if (type === 0 || mlen + HEADER > len) return false;
  if (buf.readUInt32BE(off + 4) === MAGIC_COOKIE) {
    // A known class and method (nDPI's test), or one of WhatsApp's own types; the length need not
    // be a multiple of 4 (WhatsApp's Allocate requests are not), and trailing bytes after the
    // message are allowed (some stacks pad datagrams).
    return (type & 0x3eef) <= 0x000b || WHATSAPP_TYPES.has(type);
  }
  return CLASSIC_TYPES.has(type) && (mlen & 3) === 0 && mlen + HEADER === len;
}

/** Offset of the STUN message in the payload (after TCP framing or a multiplexed-TURN header), -1 when it holds none. */
function messageAt(ctx: DpiContext, buf: Buffer, off: number, len: number): number {
  if (isStun(buf, off, len)) return off;
  if (ctx.transport === TRANSPORT_TCP && len >= HEADER + 2 && ((buf[off] << 8) | buf[off + 1]) === len - 2 && isStun(buf, off + 2, len - 2)) return off + 2;
  // Microsoft multiplexed TURN: 0xFF10, a length covering the rest, 8 more bytes, then the message.
  if (len >= HEADER + 12 && buf[off] === 0xff && buf[off + 1] === 0x10 && ((buf[off + 2] << 8) | buf[off + 3]) + 4 === len && isStun(buf, off + 12, len - 12))
    return off + 12;
  return -1;
}

/** An address attribute's value at buf[at, at + len) as "ip:port" ("[ip6]:port"), '' when malformed. */
function address(buf: Buffer, msg: number, at: number, len: number, xor: boolean): string {
  const family = buf[at + 1];
  if (!((family === 1 && len === 8) || (family === 2 && len === 20))) return '';
  const port = ((buf[at + 2] << 8) | buf[at + 3]) ^ (xor ? MAGIC_COOKIE >>> 16 : 0);
  if (family === 1) {
    const ip = (buf.readUInt32BE(at + 4) ^ (xor ? MAGIC_COOKIE : 0)) >>> 0;
    return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}:${port}`;
  }
  // IPv6: XOR-coded with the cookie and the transaction id, the 16 bytes after the message type and length.
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) {
    const k = xor ? (buf[msg + 4 + i] << 8) | buf[msg + 5 + i] : 0;
    groups.push((((buf[at + 4 + i] << 8) | buf[at + 5 + i]) ^ k).toString(16));
  }
  return `[${compressIpv6(groups)}]:${port}`;
}

/** RFC 5952 text of eight hex groups: the longest run of two or more zero groups as '::'. */
function compressIpv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Realm as nDPI keeps it for the server name: lower case, '' when it holds anything but printable ASCII. */
function realmName(buf: Buffer, at: number, len: number): string {
  for (let i = at; i < at + len; i++) if (buf[i] < 0x20 || buf[i] > 0x7e) return '';
  return ascii(buf, at, at + len).toLowerCase();
}

/** nDPI's stun.c: Google's STUN servers by address (74.125.250.0/24, 142.250.82.0/24, 2001:4860:4864:5::/64 and :6::/64). */
function googleAddress(ip: string): boolean {
  return ip.startsWith('74.125.250.') || ip.startsWith('142.250.82.') || /^2001:4860:4864:[56]:/i.test(ip);
}

/**
 * The service from the flow's own endpoints, as nDPI's ndpi_int_stun_add_connection names it when
 * the messages did not: Google's STUN addresses on Google's STUN ports (19302-19309) or 3478.
 * nDPI also names a flow from its cache of endpoints that other flows named; flowlens does not,
 * because that answer depends on which flows one engine saw before: with decode workers each holds
 * its own, so the same capture would be named differently for 1 and 2 workers (import-workers'
 * corpus case), and results must not depend on the worker count (issue 22).
 */
function serviceFromEndpoints(ctx: DpiContext, e: FlowExtra): void {
  if (e.info?.service !== undefined) return;
  const ends = ctx.addresses();
  if (ends === null) return;
  const googlePort = (p: number) => p === 3478 || (p >= 19302 && p <= 19309);
  if ((googlePort(ctx.clientPort) || googlePort(ctx.serverPort)) && (googleAddress(ends[0]) || googleAddress(ends[1]))) info(e).service = 'GoogleCall';
}

function info(e: FlowExtra): Record<string, string | number> {
  return (e.info ??= {});
}

/** Reads the message at buf[msg...) for the flow's details. */
function readMessage(ctx: DpiContext, buf: Buffer, msg: number): void {
  const e = ctx.extra();
  const type = (buf[msg] << 8) | buf[msg + 1];
  const end = msg + HEADER + ((buf[msg + 2] << 8) | buf[msg + 3]);
  if (WHATSAPP_TYPES.has(type)) {
    info(e).service = 'WhatsAppCall';
    return;
  }
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  if (TURN_METHODS.has(method)) info(e).turn = 1;
  for (let p = msg + HEADER, n = 0; p + 4 <= end && n < 64; n++) {
    const t = (buf[p] << 8) | buf[p + 1];
    const l = (buf[p + 2] << 8) | buf[p + 3];
    const at = p + 4;
    if (at + l > end) break;
    if (t === 0x0014) {
      if (e.serverName === '') {
        const realm = realmName(buf, at, l);
        if (realm !== '') {
          e.serverName = realm;
          const named = REALM_SERVICES.find(([part]) => realm.includes(part));
          if (named !== undefined) info(e).service = named[1];
        }
      }
    } else if (t === 0x8022) {
      if (e.info?.software === undefined) info(e).software = ascii(buf, at, at + l).replace(/\0+$/, '');
    } else {
      const a = ADDRESS_ATTRIBUTES.get(t);
      if (a !== undefined) {
        if (e.info?.[a.key] === undefined) {
          const text = address(buf, msg, at, l, a.xor);
          if (text !== '') info(e)[a.key] = text;
        }
      } else {
        const service = SERVICE_ATTRIBUTES.get(t);
        if (service !== undefined) info(e).service = service;
      }
    }
    p = at + ((l + 3) & ~3);
  }
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const msg = messageAt(ctx, buf, off, len);
  const following = ctx.state() === FOLLOWING;
  // Media (RTP, DTLS) between the messages says nothing here: keep following within the budget.
  if (msg < 0) return following ? MORE : NO;
  readMessage(ctx, buf, msg);
  serviceFromEndpoints(ctx, ctx.extra());
  if (following) return MORE;
  ctx.setState(FOLLOWING);
  return FOLLOW;
}

export const stun: Dissector = { app: 'STUN', transports: TRANSPORT_BOTH, ports: [3478, 3479, 5349, 19302], inspect };
