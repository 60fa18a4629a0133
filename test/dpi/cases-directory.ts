// Directory and discovery protocols, built byte by byte: SLP (RFC 2165 v1, RFC 2608 v2), Kerberos 5
// (RFC 4120, DER, with the TCP record length of section 7.2.2) and LDAP (RFC 4511, BER; CLDAP on
// UDP). Each positive flow must be found by DPI under nDPI's name; each negative one, bytes on the
// protocol's port that come close to it or are plain noise, must not be.
import type { DpiCase } from './cases.js';

// --- ASN.1 DER / BER -----------------------------------------------------------------------------

/** A DER length: short form below 128, else the minimal long form. */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** A TLV with the given tag and the concatenated contents. */
function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const value = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), derLength(value.length), value]);
}

/** The same with the length in the non-minimal 4-byte form (84 xx xx xx xx) Active Directory uses. */
function tlv4(tag: number, ...contents: Buffer[]): Buffer {
  const value = Buffer.concat(contents);
  const head = Buffer.alloc(6);
  head[0] = tag;
  head[1] = 0x84;
  head.writeUInt32BE(value.length, 2);
  return Buffer.concat([head, value]);
}

const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
/** A context-specific constructed tag [n]. */
const ctx = (n: number, ...c: Buffer[]): Buffer => tlv(0xa0 + n, ...c);
/** An APPLICATION constructed tag [n]. */
const app = (n: number, ...c: Buffer[]): Buffer => tlv(0x60 + n, ...c);

/** A non-negative DER INTEGER (tag 0x02, or another tag for ENUMERATED and implicit tags). */
function int(n: number, tag = 0x02): Buffer {
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  if (bytes[0] & 0x80) bytes.unshift(0);
  return tlv(tag, Buffer.from(bytes));
}

const str = (tag: number, s: string): Buffer => tlv(tag, Buffer.from(s, 'latin1'));
const octets = (s: string): Buffer => str(0x04, s);
const bool = (b: boolean): Buffer => Buffer.from([0x01, 0x01, b ? 0xff : 0x00]);

/** Bytes that look random but are the same on every run (a small LCG). */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    b[i] = s >>> 24;
  }
  return b;
}

// --- SLP -----------------------------------------------------------------------------------------

/** An SLP string or list: 2-byte length, then the text. */
function slpString(s: string): Buffer {
  const t = Buffer.from(s, 'latin1');
  const b = Buffer.alloc(2 + t.length);
  b.writeUInt16BE(t.length, 0);
  t.copy(b, 2);
  return b;
}

/** An SLPv2 message (RFC 2608 section 8): the header with its 24-bit length, then the body. */
function slpV2(fn: number, xid: number, flags: number, body: Buffer, lang = 'en', lengthDelta = 0): Buffer {
  const tag = Buffer.from(lang, 'latin1');
  const h = Buffer.alloc(14);
  const total = 14 + tag.length + body.length + lengthDelta;
  h[0] = 2;
  h[1] = fn;
  h[2] = (total >> 16) & 0xff;
  h.writeUInt16BE(total & 0xffff, 3);
  h.writeUInt16BE(flags, 5);
  // next extension offset (bytes 7..9) 0: no extensions
  h.writeUInt16BE(xid, 10);
  h.writeUInt16BE(tag.length, 12);
  return Buffer.concat([h, tag, body]);
}

/** An SLPv1 message (RFC 2165 section 7): 12-byte header, US-ASCII (MIBenum 3). */
function slpV1(fn: number, xid: number, body: Buffer, lang = 'en'): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 1;
  h[1] = fn;
  h.writeUInt16BE(12 + body.length, 2);
  h[4] = 0; // flags: O M U A F, reserved
  h[5] = 0; // dialect
  h.write(lang, 6, 2, 'latin1');
  h.writeUInt16BE(3, 8); // character encoding
  h.writeUInt16BE(xid, 10);
  return Buffer.concat([h, body]);
}

/** SrvRqst: previous responder list, service type, scope list, predicate, SLP SPI. */
const srvRqst = (type: string, scope: string, predicate = ''): Buffer =>
  Buffer.concat([slpString(''), slpString(type), slpString(scope), slpString(predicate), slpString('')]);

/** A URL entry: reserved, lifetime (3600 s), URL, no authentication blocks. */
const urlEntry = (url: string): Buffer => Buffer.concat([Buffer.from([0x00, 0x0e, 0x10]), slpString(url), Buffer.from([0])]);

/** SrvRply: error code, URL entry count, URL entries. */
function srvRply(urls: string[]): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(0, 0);
  head.writeUInt16BE(urls.length, 2);
  return Buffer.concat([head, ...urls.map(urlEntry)]);
}

/** SrvReg: URL entry, service type, scope list, attribute list, no authentication blocks. */
const srvReg = (url: string, type: string, attrs: string): Buffer =>
  Buffer.concat([urlEntry(url), slpString(type), slpString('DEFAULT'), slpString(attrs), Buffer.from([0])]);

const SLP_REQUEST = slpV2(1, 0x1c2d, 0x2000, srvRqst('service:printer', 'DEFAULT'));
const SLP_REPLY = slpV2(2, 0x1c2d, 0, srvRply(['service:printer:lpr://printer.example.org:515/queue1']));

// --- Kerberos ------------------------------------------------------------------------------------

const REALM = 'EXAMPLE.ORG';
const kstr = (s: string): Buffer => str(0x1b, s); // GeneralString
const ktime = (s: string): Buffer => str(0x18, s); // GeneralizedTime
/** PrincipalName: name-type [0], name-string [1] SEQUENCE OF KerberosString. */
const principal = (type: number, ...names: string[]): Buffer => seq(ctx(0, int(type)), ctx(1, seq(...names.map(kstr))));

/** KDC-REQ-BODY: kdc-options, cname, realm, sname, till, nonce, etype. */
function reqBody(cname: Buffer | null, sname: Buffer): Buffer {
  const options = Buffer.from([0x03, 0x05, 0x00, 0x40, 0x81, 0x00, 0x10]); // forwardable, renewable, canonicalize
  return seq(
    ctx(0, options),
    ...(cname ? [ctx(1, cname)] : []),
    ctx(2, kstr(REALM)),
    ctx(3, sname),
    ctx(5, ktime('20370913024805Z')),
    ctx(7, int(0x5ddbfc6f)),
    ctx(8, seq(int(18), int(17), int(23))),
  );
}

/** AS-REQ [APPLICATION 10] or TGS-REQ [12]: pvno [1], msg-type [2], padata [3], req-body [4]. */
function kdcReq(type: 10 | 12, padata: Buffer[], body: Buffer, pvno = 5): Buffer {
  return app(type, seq(ctx(1, int(pvno)), ctx(2, int(type)), ctx(3, seq(...padata)), ctx(4, body)));
}

/** PA-DATA: padata-type [1], padata-value [2] OCTET STRING. */
const paData = (type: number, value: Buffer): Buffer => seq(ctx(1, int(type)), ctx(2, tlv(0x04, value)));

const AS_REQ = kdcReq(
  10,
  [paData(128, seq(ctx(0, bool(true))))], // PA-PAC-REQUEST
  reqBody(principal(1, 'alice'), principal(2, 'krbtgt', REALM)),
);

/** An EncryptedData: etype [0], cipher [2] (no kvno [1]). */
const encrypted = (etype: number, bytes: Buffer): Buffer => seq(ctx(0, int(etype)), ctx(2, tlv(0x04, bytes)));

/** A Ticket [APPLICATION 1]: tkt-vno [0], realm [1], sname [2], enc-part [3]. */
const ticket = (): Buffer => app(1, seq(ctx(0, int(5)), ctx(1, kstr(REALM)), ctx(2, principal(2, 'krbtgt', REALM)), ctx(3, encrypted(18, noise(48, 7)))));

/** AP-REQ [APPLICATION 14]: pvno [0], msg-type [1], ap-options [2], ticket [3], authenticator [4]. */
const apReq = (): Buffer =>
  app(14, seq(ctx(0, int(5)), ctx(1, int(14)), ctx(2, Buffer.from([0x03, 0x05, 0x00, 0, 0, 0, 0])), ctx(3, ticket()), ctx(4, encrypted(18, noise(40, 9)))));

const TGS_REQ = kdcReq(12, [paData(1, apReq())], reqBody(null, principal(2, 'cifs', 'fs1.example.org')));

/** KRB-ERROR [APPLICATION 30]: pvno, msg-type, stime [4], susec [5], error-code [6], realm [9], sname [10]. */
const KRB_ERROR = app(
  30,
  seq(
    ctx(0, int(5)),
    ctx(1, int(30)),
    ctx(4, ktime('20240131120000Z')),
    ctx(5, int(123456)),
    ctx(6, int(25)), // KDC_ERR_PREAUTH_REQUIRED
    ctx(9, kstr(REALM)),
    ctx(10, principal(2, 'krbtgt', REALM)),
    ctx(12, tlv(0x04, seq(paData(19, noise(12, 3))))),
  ),
);

/** AS-REP [APPLICATION 11]: pvno [0], msg-type [1], crealm [3], cname [4], ticket [5], enc-part [6]. */
const AS_REP = app(
  11,
  seq(ctx(0, int(5)), ctx(1, int(11)), ctx(3, kstr(REALM)), ctx(4, principal(1, 'alice')), ctx(5, ticket()), ctx(6, encrypted(18, noise(64, 11)))),
);

/** The TCP framing: a 4-byte big-endian record length, then the message. */
function record(msg: Buffer, lengthDelta = 0): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(msg.length + lengthDelta, 0);
  return Buffer.concat([b, msg]);
}

// --- LDAP ----------------------------------------------------------------------------------------

/** LDAPMessage: SEQUENCE { messageID, protocolOp, controls [0] OPTIONAL }. */
const ldapMsg = (id: number, op: Buffer, ...controls: Buffer[]): Buffer => seq(int(id), op, ...(controls.length ? [ctx(0, ...controls)] : []));
/** LDAPResult fields: resultCode ENUMERATED, matchedDN, diagnosticMessage. */
const result = (code: number, diag = ''): Buffer[] => [int(code, 0x0a), octets(''), octets(diag)];

const BIND_REQUEST = ldapMsg(1, app(0, int(3), octets('cn=admin,dc=example,dc=org'), str(0x80, 'secret')));
const BIND_RESPONSE = ldapMsg(1, app(1, ...result(0)));

/** searchRequest: base, scope, derefAliases, sizeLimit, timeLimit, typesOnly, filter, attributes. */
function searchRequest(id: number, base: string, filter: Buffer, attrs: string[]): Buffer {
  return ldapMsg(id, app(3, octets(base), int(2, 0x0a), int(0, 0x0a), int(0), int(0), bool(false), filter, seq(...attrs.map(octets))));
}
/** equalityMatch [3] { attributeDesc, assertionValue }. */
const equality = (attr: string, value: string): Buffer => tlv(0xa3, octets(attr), octets(value));

const SEARCH_REQUEST = searchRequest(
  2,
  'dc=example,dc=org',
  tlv(0xa0, equality('objectClass', 'person'), equality('uid', 'alice')), // and [0]
  ['cn', 'mail'],
);
const SEARCH_ENTRY = ldapMsg(2, app(4, octets('uid=alice,ou=people,dc=example,dc=org'), seq(seq(octets('cn'), tlv(0x31, octets('Alice Liddell'))))));
const SEARCH_DONE = ldapMsg(2, app(5, ...result(0)));

/** The Active Directory locator ping over CLDAP: (&(DnsDomain=...)(NtVer=...)), attribute Netlogon. */
const CLDAP_PING = searchRequest(7, '', tlv(0xa0, equality('DnsDomain', 'example.org'), equality('NtVer', '\x16\x00\x00\x00')), ['Netlogon']);
/** The DC's answer as AD frames it, lengths in the 4-byte form. */
const CLDAP_ANSWER = tlv4(0x30, int(7), tlv4(0x64, octets(''), tlv4(0x30, tlv4(0x30, octets('Netlogon'), tlv4(0x31, tlv(0x04, noise(60, 21)))))));
/** What the DC answers a SASL bind on 389, as Active Directory frames it (lengths in the 4-byte form). */
const AD_BIND_RESPONSE = tlv4(0x30, int(3), tlv4(0x61, ...result(0), tlv(0x87, noise(24, 5))));

/** A SASL-sealed LDAP PDU: 4-byte length, then the GSSAPI wrap token (opaque). */
function sealed(n: number, seed: number): Buffer {
  const b = Buffer.alloc(4 + n);
  b.writeUInt32BE(n, 0);
  noise(n, seed).copy(b, 4);
  return b;
}

/** An SNMP GetRequest, the closest BER look-alike: version INTEGER then community OCTET STRING. */
const SYS_DESCR = tlv(0x06, Buffer.from([0x2b, 6, 1, 2, 1, 1, 1, 0])); // 1.3.6.1.2.1.1.1.0
const SNMP_GET = seq(int(1), octets('public'), tlv(0xa0, int(0x1234), int(0), int(0), seq(seq(SYS_DESCR, Buffer.from([0x05, 0x00])))));

// --- The cases -----------------------------------------------------------------------------------

const c = (fromClient: boolean, payload: Buffer) => ({ fromClient, payload });

export const DIRECTORY_CASES: DpiCase[] = [
  // SLP
  {
    name: 'SLPv2 SrvRqst (multicast request flag) and its SrvRply',
    proto: 17,
    clientPort: 49812,
    serverPort: 427,
    messages: [c(true, SLP_REQUEST), c(false, SLP_REPLY)],
    app: 'Service_Location_Protocol',
  },
  {
    name: 'SLPv2 SrvRply alone (the reply to a multicast request)',
    proto: 17,
    clientPort: 51733,
    serverPort: 427,
    messages: [c(false, SLP_REPLY)],
    app: 'Service_Location_Protocol',
  },
  {
    name: 'SLPv2 SrvTypeRqst over TCP',
    proto: 6,
    clientPort: 40122,
    serverPort: 427,
    messages: [c(true, slpV2(9, 0x0101, 0, Buffer.concat([slpString(''), Buffer.from([0xff, 0xff]), slpString('DEFAULT')])))],
    app: 'Service_Location_Protocol',
  },
  {
    name: 'SLPv2 SrvReg with a regional language tag',
    proto: 17,
    clientPort: 427,
    serverPort: 427,
    messages: [c(true, slpV2(3, 0x7777, 0x4000, srvReg('service:ipp://printer.example.org:631/', 'service:ipp', '(x=1)'), 'en-US'))],
    app: 'Service_Location_Protocol',
  },
  {
    name: 'SLPv1 SrvReq',
    proto: 17,
    clientPort: 51708,
    serverPort: 427,
    messages: [c(true, slpV1(1, 0x1ef7, Buffer.concat([slpString(''), slpString('service:printer/DEFAULT//')])))],
    app: 'Service_Location_Protocol',
  },
  {
    name: 'SLPv1 AttrRply from the server',
    proto: 17,
    clientPort: 57782,
    serverPort: 427,
    messages: [c(false, slpV1(7, 0x1d79, Buffer.concat([Buffer.from([0, 0]), slpString('(x-hp-ver=01),(x-hp-num_port=01)')])))],
    app: 'Service_Location_Protocol',
  },
  {
    name: 'noise on UDP 427',
    proto: 17,
    clientPort: 50000,
    serverPort: 427,
    messages: [c(true, noise(40, 427)), c(false, noise(40, 4270))],
    app: '',
  },
  {
    name: 'SLPv2 SrvRqst whose length is one byte short of the datagram',
    proto: 17,
    clientPort: 50001,
    serverPort: 427,
    messages: [c(true, slpV2(1, 0x1c2d, 0, srvRqst('service:printer', 'DEFAULT'), 'en', -1))],
    app: '',
  },
  {
    name: 'SLPv2-like header with function 12 and reserved flag bits',
    proto: 17,
    clientPort: 50002,
    serverPort: 427,
    messages: [c(true, slpV2(12, 0x1c2d, 0x0003, srvRqst('service:printer', 'DEFAULT')))],
    app: '',
  },

  // Kerberos
  {
    name: 'Kerberos AS-REQ over UDP, then the KRB-ERROR asking for pre-authentication',
    proto: 17,
    clientPort: 34473,
    serverPort: 88,
    messages: [c(true, AS_REQ), c(false, KRB_ERROR)],
    app: 'Kerberos',
  },
  {
    name: 'Kerberos AS-REQ over TCP with the record length',
    proto: 6,
    clientPort: 49157,
    serverPort: 88,
    messages: [c(true, record(AS_REQ)), c(false, record(AS_REP))],
    app: 'Kerberos',
  },
  {
    name: 'Kerberos KRB-ERROR reply alone over UDP',
    proto: 17,
    clientPort: 34474,
    serverPort: 88,
    messages: [c(false, KRB_ERROR)],
    app: 'Kerberos',
  },
  {
    name: 'Kerberos over TCP picked up mid-request: the tail of a TGS-REQ, then the KRB-ERROR record',
    proto: 6,
    clientPort: 49173,
    serverPort: 88,
    messages: [c(true, record(TGS_REQ).subarray(300)), c(false, record(KRB_ERROR))],
    app: 'Kerberos',
  },
  {
    name: 'Kerberos TGS-REQ over TCP with the record length in a segment of its own',
    proto: 6,
    clientPort: 49200,
    serverPort: 88,
    messages: [c(true, record(TGS_REQ).subarray(0, 4)), c(true, TGS_REQ)],
    app: 'Kerberos',
  },
  {
    name: 'Kerberos AS-REP over UDP from the KDC',
    proto: 17,
    clientPort: 1061,
    serverPort: 88,
    messages: [c(false, AS_REP)],
    app: 'Kerberos',
  },
  {
    name: 'noise on TCP 88',
    proto: 6,
    clientPort: 50010,
    serverPort: 88,
    messages: [c(true, noise(40, 88)), c(false, noise(40, 880))],
    app: '',
  },
  {
    name: 'AS-REQ with pvno 4 on UDP 88',
    proto: 17,
    clientPort: 50011,
    serverPort: 88,
    messages: [c(true, kdcReq(10, [], reqBody(principal(1, 'alice'), principal(2, 'krbtgt', REALM)), 4))],
    app: '',
  },
  {
    name: 'AS-REQ over TCP whose record length disagrees with the message',
    proto: 6,
    clientPort: 50012,
    serverPort: 88,
    messages: [c(true, record(AS_REQ, 2)), c(true, record(AS_REQ, 2))],
    app: '',
  },
  {
    name: 'AS-REQ over UDP with a byte of trailing garbage',
    proto: 17,
    clientPort: 50013,
    serverPort: 88,
    messages: [c(true, Buffer.concat([AS_REQ, Buffer.from([0])]))],
    app: '',
  },

  // LDAP
  {
    name: 'LDAP simple bindRequest and bindResponse',
    proto: 6,
    clientPort: 57650,
    serverPort: 389,
    messages: [c(true, BIND_REQUEST), c(false, BIND_RESPONSE)],
    app: 'LDAP',
  },
  {
    name: 'LDAP searchRequest with its entry and done in one segment',
    proto: 6,
    clientPort: 57651,
    serverPort: 389,
    messages: [c(true, SEARCH_REQUEST), c(false, Buffer.concat([SEARCH_ENTRY, SEARCH_DONE]))],
    app: 'LDAP',
  },
  {
    name: 'LDAP searchRequest to the global catalog, split over two segments',
    proto: 6,
    clientPort: 57652,
    serverPort: 3268,
    messages: [c(true, SEARCH_REQUEST.subarray(0, 20)), c(true, SEARCH_REQUEST.subarray(20))],
    app: 'LDAP',
  },
  {
    name: 'LDAP unbindRequest with a control',
    proto: 6,
    clientPort: 57653,
    serverPort: 389,
    messages: [c(true, ldapMsg(3, Buffer.from([0x42, 0x00]), seq(octets('2.16.840.1.113730.3.4.2'))))],
    app: 'LDAP',
  },
  {
    name: 'LDAP on a non-standard port (a JNDI lookup to 1389)',
    proto: 6,
    clientPort: 57742,
    serverPort: 1389,
    messages: [c(true, ldapMsg(1, app(0, int(3), octets(''), str(0x80, '')))), c(false, BIND_RESPONSE)],
    app: 'LDAP',
  },
  {
    name: "LDAP SASL-sealed client PDU, then the server's clear bind response (Active Directory framing)",
    proto: 6,
    clientPort: 49161,
    serverPort: 389,
    messages: [c(true, sealed(260, 61)), c(false, AD_BIND_RESPONSE)],
    app: 'LDAP',
  },
  {
    name: 'CLDAP domain controller ping and its answer',
    proto: 17,
    clientPort: 60123,
    serverPort: 389,
    messages: [c(true, CLDAP_PING), c(false, CLDAP_ANSWER)],
    app: 'LDAP',
  },
  {
    name: 'noise on TCP 389',
    proto: 6,
    clientPort: 50020,
    serverPort: 389,
    messages: [c(true, noise(40, 389)), c(false, noise(40, 3890))],
    app: '',
  },
  {
    name: 'SNMP GetRequest bytes over TCP 389',
    proto: 6,
    clientPort: 50021,
    serverPort: 389,
    messages: [c(true, SNMP_GET), c(true, SNMP_GET)],
    app: '',
  },
  {
    name: 'LDAP-like message with an undefined operation tag (APPLICATION 18)',
    proto: 6,
    clientPort: 50022,
    serverPort: 389,
    messages: [c(true, ldapMsg(4, app(18, octets('x')))), c(true, ldapMsg(5, app(18, octets('x'))))],
    app: '',
  },
  {
    name: 'CLDAP searchRequest with trailing bytes after the message',
    proto: 17,
    clientPort: 60124,
    serverPort: 389,
    messages: [c(true, Buffer.concat([CLDAP_PING, Buffer.from([0, 0])]))],
    app: '',
  },
];
