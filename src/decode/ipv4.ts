// IPv4 (RFC 791): addresses, protocol, fragments, header and length checks.
import { decodeIpPayload } from './ip.js';
import { KIND_IP, R_IP_BAD_VERSION, R_IPV4_BAD_HEADER, R_IPV4_BAD_LENGTH, R_IPV4_TRUNCATED, type DecodedPacket } from './packet.js';
import { u32be } from './bytes.js';

export function decodeIpv4(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 20) {
    pkt.fail(R_IPV4_TRUNCATED);
    return;
  }
  if (buf[off] >> 4 !== 4) {
    pkt.fail(R_IP_BAD_VERSION);
    return;
  }
  const headerLen = (buf[off] & 0x0f) * 4;
  if (headerLen < 20) {
    pkt.fail(R_IPV4_BAD_HEADER);
    return;
  }
  let totalLen = (buf[off + 2] << 8) | buf[off + 3];
  const onWire = pkt.wireEnd - off;
  if (totalLen === 0) {
    // Captured on the sending host with TCP segmentation offload: the NIC fills the length in later.
    totalLen = onWire;
  } else if (totalLen < headerLen) {
    pkt.fail(R_IPV4_BAD_LENGTH);
    return;
  } else if (totalLen > onWire) {
    pkt.fail(R_IPV4_BAD_LENGTH); // claims more than the wire carried; decode what is there
    totalLen = onWire;
  }
  const ipEnd = Math.min(off + totalLen, end); // drops Ethernet padding

  pkt.kind = KIND_IP;
  pkt.ipVersion = 4;
  pkt.ipOffset = off;
  const src = pkt.src;
  const dst = pkt.dst;
  src[0] = u32be(buf, off + 12);
  src[1] = src[2] = src[3] = 0;
  dst[0] = u32be(buf, off + 16);
  dst[1] = dst[2] = dst[3] = 0;
  const proto = buf[off + 9];
  pkt.ipProto = proto;
  pkt.hasPorts = false;

  const fragField = (buf[off + 6] << 8) | buf[off + 7];
  const fragOffset = fragField & 0x1fff;
  const moreFragments = (fragField & 0x2000) !== 0;
  if (fragOffset !== 0 || moreFragments) {
    pkt.isFragment = true;
    pkt.fragId = (buf[off + 4] << 8) | buf[off + 5];
    if (fragOffset !== 0) {
      // No transport header here: the flow table finds the flow from the first fragment.
      pkt.laterFragment = true;
      return;
    }
  }
  if (end - off < headerLen) {
    pkt.fail(R_IPV4_TRUNCATED);
    return;
  }
  decodeIpPayload(proto, buf, off + headerLen, ipEnd, pkt);
}

/**
 * Whether the IPv4 header at `off` (its length already checked) carries a wrong checksum. Zero
 * counts as right: a host that offloads checksums to its NIC captures its own packets with the
 * field still empty. Not checked while decoding (tshark counts such packets too); the scan
 * detectors ask, because no host accepts a packet with a broken header, so it probes nothing.
 */
export function ipv4ChecksumBroken(buf: Buffer, off: number): boolean {
  const stored = (buf[off + 10] << 8) | buf[off + 11];
  if (stored === 0) return false;
  const headerLen = (buf[off] & 0x0f) * 4;
  let sum = 0;
  for (let i = 0; i < headerLen; i += 2) sum += (buf[off + i] << 8) | buf[off + i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum !== 0xffff;
}
