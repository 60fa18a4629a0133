// Picks the decode worker of a frame in the capture callback, before any real decoding: a minimal
// parse down to the IP addresses and a hash that is the same for both directions.
//
// Sharding by the address pair rather than the 5-tuple is deliberate:
// - later IP fragments carry no ports, yet must meet their first fragment in the same flow table;
// - every flow between two hosts lands in one worker, so a host's distinct peers in different
//   workers are different hosts, and the per-interval peer counts of the workers add up exactly
//   when the main thread merges host records;
// - tunnels (IP-in-IP, GRE) keep all their inner flows on one worker.
// The price is balance: a single busy host pair cannot be spread over workers.

import { KIND_IP } from '../decode/packet.js';

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const ETHERTYPE_QINQ_OLD = 0x9100;

const DLT_NULL = 0;
const DLT_EN10MB = 1;
const DLT_RAW_BSD = 12;
const DLT_RAW_OPENBSD = 14;
const DLT_LOOP = 108;
const LINKTYPE_RAW = 101;
const DLT_LINUX_SLL = 113;
const LINKTYPE_IPV4 = 228;
const LINKTYPE_IPV6 = 229;
const DLT_LINUX_SLL2 = 276;

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

/** Hash of `len` bytes (a multiple of 4) at `off`. */
function addrHash(buf: Buffer, off: number, len: number): number {
  let h = 0x3c6ef372;
  for (let i = 0; i < len; i += 4) h = mix32(h, buf.readInt32BE(off + i));
  return fmix(h);
}

/** Offset of the IP header and its version (4 or 6) packed as offset * 8 + version; -1 when not IP. */
function ipStart(linkType: number, buf: Buffer, caplen: number): number {
  let off: number;
  let etherType: number;
  switch (linkType) {
    case DLT_EN10MB: {
      if (caplen < 14) return -1;
      off = 14;
      etherType = buf.readUInt16BE(12);
      while ((etherType === ETHERTYPE_VLAN || etherType === ETHERTYPE_QINQ || etherType === ETHERTYPE_QINQ_OLD) && off + 4 <= caplen) {
        etherType = buf.readUInt16BE(off + 2);
        off += 4;
      }
      break;
    }
    case DLT_LINUX_SLL:
      if (caplen < 16) return -1;
      off = 16;
      etherType = buf.readUInt16BE(14);
      break;
    case DLT_LINUX_SLL2:
      if (caplen < 20) return -1;
      off = 20;
      etherType = buf.readUInt16BE(0);
      break;
    case DLT_RAW_BSD:
    case DLT_RAW_OPENBSD:
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6:
      off = 0;
      etherType = caplen > 0 && buf[0] >> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
      break;
    case DLT_NULL:
    case DLT_LOOP: {
      if (caplen < 5) return -1;
      off = 4;
      etherType = buf[4] >> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
      break;
    }
    default:
      return -1;
  }
  if (etherType === ETHERTYPE_IPV4 && off + 20 <= caplen) return off * 8 + 4;
  if (etherType === ETHERTYPE_IPV6 && off + 40 <= caplen) return off * 8 + 6;
  return -1;
}

/**
 * Symmetric hash of the frame's IP address pair (0 for frames that are not IP: ARP and the like
 * all go to one worker). Allocates nothing.
 */
export function symmetricAddressHash(linkType: number, buf: Buffer, caplen: number): number {
  const start = ipStart(linkType, buf, caplen);
  if (start < 0) return 0;
  const off = start >>> 3;
  let a: number;
  let b: number;
  if ((start & 7) === 4) {
    a = addrHash(buf, off + 12, 4);
    b = addrHash(buf, off + 16, 4);
  } else {
    a = addrHash(buf, off + 8, 16);
    b = addrHash(buf, off + 24, 16);
  }
  // Order-independent: the same for A→B and B→A.
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  return fmix(mix32(mix32(0x9747b28c, lo), hi));
}

/**
 * Symmetric hash of a decoded packet's address pair, the pair its flow is keyed by (inner
 * addresses of a tunnel, those behind any encapsulation the decoder reads); 0 when it has none.
 * The import shards by this: the frame parse above knows fewer encapsulations than the decoder
 * (FabricPath, MPLS, PPPoE...), and a flow whose frames it reads differently would be split.
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
