// Flow risks (src/dpi/risks.ts) and the TLS server certificate (src/dpi/certificate.ts), on flows
// built byte by byte and fed through a DpiEngine with every dissector, as the aggregator does.
// Certificates are made by the openssl command at test time: self-signed and CA-signed, RSA 2048,
// RSA 1024 signed with SHA-1, EC P-256, with and without SANs. Their validity starts now and lasts
// 30 days, so a flow's time before or after it makes them not yet valid or expired.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readCertificate } from '../src/dpi/certificate.js';
import { DpiEngine } from '../src/dpi/engine.js';
import { RISK_NAMES } from '../src/dpi/risks.js';

// ------------------------------------------------------------------ builders

const u16 = (v: number) => [v >> 8, v & 0xff];
const u24 = (v: number) => [v >> 16, (v >> 8) & 0xff, v & 0xff];
const vec16 = (b: number[]) => [...u16(b.length), ...b];
const ext = (type: number, body: number[]) => [...u16(type), ...vec16(body)];
const ascii = (s: string) => [...Buffer.from(s, 'latin1')];

/** A TLS 1.2 ClientHello handshake message, with an SNI unless sni is ''. */
function clientHello(sni: string): number[] {
  const ciphers = [0xc02b, 0xc02f, 0x009c].flatMap(u16);
  const exts = [...(sni === '' ? [] : ext(0x0000, vec16([0, ...vec16(ascii(sni))]))), ...ext(0x000d, vec16([0x0403, 0x0401].flatMap(u16)))];
  const body = [...u16(0x0303), ...new Array(32).fill(7), 0, ...vec16(ciphers), 1, 0, ...vec16(exts)];
  return [1, ...u24(body.length), ...body];
}

/** A ServerHello of `version`; TLS 1.3 says so in supported_versions (its legacy version is 1.2). */
function serverHello(version: number): number[] {
  const exts = version === 0x0304 ? ext(0x002b, u16(0x0304)) : [];
  const body = [...u16(version === 0x0304 ? 0x0303 : version), ...new Array(32).fill(9), 0, ...u16(0xc02f), 0, ...vec16(exts)];
  return [2, ...u24(body.length), ...body];
}

function certificateMessage(chain: Buffer[]): number[] {
  const list = chain.flatMap((c) => [...u24(c.length), ...c]);
  return [11, ...u24(list.length + 3), ...u24(list.length), ...list];
}

const SERVER_HELLO_DONE = [14, 0, 0, 0];

function record(version: number, ...messages: number[][]): Buffer {
  const body = messages.flat();
  return Buffer.from([0x16, ...u16(version), ...u16(body.length), ...body]);
}

interface Message {
  fromClient: boolean;
  payload: Buffer;
}

/** The server's flight cut into segments of at most `mss` bytes. */
function segments(fromClient: boolean, data: Buffer, mss: number): Message[] {
  const out: Message[] = [];
  for (let i = 0; i < data.length; i += mss) out.push({ fromClient, payload: data.subarray(i, i + mss) });
  return out;
}

const text = (fromClient: boolean, s: string): Message => ({ fromClient, payload: Buffer.from(s, 'latin1') });

interface Seen {
  app: string;
  confidence: string;
  serverName: string;
  risks: string[];
  info: Record<string, string>;
}

/** Feeds a TCP flow's payloads (sequence numbers per direction) as the aggregator does; `at` is its first packet (ms). */
function run(messages: Message[], serverPort: number, at = Date.now(), clientPort = 50123): Seen {
  const engine = new DpiEngine();
  const f = 3;
  engine.reset(f, 6);
  const seq = [1000, 900000];
  for (const m of messages) {
    const d = m.fromClient ? 0 : 1;
    if (engine.decided[f] !== 1) engine.packet(f, 6, m.payload, 0, m.payload.length, m.fromClient, clientPort, serverPort, seq[d]);
    seq[d] += m.payload.length;
  }
  engine.label(f, 6, clientPort, serverPort);
  const risks = engine.risks(f, clientPort, serverPort, at * 1000);
  const info = engine.appInfo(f);
  return {
    app: engine.appName(f),
    confidence: engine.confidenceName(f),
    serverName: engine.serverName(f),
    risks: risks === '' ? [] : risks.split(','),
    info: info === '' ? {} : JSON.parse(info),
  };
}

/** A TLS handshake: ClientHello with `sni`, then the server's hello, certificate chain and done in one record, cut at 536 bytes. */
function tlsFlow(sni: string, chain: Buffer[], version = 0x0303): Message[] {
  const flight = record(version, serverHello(version), ...(version === 0x0304 ? [] : [certificateMessage(chain), SERVER_HELLO_DONE]));
  return [{ fromClient: true, payload: record(0x0301, clientHello(sni)) }, ...segments(false, flight, 536)];
}

// ------------------------------------------------------------------ certificates

const DAY = 86_400_000;
let dir = '';
const certs: Record<string, Buffer> = {};

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'flowlens-certs-'));
  // A CA, and a server certificate it signs for good.example and *.good.example.
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30', '-subj', '/CN=Flowlens Test CA');
  openssl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/O=Good/CN=good.example');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:good.example,DNS:*.good.example,IP:192.0.2.7\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '30',
    '-extfile',
    'san.ext',
    '-outform',
    'DER',
    '-out',
    'leaf.der',
  );
  openssl('x509', '-in', 'ca.pem', '-outform', 'DER', '-out', 'ca.der');
  // Self-signed RSA 1024 with SHA-1, no SANs; self-signed EC P-256 with SANs.
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:1024',
    '-sha1',
    '-nodes',
    '-keyout',
    'weak.key',
    '-outform',
    'DER',
    '-out',
    'weak.der',
    '-days',
    '30',
    '-subj',
    '/CN=weak.example',
  );
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'ec.key',
    '-outform',
    'DER',
    '-out',
    'ec.der',
    '-days',
    '30',
    '-subj',
    '/CN=ec.example',
    '-addext',
    'subjectAltName=DNS:ec.example',
  );
  for (const name of ['leaf', 'ca', 'weak', 'ec']) certs[name] = readFileSync(join(dir, `${name}.der`));
});

after(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ tests

describe('TLS server certificate', () => {
  it('is read from DER: subject, issuer, SANs, validity, key and signature, and what is wrong with it', () => {
    const leaf = readCertificate(certs.leaf!, 'www.good.example');
    assert.ok(leaf);
    assert.equal(leaf.subject, 'O=Good, CN=good.example');
    assert.equal(leaf.issuer, 'CN=Flowlens Test CA');
    assert.equal(leaf.san, 'DNS:good.example, DNS:*.good.example, IP Address:192.0.2.7');
    assert.equal(leaf.key, 'rsa 2048');
    assert.equal(leaf.signature, 'sha256WithRSAEncryption');
    assert.equal(leaf.selfSigned, false);
    assert.equal(leaf.nameCovered, true);
    assert.equal(leaf.weak, '');
    assert.ok(Math.abs(leaf.notBefore - Date.now()) < DAY && Math.abs(leaf.notAfter - leaf.notBefore - 30 * DAY) < 2000);
    // A wildcard covers one label only; an IP literal SNI is compared with the IP SANs.
    assert.equal(readCertificate(certs.leaf!, 'a.b.good.example')?.nameCovered, false);
    assert.equal(readCertificate(certs.leaf!, 'good.example.net')?.nameCovered, false);
    assert.equal(readCertificate(certs.leaf!, '192.0.2.7')?.nameCovered, true);
    assert.equal(readCertificate(certs.leaf!, '192.0.2.8')?.nameCovered, false);
    assert.equal(readCertificate(certs.leaf!, '')?.nameCovered, true);
    // Parsed once per certificate and name (a server's certificate comes in each of its flows): the
    // same facts come back, from a copy of the bytes too, and cannot be changed by one reader.
    assert.equal(readCertificate(Buffer.from(certs.leaf!), 'www.good.example'), readCertificate(certs.leaf!, 'www.good.example'));
    assert.ok(Object.isFrozen(readCertificate(certs.leaf!, 'www.good.example')));

    const weak = readCertificate(certs.weak!, 'weak.example');
    assert.ok(weak);
    assert.equal(weak.key, 'rsa 1024');
    assert.equal(weak.signature, 'sha1WithRSAEncryption');
    assert.equal(weak.selfSigned, true);
    assert.equal(weak.weak, 'rsa key of 1024 bits');
    // No SANs: not judged (nDPI compares the SNI with the SANs only).
    assert.equal(readCertificate(certs.weak!, 'other.example')?.nameCovered, true);

    const ec = readCertificate(certs.ec!, 'ec.example');
    assert.ok(ec);
    assert.equal(ec.key, 'ec 256');
    assert.equal(ec.signature, 'ecdsaWithSHA256');
    assert.equal(ec.weak, '');
    assert.equal(readCertificate(certs.ca!, '')?.selfSigned, true);
  });

  it('is not read from bytes that are not a certificate', () => {
    assert.equal(readCertificate(Buffer.from('not a certificate'), ''), null);
    assert.equal(readCertificate(certs.leaf!.subarray(0, 200), ''), null);
    assert.equal(readCertificate(Buffer.alloc(0), ''), null);
  });
});

describe('flow risks through the engine', () => {
  it('TLS 1.2 with a good certificate, in a chain over several segments: details, no risk', () => {
    const seen = run(tlsFlow('www.good.example', [certs.leaf!, certs.ca!]), 443);
    assert.equal(seen.app, 'TLS');
    assert.equal(seen.confidence, 'dpi');
    assert.equal(seen.serverName, 'www.good.example');
    assert.deepEqual(seen.risks, []);
    assert.equal(seen.info.certSubject, 'O=Good, CN=good.example');
    assert.equal(seen.info.certIssuer, 'CN=Flowlens Test CA');
    assert.equal(seen.info.certSan, 'DNS:good.example, DNS:*.good.example, IP Address:192.0.2.7');
    assert.equal(seen.info.certKey, 'rsa 2048');
    assert.equal(seen.info.serverVersion, 'TLSv1.2');
    assert.match(seen.info.certNotAfter, /^\d{4}-\d\d-\d\dT/);
  });

  it('the same certificate judged at the flow time: expired after, not yet valid before', () => {
    assert.deepEqual(run(tlsFlow('good.example', [certs.leaf!]), 443, Date.now() + 60 * DAY).risks, ['TLS Cert Expired']);
    assert.deepEqual(run(tlsFlow('good.example', [certs.leaf!]), 443, Date.now() - 60 * DAY).risks, ['TLS Cert Not Yet Valid']);
  });

  it('a server name the SANs do not cover is a mismatch', () => {
    assert.deepEqual(run(tlsFlow('evil.example', [certs.leaf!, certs.ca!]), 443).risks, ['TLS Cert Mismatch']);
    assert.deepEqual(run(tlsFlow('', [certs.leaf!]), 443).risks, [], 'no SNI: nothing to compare');
  });

  it('self-signed, weak key, on a non-standard port, TLS 1.0, expired, not for the name: every risk at once', () => {
    const seen = run(tlsFlow('other.example', [certs.weak!], 0x0301), 8443);
    assert.deepEqual(seen.risks, ['Known Proto on Non Std Port', 'Obsolete TLS (v1.1 or older)', 'Self-signed Cert', 'TLS Weak Cert Key or Signature']);
    const all = run(tlsFlow('other.example', [certs.ec!], 0x0302), 8443, Date.now() + 90 * DAY);
    assert.deepEqual(all.risks, ['Known Proto on Non Std Port', 'Obsolete TLS (v1.1 or older)', 'TLS Cert Expired', 'Self-signed Cert', 'TLS Cert Mismatch']);
    assert.equal(seen.info.certWeak, 'rsa key of 1024 bits');
    assert.equal(seen.info.serverVersion, 'TLSv1');
  });

  it('TLS 1.3: the certificate is encrypted, nothing is read beyond the version', () => {
    const seen = run(tlsFlow('good.example', [certs.weak!], 0x0304), 443);
    assert.equal(seen.app, 'TLS');
    assert.deepEqual(seen.risks, []);
    assert.equal(seen.info.serverVersion, 'TLSv1.3');
    assert.equal(seen.info.certSubject, undefined);
  });

  it('a server flight with a gap (segment lost) or cut short is not read, and the flow stays TLS', () => {
    const flow = tlsFlow('good.example', [certs.leaf!, certs.ca!]);
    assert.ok(flow.length > 4, 'the flight spans several segments');
    const gap = run([flow[0]!, flow[1]!, ...flow.slice(3)], 443);
    assert.equal(gap.app, 'TLS');
    assert.equal(gap.info.certSubject, undefined);
    const cut = run(flow.slice(0, 2), 443);
    assert.equal(cut.app, 'TLS');
    assert.equal(cut.serverName, 'good.example');
    assert.deepEqual(cut.risks, []);
  });

  it('clear-text credentials: FTP PASS, POP3 PASS, IMAP LOGIN, HTTP Basic; not after AUTH TLS / STLS / STARTTLS or with a bearer token', () => {
    const clear = 'Clear-Text Credentials';
    const ftp = run(
      [text(false, '220 ProFTPD Server ready.\r\n'), text(true, 'USER alice\r\n'), text(false, '331 Password required\r\n'), text(true, 'PASS s3cret\r\n')],
      21,
    );
    assert.equal(ftp.app, 'FTP_CONTROL');
    assert.deepEqual(ftp.risks, [clear]);
    assert.deepEqual(run([text(false, '220 ProFTPD Server ready.\r\n'), text(true, 'AUTH TLS\r\n'), text(false, '234 AUTH TLS ok\r\n')], 21).risks, []);

    const pop = run([text(false, '+OK POP3 ready\r\n'), text(true, 'USER bob\r\n'), text(false, '+OK\r\n'), text(true, 'PASS hunter2\r\n')], 110);
    assert.equal(pop.app, 'POP3');
    assert.deepEqual(pop.risks, [clear]);
    assert.deepEqual(run([text(false, '+OK POP3 ready\r\n'), text(true, 'STLS\r\n'), text(false, '+OK Begin TLS\r\n')], 110).risks, []);

    const imap = run([text(false, '* OK IMAP4rev1 ready\r\n'), text(true, 'a1 LOGIN carol pw\r\n'), text(false, 'a1 OK\r\n')], 143);
    assert.equal(imap.app, 'IMAP');
    assert.deepEqual(imap.risks, [clear]);
    assert.deepEqual(run([text(false, '* OK IMAP4rev1 ready\r\n'), text(true, 'a1 STARTTLS\r\n'), text(false, 'a1 OK Begin TLS\r\n')], 143).risks, []);

    const request = (auth: string) => text(true, `GET /private HTTP/1.1\r\nHost: intranet.example\r\nAuthorization: ${auth}\r\n\r\n`);
    const http = run([request('Basic YWxpY2U6czNjcmV0')], 80);
    assert.equal(http.app, 'HTTP');
    assert.deepEqual(http.risks, [clear]);
    assert.deepEqual(run([request('Bearer eyJhbGciOi')], 80).risks, []);
  });

  it('SSH protocol 1 is obsolete on either side; 2.0 and 1.99 are not', () => {
    const ssh = (client: string, server: string) => run([text(false, `${server}\r\n`), text(true, `${client}\r\n`)], 22).risks;
    assert.deepEqual(ssh('SSH-1.5-OpenSSH_2.1', 'SSH-2.0-OpenSSH_9.2'), ['SSH Obsolete Cli Vers/Cipher']);
    assert.deepEqual(ssh('SSH-2.0-OpenSSH_9.2', 'SSH-1.5-Cisco-1.25'), ['SSH Obsolete Ser Vers/Cipher']);
    assert.deepEqual(ssh('SSH-2.0-PuTTY', 'SSH-1.99-OpenSSH_3.9'), []);
  });

  it('SSH: an obsolete cipher offered in a KEXINIT (after the banner or in its own segment) is a risk of that side', () => {
    const nameList = (s: string) => [...u24(0).slice(0, 1), ...u24(s.length), ...ascii(s)];
    const kexinit = (c2s: string, s2c: string) => {
      const lists = ['curve25519-sha256', 'ssh-ed25519', c2s, s2c, 'hmac-sha2-256', 'hmac-sha2-256', 'none', 'none', '', ''].flatMap(nameList);
      const body = [20, ...new Array(16).fill(1), ...lists, 0, 0, 0, 0, 0];
      const padding = 4;
      return Buffer.from([...u24(0).slice(0, 1), ...u24(body.length + padding + 1), padding, ...body, ...new Array(padding).fill(0)]);
    };
    const modern = 'chacha20-poly1305@openssh.com,aes128-ctr';
    const old = 'aes128-ctr,arcfour256,3des-cbc';
    const flow = (clientKex: Buffer, serverKex: Buffer, sameSegment: boolean): Message[] => [
      ...(sameSegment
        ? [{ fromClient: false, payload: Buffer.concat([Buffer.from('SSH-2.0-OpenSSH_5.3\r\n'), serverKex]) }]
        : [text(false, 'SSH-2.0-OpenSSH_5.3\r\n'), { fromClient: false, payload: serverKex }]),
      text(true, 'SSH-2.0-OpenSSH_9.6\r\n'),
      { fromClient: true, payload: clientKex },
    ];
    assert.deepEqual(run(flow(kexinit(modern, modern), kexinit(old, old), true), 22).risks, ['SSH Obsolete Ser Vers/Cipher']);
    assert.deepEqual(run(flow(kexinit(old, modern), kexinit(modern, modern), false), 22).risks, ['SSH Obsolete Cli Vers/Cipher']);
    // The server's offer for its own direction is what counts: arcfour only client-to-server is the client's business.
    assert.deepEqual(run(flow(kexinit(modern, modern), kexinit(old, modern), false), 22).risks, []);
    const seen = run(flow(kexinit(modern, modern), kexinit(modern, modern), false), 22);
    assert.equal(seen.app, 'SSH');
    assert.deepEqual(seen.risks, []);
  });

  it('DTLS: a server answering DTLS 1.0 (or the client offering at most that, or 0x0100) is an obsolete version; DTLS 1.2 is not', () => {
    const dtlsRecord = (version: number, hsType: number, body: number[]) => {
      const hs = [hsType, ...u24(body.length), 0, 0, 0, 0, 0, ...u24(body.length), ...body];
      return Buffer.from([22, ...u16(version), 0, 0, 0, 0, 0, 0, 0, 0, ...u16(hs.length), ...hs]);
    };
    const hello = (version: number) =>
      dtlsRecord(0xfeff, 1, [
        ...u16(version),
        ...new Array(32).fill(5),
        0,
        0,
        ...vec16([0xc02b, 0xc02f].flatMap(u16)),
        1,
        0,
        ...vec16(ext(0x000d, vec16(u16(0x0403)))),
      ]);
    const serverHelloOf = (version: number) => dtlsRecord(0xfeff, 2, [...u16(version), ...new Array(32).fill(6), 0, ...u16(0xc02f), 0]);
    const udp = (messages: Message[], version = 0) => {
      const engine = new DpiEngine();
      engine.reset(5, 17);
      for (const m of messages) if (engine.decided[5] !== 1) engine.packet(5, 17, m.payload, 0, m.payload.length, m.fromClient, 50000, 4433, -1);
      engine.label(5, 17, 50000, 4433);
      return [engine.appName(5), engine.risks(5, 50000, 4433, Date.now() * 1000), version];
    };
    assert.deepEqual(
      udp([
        { fromClient: true, payload: hello(0xfefd) },
        { fromClient: false, payload: serverHelloOf(0xfeff) },
      ]).slice(0, 2),
      ['DTLS', 'Obsolete TLS (v1.1 or older)'],
    );
    assert.deepEqual(
      udp([
        { fromClient: true, payload: hello(0xfefd) },
        { fromClient: false, payload: serverHelloOf(0xfefd) },
      ]).slice(0, 2),
      ['DTLS', ''],
    );
    assert.deepEqual(udp([{ fromClient: true, payload: hello(0x0100) }]).slice(0, 2), ['DTLS', 'Obsolete TLS (v1.1 or older)']);
  });

  it('a known protocol away from its port is a risk only when DPI found it (not when the port named it)', () => {
    const http = run([text(true, 'GET / HTTP/1.1\r\nHost: a.example\r\n\r\n')], 8000);
    assert.equal(http.app, 'HTTP');
    assert.deepEqual(http.risks, ['Known Proto on Non Std Port']);
    assert.deepEqual(run([text(true, 'GET / HTTP/1.1\r\nHost: a.example\r\n\r\n')], 80).risks, []);
    const byPort = run([{ fromClient: true, payload: Buffer.from([0x00, 0x01, 0x02]) }], 22);
    assert.notEqual(byPort.confidence, 'dpi');
    assert.deepEqual(byPort.risks, []);
    assert.ok(RISK_NAMES.includes('Known Proto on Non Std Port'));
  });
});
