// STUN/TURN flows named as nDPI names them (src/dpi/protocols/stun.ts): the realm as the server
// name, the software, the mapped/relayed/peer/response-origin/other addresses and the service on top
// (nDPI's "STUN.WhatsAppCall"). Byte-built messages as RFC 8489/8656 lay them out, then the corpus
// against nDPI's listings (test/dpi/stun-eval.ts).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DpiEngine } from '../src/dpi/engine.js';
import { CORPUS } from './dpi/eval.js';
import { evaluateStun } from './dpi/stun-eval.js';

const COOKIE = 0x2112a442;
const TXID = Buffer.from('0102030405060708090a0b0c', 'hex');

function attribute(type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(value.length, 2);
  return Buffer.concat([head, value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}

function message(type: number, attributes: Buffer[]): Buffer {
  const body = Buffer.concat(attributes);
  const head = Buffer.alloc(20);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(body.length, 2);
  head.writeUInt32BE(COOKIE, 4);
  TXID.copy(head, 8);
  return Buffer.concat([head, body]);
}

/** An XOR-coded (RFC 8489 14.2) or plain address attribute value. */
function addressValue(ip: string, port: number, xor: boolean): Buffer {
  if (!ip.includes(':')) {
    const v = Buffer.alloc(8);
    v[1] = 1;
    v.writeUInt16BE(port ^ (xor ? COOKIE >>> 16 : 0), 2);
    const n = ip.split('.').reduce((a, b) => a * 256 + Number(b), 0);
    v.writeUInt32BE((n ^ (xor ? COOKIE : 0)) >>> 0, 4);
    return v;
  }
  const v = Buffer.alloc(20);
  v[1] = 2;
  v.writeUInt16BE(port ^ (xor ? COOKIE >>> 16 : 0), 2);
  const [head, tail = ''] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((g) => Number.parseInt(g, 16));
  const key = Buffer.concat([Buffer.from([0x21, 0x12, 0xa4, 0x42]), TXID]);
  for (let i = 0; i < 8; i++) v.writeUInt16BE(groups[i] ^ (xor ? key.readUInt16BE(i * 2) : 0), 4 + i * 2);
  return v;
}

function identify(packets: { payload: Buffer; fromClient: boolean }[], transport = 17, serverPort = 3478) {
  const engine = new DpiEngine();
  const f = 0;
  engine.reset(f, transport);
  for (const p of packets) if (engine.decided[f] !== 1) engine.packet(f, transport, p.payload, 0, p.payload.length, p.fromClient, 51000, serverPort, -1);
  engine.label(f, transport, 51000, serverPort);
  const info = engine.appInfo(f);
  return { app: engine.appName(f), confidence: engine.confidenceName(f), serverName: engine.serverName(f), info: info === '' ? {} : JSON.parse(info) };
}

describe('STUN/TURN details', () => {
  it('a TURN allocation: realm, software, relayed, mapped and (IPv6) peer addresses', () => {
    const r = identify([
      { payload: message(0x0003, [attribute(0x0014, Buffer.from('Turn.Example.ORG')), attribute(0x8022, Buffer.from('coturn-4.6'))]), fromClient: true },
      {
        payload: message(0x0103, [attribute(0x0016, addressValue('203.0.113.7', 49152, true)), attribute(0x0020, addressValue('198.51.100.20', 40000, true))]),
        fromClient: false,
      },
      { payload: message(0x0008, [attribute(0x0012, addressValue('2001:db8::5', 5004, true))]), fromClient: true },
      // A second mapped address: nDPI keeps the first of each kind.
      { payload: message(0x0101, [attribute(0x0020, addressValue('198.51.100.99', 1, true))]), fromClient: false },
    ]);
    assert.equal(r.app, 'STUN');
    assert.equal(r.confidence, 'dpi');
    assert.equal(r.serverName, 'turn.example.org');
    assert.deepEqual(r.info, {
      turn: 1,
      software: 'coturn-4.6',
      relayedAddress: '203.0.113.7:49152',
      mappedAddress: '198.51.100.20:40000',
      peerAddress: '[2001:db8::5]:5004',
    });
  });

  it('plain addresses (response origin, other address) and the services nDPI names', () => {
    const r = identify([
      { payload: message(0x0001, []), fromClient: true },
      {
        payload: message(0x0101, [
          attribute(0x0001, addressValue('192.0.2.1', 3478, false)),
          attribute(0x802b, addressValue('192.0.2.2', 3478, false)),
          attribute(0x802c, addressValue('192.0.2.3', 3479, false)),
        ]),
        fromClient: false,
      },
    ]);
    assert.deepEqual(r.info, { mappedAddress: '192.0.2.1:3478', responseOrigin: '192.0.2.2:3478', otherAddress: '192.0.2.3:3479' });
    const service = (attrs: Buffer[], type = 0x0001) => identify([{ payload: message(type, attrs), fromClient: true }]).info.service;
    assert.equal(service([attribute(0x4000, Buffer.alloc(5))]), 'WhatsAppCall');
    assert.equal(service([attribute(0x0103, Buffer.alloc(4))]), 'Zoom');
    assert.equal(service([attribute(0x8070, Buffer.from([0, 0, 0, 3]))]), 'Skype_TeamsCall');
    assert.equal(service([attribute(0xff03, Buffer.alloc(4))]), 'GoogleCall');
    assert.equal(service([attribute(0x0014, Buffer.from('telegram.org'))]), 'TelegramVoip');
    assert.equal(service([attribute(0x0014, Buffer.from('relay.signal.org'))]), 'SignalVoip');
    assert.equal(service([], 0x0800), 'WhatsAppCall');
    assert.equal(service([attribute(0x0006, Buffer.from('user'))]), undefined);
  });

  it('over TCP with RFC 4571 framing, a realm with junk is no name, and a length not a multiple of 4 is still STUN', () => {
    const m = message(0x0003, [attribute(0x0014, Buffer.from('bad\x01realm')), attribute(0x4000, Buffer.alloc(6))]);
    // WhatsApp's Allocate: the message length counts the attribute unpadded (not a multiple of 4).
    const unpadded = m.subarray(0, m.length - 2);
    unpadded.writeUInt16BE(unpadded.length - 20, 2);
    const framed = Buffer.concat([Buffer.from([unpadded.length >> 8, unpadded.length & 255]), unpadded]);
    const r = identify([{ payload: framed, fromClient: true }], 6, 3478);
    assert.equal(r.app, 'STUN');
    assert.equal(r.confidence, 'dpi');
    assert.equal(r.serverName, '');
    assert.equal(r.info.service, 'WhatsAppCall');
    // Not STUN: a DNS-like datagram on the STUN port stays a port guess.
    const dns = Buffer.from('12340100000100000000000003777777076578616d706c6503636f6d0000010001', 'hex');
    assert.equal(identify([{ payload: dns, fromClient: true }]).confidence, 'port');
  });

  it('names a flow by its own endpoints as nDPI does for Google’s STUN addresses, and never by other flows (the answer must not depend on the worker count)', () => {
    const engine = new DpiEngine();
    const ends: [string, string][] = [];
    engine.addresses = (f) => ends[f];
    const flow = (f: number, client: string, clientPort: number, server: string, serverPort: number, payload: Buffer) => {
      ends[f] = [client, server];
      engine.reset(f, 17);
      engine.packet(f, 17, payload, 0, payload.length, true, clientPort, serverPort, -1);
      engine.label(f, 17, clientPort, serverPort);
      const i = engine.appInfo(f);
      return i === '' ? undefined : JSON.parse(i).service;
    };
    const binding = message(0x0001, []);
    // A WhatsApp call's flow is named by its own messages...
    assert.equal(
      flow(
        0,
        '192.168.1.5',
        50000,
        '198.51.100.1',
        3478,
        message(0x0008, [attribute(0x4000, Buffer.alloc(4)), attribute(0x0012, addressValue('203.0.113.9', 40000, true))]),
      ),
      'WhatsAppCall',
    );
    // ...and a later plain Binding from the same client endpoint is not named after it: nDPI's cache
    // of endpoints is per engine, so with decode workers its answer would depend on their number.
    assert.equal(flow(1, '192.168.1.5', 50000, '198.51.100.77', 40001, binding), undefined);
    // Google's STUN servers by address, on Google's ports or 3478 only.
    assert.equal(flow(4, '192.168.1.7', 45400, '142.250.82.76', 19305, binding), 'GoogleCall');
    assert.equal(flow(5, '192.168.1.7', 45401, '74.125.250.10', 3478, binding), 'GoogleCall');
    assert.equal(flow(6, '192.168.1.7', 45402, '74.125.250.10', 5000, binding), undefined);
    // Without the addresses (an engine its user gave none), nothing is named so.
    engine.addresses = null;
    assert.equal(flow(7, '192.168.1.5', 50000, '198.51.100.79', 40003, binding), undefined);
  });

  it('agrees with nDPI on the corpus', { skip: existsSync(CORPUS) ? false : `no corpus at ${CORPUS}`, timeout: 120_000 }, async () => {
    const r = await evaluateStun();
    console.log(JSON.stringify({ flows: r.flows, service: r.service, fields: r.fields }));
    assert.ok(r.flows >= 60, `STUN flows found: ${r.flows}`);
    for (const [name, a] of Object.entries(r.fields)) {
      assert.equal(a.same, a.ndpi, `${name}: ${a.same}/${a.ndpi}\n${r.differences.filter((d) => d.startsWith(name)).join('\n')}`);
      assert.equal(a.oursOnly, 0, `${name}: flowlens reports ${a.oursOnly} nDPI does not`);
    }
    assert.ok(r.fields.realm.ndpi >= 7 && r.fields.mappedAddress.ndpi >= 50 && r.fields.relayedAddress.ndpi >= 15, 'the corpus lost its STUN details');
    // The service: what the flow's own messages say and Google's STUN addresses; nDPI also names
    // flows from its cache of endpoints other flows named (per engine: flowlens does not, so that
    // the answer does not depend on the worker count), the flows still missing here.
    console.log(`# STUN service as nDPI names it: ${r.service.same}/${r.service.ndpi}`);
    assert.ok(r.service.same >= 51, `service ${r.service.same}/${r.service.ndpi}\n${r.differences.filter((d) => d.startsWith('service')).join('\n')}`);
    assert.equal(r.service.oursOnly, 0);
  });
});
