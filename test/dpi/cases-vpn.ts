// VPN flows for the DPI engine, built byte by byte: IPsec (IKEv1/IKEv2 on UDP 500, IKE after the
// non-ESP marker and ESP-in-UDP on 4500), OpenVPN (hard resets without tls-auth, with tls-auth
// HMACs, under tls-crypt; over UDP and over TCP with its length prefix; on 1194 and elsewhere) and
// WireGuard (handshakes of the exact sizes, a provider's longer ones, transport data alone), with
// look-alikes that DPI must not identify. Keys, nonces, HMACs and ciphertext are filler bytes from
// a fixed generator: the dissectors look at the framing only.
import type { DpiCase, DpiMessage } from './cases.js';

// ------------------------------------------------------------------ bytes

const be16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];
const be32 = (v: number): number[] => [(v >>> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];
const le32 = (v: number): number[] => [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];

/** n bytes from a linear congruential generator: stands for keys, nonces, MACs and ciphertext. */
function filler(seed: number, n: number): number[] {
  const out: number[] = [];
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(x >>> 24);
  }
  return out;
}

const msg = (fromClient: boolean, bytes: number[]): DpiMessage => ({ fromClient, payload: Buffer.from(bytes) });

// ------------------------------------------------------------------ IKE (RFC 7296, RFC 2408)

const IKEV1 = 0x10;
const IKEV2 = 0x20;
const FLAG_INITIATOR = 0x08;
const FLAG_RESPONSE = 0x20;

/** An IKE message: the 28-byte header (length filled in) and its payloads. */
function ike(spiI: number[], spiR: number[], next: number, version: number, exchange: number, flags: number, messageId: number, payloads: number[]): number[] {
  return [...spiI, ...spiR, next, version, exchange, flags, ...be32(messageId), ...be32(28 + payloads.length), ...payloads];
}

/** A generic payload header (next payload, critical bit 0, length) and its body. */
const payload = (next: number, body: number[]): number[] => [next, 0, ...be16(4 + body.length), ...body];

/** An IKEv2 transform: type, id and, for AES, the key length attribute. */
function transform(last: boolean, type: number, id: number, keyBits = 0): number[] {
  const attr = keyBits > 0 ? [0x80, 0x0e, ...be16(keyBits)] : [];
  return [last ? 0 : 3, 0, ...be16(8 + attr.length), type, 0, ...be16(id), ...attr];
}

/** IKEv2 SA payload body: one IKE proposal, AES-CBC-128 / HMAC-SHA2-256 / PRF-SHA2-256 / group 19. */
function ikeV2Proposal(): number[] {
  const transforms = [...transform(false, 1, 12, 128), ...transform(false, 3, 12), ...transform(false, 2, 5), ...transform(true, 4, 19)];
  return [0, 0, ...be16(8 + transforms.length), 1, 1, 0, 4, ...transforms];
}

const SPI_I = [0x6e, 0x09, 0x51, 0x53, 0x92, 0xeb, 0x66, 0xe7];
const SPI_R = [0x5f, 0x46, 0xee, 0x70, 0xbc, 0x4c, 0x5d, 0x0d];
const NO_SPI = [0, 0, 0, 0, 0, 0, 0, 0];

/** IKE_SA_INIT: SA, KE (group 19, 64 bytes), nonce, NAT detection notifies. */
function ikeSaInit(response: boolean): number[] {
  const ke = [...be16(19), 0, 0, ...filler(response ? 2 : 1, 64)];
  const natSrc = [0, 0, ...be16(16388), ...filler(3, 20)];
  const natDst = [0, 0, ...be16(16389), ...filler(4, 20)];
  const payloads = [
    ...payload(34, ikeV2Proposal()),
    ...payload(40, ke),
    ...payload(41, filler(response ? 6 : 5, 32)),
    ...payload(41, natSrc),
    ...payload(0, natDst),
  ];
  return ike(SPI_I, response ? SPI_R : NO_SPI, 33, IKEV2, 34, response ? FLAG_RESPONSE : FLAG_INITIATOR, 0, payloads);
}

/** IKE_AUTH: one SK payload (IV, encrypted IDi/AUTH/SA/TS..., ICV), message ID 1. */
function ikeAuth(response: boolean): number[] {
  const sk = payload(response ? 36 : 35, [...filler(7, 16), ...filler(response ? 9 : 8, response ? 160 : 320), ...filler(10, 16)]);
  return ike(SPI_I, SPI_R, 46, IKEV2, 35, response ? FLAG_RESPONSE : FLAG_INITIATOR, 1, sk);
}

/** IKEv1 Main Mode, first message: an SA payload with one proposal and one transform. */
function ikeV1MainMode(): number[] {
  const attrs = [0x80, 0x01, 0x00, 0x07, 0x80, 0x0e, 0x00, 0x80, 0x80, 0x02, 0x00, 0x04, 0x80, 0x03, 0x00, 0x01, 0x80, 0x04, 0x00, 0x0e];
  const tr = [0, 0, ...be16(8 + attrs.length), 1, 1, 0, 0, ...attrs];
  const proposal = [0, 0, ...be16(8 + tr.length), 1, 1, 0, 1, ...tr];
  const sa = payload(13, [...be32(1), ...be32(1), ...proposal]); // DOI IPsec, situation identity only
  const vid = payload(0, filler(11, 16));
  return ike(SPI_I, NO_SPI, 1, IKEV1, 2, 0, 0, [...sa, ...vid]);
}

const NON_ESP = [0, 0, 0, 0];

/** ESP in UDP (RFC 3948): SPI, sequence number, IV, ciphertext, ICV. */
const esp = (spi: number, seq: number): number[] => [...be32(spi), ...be32(seq), ...filler(seq, 16), ...filler(seq + 100, 64), ...filler(seq + 200, 16)];

// ------------------------------------------------------------------ OpenVPN

const P_CONTROL_HARD_RESET_CLIENT_V2 = 7;
const P_CONTROL_HARD_RESET_SERVER_V2 = 8;
const P_CONTROL_V1 = 4;
const P_ACK_V1 = 5;

const CLIENT_SID = [0x39, 0xfd, 0xed, 0x2d, 0xaa, 0x10, 0xa4, 0x37];
const SERVER_SID = [0x94, 0x21, 0x91, 0x7d, 0xe7, 0x26, 0x77, 0x29];
const OTHER_SID = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];

interface TlsAuth {
  hmac: number;
  packetId: number;
}

/**
 * An OpenVPN control packet: opcode and key id 0, session id, [tls-auth HMAC, packet id, time],
 * ACK array (count, message ids, the peer's session id), message id (none for P_ACK_V1), payload.
 */
function ovpn(op: number, sid: number[], acks: number[], peer: number[], messageId: number, body: number[] = [], auth?: TlsAuth): number[] {
  const tlsAuth = auth ? [...filler(auth.hmac + auth.packetId, auth.hmac), ...be32(auth.packetId), ...be32(0x669fcf31)] : [];
  const ackArray = [acks.length, ...acks.flatMap(be32), ...(acks.length > 0 ? peer : [])];
  return [op << 3, ...sid, ...tlsAuth, ...ackArray, ...(op === P_ACK_V1 ? [] : be32(messageId)), ...body];
}

/** Under tls-crypt: opcode, session id, packet id and time in clear, a 32-byte tag, then ciphertext. */
const ovpnCrypt = (op: number, sid: number[], packetId: number, n: number): number[] => [
  op << 3,
  ...sid,
  ...be32(packetId),
  ...be32(0x625a9e97),
  ...filler(packetId * 31 + op, 32),
  ...filler(packetId * 17 + op, n),
];

/** The 2-byte length OpenVPN puts before each packet over TCP. */
const tcpFramed = (p: number[]): number[] => [...be16(p.length), ...p];

/** A TLS record inside P_CONTROL_V1 (its first bytes: a ClientHello record header). */
const TLS_PIECE = [0x16, 0x03, 0x01, 0x00, 0xdd, 0x01, 0x00, 0x00, 0xd9, 0x03, 0x03, ...filler(21, 64)];

function ovpnHandshake(auth?: { client: TlsAuth; server: TlsAuth }): [number[], number[], number[]] {
  return [
    ovpn(P_CONTROL_HARD_RESET_CLIENT_V2, CLIENT_SID, [], [], 0, [], auth?.client),
    ovpn(P_CONTROL_HARD_RESET_SERVER_V2, SERVER_SID, [0], CLIENT_SID, 0, [], auth?.server),
    ovpn(P_CONTROL_V1, CLIENT_SID, [0], SERVER_SID, 1, TLS_PIECE, auth ? { ...auth.client, packetId: 2 } : undefined),
  ];
}

// ------------------------------------------------------------------ WireGuard

const WG_INITIATOR = 0xd837d030;
const WG_RESPONDER = 0x06f47dab;

/** Handshake initiation: sender index, ephemeral key, encrypted static key and timestamp, mac1, mac2; 148 bytes (+ extra). */
const wgInitiation = (sender: number, extra = 0): number[] => [
  1,
  0,
  0,
  0,
  ...le32(sender),
  ...filler(31, 32),
  ...filler(32, 48),
  ...filler(33, 28),
  ...filler(34, 16),
  ...new Array<number>(16).fill(0),
  ...filler(35, extra),
];

/** Handshake response: sender and receiver index, ephemeral key, encrypted empty, mac1, mac2; 92 bytes (+ extra). */
const wgResponse = (sender: number, receiver: number, extra = 0): number[] => [
  2,
  0,
  0,
  0,
  ...le32(sender),
  ...le32(receiver),
  ...filler(41, 32),
  ...filler(42, 16),
  ...filler(43, 16),
  ...new Array<number>(16).fill(0),
  ...filler(44, extra),
];

/** Transport data: receiver index, 64-bit little-endian counter, ciphertext of a padded packet and its tag. */
const wgData = (receiver: number, counter: number, padded: number): number[] => [
  4,
  0,
  0,
  0,
  ...le32(receiver),
  ...le32(counter),
  0,
  0,
  0,
  0,
  ...filler(counter + 50, padded),
  ...filler(counter + 60, 16),
];

// ------------------------------------------------------------------ the cases

export const VPN_CASES: DpiCase[] = [
  // IPsec
  {
    name: 'IKEv2 IKE_SA_INIT request and response on UDP 500',
    proto: 17,
    clientPort: 500,
    serverPort: 500,
    messages: [msg(true, ikeSaInit(false)), msg(false, ikeSaInit(true))],
    app: 'IPSec',
  },
  {
    name: 'IKEv2 IKE_SA_INIT from a NATed client port',
    proto: 17,
    clientPort: 10500,
    serverPort: 500,
    messages: [msg(true, ikeSaInit(false)), msg(false, ikeSaInit(true))],
    app: 'IPSec',
  },
  {
    name: 'IKEv1 Main Mode first message on UDP 500',
    proto: 17,
    clientPort: 500,
    serverPort: 500,
    messages: [msg(true, ikeV1MainMode())],
    app: 'IPSec',
  },
  {
    name: 'IKEv2 IKE_AUTH after the non-ESP marker on UDP 4500',
    proto: 17,
    clientPort: 14500,
    serverPort: 4500,
    messages: [msg(true, [...NON_ESP, ...ikeAuth(false)]), msg(false, [...NON_ESP, ...ikeAuth(true)])],
    app: 'IPSec',
  },
  {
    name: 'IKE_SA_INIT request off the IKE ports (clean header)',
    proto: 17,
    clientPort: 41000,
    serverPort: 7500,
    messages: [msg(true, ikeSaInit(false))],
    app: 'IPSec',
  },
  {
    name: 'ESP-in-UDP on 4500 after a NAT-keepalive: the same SPI, sequence 1 then 2',
    proto: 17,
    clientPort: 4500,
    serverPort: 4500,
    messages: [msg(true, [0xff]), msg(true, esp(0xc6a0b7cb, 1)), msg(true, esp(0xc6a0b7cb, 2))],
    app: 'IPSec',
  },
  {
    name: 'IKE over TCP (RFC 8229) on 4500',
    proto: 6,
    clientPort: 51000,
    serverPort: 4500,
    messages: [
      msg(true, [
        ...ascii('IKETCP'),
        ...be16(2 + 4 + 28 + 40),
        ...NON_ESP,
        ...ike(SPI_I, NO_SPI, 33, IKEV2, 34, FLAG_INITIATOR, 0, payload(0, filler(12, 36))),
      ]),
    ],
    app: 'IPSec',
  },

  // OpenVPN
  {
    name: 'OpenVPN client and server hard reset over UDP 1194',
    proto: 17,
    clientPort: 51146,
    serverPort: 1194,
    messages: ovpnHandshake().map((p, i) => msg(i !== 1, p)),
    app: 'OpenVPN',
  },
  {
    name: 'OpenVPN hard resets over TCP 1194 (length prefix)',
    proto: 6,
    clientPort: 39772,
    serverPort: 1194,
    messages: ovpnHandshake().map((p, i) => msg(i !== 1, tcpFramed(p))),
    app: 'OpenVPN',
  },
  {
    name: 'OpenVPN hard resets on a non-standard UDP port (13680 <-> 13680)',
    proto: 17,
    clientPort: 13680,
    serverPort: 13680,
    messages: ovpnHandshake().map((p, i) => msg(i !== 1, p)),
    app: 'OpenVPN',
  },
  {
    name: 'OpenVPN with tls-auth (HMAC-SHA1) on a non-standard UDP port',
    proto: 17,
    clientPort: 41507,
    serverPort: 13680,
    messages: ovpnHandshake({ client: { hmac: 20, packetId: 1 }, server: { hmac: 20, packetId: 1 } }).map((p, i) => msg(i !== 1, p)),
    app: 'OpenVPN',
  },
  {
    name: 'OpenVPN with tls-auth (HMAC-SHA512) on UDP 443, where QUIC is tried first',
    proto: 17,
    clientPort: 41133,
    serverPort: 443,
    messages: ovpnHandshake({ client: { hmac: 64, packetId: 1 }, server: { hmac: 64, packetId: 1 } }).map((p, i) => msg(i !== 1, p)),
    app: 'OpenVPN',
  },
  {
    name: 'OpenVPN with tls-auth over TCP 443, where TLS is tried first',
    proto: 6,
    clientPort: 60140,
    serverPort: 443,
    messages: ovpnHandshake({ client: { hmac: 20, packetId: 1 }, server: { hmac: 20, packetId: 1 } }).map((p, i) => msg(i !== 1, tcpFramed(p))),
    app: 'OpenVPN',
  },
  {
    name: 'OpenVPN under tls-crypt on a non-standard UDP port: session ids consistent both ways',
    proto: 17,
    clientPort: 56256,
    serverPort: 1195,
    messages: [
      msg(true, ovpnCrypt(P_CONTROL_HARD_RESET_CLIENT_V2, CLIENT_SID, 1, 5)),
      msg(false, ovpnCrypt(P_CONTROL_HARD_RESET_SERVER_V2, SERVER_SID, 1, 17)),
      msg(true, ovpnCrypt(P_CONTROL_V1, CLIENT_SID, 2, 300)),
      msg(false, ovpnCrypt(P_ACK_V1, SERVER_SID, 2, 13)),
    ],
    app: 'OpenVPN',
  },

  // WireGuard
  {
    name: 'WireGuard initiation and response on UDP 51820',
    proto: 17,
    clientPort: 43462,
    serverPort: 51820,
    messages: [msg(true, wgInitiation(WG_INITIATOR)), msg(false, wgResponse(WG_RESPONDER, WG_INITIATOR)), msg(true, wgData(WG_RESPONDER, 0, 96))],
    app: 'WireGuard',
  },
  {
    name: 'WireGuard initiation and response on a random port',
    proto: 17,
    clientPort: 57701,
    serverPort: 38211,
    messages: [msg(true, wgInitiation(WG_INITIATOR)), msg(false, wgResponse(WG_RESPONDER, WG_INITIATOR))],
    app: 'WireGuard',
  },
  {
    name: 'WireGuard response first (capture started after the initiation)',
    proto: 17,
    clientPort: 50123,
    serverPort: 443,
    messages: [msg(false, wgResponse(WG_RESPONDER, WG_INITIATOR)), msg(true, wgData(WG_RESPONDER, 0, 0))],
    app: 'WireGuard',
  },
  {
    name: 'Extended WireGuard handshake (204 + 100 bytes, as TunnelBear) on a random port',
    proto: 17,
    clientPort: 57636,
    serverPort: 31000,
    messages: [msg(true, wgInitiation(WG_INITIATOR, 56)), msg(false, wgResponse(WG_RESPONDER, WG_INITIATOR, 8))],
    app: 'WireGuard',
  },
  {
    name: 'WireGuard transport data only, both ways, on UDP 5060 (SIP tried first)',
    proto: 17,
    clientPort: 22595,
    serverPort: 5060,
    messages: [msg(true, wgData(0x15764979, 0x13, 64)), msg(false, wgData(0xb048101c, 0x0f, 64)), msg(true, wgData(0x15764979, 0x14, 48))],
    app: 'WireGuard',
  },

  // Look-alikes
  {
    name: 'not WireGuard: 148 filler bytes that do not start with 01 00 00 00',
    proto: 17,
    clientPort: 40000,
    serverPort: 40001,
    messages: [msg(true, [1, 2, 0, 0, ...filler(77, 144)]), msg(false, [1, 0, 0, 1, ...filler(78, 144)])],
    app: '',
  },
  {
    name: 'not WireGuard: type 1 with a zeroed key (an all-zero 148-byte buffer but its first word)',
    proto: 17,
    clientPort: 40002,
    serverPort: 40003,
    messages: [msg(true, [1, 0, 0, 0, ...new Array<number>(144).fill(0)])],
    app: '',
  },
  {
    name: 'not WireGuard: a lone 64-byte "type 4" datagram on a random port',
    proto: 17,
    clientPort: 40004,
    serverPort: 40005,
    messages: [msg(true, wgData(0x01020304, 7, 32))],
    app: '',
  },
  {
    name: 'not WireGuard: "type 4" datagrams with a different index each time',
    proto: 17,
    clientPort: 40006,
    serverPort: 40007,
    messages: [msg(true, wgData(0x01020304, 7, 32)), msg(true, wgData(0x0a0b0c0d, 8, 32)), msg(true, wgData(0x11121314, 9, 32))],
    app: '',
  },
  {
    name: 'not OpenVPN: a client hard reset alone off 1194, resent without answer',
    proto: 17,
    clientPort: 40008,
    serverPort: 6000,
    messages: [msg(true, ovpn(P_CONTROL_HARD_RESET_CLIENT_V2, CLIENT_SID, [], [], 0)), msg(true, ovpn(P_CONTROL_HARD_RESET_CLIENT_V2, CLIENT_SID, [], [], 0))],
    app: '',
  },
  {
    name: 'not OpenVPN: a "server reset" that acks another session id, off 1194',
    proto: 17,
    clientPort: 40010,
    serverPort: 6001,
    messages: [
      msg(true, ovpn(P_CONTROL_HARD_RESET_CLIENT_V2, CLIENT_SID, [], [], 0)),
      msg(false, ovpn(P_CONTROL_HARD_RESET_SERVER_V2, SERVER_SID, [0], OTHER_SID, 0)),
    ],
    app: '',
  },
  {
    name: 'not OpenVPN: fixed non-protocol bytes on UDP 1194',
    proto: 17,
    clientPort: 40012,
    serverPort: 1194,
    messages: [
      msg(true, [0x38, ...filler(91, 8), 0xff, ...filler(92, 40)]),
      msg(false, [0x40, ...filler(93, 8), 0x09, ...filler(94, 40)]),
      msg(true, ascii('status 1194 please\r\n')),
    ],
    app: '',
  },
  {
    name: 'not OpenVPN: a client reset whose TCP length prefix is not its size, on TCP 1194',
    proto: 6,
    clientPort: 40014,
    serverPort: 1194,
    messages: [msg(true, [...be16(200), ...ovpn(P_CONTROL_HARD_RESET_CLIENT_V2, CLIENT_SID, [], [], 0)]), msg(false, filler(95, 30))],
    app: '',
  },
  {
    name: 'not IPsec: fixed non-protocol bytes on UDP 500',
    proto: 17,
    clientPort: 500,
    serverPort: 500,
    messages: [msg(true, filler(101, 80)), msg(false, ascii('no ike here, just bytes on port 500'))],
    app: '',
  },
  {
    name: "not IPsec: an IKE header whose length is not the datagram's, on UDP 500",
    proto: 17,
    clientPort: 500,
    serverPort: 500,
    messages: [msg(true, [...ikeSaInit(false), 0, 0, 0, 0])],
    app: '',
  },
  {
    name: 'not IPsec: a lone ESP-like datagram on UDP 4500',
    proto: 17,
    clientPort: 40016,
    serverPort: 4500,
    messages: [msg(true, esp(0x00bc614e, 1))],
    app: '',
  },
];
