// Tunnels over UDP (src/decode/udp-tunnel.ts): the inner packet becomes the packet and the carrying
// UDP packet is kept as pkt.carrier (a flow of its own), or the packet stays the UDP packet when
// the payload carries no IP packet. Frames are built by hand, byte by byte.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DecodedPacket, decodePacket } from '../src/decode/index.js';
import { KIND_IP, MALFORMED_REASONS, TUNNEL_IP, TUNNEL_NONE, TUNNEL_UDP } from '../src/decode/packet.js';
import { rng } from './helpers/random.js';

const ETH = 1;

function ethernet(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

function ipv4(proto: number, src: number, dst: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h[8] = 64;
  h[9] = proto;
  h.writeUInt32BE(src, 12);
  h.writeUInt32BE(dst, 16);
  return Buffer.concat([h, payload]);
}

function ipv6(next: number, srcLast: number, dstLast: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h[0] = 0x60;
  h.writeUInt16BE(payload.length, 4);
  h[6] = next;
  h[7] = 64;
  h.writeUInt32BE(0x20010000, 8);
  h.writeUInt32BE(srcLast, 20);
  h.writeUInt32BE(0x20014860, 24);
  h.writeUInt32BE(dstLast, 36);
  return Buffer.concat([h, payload]);
}

function udp(sport: number, dport: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

function tcpSyn(sport: number, dport: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h[12] = 0x50;
  h[13] = 0x02;
  return h;
}

const OUTER_SRC = 0xc0a8380c; // 192.168.56.12
const OUTER_DST = 0xc0a8380b;
const INNER = ipv4(6, 0x0a000001, 0x0a000002, tcpSyn(40000, 80));

function outer(sport: number, dport: number, payload: Buffer): Buffer {
  return ethernet(0x0800, ipv4(17, OUTER_SRC, OUTER_DST, udp(sport, dport, payload)));
}

function decode(frame: Buffer): DecodedPacket {
  return decodePacket(ETH, frame, 0, frame.length, frame.length, new DecodedPacket());
}

/** The packet is the inner TCP SYN 10.0.0.1:40000 > 10.0.0.2:80, carried by UDP sport > dport. */
function assertInner(pkt: DecodedPacket, sport: number, dport: number): void {
  assert.equal(pkt.kind, KIND_IP);
  assert.equal(pkt.malformed, 0, MALFORMED_REASONS[pkt.malformed]);
  assert.deepEqual([pkt.ipProto, pkt.src[0], pkt.dst[0], pkt.srcPort, pkt.dstPort, pkt.tcpFlags], [6, 0x0a000001, 0x0a000002, 40000, 80, 2]);
  assert.equal(pkt.hasCarrier, true);
  const c = pkt.carrier;
  assert.ok(c);
  assert.deepEqual([c.kind, c.ipProto, c.src[0], c.dst[0], c.srcPort, c.dstPort], [KIND_IP, 17, OUTER_SRC, OUTER_DST, sport, dport]);
  assert.equal(c.payloadOffset, 14 + 20 + 8, "the carrier's payload is its UDP payload");
}

/** The packet is the plain UDP packet sport > dport (no tunnel). */
function assertPlainUdp(pkt: DecodedPacket, sport: number, dport: number): void {
  assert.equal(pkt.hasCarrier, false);
  assert.equal(pkt.tunnelKind, TUNNEL_NONE);
  assert.deepEqual([pkt.kind, pkt.ipProto, pkt.src[0], pkt.dst[0], pkt.srcPort, pkt.dstPort], [KIND_IP, 17, OUTER_SRC, OUTER_DST, sport, dport]);
  assert.equal(pkt.payloadOffset, 14 + 20 + 8);
}

const vxlanHeader = Buffer.from([0x08, 0, 0, 0, 0, 0, 0x7b, 0]);
const gtpGpdu = (payload: Buffer, flags = 0x30, extra = Buffer.alloc(0)) => {
  const h = Buffer.from([flags, 0xff, 0, 0, 0, 0, 0, 1]);
  h.writeUInt16BE(extra.length + payload.length, 2);
  return Buffer.concat([h, extra, payload]);
};

test('VXLAN: the inner Ethernet frame is the packet, the UDP datagram its carrier', () => {
  const pkt = decode(outer(38071, 4789, Buffer.concat([vxlanHeader, ethernet(0x0800, INNER)])));
  assertInner(pkt, 38071, 4789);
  assert.equal(pkt.tunnelKind, TUNNEL_UDP);
});

test('VXLAN carrying ARP is the UDP packet (no inner flow); a cut-short inner frame is counted as tunnel.truncated', () => {
  const arp = ethernet(0x0806, Buffer.alloc(28));
  assertPlainUdp(decode(outer(40908, 4789, Buffer.concat([vxlanHeader, arp]))), 40908, 4789);
  const cut = decode(outer(40908, 4789, Buffer.concat([vxlanHeader, Buffer.alloc(6)])));
  assertPlainUdp(cut, 40908, 4789);
  assert.equal(MALFORMED_REASONS[cut.malformed], 'tunnel.truncated');
});

test('Geneve: options skipped, Ethernet or an IP EtherType', () => {
  const options = Buffer.alloc(8);
  const eth = Buffer.concat([Buffer.from([0x02, 0, 0x65, 0x58, 0, 0, 1, 0]), options, ethernet(0x0800, INNER)]);
  assertInner(decode(outer(50901, 6081, eth)), 50901, 6081);
  const ip = Buffer.concat([Buffer.from([0x00, 0, 0x08, 0x00, 0, 0, 1, 0]), INNER]);
  assertInner(decode(outer(50901, 6081, ip)), 50901, 6081);
  // Options longer than the datagram: the UDP packet, counted.
  const cut = decode(outer(50901, 6081, Buffer.from([0x3f, 0, 0x65, 0x58, 0, 0, 1, 0])));
  assertPlainUdp(cut, 50901, 6081);
  assert.equal(MALFORMED_REASONS[cut.malformed], 'tunnel.truncated');
});

test('GTP-U: G-PDUs (with sequence number and extension headers) carry IP; other messages and non-GTP payloads on 2152 do not', () => {
  assertInner(decode(outer(2152, 2152, gtpGpdu(INNER))), 2152, 2152);
  // S set: 4 more bytes; E set: an extension header of one word (length 1, next type 0).
  assertInner(decode(outer(2152, 2152, gtpGpdu(INNER, 0x32, Buffer.from([0, 1, 0, 0])))), 2152, 2152);
  assertInner(decode(outer(5906, 2152, gtpGpdu(INNER, 0x34, Buffer.from([0, 0, 0, 0x85, 1, 0x10, 0, 0])))), 5906, 2152);
  // An echo request (message type 1): no user data.
  const echo = gtpGpdu(Buffer.alloc(4));
  echo[1] = 1;
  assertPlainUdp(decode(outer(2152, 2152, echo)), 2152, 2152);
  // DNS from port 2152 (Zeek's false_gtp trace): not GTP.
  assertPlainUdp(decode(outer(2152, 53, Buffer.from('8d2f0100000100000000000003777777', 'hex'))), 2152, 53);
});

test('Teredo: IPv6 in UDP on any port when the IPv6 length accounts for the rest; origin indication skipped', () => {
  const inner6 = ipv6(6, 0xb9c82815, 0x68, tcpSyn(1286, 80));
  const pkt = decode(outer(3797, 32900, inner6));
  assert.equal(pkt.hasCarrier, true);
  assert.deepEqual([pkt.ipVersion, pkt.srcPort, pkt.dstPort, pkt.dst[3]], [6, 1286, 80, 0x68]);
  const origin = Buffer.concat([Buffer.from([0, 0, 0x12, 0x34, 1, 2, 3, 4]), inner6]);
  assert.equal(decode(outer(3544, 3797, origin)).hasCarrier, true);
  // One byte more than the IPv6 header says: not Teredo.
  assertPlainUdp(decode(outer(3797, 32900, Buffer.concat([inner6, Buffer.alloc(1)]))), 3797, 32900);
});

test('Teredo: a DNS query that only looks like an IPv6 header (telegram.pcap) is plain UDP', () => {
  // Query id 0x6a44 (version 6), one question (a "payload length" of 1 = 41 - 40), hop limit 0.
  const dns = Buffer.from('6a4401000001000000000000' + '0162075f646e732d7364045f756470046e746f70036f726700' + '000c0001', 'hex');
  assert.equal(dns.length, 41);
  assertPlainUdp(decode(outer(54595, 53, dns)), 54595, 53);
  // The same bytes with a hop limit and a header that fits are an IPv6 packet, found as Teredo.
  const bubble = Buffer.alloc(40);
  bubble[0] = 0x60;
  bubble[6] = 59; // no next header
  bubble[7] = 255;
  assert.equal(decode(outer(54595, 53, bubble)).hasCarrier, true);
});

test("GRE-in-UDP: the inner packet's innermost tunnel is GRE, named by the carrier's address pair", () => {
  const gre = Buffer.concat([Buffer.from([0, 0, 0x08, 0x00]), INNER]);
  const pkt = decode(outer(36527, 4754, gre));
  assertInner(pkt, 36527, 4754);
  assert.equal(pkt.tunnelKind, TUNNEL_IP);
  assert.equal(pkt.inIpTunnel(), true);
  assert.deepEqual([pkt.tunnelSrc[0], pkt.tunnelDst[0]], [OUTER_SRC, OUTER_DST]);
});

test('a UDP tunnel inside a UDP tunnel is left as the inner UDP packet (one carrier a packet)', () => {
  const innerVxlan = ipv4(17, 0x0a000001, 0x0a000002, udp(1234, 4789, Buffer.concat([vxlanHeader, ethernet(0x0800, INNER)])));
  const pkt = decode(outer(2152, 2152, gtpGpdu(innerVxlan)));
  assert.equal(pkt.hasCarrier, true);
  assert.deepEqual([pkt.ipProto, pkt.srcPort, pkt.dstPort], [17, 1234, 4789]);
  assert.equal(pkt.carrier?.dstPort, 2152);
});

test('mutated tunnel frames never throw, and the packet and its carrier stay inside the frame', () => {
  const next = rng(25);
  const frames = [
    outer(38071, 4789, Buffer.concat([vxlanHeader, ethernet(0x0800, INNER)])),
    outer(50901, 6081, Buffer.concat([Buffer.from([0x02, 0, 0x65, 0x58, 0, 0, 1, 0]), Buffer.alloc(8), ethernet(0x0800, INNER)])),
    outer(2152, 2152, gtpGpdu(INNER, 0x34, Buffer.from([0, 0, 0, 0x85, 1, 0x10, 0, 0]))),
    outer(3797, 32900, ipv6(6, 1, 2, tcpSyn(1, 2))),
    outer(36527, 4754, Buffer.concat([Buffer.from([0, 0, 0x08, 0x00]), INNER])),
  ];
  const pkt = new DecodedPacket();
  for (let round = 0; round < 4000; round++) {
    const base = frames[round % frames.length];
    const f = Buffer.from(base);
    const flips = 1 + Math.floor(next() * 4);
    for (let i = 0; i < flips; i++) f[14 + 20 + 8 + Math.floor(next() * (f.length - 42))] = Math.floor(next() * 256);
    const caplen = next() < 0.3 ? Math.floor(next() * f.length) : f.length;
    decodePacket(ETH, f, 0, caplen, f.length, pkt);
    for (const p of [pkt, pkt.hasCarrier ? pkt.carrier : null]) {
      if (p === null || p.payloadLength === 0) continue;
      assert.ok(p.payloadOffset >= 0 && p.payloadOffset + p.payloadLength <= caplen, 'payload inside the frame');
    }
  }
});
