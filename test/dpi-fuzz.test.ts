// Dissectors must survive any bytes: random payloads, and real messages (a TLS ClientHello, a DNS
// query, a QUIC Initial, built here) with bytes flipped, cut or inserted. No throw may escape a
// dissector and no call may take long (a loop driven by a length field must stay bounded). The
// same builders first check the positive path: what the dissectors extract from the intact messages.
import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseDns } from '../src/dpi/dns-message.js';
import { DpiEngine, FIRST_SIZES } from '../src/dpi/engine.js';
import { DISSECTORS } from '../src/dpi/registry.js';
import { initialKeys } from '../src/dpi/protocols/quic.js';
import { sha256 } from '../src/dpi/sha256.js';
import { isGrease, parseClientHello } from '../src/dpi/tls-hello.js';
import { TRANSPORT_TCP, TRANSPORT_UDP, type DpiContext, type FlowExtra } from '../src/dpi/types.js';
import { rng } from './helpers/random.js';

// ------------------------------------------------------------------ builders

const u16 = (v: number) => [v >> 8, v & 0xff];
const u24 = (v: number) => [v >> 16, (v >> 8) & 0xff, v & 0xff];
const vec16 = (b: number[]) => [...u16(b.length), ...b];
const ext = (type: number, body: number[]) => [...u16(type), ...vec16(body)];
const ascii = (s: string) => [...Buffer.from(s, 'latin1')];

function clientHello(sni: string): Buffer {
  const ciphers = [0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f].flatMap(u16);
  const alpn = ['h2', 'http/1.1'].flatMap((p) => [p.length, ...ascii(p)]);
  const exts = [
    ...ext(0x1a1a, []), // GREASE
    ...ext(0x0000, vec16([0, ...vec16(ascii(sni))])),
    ...ext(0x0010, vec16(alpn)),
    ...ext(0x002b, [6, ...u16(0x3a3a), ...u16(0x0304), ...u16(0x0303)]),
    ...ext(0x000d, vec16([0x0403, 0x0804, 0x0401].flatMap(u16))),
    ...ext(0x000a, vec16([0x001d, 0x0017].flatMap(u16))),
  ];
  const body = [...u16(0x0303), ...new Array(32).fill(7), 0, ...vec16(ciphers), 1, 0, ...vec16(exts)];
  return Buffer.from([1, ...u24(body.length), ...body]);
}

function tlsRecord(hs: Buffer): Buffer {
  return Buffer.from([0x16, 3, 1, ...u16(hs.length), ...hs]);
}

function dnsQuery(name: string): Buffer {
  const labels = name.split('.').flatMap((l) => [l.length, ...ascii(l)]);
  return Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...labels, 0, 0, 1, 0, 1]);
}

/**
 * A client Initial (QUIC v1) carrying the ClientHello, protected per RFC 9001: in one CRYPTO frame,
 * or with `split` in two, the second half first, with padding between them.
 */
function quicInitial(hello: Buffer, split = false): Buffer {
  const dcid = Buffer.from('8394c8f03e515708', 'hex');
  const keys = initialKeys(dcid, Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex'), false);
  const crypto = (offset: number, data: Buffer) =>
    Buffer.concat([Buffer.from([0x06, 0x40 | (offset >> 8), offset & 0xff, 0x40 | (data.length >> 8), data.length & 0xff]), data]);
  const half = hello.length >> 1;
  const frames = split
    ? Buffer.concat([crypto(half, hello.subarray(half)), Buffer.alloc(400), crypto(0, hello.subarray(0, half)), Buffer.alloc(300)])
    : Buffer.concat([crypto(0, hello), Buffer.alloc(1000 - hello.length)]);
  const pnLen = 4;
  const length = pnLen + frames.length + 16;
  const header = Buffer.from([0xc0 | (pnLen - 1), 0, 0, 0, 1, dcid.length, ...dcid, 0, 0, 0x40 | (length >> 8), length & 0xff, 0, 0, 0, 2]);
  const nonce = Buffer.from(keys.iv);
  nonce[11] ^= 2;
  const c = createCipheriv('aes-128-gcm', keys.key, nonce);
  c.setAAD(header);
  const ct = Buffer.concat([c.update(frames), c.final(), c.getAuthTag()]);
  const pkt = Buffer.concat([header, ct]);
  const pnOffset = header.length - pnLen;
  const mask = createCipheriv('aes-128-ecb', keys.hp, null).update(pkt.subarray(pnOffset + 4, pnOffset + 20));
  pkt[0] ^= mask[0] & 0x0f;
  for (let i = 0; i < pnLen; i++) pkt[pnOffset + i] ^= mask[1 + i];
  return pkt;
}

// ------------------------------------------------------------------ a context without an engine

/** A context for one dissector at a time (its state() is the only one). */
function context(transport: number, serverPort: number): DpiContext & { reset(): void } {
  let extra: FlowExtra | undefined;
  let state: unknown = null;
  return {
    transport,
    fromClient: true,
    clientPort: 50000,
    serverPort,
    tcpSeq: -1,
    dirPackets: 1,
    extra(): FlowExtra {
      extra ??= {
        serverName: '',
        info: null,
        app: '',
        risks: 0,
        certNotBefore: 0,
        certNotAfter: 0,
        buf: [null, null],
        bufLen: [0, 0],
        nextSeq: [-1, -1],
        states: null,
      };
      return extra;
    },
    hasExtra: () => extra !== undefined,
    state: () => state,
    setState(value: unknown) {
      state = value;
    },
    addresses: () => ['192.0.2.1', '198.51.100.1'],
    reset() {
      extra = undefined;
      state = null;
      this.dirPackets = 1;
    },
  };
}

function mutate(seed: Buffer, r: () => number): Buffer {
  const b = Buffer.from(seed);
  const kind = Math.floor(r() * 4);
  if (kind === 0) for (let i = 0, n = 1 + Math.floor(r() * 8); i < n; i++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
  if (kind === 1) return b.subarray(0, Math.floor(r() * b.length));
  if (kind === 2) {
    // Length fields are where parsers go wrong: set a 16-bit field to an extreme.
    const at = Math.floor(r() * (b.length - 1));
    b[at] = r() < 0.5 ? 0xff : 0;
    b[at + 1] = r() < 0.5 ? 0xff : 0;
  }
  if (kind === 3) {
    const at = Math.floor(r() * b.length);
    return Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + Math.floor(r() * 40) }, () => Math.floor(r() * 256))), b.subarray(at)]);
  }
  return b;
}

// ------------------------------------------------------------------ tests

describe('DPI dissectors', () => {
  it('read the intact messages: TLS SNI/ALPN/JA4, QUIC Initial SNI, DNS name', () => {
    const hello = clientHello('www.example.org');
    const parsed = parseClientHello(hello, 0, hello.length, 't');
    assert.ok(parsed);
    assert.equal(parsed.serverName, 'www.example.org');
    assert.deepEqual(parsed.alpn, ['h2', 'http/1.1']);
    assert.equal(parsed.version, 0x0304);
    // JA4_a: TLS 1.3 (from supported_versions), SNI, 5 ciphers and 5 extensions without GREASE, ALPN h2.
    assert.match(parsed.ja4, /^t13d0505h2_[0-9a-f]{12}_[0-9a-f]{12}$/);

    const engine = new DpiEngine();
    const feed = (f: number, proto: number, payload: Buffer, port: number) => {
      engine.reset(f, proto);
      engine.packet(f, proto, payload, 0, payload.length, true, 50000, port, -1);
    };
    feed(1, 6, tlsRecord(hello), 443);
    assert.equal(engine.appName(1), 'TLS');
    assert.equal(engine.confidenceName(1), 'dpi');
    assert.equal(engine.serverName(1), 'www.example.org');
    assert.equal(JSON.parse(engine.appInfo(1)).ja4, parsed.ja4);

    feed(2, 17, quicInitial(clientHello('quic.example.net')), 443);
    assert.equal(engine.appName(2), 'QUIC');
    assert.equal(engine.serverName(2), 'quic.example.net');
    assert.match(JSON.parse(engine.appInfo(2)).ja4, /^q13d0505h2_/);

    feed(3, 17, dnsQuery('Mail.Example.COM'), 53);
    assert.equal(engine.appName(3), 'DNS');
    assert.equal(engine.serverName(3), 'mail.example.com');

    // A ClientHello cut over three segments is reassembled (sequence numbers in order).
    const rec = tlsRecord(clientHello('split.example.org'));
    engine.reset(4, 6);
    const cuts = [0, 40, 90, rec.length];
    for (let i = 0; i < 3; i++) engine.packet(4, 6, rec, cuts[i], cuts[i + 1] - cuts[i], true, 50000, 8443, 1000 + cuts[i]);
    assert.equal(engine.serverName(4), 'split.example.org');
    assert.equal(engine.appName(4), 'TLS');
    assert.equal(engine.confidenceName(4), 'dpi');
    // Named, and followed on for the server's hello and certificate (test/dpi-risks.test.ts).
    assert.equal(engine.decided[4], 0);

    // Peer-to-peer protocols are marked as such (the scan detectors skip their peer discovery):
    // a Gnutella2 UDP packet and a Gnutella 0.6 pong, on any port; DNS is not peer-to-peer.
    feed(5, 17, Buffer.from('474e44103e8f0101540b514b525006524e415d2fe2350970', 'hex'), 28681);
    assert.equal(engine.appName(5), 'Gnutella');
    assert.equal(engine.peerToPeer(5), true);
    const pong = Buffer.alloc(23 + 14);
    pong[16] = 0x01; // pong
    pong[17] = 1; // TTL
    pong.writeUInt32LE(14, 19);
    feed(6, 17, pong, 40000);
    assert.equal(engine.appName(6), 'Gnutella');
    feed(7, 6, Buffer.from('GNUTELLA CONNECT/0.6\r\nUser-Agent: gtk-gnutella/1.2.2\r\n\r\n'), 6346);
    assert.equal(engine.appName(7), 'Gnutella');
    assert.equal(engine.peerToPeer(7), true);
    assert.equal(engine.peerToPeer(3), false);
    // A port guess is not enough to call a flow peer-to-peer.
    feed(8, 17, Buffer.from('hello'), 6346);
    engine.label(8, 17, 50000, 6346);
    assert.equal(engine.appName(8), 'Gnutella');
    assert.equal(engine.confidenceName(8), 'port');
    assert.equal(engine.peerToPeer(8), false);

    // Port guesses with the names nDPI gives them: implicit TLS on the mail ports, SIP on 5061
    // (while TLS on 5061 is still found from its ClientHello), HTTP on 81 and 8181.
    const guesses: [number, string][] = [
      [993, 'IMAPS'],
      [995, 'POPS'],
      [465, 'SMTPS'],
      [443, 'TLS'],
      [5061, 'SIP'],
      [81, 'HTTP'],
      [8181, 'HTTP'],
    ];
    for (const [port, app] of guesses) {
      engine.reset(9, 6);
      engine.label(9, 6, 50000, port);
      assert.deepEqual([engine.appName(9), engine.confidenceName(9)], [app, 'port'], `port ${port}`);
    }
    feed(10, 6, tlsRecord(hello), 5061);
    assert.deepEqual([engine.appName(10), engine.confidenceName(10)], ['TLS', 'dpi']);
    feed(11, 6, tlsRecord(hello), 993);
    assert.deepEqual([engine.appName(11), engine.confidenceName(11)], ['IMAPS', 'dpi']);
  });

  it('find the HTTP Host past the first segment, and SSH and mDNS names as nDPI reports them', () => {
    const engine = new DpiEngine();
    // Segments of one flow in order: [fromClient, payload]; TCP unless `proto` says otherwise.
    const flow = (f: number, port: number, segments: [boolean, string | Buffer][], proto = 6) => {
      engine.reset(f, proto);
      for (const [fromClient, payload] of segments) {
        if (engine.decided[f] === 1) break; // as the aggregator does: a decided flow costs nothing more
        const b = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
        engine.packet(f, proto, b, 0, b.length, fromClient, 50000, port, -1);
      }
      engine.label(f, proto, 50000, port);
      return [engine.appName(f), engine.serverName(f)];
    };
    // A QUIC Initial whose ClientHello comes in two CRYPTO frames, out of order, with 400 bytes of
    // padding between them (Chrome does this).
    const split = quicInitial(clientHello('split.quic.example'), true);
    assert.deepEqual(flow(7, 443, [[true, split]], 17), ['QUIC', 'split.quic.example']);

    const url = `/track?${'x'.repeat(1500)}`;
    // The capture starts in the middle of a response; the next request names the host.
    assert.deepEqual(
      flow(1, 80, [
        [false, 'tail of an earlier body'],
        [false, '...more body'],
        [true, 'GET / HTTP/1.1\r\nHost: a.example\r\n\r\n'],
      ]),
      ['HTTP', 'a.example'],
    );
    // A request line longer than its segment, cut twice.
    assert.deepEqual(
      flow(2, 80, [
        [true, `GET ${url.slice(0, 700)}`],
        [true, url.slice(700, 710)],
        [true, `${url.slice(710)} HTTP/1.1\r\nUser-Agent: x\r\nHost: b.example:8080\r\n\r\n`],
      ]),
      ['HTTP', 'b.example'],
    );
    // Headers going on into the next segment.
    assert.deepEqual(
      flow(3, 8080, [
        [true, 'POST /upload HTTP/1.1\r\nUser-Agent: y\r\n'],
        [true, 'Host: c.example\r\nContent-Length: 0\r\n\r\n'],
      ]),
      ['HTTP', 'c.example'],
    );
    // Not HTTP: a cut request line that ends as RTSP.
    assert.notEqual(
      flow(4, 9999, [
        [true, `OPTIONS ${url.slice(0, 700)}`],
        [true, `${url.slice(700)} RTSP/1.0\r\nCSeq: 1\r\n\r\n`],
      ])[0],
      'HTTP',
    );
    // STARTTLS: SMTPS from the command on, named and fingerprinted from the ClientHello after it;
    // without SNI the name the server greeted with stays.
    const smtp = (f: number, hello: Buffer) =>
      flow(f, 25, [
        [false, '220 mx.example.org ESMTP\r\n'],
        [true, 'EHLO me\r\n'],
        [false, '250 STARTTLS\r\n'],
        [true, 'STARTTLS\r\n'],
        [false, '220 go ahead\r\n'],
        [true, tlsRecord(hello)],
      ]);
    assert.deepEqual(smtp(8, clientHello('smtp.example.net')), ['SMTPS', 'smtp.example.net']);
    assert.match(engine.appInfo(8), /"ja4":"t13d/);
    assert.deepEqual(smtp(9, clientHello('')), ['SMTPS', 'mx.example.org']);
    // POP3's STLS: the server's greeting, capabilities (in two segments) and "+OK" come before the
    // ClientHello, more than the first budget of 4 payload packets per direction.
    const pop3 = flow(12, 110, [
      [false, '+OK ready\r\n'],
      [true, 'CAPA\r\n'],
      [false, '+OK\r\nSTLS\r\n'],
      [false, 'USER\r\n.\r\n'],
      [true, 'STLS\r\n'],
      [false, '+OK begin TLS\r\n'],
      [true, tlsRecord(clientHello('pop.example.com'))],
    ]);
    assert.deepEqual(pop3, ['POPS', 'pop.example.com']);
    // SSH: the first banner seen, whichever side sent it, as nDPI reports it (0bcaf69: ssh.pcap's
    // port-8000 flow and a real OpenSSH client, which speaks first; test/dpi-ssh-name.test.ts).
    assert.deepEqual(
      flow(5, 22, [
        [true, 'SSH-2.0-OpenSSH_9.6\r\n'],
        [false, 'SSH-2.0-OpenSSH_8.2p1 Ubuntu\r\n'],
      ]),
      ['SSH', 'SSH-2.0-OpenSSH_9.6'],
    );
    assert.deepEqual(
      flow(6, 22, [
        [false, 'SSH-2.0-OpenSSH_8.2p1 Ubuntu\r\n'],
        [true, 'SSH-2.0-OpenSSH_9.6\r\n'],
      ]),
      ['SSH', 'SSH-2.0-OpenSSH_8.2p1 Ubuntu'],
    );

    // mDNS: an announcement (answers, no question) is named by its first answer; UTF-8 names stay UTF-8.
    const name = (labels: string[]) => Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.of(Buffer.byteLength(l)), Buffer.from(l)])), Buffer.of(0)]);
    const announce = Buffer.concat([
      Buffer.from('000084000000000100000000', 'hex'),
      name(['Luca’s iMac', '_odisk', '_tcp', 'local']),
      Buffer.from('000c0001000011940002c00c', 'hex'),
    ]);
    assert.deepEqual(flow(6, 5353, [[true, announce]], 17), ['MDNS', 'luca’s imac._odisk._tcp.local']);
  });

  it('name DNS flows as nDPI does: damaged headers on port 53, its character rules, the last message, mDNS followed', () => {
    const engine = new DpiEngine();
    const flow = (f: number, port: number, messages: [boolean, Buffer][]) => {
      engine.reset(f, 17);
      let looked = 0;
      for (const [fromClient, payload] of messages) {
        if (engine.decided[f] === 1) break;
        engine.packet(f, 17, payload, 0, payload.length, fromClient, 50000, port, -1);
        looked++;
      }
      engine.label(f, 17, 50000, port);
      return [engine.appName(f), engine.serverName(f), engine.confidenceName(f), looked];
    };
    const query = (name: Buffer | string, header = '123401000001000000000000') => {
      const labels = typeof name === 'string' ? name.split('.').map((l) => Buffer.from(l, 'latin1')) : [name];
      return Buffer.concat([Buffer.from(header, 'hex'), ...labels.map((l) => Buffer.concat([Buffer.of(l.length), l])), Buffer.from('0000010001', 'hex')]);
    };
    const response = (name: string) => {
      const q = query(name);
      q[2] = 0x81;
      q[3] = 0x80;
      return q;
    };
    // A query whose answer count is absurd (0x8000) and one whose flags are odd but carry the update
    // bits: on port 53 their names are read; on another port the same bytes are not DNS at all.
    const badCounts = query('ftp.example.com', '123401000001800000520000');
    assert.deepEqual(flow(1, 53, [[true, badCounts]]), ['DNS', 'ftp.example.com', 'dpi', 1]);
    assert.deepEqual(flow(2, 53, [[true, query('sip.example.dk', '12347dcf0001000000000000')]]), ['DNS', 'sip.example.dk', 'dpi', 1]);
    assert.deepEqual(parseDns(badCounts, 0, badCounts.length), null);
    // A response is a response whatever its counts (38 questions claimed here).
    const many = response('1.0.0.127.in-addr.arpa');
    many[5] = 38;
    assert.deepEqual(flow(3, 53, [[false, many]]), ['DNS', '1.0.0.127.in-addr.arpa', 'dpi', 1]);
    // Characters: lower case; '*' and '=' (printable, not hostname characters) become '_', a
    // non-printable byte '?'.
    assert.deepEqual(flow(4, 53, [[true, query('h4Si*x==.Test.TXT')]]), ['DNS', 'h4si_x__.test.txt', 'dpi', 1]);
    assert.deepEqual(flow(5, 53, [[true, query(Buffer.from([0x65, 0x63, 0xec, 0x65]))]]), ['DNS', 'ec?e', 'dpi', 1]);
    // The last message's name: a retransmitted query that differs, then the response, which ends it.
    assert.deepEqual(
      flow(6, 53, [
        [true, query('a.example')],
        [true, query('b.example')],
        [false, response('c.example')],
        [true, query('d.example')],
      ]),
      ['DNS', 'c.example', 'dpi', 3],
    );
    // Without a response, six messages at most (the first and five more).
    const queries = Array.from({ length: 9 }, (_, i): [boolean, Buffer] => [true, query(`q${i}.example`)]);
    assert.deepEqual(flow(7, 53, queries), ['DNS', 'q5.example', 'dpi', 6]);
    // mDNS is followed the same way; its names are UTF-8 text, only lower-cased.
    assert.deepEqual(
      flow(8, 5353, [
        [true, query('_raop._tcp.local', '000000000001000000000000')],
        [true, query('_Homekit._tcp.local', '000000000001000000000000')],
      ]),
      ['MDNS', '_homekit._tcp.local', 'dpi', 2],
    );
  });

  it('build JA4, DNS names and first sizes in reused buffers as plain string code would', () => {
    const r = rng(0x5a256);
    // SHA-256 across the block boundaries of its padding (55, 56, 64, 119, 120 bytes...).
    const data = Buffer.from(Array.from({ length: 300 }, () => Math.floor(r() * 256)));
    const digest = new Int32Array(8);
    for (let n = 0; n <= data.length; n++) {
      sha256(data, n, digest);
      const hex = Array.from(digest, (w) => (w >>> 0).toString(16).padStart(8, '0')).join('');
      assert.equal(hex, createHash('sha256').update(data.subarray(0, n)).digest('hex'), `${n} bytes`);
    }

    // JA4 as FoxIO defines it, in strings: 4-digit hex sorted as text, joined, hashed. 6 ciphers take
    // the insertion sort, 80 the native one.
    const hex4 = (v: number) => v.toString(16).padStart(4, '0');
    const sha12 = (t: string) => createHash('sha256').update(t).digest('hex').slice(0, 12);
    const exts = [0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0005, 0x0012, 0x0033, 0x002d, 0x001b];
    const sigs = [0x0403, 0x0804, 0x0a0a, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201];
    for (const count of [6, 80]) {
      const ciphers = Array.from({ length: count }, () => Math.floor(r() * 65536)).filter((v) => !isGrease(v));
      const extBytes = [
        ...ext(0x0000, vec16([0, ...vec16(ascii('ja4.example'))])),
        ...ext(0x0010, vec16([2, ...ascii('h2'), 8, ...ascii('http/1.1')])),
        ...exts.flatMap((t) => ext(t, [])),
        ...ext(0x000d, vec16(sigs.flatMap(u16))),
      ];
      const body = [...u16(0x0303), ...new Array(32).fill(1), 0, ...vec16([0x2a, 0x2a, ...ciphers.flatMap(u16)]), 1, 0, ...vec16(extBytes)];
      const hs = Buffer.from([1, ...u24(body.length), ...body]);
      const parsed = parseClientHello(hs, 0, hs.length, 't');
      assert.ok(parsed);
      const extText = [...exts, 0x000d].map(hex4).sort().join(',');
      const sigText = sigs
        .filter((v) => !isGrease(v))
        .map(hex4)
        .join(',');
      const two = (n: number) => String(Math.min(n, 99)).padStart(2, '0');
      const ja4 = `t12d${two(ciphers.length)}${two(exts.length + 3)}h2_${sha12(ciphers.map(hex4).sort().join(','))}_${sha12(`${extText}_${sigText}`)}`;
      assert.equal(parsed.ja4, ja4);
      assert.deepEqual(parsed.alpn, ['h2', 'http/1.1']);
    }

    // DNS names: ASCII labels are gathered as bytes; a UTF-8 or other non-ASCII label among them is
    // read on its own as before.
    const labels = [Buffer.from('www'), Buffer.from('Luca’s'), Buffer.from('x'), Buffer.of(0x63, 0x61, 0x66, 0xe9)];
    const query = Buffer.concat([
      Buffer.from('123401000001000000000000', 'hex'),
      ...labels.map((l) => Buffer.concat([Buffer.of(l.length), l])),
      Buffer.from('0000010001', 'hex'),
    ]);
    assert.equal(parseDns(query, 0, query.length)?.qname, 'www.Luca’s.x.caf\u00e9');

    // First frame sizes: the texts are reused between flows with the same sizes, never stale.
    const engine = new DpiEngine();
    const choices = [0, 58, 60, 66, 1514, 9000, 65535, 262144];
    for (let i = 0; i < 3000; i++) {
      const f = i % 40;
      engine.reset(f, 6);
      const sizes: number[] = [];
      for (let k = Math.floor(r() * (FIRST_SIZES + 1)); k > 0; k--) {
        const bytes = choices[Math.floor(r() * (i < 1500 ? 3 : choices.length))];
        const fromClient = r() < 0.5;
        engine.size(f, bytes, fromClient);
        sizes.push(fromClient ? bytes : -bytes);
        const text = sizes.map((v) => (v > 0 ? `+${v}` : `${v}`)).join(' ');
        assert.equal(engine.firstPackets(f), text);
        assert.equal(engine.firstPackets(f), text);
      }
    }
  });

  it('survive random and mutated payloads without throwing or looping', () => {
    const seeds = [
      tlsRecord(clientHello('fuzz.example.org')),
      quicInitial(clientHello('fuzz.example.net')),
      dnsQuery('fuzz.example.com'),
      Buffer.from('GET /index.html HTTP/1.1\r\nHost: fuzz.example\r\nUser-Agent: x\r\n\r\n'),
      Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'),
      Buffer.from('220 mail.example.org ESMTP ready\r\n'),
      Buffer.from('INVITE sip:bob@example.org SIP/2.0\r\nUser-Agent: f\r\n\r\n'),
    ];
    const r = rng(0xdecaf);
    let calls = 0;
    let slowest = 0;
    for (const d of DISSECTORS) {
      for (const transport of [TRANSPORT_TCP, TRANSPORT_UDP]) {
        if ((d.transports & transport) === 0) continue;
        for (const port of [d.ports[0] ?? 0, 443, 53, 12345]) {
          const ctx = context(transport, port);
          for (let i = 0; i < 300; i++) {
            const payload =
              i % 3 === 0 ? Buffer.from(Array.from({ length: Math.floor(r() * 1600) }, () => Math.floor(r() * 256))) : mutate(seeds[i % seeds.length], r);
            if (i % 7 === 0) ctx.reset();
            ctx.fromClient = r() < 0.7;
            ctx.tcpSeq = r() < 0.5 ? -1 : Math.floor(r() * 4294967296);
            const t0 = process.hrtime.bigint();
            try {
              d.inspect(ctx, payload, 0, payload.length);
            } catch (err) {
              assert.fail(`${d.app} threw on ${payload.toString('hex').slice(0, 200)}: ${(err as Error).stack}`);
            }
            const ms = Number(process.hrtime.bigint() - t0) / 1e6;
            if (ms > slowest) slowest = ms;
            // A guard against unbounded work on one payload, not a speed test: one payload takes well
            // under a millisecond; the bound leaves room for GC pauses on a loaded machine.
            assert.ok(ms < 2000, `${d.app} took ${ms.toFixed(1)} ms on one payload`);
            ctx.dirPackets++;
            calls++;
          }
        }
      }
    }
    assert.ok(calls > 10_000, `only ${calls} calls`);
    console.log(`${calls} dissector calls, slowest ${slowest.toFixed(2)} ms`);
  });
});
