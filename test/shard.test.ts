// The decode worker of a frame (src/capture/shard.ts) comes from the decoder's own parse, so both
// directions of a flow meet in one worker whatever encapsulation carries them: MPLS, PPPoE, 802.1ah
// PBB, Cisco FabricPath, also when only one direction is encapsulated (MPLS or FabricPath inside a
// provider's network, plain Ethernet at the edge), as in the corpus captures whose flows a frame
// parse of its own split (it read the encapsulated direction as non-IP, worker 0).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shardOf } from '../src/capture/shard.js';
import { DecodedPacket } from '../src/decode/packet.js';
import { be16, concat, ethernet, ETHERTYPE, ip, LINKTYPE, mac, TCP_FLAGS, tcp, u8, udp } from './helpers/frames.js';

const ETHERTYPE_MPLS = 0x8847;
const ETHERTYPE_PPPOE_SESSION = 0x8864;
const ETHERTYPE_PBB = 0x88e7;
const ETHERTYPE_FABRICPATH = 0x8903;

const etherTypeOf = (packet: Uint8Array) => (packet[0] >> 4 === 6 ? ETHERTYPE.IPV6 : ETHERTYPE.IPV4);

/** Ways to carry an IP packet in an Ethernet frame. */
const ENCAPSULATIONS: Record<string, (packet: Uint8Array) => Uint8Array> = {
  ethernet: (p) => ethernet({ etherType: etherTypeOf(p), payload: p }),
  vlan: (p) => ethernet({ etherType: etherTypeOf(p), payload: p, vlans: [{ vid: 42 }] }),
  // Two labels, the second at the bottom of the stack (S bit).
  mpls: (p) => ethernet({ etherType: ETHERTYPE_MPLS, payload: concat(u8(0x00, 0x01, 0x00, 0x40), u8(0x00, 0x02, 0x01, 0x40), p) }),
  // PPPoE session header (version/type, code, session id, length), then the PPP protocol.
  pppoe: (p) =>
    ethernet({
      etherType: ETHERTYPE_PPPOE_SESSION,
      payload: concat(u8(0x11, 0x00), be16(0x1234), be16(p.length + 2), be16(p[0] >> 4 === 6 ? 0x0057 : 0x0021), p),
    }),
  // 802.1ah: the I-TAG, then the customer's frame.
  pbb: (p) =>
    ethernet({
      etherType: ETHERTYPE_PBB,
      payload: concat(u8(0x00, 0x00, 0x10, 0x01), mac('02:00:00:00:01:02'), mac('02:00:00:00:01:01'), be16(etherTypeOf(p)), p),
    }),
  // FabricPath: FTag and TTL, then the original Ethernet frame.
  fabricpath: (p) =>
    ethernet({ etherType: ETHERTYPE_FABRICPATH, payload: concat(u8(0x00, 0x3f), mac('02:00:00:00:01:02'), mac('02:00:00:00:01:01'), be16(etherTypeOf(p)), p) }),
};

/** A deterministic pseudo-random address of either family. */
function address(i: number, v6: boolean): string {
  const a = (Math.imul(i + 1, 2654435761) >>> 0).toString(16).padStart(8, '0');
  if (v6) return `2001:db8:${a.slice(0, 4)}:${a.slice(4)}::${(i % 250) + 1}`;
  return `10.${(i * 7) & 255}.${(i * 13) & 255}.${(i % 250) + 1}`;
}

const scratch = new DecodedPacket();
const shard = (frame: Uint8Array, workers: number) => shardOf(LINKTYPE.ETHERNET, Buffer.from(frame), 0, frame.length, frame.length, scratch, workers);

describe('shardOf: both directions of a flow in one worker', () => {
  const pairs = 200;
  for (const outward of ['mpls', 'pppoe', 'pbb', 'fabricpath']) {
    for (const back of [outward, 'ethernet', 'vlan']) {
      it(`${outward} out, ${back} back: IPv4 and IPv6, 2 to 8 workers`, () => {
        for (const v6 of [false, true]) {
          const used = new Map<number, number>();
          for (let i = 0; i < pairs; i++) {
            const client = address(i, v6);
            const server = address(i + 1000, v6);
            const request = ENCAPSULATIONS[outward](ip({ src: client, dst: server, l4: tcp({ srcPort: 40000 + i, dstPort: 443, flags: TCP_FLAGS.SYN }) }));
            const reply = ENCAPSULATIONS[back](
              ip({ src: server, dst: client, l4: tcp({ srcPort: 443, dstPort: 40000 + i, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK }) }),
            );
            for (const workers of [2, 3, 4, 8]) {
              const w = shard(request, workers);
              assert.equal(shard(reply, workers), w, `${client} ↔ ${server}, ${workers} workers`);
              if (workers === 2) used.set(w, (used.get(w) ?? 0) + 1);
            }
          }
          // The flows spread: both of two workers get a fair share (a constant shard would pass the above).
          for (const w of [0, 1])
            assert.ok((used.get(w) ?? 0) > pairs / 4, `worker ${w} of 2 got ${used.get(w) ?? 0} of ${pairs} ${v6 ? 'IPv6' : 'IPv4'} flows`);
        }
      });
    }
  }

  it('the same flow shards alike whatever carries it', () => {
    const packet = ip({ src: '192.0.2.7', dst: '198.51.100.9', l4: tcp({ srcPort: 1234, dstPort: 80, flags: TCP_FLAGS.ACK }) });
    for (const workers of [3, 5, 7]) {
      const shards = new Set(Object.values(ENCAPSULATIONS).map((wrap) => shard(wrap(packet), workers)));
      assert.equal(shards.size, 1, `${workers} workers: ${[...shards]}`);
    }
  });

  it('one worker: always 0, and frames that are not IP go to worker 0', () => {
    const packet = ip({ src: '192.0.2.7', dst: '198.51.100.9', l4: tcp({ srcPort: 1234, dstPort: 80, flags: TCP_FLAGS.ACK }) });
    assert.equal(shard(ENCAPSULATIONS.mpls(packet), 1), 0);
    const lldp = ethernet({ etherType: 0x88cc, payload: new Uint8Array(40) });
    assert.equal(shard(lldp, 4), 0);
  });
});

describe('shardOf: tunnels over UDP', () => {
  // teredo.pcap's link-local flows reach the host through two Teredo carriers: by either the carrier's
  // pair or the inner pair alone, the tunnel's flow or the inner flow would be split over workers.
  const VXLAN = u8(0x08, 0, 0, 0, 0, 0, 0x7b, 0);
  const inner = (src: string, dst: string, sport: number, dport: number) =>
    ethernet({ etherType: ETHERTYPE.IPV4, payload: ip({ src, dst, l4: tcp({ srcPort: sport, dstPort: dport, flags: TCP_FLAGS.ACK }) }) });
  const viaVxlan = (vtepA: string, vtepB: string, frame: Uint8Array) =>
    ethernet({ etherType: ETHERTYPE.IPV4, payload: ip({ src: vtepA, dst: vtepB, l4: udp({ srcPort: 49152, dstPort: 4789, payload: concat(VXLAN, frame) }) }) });

  it('every tunnelled frame goes to worker 0, whichever carrier and inner pair', () => {
    const spread = new Set<number>();
    for (let i = 0; i < 64; i++) {
      const client = address(i, false);
      const server = address(i + 1000, false);
      const request = inner(client, server, 40000 + i, 80);
      const reply = inner(server, client, 80, 40000 + i);
      // The same inner flow through two tunnels, and each direction through a different one.
      for (const frame of [
        viaVxlan('192.0.2.1', '192.0.2.2', request),
        viaVxlan('198.51.100.1', '198.51.100.2', request),
        viaVxlan('198.51.100.2', '198.51.100.1', reply),
      ])
        for (const workers of [2, 3, 4]) assert.equal(shard(frame, workers), 0, `${client} ↔ ${server} tunnelled, ${workers} workers`);
      spread.add(shard(request, 4));
    }
    // The same inner frames without the tunnel spread over the workers (the rule is for tunnels only).
    assert.ok(spread.size > 1, `bare frames went to ${[...spread]}`);
  });
});
