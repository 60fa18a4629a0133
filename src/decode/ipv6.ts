// IPv6 (RFC 8200) with its extension headers walked to the transport header.
import { decodeIpPayload } from './ip.js';
import { KIND_IP, R_IP_BAD_VERSION, R_IPV6_BAD_EXTENSION, R_IPV6_TRUNCATED, R_IPV6_BAD_LENGTH, type DecodedPacket } from './packet.js';
import { u32be } from './bytes.js';

const HOP_BY_HOP = 0;
const ROUTING = 43;
const FRAGMENT = 44;
const AH = 51;
const DEST_OPTS = 60;
const MOBILITY = 135;
const HIP = 139;
const SHIM6 = 140;
/** More extension headers than this is not a real packet. */
const MAX_EXTENSIONS = 10;

export function decodeIpv6(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 40) {
    pkt.fail(R_IPV6_TRUNCATED);
    return;
  }
  if (buf[off] >> 4 !== 6) {
    pkt.fail(R_IP_BAD_VERSION);
    return;
  }
  const payloadLen = (buf[off + 4] << 8) | buf[off + 5];
  let ipEnd = end;
  if (payloadLen !== 0) {
    // 0 means a jumbogram (RFC 2675): the frame gives the length.
    const claimed = off + 40 + payloadLen;
    if (claimed > pkt.wireEnd) pkt.fail(R_IPV6_BAD_LENGTH); // the length field claims more than the wire carried
    if (claimed < ipEnd) ipEnd = claimed;
  }
  pkt.kind = KIND_IP;
  pkt.ipVersion = 6;
  pkt.ipOffset = off;
  const src = pkt.src;
  const dst = pkt.dst;
  for (let i = 0; i < 4; i++) {
    src[i] = u32be(buf, off + 8 + i * 4);
    dst[i] = u32be(buf, off + 24 + i * 4);
  }
  pkt.hasPorts = false;

  let next = buf[off + 6];
  let p = off + 40;
  for (let n = 0; n < MAX_EXTENSIONS; n++) {
    switch (next) {
      case HOP_BY_HOP:
      case ROUTING:
      case DEST_OPTS:
      case MOBILITY:
      case HIP:
      case SHIM6: {
        if (ipEnd - p < 2) return truncatedExtension(pkt, next);
        const len = (buf[p + 1] + 1) * 8;
        next = buf[p];
        p += len;
        continue;
      }
      case AH: {
        if (ipEnd - p < 2) return truncatedExtension(pkt, next);
        const len = (buf[p + 1] + 2) * 4;
        next = buf[p];
        p += len;
        continue;
      }
      case FRAGMENT: {
        if (ipEnd - p < 8) return truncatedExtension(pkt, next);
        const field = (buf[p + 2] << 8) | buf[p + 3];
        pkt.isFragment = true;
        pkt.fragId = buf.readUInt32BE(p + 4);
        next = buf[p];
        p += 8;
        if (field >> 3 !== 0) {
          pkt.ipProto = next;
          pkt.laterFragment = true;
          return;
        }
        continue;
      }
      default:
        break;
    }
    break;
  }
  pkt.ipProto = next;
  if (p > ipEnd) {
    pkt.fail(R_IPV6_BAD_EXTENSION);
    return;
  }
  decodeIpPayload(next, buf, p, ipEnd, pkt);
}

function truncatedExtension(pkt: DecodedPacket, next: number): void {
  pkt.ipProto = next;
  pkt.fail(R_IPV6_TRUNCATED);
}
