// What an EtherType (or the protocol field of SLL/SLL2/GRE/Cisco HDLC) carries: VLAN tags,
// IPv4, IPv6, PPPoE sessions, MPLS label stacks, 802.1ah PBB, ARP (no flow, but neighbour-sweep detection
// reads it). Anything else is non-IP traffic.
import { decodeArp } from './arp.js';
import { decodeIp } from './ip.js';
import { decodeIpv4 } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { R_LINK_TRUNCATED, type DecodedPacket } from './packet.js';
import { decodePppProtocol } from './ppp.js';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_ARP = 0x0806;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
const ETHERTYPE_QINQ_OLD = 0x9100;
const ETHERTYPE_PPPOE_SESSION = 0x8864;
const ETHERTYPE_MPLS = 0x8847;
const ETHERTYPE_MPLS_MULTICAST = 0x8848;
const ETHERTYPE_CISCO_FABRICPATH = 0x8903;
/** IEEE 802.1ah provider backbone bridging (MAC-in-MAC). */
const ETHERTYPE_PBB = 0x88e7;
/** Stacked tags or labels beyond this are not a real frame. */
const MAX_TAGS = 8;

export function decodeEthertype(type: number, buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  for (let tags = 0; tags < MAX_TAGS; tags++) {
    switch (type) {
      case ETHERTYPE_IPV4:
        decodeIpv4(buf, off, end, pkt);
        return;
      case ETHERTYPE_IPV6:
        decodeIpv6(buf, off, end, pkt);
        return;
      case ETHERTYPE_ARP:
        decodeArp(buf, off, end, pkt);
        return;
      case ETHERTYPE_VLAN:
      case ETHERTYPE_QINQ:
      case ETHERTYPE_QINQ_OLD:
        if (end - off < 4) {
          pkt.fail(R_LINK_TRUNCATED);
          return;
        }
        if (pkt.vlan === 0) pkt.vlan = ((buf[off] << 8) | buf[off + 1]) & 0x0fff;
        type = (buf[off + 2] << 8) | buf[off + 3];
        off += 4;
        continue;
      case ETHERTYPE_PPPOE_SESSION:
        // 6-byte PPPoE header, then the 2-byte PPP protocol.
        if (end - off < 8) {
          pkt.fail(R_LINK_TRUNCATED);
          return;
        }
        decodePppProtocol((buf[off + 6] << 8) | buf[off + 7], buf, off + 8, end, pkt);
        return;
      case ETHERTYPE_MPLS:
      case ETHERTYPE_MPLS_MULTICAST: {
        // Pop labels to the bottom of the stack; the payload's first nibble tells IPv4 from IPv6.
        for (let labels = 0; labels < MAX_TAGS; labels++) {
          if (end - off < 4) {
            pkt.fail(R_LINK_TRUNCATED);
            return;
          }
          const bottom = buf[off + 2] & 1;
          off += 4;
          if (bottom) break;
        }
        if (end - off >= 1 && (buf[off] >> 4 === 4 || buf[off] >> 4 === 6)) decodeIp(buf, off, end, pkt);
        return;
      }
      case ETHERTYPE_CISCO_FABRICPATH:
        // FTag and TTL (2 bytes), then the whole original Ethernet frame.
        if (end - off < 2 + 14) {
          pkt.fail(R_LINK_TRUNCATED);
          return;
        }
        off += 2 + 12;
        type = (buf[off] << 8) | buf[off + 1];
        off += 2;
        continue;
      case ETHERTYPE_PBB:
        // The 4-byte I-TAG (priority, flags, service id), then the customer's Ethernet frame.
        if (end - off < 4 + 14) {
          pkt.fail(R_LINK_TRUNCATED);
          return;
        }
        off += 4 + 12;
        type = (buf[off] << 8) | buf[off + 1];
        off += 2;
        continue;
      default:
        return; // non-IP (LLDP, STP, ...): traffic, but no flow
    }
  }
}
