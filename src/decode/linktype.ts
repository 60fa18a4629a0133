// Link-layer dispatch by LINKTYPE_ number (https://www.tcpdump.org/linktypes.html).
import { decodeEthernet } from './ethernet.js';
import { decodeIeee80211, decodeRadiotap } from './ieee80211.js';
import { decodeIp } from './ip.js';
import { decodeIpv4 } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { decodeLoop, decodeNull } from './null.js';
import { R_LINK_TRUNCATED, R_LINK_UNSUPPORTED, type DecodedPacket } from './packet.js';
import { decodeCiscoHdlc, decodePpp, decodePppEther } from './ppp.js';
import { decodeSll, decodeSll2 } from './sll.js';

export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_PPP = 9;
export const LINKTYPE_RAW_12 = 12; // DLT_RAW on most systems
export const LINKTYPE_RAW_14 = 14; // DLT_RAW on OpenBSD
export const LINKTYPE_PPP_HDLC = 50;
export const LINKTYPE_PPP_ETHER = 51;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_C_HDLC = 104;
export const LINKTYPE_IEEE802_11 = 105;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IEEE802_11_RADIOTAP = 127;
export const LINKTYPE_PPI = 192;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;

const SUPPORTED = new Set([
  LINKTYPE_NULL,
  LINKTYPE_ETHERNET,
  LINKTYPE_PPP,
  LINKTYPE_RAW_12,
  LINKTYPE_RAW_14,
  LINKTYPE_PPP_HDLC,
  LINKTYPE_PPP_ETHER,
  LINKTYPE_RAW,
  LINKTYPE_C_HDLC,
  LINKTYPE_IEEE802_11,
  LINKTYPE_LOOP,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_IEEE802_11_RADIOTAP,
  LINKTYPE_PPI,
  LINKTYPE_IPV4,
  LINKTYPE_IPV6,
  LINKTYPE_LINUX_SLL2,
]);

export function isSupportedLinkType(linkType: number): boolean {
  return SUPPORTED.has(linkType);
}

export function decodeLink(linkType: number, buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  switch (linkType) {
    case LINKTYPE_ETHERNET:
      return decodeEthernet(buf, off, end, pkt);
    case LINKTYPE_LINUX_SLL:
      return decodeSll(buf, off, end, pkt);
    case LINKTYPE_LINUX_SLL2:
      return decodeSll2(buf, off, end, pkt);
    case LINKTYPE_RAW:
    case LINKTYPE_RAW_12:
    case LINKTYPE_RAW_14:
      return decodeIp(buf, off, end, pkt);
    case LINKTYPE_IPV4:
      return decodeIpv4(buf, off, end, pkt);
    case LINKTYPE_IPV6:
      return decodeIpv6(buf, off, end, pkt);
    case LINKTYPE_NULL:
      return decodeNull(buf, off, end, pkt);
    case LINKTYPE_LOOP:
      return decodeLoop(buf, off, end, pkt);
    case LINKTYPE_PPP:
    case LINKTYPE_PPP_HDLC:
      return decodePpp(buf, off, end, pkt);
    case LINKTYPE_PPP_ETHER:
      return decodePppEther(buf, off, end, pkt);
    case LINKTYPE_C_HDLC:
      return decodeCiscoHdlc(buf, off, end, pkt);
    case LINKTYPE_IEEE802_11:
      return decodeIeee80211(buf, off, end, pkt);
    case LINKTYPE_IEEE802_11_RADIOTAP:
      return decodeRadiotap(buf, off, end, pkt);
    case LINKTYPE_PPI: {
      // PPI: version(1) flags(1) length(2 LE) inner DLT(4 LE), then the inner frame.
      if (end - off < 8) return pkt.fail(R_LINK_TRUNCATED);
      const len = buf.readUInt16LE(off + 2);
      const inner = buf.readUInt32LE(off + 4);
      if (len < 8 || end - off < len) return pkt.fail(R_LINK_TRUNCATED);
      if (inner === LINKTYPE_PPI || !SUPPORTED.has(inner)) return pkt.fail(R_LINK_UNSUPPORTED);
      return decodeLink(inner, buf, off + len, end, pkt);
    }
    default:
      return pkt.fail(R_LINK_UNSUPPORTED);
  }
}
