// Decoders must survive any bytes: random frames and mutations of valid frames, on every link type,
// never throw and never point outside the frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePacket, DecodedPacket } from '../src/decode/index.js';
import { ipv4ChecksumBroken } from '../src/decode/ipv4.js';
import { KIND_IP, R_IPV4_BAD_HEADER } from '../src/decode/packet.js';
import { rng } from './helpers/random.js';

const LINK_TYPES = [0, 1, 9, 12, 14, 50, 51, 101, 104, 105, 108, 113, 127, 192, 228, 229, 276, 147];

/** An Ethernet + IPv4 + TCP SYN frame, built by hand. */
function validFrame(): Buffer {
  const f = Buffer.alloc(14 + 20 + 20);
  f.writeUInt16BE(0x0800, 12);
  f[14] = 0x45;
  f.writeUInt16BE(40, 16);
  f[14 + 9] = 6;
  f.writeUInt32BE(0x0a000001, 14 + 12);
  f.writeUInt32BE(0x0a000002, 14 + 16);
  f.writeUInt16BE(40000, 34);
  f.writeUInt16BE(80, 36);
  f[34 + 12] = 0x50;
  f[34 + 13] = 0x02;
  return f;
}

function checkBounds(pkt: DecodedPacket, off: number, caplen: number): void {
  if (pkt.payloadLength > 0) {
    assert.ok(pkt.payloadOffset >= off && pkt.payloadOffset + pkt.payloadLength <= off + caplen, 'payload inside the frame');
  }
  assert.ok(pkt.payloadLength >= 0, 'payload length not negative');
}

test('the valid frame decodes as IPv4 TCP with its ports and flags', () => {
  const pkt = new DecodedPacket();
  const f = validFrame();
  decodePacket(1, f, 0, f.length, f.length, pkt);
  assert.equal(pkt.kind, KIND_IP);
  assert.equal(pkt.malformed, 0);
  assert.equal(pkt.ipProto, 6);
  assert.equal(pkt.srcPort, 40000);
  assert.equal(pkt.dstPort, 80);
  assert.equal(pkt.tcpFlags, 0x02);
});

test('random frames on every link type never throw', () => {
  const rand = rng(1);
  const pkt = new DecodedPacket();
  let decodedIp = 0;
  for (let i = 0; i < 40_000; i++) {
    const len = Math.floor(rand() * 200);
    const buf = Buffer.alloc(len + 8);
    for (let k = 0; k < buf.length; k++) buf[k] = Math.floor(rand() * 256);
    // Bias the first bytes towards real headers so that deeper layers are reached too.
    if (rand() < 0.5 && len > 20) buf[4] = 0x45;
    const off = 4;
    const linkType = LINK_TYPES[i % LINK_TYPES.length];
    const wirelen = len + Math.floor(rand() * 100);
    assert.doesNotThrow(() => decodePacket(linkType, buf, off, len, wirelen, pkt));
    checkBounds(pkt, off, len);
    if (pkt.kind === KIND_IP) decodedIp++;
  }
  assert.ok(decodedIp > 1000, `random frames reached the IP layer ${decodedIp} times`);
});

test('every truncation and byte mutation of a valid frame decodes without throwing', () => {
  const rand = rng(7);
  const pkt = new DecodedPacket();
  const base = validFrame();
  for (let cut = 0; cut <= base.length; cut++) {
    assert.doesNotThrow(() => decodePacket(1, base, 0, cut, base.length, pkt));
    checkBounds(pkt, 0, cut);
    if (cut < 14 + 20) assert.equal(pkt.hasPorts, false, `cut at ${cut}: no ports without an IP header`);
    if (cut >= 14 + 20 + 14) assert.equal(pkt.tcpFlags, 0x02, `cut at ${cut}: flags still read`);
  }
  for (let i = 0; i < 20_000; i++) {
    const f = Buffer.from(base);
    const n = 1 + Math.floor(rand() * 4);
    for (let k = 0; k < n; k++) f[Math.floor(rand() * f.length)] = Math.floor(rand() * 256);
    const caplen = Math.floor(rand() * (f.length + 1));
    assert.doesNotThrow(() => decodePacket(1, f, 0, caplen, f.length, pkt));
    checkBounds(pkt, 0, caplen);
  }
});

test('a malformed IPv4 header length is reported with its reason', () => {
  const pkt = new DecodedPacket();
  const f = validFrame();
  f[14] = 0x43; // IHL 3 words < 5
  decodePacket(1, f, 0, f.length, f.length, pkt);
  assert.equal(pkt.malformed, R_IPV4_BAD_HEADER);
});

test('an IPv4 header checksum is checked as RFC 1071 sums it; zero (left to the NIC) passes', () => {
  const f = validFrame();
  const pkt = new DecodedPacket();
  decodePacket(1, f, 0, f.length, f.length, pkt);
  assert.equal(pkt.ipOffset, 14);
  assert.equal(ipv4ChecksumBroken(f, 14), false, 'zero: offloaded');
  f[24] = 0xff; // any non-zero wrong value
  assert.equal(ipv4ChecksumBroken(f, 14), true);
  // The one's-complement sum of the header with a zero checksum field, complemented.
  f[24] = f[25] = 0;
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += f.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  f.writeUInt16BE(~sum & 0xffff, 24);
  assert.equal(ipv4ChecksumBroken(f, 14), false);
  f[14 + 16] ^= 0x40; // a destination rewritten without fixing the checksum (a fuzzer, a bit flip)
  assert.equal(ipv4ChecksumBroken(f, 14), true);
});
