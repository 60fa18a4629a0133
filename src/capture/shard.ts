// Picks the decode worker of a frame, by the same parse that decodes it (src/decode): the address
// pair its flow is keyed by, whatever encapsulation carries it (VLAN, MPLS, PPPoE, PBB, FabricPath,
// tunnels...). A frame parse of its own would know fewer encapsulations than the decoder, and a flow
// whose two directions it read differently would be split over two workers.
//
// Sharding by the address pair rather than the 5-tuple is deliberate:
// - later IP fragments carry no ports, yet must meet their first fragment in the same flow table;
// - every flow between two hosts lands in one worker, so a host's distinct peers in different
//   workers are different hosts, and the per-interval peer counts of the workers add up exactly
//   when the main thread merges host records;
// - every frame that came through a tunnel over UDP (VXLAN, Geneve, GTP-U, Teredo) goes to worker 0:
//   the tunnel is a flow of its own and so is each inner flow, and an inner flow may come through
//   several tunnels (teredo.pcap's link-local flows do), so neither the carrier's pair nor the inner
//   pair alone keeps every flow whole; one worker for all tunnelled frames does, at the cost of
//   spreading tunnelled traffic over no more than one worker. IP tunnels (IP-in-IP, GRE) have no flow
//   of their own and go by the inner pair.
// The price is balance: a single busy host pair cannot be spread over workers.

import { decodePacket } from '../decode/index.js';
import { type DecodedPacket, KIND_IP } from '../decode/packet.js';

function mix32(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Symmetric hash of a decoded packet's address pair, the pair its flow is keyed by (inner
 * addresses of a tunnel, those behind any encapsulation the decoder reads); 0 when it has none.
 */
export function symmetricPacketHash(kind: number, version: number, src: Uint32Array, dst: Uint32Array): number {
  if (kind !== KIND_IP) return 0;
  let a = 0x3c6ef372;
  let b = 0x3c6ef372;
  const words = version === 6 ? 4 : 1;
  for (let i = 0; i < words; i++) {
    a = mix32(a, src[i] | 0);
    b = mix32(b, dst[i] | 0);
  }
  a = fmix(a);
  b = fmix(b);
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  return fmix(mix32(mix32(0x9747b28c, lo), hi));
}

/**
 * The decode worker (0 to workers - 1) of a frame: decodes it into `scratch` (reused, nothing is
 * allocated) and hashes the address pair its flow is keyed by. Frames that are not IP (ARP and the like)
 * and frames that came through a tunnel over UDP all go to worker 0.
 */
export function shardOf(linkType: number, buf: Buffer, off: number, caplen: number, wirelen: number, scratch: DecodedPacket, workers: number): number {
  if (workers <= 1) return 0;
  decodePacket(linkType, buf, off, caplen, wirelen, scratch);
  // Through a tunnel over UDP: worker 0, where the tunnel's flow and all its inner flows meet (above).
  if (scratch.hasCarrier) return 0;
  return symmetricPacketHash(scratch.kind, scratch.ipVersion, scratch.src, scratch.dst) % workers;
}
