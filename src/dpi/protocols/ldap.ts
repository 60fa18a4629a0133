// LDAP (RFC 4511) on TCP 389 and 3268 (the global catalog), and CLDAP (RFC 1798) on UDP 389. A
// message is a BER SEQUENCE (0x30, short or long form length: BER allows the non-minimal 84 xx xx
// xx xx Active Directory sends) holding the messageID INTEGER (1..4 bytes, non-negative), the
// protocolOp and optionally the controls [0] (0xa0). Checked: the protocolOp's APPLICATION tag is
// one RFC 4511 defines (constructed 0x60..0x79, or the primitive unbindRequest 0x42 with no value,
// delRequest 0x4a, abandonRequest 0x50 with a 1..4 byte ID), the op fits in the SEQUENCE with
// nothing but controls after it, and the op's first element has the type its definition demands
// (the bind version INTEGER 1..3, a result's ENUMERATED resultCode, a request's DN OCTET STRING,
// an extended request's [0] name). On UDP the SEQUENCE must end with the datagram; on TCP it may
// continue in later segments (or other messages may follow it). These fixed bytes hold on any port
// (nDPI finds LDAP on 1389 too). On the LDAP ports a first payload per direction that does not
// parse only defers: a SASL-wrapped (signed or sealed) session carries a 4-byte length and a GSSAPI
// token instead, while the server's bind response in the other direction is still in the clear.
import { ber, berLength } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_BOTH, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

/** The tag the first element of each constructed op (by APPLICATION number) must have, -1 for no such op. */
const FIRST: readonly number[] = (() => {
  const f = new Array<number>(26).fill(-1);
  const result = 0x0a; // LDAPResult starts with resultCode ENUMERATED
  const dn = 0x04; // LDAPDN / LDAPString
  f[0] = 0x02; // bindRequest: version
  f[1] = result; // bindResponse
  f[3] = dn; // searchRequest: baseObject
  f[4] = dn; // searchResEntry: objectName
  f[5] = result; // searchResDone
  f[6] = dn; // modifyRequest
  f[7] = result; // modifyResponse
  f[8] = dn; // addRequest
  f[9] = result; // addResponse
  f[11] = result; // delResponse
  f[12] = dn; // modDNRequest
  f[13] = result; // modDNResponse
  f[14] = dn; // compareRequest
  f[15] = result; // compareResponse
  f[19] = dn; // searchResRef: URI
  f[23] = 0x80; // extendedReq: requestName [0]
  f[24] = result; // extendedResp
  f[25] = 0x80; // intermediateResponse: [0] responseName or [1] responseValue (0x81), both optional
  return f;
})();

const OPS: Readonly<Record<number, string>> = {
  0x60: 'bindRequest',
  0x61: 'bindResponse',
  0x42: 'unbindRequest',
  0x63: 'searchRequest',
  0x64: 'searchResEntry',
  0x65: 'searchResDone',
  0x66: 'modifyRequest',
  0x67: 'modifyResponse',
  0x68: 'addRequest',
  0x69: 'addResponse',
  0x4a: 'delRequest',
  0x6b: 'delResponse',
  0x6c: 'modDNRequest',
  0x6d: 'modDNResponse',
  0x6e: 'compareRequest',
  0x6f: 'compareResponse',
  0x50: 'abandonRequest',
  0x73: 'searchResRef',
  0x77: 'extendedReq',
  0x78: 'extendedResp',
  0x79: 'intermediateResponse',
};

/** The protocolOp tag of the LDAP message at buf[off, off+len), or 0. */
function message(buf: Buffer, off: number, len: number, udp: boolean): number {
  const end = off + len;
  if (len < 7 || buf[off] !== 0x30) return 0;
  let p = berLength(buf, off + 1, end);
  if (p < 0) return 0;
  const seqEnd = p + ber.length;
  if (udp ? seqEnd !== end : seqEnd < p + 5) return 0;
  // messageID INTEGER (0 .. 2^31-1)
  if (p + 2 > end || buf[p] !== 0x02) return 0;
  const idLen = buf[p + 1];
  if (idLen < 1 || idLen > 4 || p + 2 + idLen >= end || buf[p + 2] >= 0x80) return 0;
  p += 2 + idLen;
  const op = buf[p];
  const v = berLength(buf, p + 1, end);
  if (v < 0) return 0;
  const opLen = ber.length;
  const opEnd = v + opLen;
  if (opEnd > seqEnd) return 0;
  if (opEnd < seqEnd && opEnd < end && buf[opEnd] !== 0xa0) return 0; // only controls may follow
  if (op === 0x42) return opLen === 0 ? op : 0;
  if (op === 0x50) return opLen >= 1 && opLen <= 4 ? op : 0;
  if (op === 0x4a) return op;
  const n = op - 0x60;
  if (n < 0 || n > 25) return 0;
  const first = FIRST[n];
  if (first < 0) return 0;
  if (opLen === 0) return n === 25 ? op : 0; // only an intermediateResponse can be empty
  if (v >= end) return 0;
  const t = buf[v];
  if (t !== first && !(n === 25 && t === 0x81)) return 0;
  if (v + 1 < end) {
    const l = buf[v + 1];
    if (n === 0 && (l !== 1 || (v + 2 < end && (buf[v + 2] < 1 || buf[v + 2] > 3)))) return 0; // version 1..3
    if (t === 0x0a && (l < 1 || l > 4)) return 0; // resultCode
  }
  return op;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const op = message(buf, off, len, ctx.transport === TRANSPORT_UDP);
  if (op === 0) {
    const onPort = ctx.serverPort === 389 || ctx.clientPort === 389 || ctx.serverPort === 3268 || ctx.clientPort === 3268;
    return onPort && ctx.dirPackets < 2 ? MORE : NO;
  }
  ctx.extra().info = { op: OPS[op] };
  return MATCH;
}

export const ldap: Dissector = {
  app: 'LDAP',
  transports: TRANSPORT_BOTH,
  ports: [389, 3268],
  udpPorts: [389],
  inspect,
};
