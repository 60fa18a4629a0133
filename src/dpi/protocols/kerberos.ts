// Kerberos 5 (RFC 4120) on UDP and TCP port 88. On UDP a datagram is one bare DER message; on TCP
// a 4-byte big-endian record length comes first (section 7.2.2, its high bit reserved) and must
// equal the size of the message that follows. A message is an APPLICATION tag naming its type
// (AS-REQ [10] 0x6a, AS-REP [11], TGS-REQ [12], TGS-REP [13], AP-REQ [14], AP-REP [15], KRB-SAFE
// [20], KRB-PRIV [21], KRB-CRED [22], KRB-ERROR [30] 0x7e) with a DER length, then a SEQUENCE that
// exactly fills it, opening with pvno INTEGER 5 and msg-type INTEGER equal to the APPLICATION
// number: [1] and [2] in KDC-REQ, [0] and [1] in the others. Eleven fixed bytes and two lengths
// that must agree: the check holds on any port. On port 88 a first payload per direction that does not parse
// only defers (a capture starting mid-message, a record length sent in a segment of its own).
// The realm (the request's, the reply's client realm, the error's service realm) and an error's
// code go to the details. nDPI prints the realm and client name in a field of its own, not as the
// flow's host name, so the server name stays empty.
import { ascii, ber, berLength } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_BOTH, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const PORT = 88;

/** Message names by APPLICATION number. */
const NAMES: Readonly<Record<number, string>> = {
  10: 'AS-REQ',
  11: 'AS-REP',
  12: 'TGS-REQ',
  13: 'TGS-REP',
  14: 'AP-REQ',
  15: 'AP-REP',
  20: 'KRB-SAFE',
  21: 'KRB-PRIV',
  22: 'KRB-CRED',
  30: 'KRB-ERROR',
};

/** End of the APPLICATION value of the last message read by message(). */
let msgEnd = 0;
/** Start and end of the SEQUENCE's elements of that message (the first two are pvno, msg-type). */
let seqStart = 0;
let seqEnd = 0;

/**
 * The message type (10..30) of a Kerberos message at buf[p, end), or 0. `exact`: the message must
 * end where the payload does (UDP); otherwise it may run past it (TCP).
 */
function message(buf: Buffer, p: number, end: number, exact: boolean): number {
  if (p >= end) return 0;
  const type = buf[p] - 0x60;
  if (type < 10 || type > 30 || NAMES[type] === undefined) return 0;
  let q = berLength(buf, p + 1, end);
  if (q < 0) return 0;
  msgEnd = q + ber.length;
  if (exact && msgEnd !== end) return 0;
  if (q >= end || buf[q] !== 0x30) return 0;
  q = berLength(buf, q + 1, end);
  if (q < 0 || q + ber.length !== msgEnd || q + 10 > end) return 0;
  const t = type === 10 || type === 12 ? 0xa1 : 0xa0; // KDC-REQ has no [0]
  if (buf[q] !== t || buf[q + 1] !== 3 || buf[q + 2] !== 2 || buf[q + 3] !== 1 || buf[q + 4] !== 5) return 0;
  if (buf[q + 5] !== t + 1 || buf[q + 6] !== 3 || buf[q + 7] !== 2 || buf[q + 8] !== 1 || buf[q + 9] !== type) return 0;
  seqStart = q;
  seqEnd = Math.min(msgEnd, end);
  return type;
}

/** Start of the value of the element with context tag `tag` among the TLVs in buf[p, end) (its length in ber.length), or -1. */
function field(buf: Buffer, p: number, end: number, tag: number): number {
  for (let i = 0; i < 16 && p < end; i++) {
    const t = buf[p];
    const v = berLength(buf, p + 1, end);
    if (v < 0) return -1;
    if (t === tag) return v;
    if (t > tag) return -1; // elements come in tag order
    p = v + ber.length;
  }
  return -1;
}

/** The GeneralString in the context-tagged value at v (length ber.length), or ''. */
function generalString(buf: Buffer, v: number, end: number): string {
  if (v < 0 || v >= end || buf[v] !== 0x1b) return '';
  const s = berLength(buf, v + 1, end);
  if (s < 0 || s + ber.length > end || ber.length === 0) return '';
  for (let i = s; i < s + ber.length; i++) if (buf[i] < 0x20 || buf[i] > 0x7e) return '';
  return ascii(buf, s, s + ber.length);
}

/** The realm and error code of the message message() just read, into the details. */
function details(ctx: DpiContext, buf: Buffer, type: number): void {
  const info: Record<string, string | number> = { msg: NAMES[type] };
  let realm = '';
  if (type === 10 || type === 12) {
    // KDC-REQ: [3] padata, [4] req-body SEQUENCE { [0] kdc-options, [1] cname, [2] realm, ... }
    let v = field(buf, seqStart, seqEnd, 0xa4);
    if (v >= 0 && v < seqEnd && buf[v] === 0x30) {
      v = berLength(buf, v + 1, seqEnd);
      if (v >= 0) realm = generalString(buf, field(buf, v, seqEnd, 0xa2), seqEnd);
    }
  } else if (type === 11 || type === 13) {
    realm = generalString(buf, field(buf, seqStart, seqEnd, 0xa3), seqEnd); // KDC-REP [3] crealm
  } else if (type === 30) {
    const c = field(buf, seqStart, seqEnd, 0xa6); // [6] error-code INTEGER
    if (c >= 0 && c + 3 <= seqEnd && buf[c] === 0x02 && buf[c + 1] >= 1 && buf[c + 1] <= 2 && c + 2 + buf[c + 1] <= seqEnd) {
      info.error = buf[c + 1] === 1 ? buf[c + 2] : (buf[c + 2] << 8) | buf[c + 3];
    }
    realm = generalString(buf, field(buf, seqStart, seqEnd, 0xa9), seqEnd); // [9] realm
  }
  if (realm !== '') info.realm = realm;
  ctx.extra().info = info;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const end = off + len;
  let type = 0;
  if (ctx.transport === TRANSPORT_TCP) {
    if (len >= 14 && buf[off] < 0x80) {
      const rec = buf.readUInt32BE(off);
      type = message(buf, off + 4, end, false);
      if (type !== 0 && msgEnd - (off + 4) !== rec) type = 0;
    }
    // The message without its record length: the length went in a segment of its own.
    if (type === 0 && len >= 12) type = message(buf, off, end, false);
  } else type = message(buf, off, end, true);
  if (type === 0) return (ctx.serverPort === PORT || ctx.clientPort === PORT) && ctx.dirPackets < 2 ? MORE : NO;
  details(ctx, buf, type);
  return MATCH;
}

export const kerberos: Dissector = { app: 'Kerberos', transports: TRANSPORT_BOTH, ports: [PORT], inspect };
