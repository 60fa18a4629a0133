// QUIC beyond v1, on Initials built byte by byte and protected here (RFC 9001 §5: keys from the
// destination connection ID and each version's salt, AES-128-GCM, header protection with
// AES-128-ECB): QUIC v2 (RFC 9369: its salt, its labels, Initial type 0b01), Google QUIC Q050
// (a CHLO with an SNI tag in a 0x08 frame), T050 and T051 (a TLS ClientHello in a 0x08 frame), a
// client forcing version negotiation and the server's version negotiation answer; and near misses.
// The salts are the published ones (RFC 9001, RFC 9369, Chromium's QUIC for Q050/T050/T051).
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import { DpiEngine } from '../src/dpi/engine.js';
import { initialKeys } from '../src/dpi/protocols/quic.js';

const SALTS = {
  v1: '38762cf7f55934b34d179ae6a4c80cadccbb7f0a',
  v2: '0dede3def700a6db819381be6e269dcbf9bd2ed9',
  q050: '504574efd066fe2f9d945cfcdbd3a7f0d3b56b45',
  t050: '7ff579e5acd072915580304c43a2367c60488310',
  t051: '7a4edef4e7ccee5fa4506c19124fc8ccda6e033d',
};

const u16 = (v: number) => [v >> 8, v & 0xff];
const u24 = (v: number) => [v >> 16, (v >> 8) & 0xff, v & 0xff];
const vec16 = (b: number[]) => [...u16(b.length), ...b];
const ext = (type: number, body: number[]) => [...u16(type), ...vec16(body)];
const ascii = (s: string) => [...Buffer.from(s, 'latin1')];
/** A two-byte QUIC varint. */
const v2b = (n: number) => [0x40 | (n >> 8), n & 0xff];

function clientHello(sni: string): Buffer {
  const ciphers = [0x1301, 0x1302, 0x1303].flatMap(u16);
  const alpn = ['h3'].flatMap((p) => [p.length, ...ascii(p)]);
  const exts = [
    ...ext(0x0000, vec16([0, ...vec16(ascii(sni))])),
    ...ext(0x0010, vec16(alpn)),
    ...ext(0x002b, [2, ...u16(0x0304)]),
    ...ext(0x000d, vec16([0x0403, 0x0804].flatMap(u16))),
    ...ext(0x000a, vec16([0x001d].flatMap(u16))),
  ];
  const body = [...u16(0x0303), ...new Array(32).fill(7), 0, ...vec16(ciphers), 1, 0, ...vec16(exts)];
  return Buffer.from([1, ...u24(body.length), ...body]);
}

/** A gQUIC CHLO: tag count, padding, then (tag, end offset) pairs in tag order, then the values. */
function chlo(sni: string): Buffer {
  const tags: [string, Buffer][] = [
    ['PAD\0', Buffer.alloc(20)],
    ['SNI\0', Buffer.from(sni, 'latin1')],
    ['VER\0', Buffer.from('Q050', 'latin1')],
  ];
  const head = Buffer.alloc(8);
  head.write('CHLO', 0, 'latin1');
  head.writeUInt16LE(tags.length, 4);
  const table = Buffer.alloc(8 * tags.length);
  let offset = 0;
  tags.forEach(([tag, value], i) => {
    table.write(tag, 8 * i, 'latin1');
    offset += value.length;
    table.writeUInt32LE(offset, 8 * i + 4);
  });
  return Buffer.concat([head, table, ...tags.map(([, v]) => v)]);
}

/** A protected client Initial of `version` (long header type `type`), its frames padded to 1,100 bytes. */
function initial(version: number, salt: string, frames: Buffer, opts: { v2?: boolean; type?: number } = {}): Buffer {
  const dcid = Buffer.from('c0ffee0011223344', 'hex');
  const keys = initialKeys(dcid, Buffer.from(salt, 'hex'), opts.v2 === true);
  const padded = Buffer.concat([frames, Buffer.alloc(Math.max(0, 1100 - frames.length))]);
  const pnLen = 4;
  const length = pnLen + padded.length + 16;
  const type = opts.type ?? 0;
  const header = Buffer.from([
    0xc0 | (type << 4) | (pnLen - 1),
    ...[24, 16, 8, 0].map((s) => (version >>> s) & 0xff),
    dcid.length,
    ...dcid,
    0,
    0,
    ...v2b(length),
    0,
    0,
    0,
    7,
  ]);
  const nonce = Buffer.from(keys.iv);
  nonce[11] ^= 7;
  const c = createCipheriv('aes-128-gcm', keys.key, nonce);
  c.setAAD(header);
  const ct = Buffer.concat([c.update(padded), c.final(), c.getAuthTag()]);
  const pkt = Buffer.concat([header, ct]);
  const pnOffset = header.length - pnLen;
  const mask = createCipheriv('aes-128-ecb', keys.hp, null).update(pkt.subarray(pnOffset + 4, pnOffset + 20));
  pkt[0] ^= mask[0] & 0x0f;
  for (let i = 0; i < pnLen; i++) pkt[pnOffset + i] ^= mask[1 + i];
  return pkt;
}

const cryptoFrame = (data: Buffer) => Buffer.concat([Buffer.from([0x06, 0, ...v2b(data.length)]), data]);
/** Google QUIC's handshake frame: 0x08, stream id 1, length, data (after an ACK, as Chrome sends). */
const gquicFrame = (data: Buffer, ack = false) =>
  Buffer.concat([Buffer.from(ack ? [0x40, 1, 2, 3, 4, 5] : []), Buffer.from([0x08, 0x01, ...v2b(data.length)]), data]);

/** A version negotiation packet listing `versions`. */
function versionNegotiation(versions: number[]): Buffer {
  const list = versions.flatMap((v) => [24, 16, 8, 0].map((s) => (v >>> s) & 0xff));
  return Buffer.from([0x80 | 0x3a, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, ...list]);
}

interface Seen {
  app: string;
  confidence: string;
  serverName: string;
  info: Record<string, string>;
}

function run(packets: { fromClient: boolean; payload: Buffer }[], serverPort = 443): Seen {
  const engine = new DpiEngine();
  const f = 2;
  engine.reset(f, 17);
  for (const p of packets) if (engine.decided[f] !== 1) engine.packet(f, 17, p.payload, 0, p.payload.length, p.fromClient, 51000, serverPort, -1);
  engine.label(f, 17, 51000, serverPort);
  const info = engine.appInfo(f);
  return { app: engine.appName(f), confidence: engine.confidenceName(f), serverName: engine.serverName(f), info: info === '' ? {} : JSON.parse(info) };
}

const client = (payload: Buffer) => ({ fromClient: true, payload });
const server = (payload: Buffer) => ({ fromClient: false, payload });

describe('QUIC versions beyond v1', () => {
  it('v1 and v2 (RFC 9369: its salt, labels and Initial type): SNI, ALPN, version', () => {
    const v1 = run([client(initial(1, SALTS.v1, cryptoFrame(clientHello('one.example'))))]);
    assert.deepEqual([v1.app, v1.confidence, v1.serverName, v1.info.quicVersion, v1.info.alpn], ['QUIC', 'dpi', 'one.example', 'v1', 'h3']);
    const v2 = run([client(initial(0x6b3343cf, SALTS.v2, cryptoFrame(clientHello('two.example')), { v2: true, type: 1 }))]);
    assert.deepEqual([v2.app, v2.confidence, v2.serverName, v2.info.quicVersion], ['QUIC', 'dpi', 'two.example', 'v2']);
    // v2 with v1's keys does not open: still QUIC by its version, without a name.
    const wrong = run([client(initial(0x6b3343cf, SALTS.v1, cryptoFrame(clientHello('two.example')), { type: 1 }))]);
    assert.equal(wrong.serverName, '');
  });

  it('Google QUIC Q050: the CHLO in a protected Initial, its SNI tag (after an ACK frame too)', () => {
    const q = run([client(initial(0x51303530, SALTS.q050, gquicFrame(chlo('www.youtube.com'))))]);
    assert.deepEqual([q.app, q.confidence, q.serverName, q.info.quicVersion], ['QUIC', 'dpi', 'www.youtube.com', 'Q050']);
    const acked = run([client(initial(0x51303530, SALTS.q050, gquicFrame(chlo('r3.googlevideo.com'), true)))]);
    assert.equal(acked.serverName, 'r3.googlevideo.com');
  });

  it('Google QUIC T050 and T051: a TLS ClientHello in a protected Initial (SNI, JA4 of QUIC)', () => {
    for (const [version, salt, name] of [
      [0x54303530, SALTS.t050, 'T050'],
      [0x54303531, SALTS.t051, 'T051'],
    ] as const) {
      const t = run([client(initial(version, salt, gquicFrame(clientHello(`${name.toLowerCase()}.example`))))]);
      assert.deepEqual([t.app, t.confidence, t.serverName, t.info.quicVersion], ['QUIC', 'dpi', `${name.toLowerCase()}.example`, name], name);
      assert.match(t.info.ja4, /^q13d/);
      // Each version's salt only: T051 protected with T050's keys is not read.
      const crossed = run([client(initial(version, version === 0x54303531 ? SALTS.t050 : SALTS.t051, gquicFrame(clientHello('x.example'))))]);
      assert.equal(crossed.serverName, '', name);
    }
  });

  it("version negotiation: a client forcing it (0x?a?a?a?a, v1 keys), then the server's list naming QUIC versions", () => {
    const forcing = run([client(initial(0x1a2a3a4a, SALTS.v1, cryptoFrame(clientHello('force.example'))))]);
    assert.deepEqual([forcing.app, forcing.confidence, forcing.serverName, forcing.info.quicVersion], ['QUIC', 'dpi', 'force.example', 'negotiation']);
    const vn = run([server(versionNegotiation([0x6b3343cf, 1, 0xff00001d]))], 443);
    assert.deepEqual([vn.app, vn.confidence, vn.info.quicVersion], ['QUIC', 'dpi', 'negotiation']);
  });

  it('not QUIC: a version negotiation listing no QUIC version, or sent by the client; unknown versions', () => {
    assert.notEqual(run([server(versionNegotiation([0x12345678, 0x0badcafe]))], 4000).confidence, 'dpi');
    assert.notEqual(run([client(versionNegotiation([1]))], 4000).confidence, 'dpi');
    assert.notEqual(run([server(versionNegotiation([1]).subarray(0, 17))], 4000).confidence, 'dpi', 'a list cut mid-version');
    const unknown = initial(0x12345678, SALTS.v1, cryptoFrame(clientHello('no.example')));
    assert.notEqual(run([client(unknown)], 4000).app, 'QUIC');
  });
});
