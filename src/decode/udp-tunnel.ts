// Tunnels over UDP: which carrier a UDP packet is (VXLAN, Geneve, GTP-U, Teredo, GRE-in-UDP), and
// the switch from the carrier to the packet it carries. The carrier stays a flow of its own (Zeek
// logs both, the inner connection naming the carrier's uid in tunnel_parents): its decode is
// copied to pkt.carrier, the inner packet is then decoded into pkt itself. When the payload turns
// out not to carry an IP packet (ARP in VXLAN, a false match, a truncated inner header), pkt is the carrier again, so the packet still counts to the UDP flow.
import { decodeGeneve } from './geneve.js';
import { decodeGre } from './gre.js';
import { decodeGtpU } from './gtp.js';
import { KIND_IP, KIND_NON_IP, R_TUNNEL_TRUNCATED, TUNNEL_UDP, type DecodedPacket } from './packet.js';
import { decodeTeredo, isTeredo } from './teredo.js';
import { decodeVxlan } from './vxlan.js';

export const PORT_VXLAN = 4789;
export const PORT_GENEVE = 6081;
export const PORT_GTP_U = 2152;
export const PORT_TEREDO = 3544;
/** GRE-in-UDP (RFC 8086). */
export const PORT_GRE_UDP = 4754;

const NONE = 0;
const VXLAN = 1;
const GENEVE = 2;
const GTP_U = 3;
const TEREDO = 4;
const GRE_UDP = 5;

/** Which tunnel the UDP payload at [off, end) is, by port and then by its header (Teredo by its header alone, as Zeek finds relays on any port). */
function tunnelOf(buf: Buffer, off: number, end: number, sport: number, dport: number): number {
  const len = end - off;
  if (dport === PORT_VXLAN || sport === PORT_VXLAN) return len >= 8 ? VXLAN : NONE;
  if (dport === PORT_GENEVE || sport === PORT_GENEVE) return len >= 8 && buf[off] >> 6 === 0 ? GENEVE : NONE;
  // GTPv1 (version 1, protocol type GTP) user data: the G-PDU message (0xff).
  if (dport === PORT_GTP_U || sport === PORT_GTP_U) return len >= 8 && buf[off] >> 4 === 3 && buf[off + 1] === 0xff ? GTP_U : NONE;
  if (dport === PORT_GRE_UDP || sport === PORT_GRE_UDP) return len >= 4 ? GRE_UDP : NONE;
  return isTeredo(buf, off, end) ? TEREDO : NONE;
}

/**
 * Called by the UDP decoder with the payload's bounds: when it is a tunnel (and pkt is not inside
 * one already), decodes the inner packet as above. Returns whether pkt now holds an inner packet.
 */
export function decodeUdpTunnel(buf: Buffer, off: number, end: number, pkt: DecodedPacket): boolean {
  const carrier = pkt.carrier;
  if (carrier === null || pkt.hasCarrier || pkt.laterFragment) return false;
  const tunnel = tunnelOf(buf, off, end, pkt.srcPort, pkt.dstPort);
  if (tunnel === NONE) return false;
  carrier.copyFrom(pkt);
  pkt.kind = KIND_NON_IP;
  pkt.hasPorts = false;
  pkt.srcPort = pkt.dstPort = 0;
  pkt.isFragment = pkt.laterFragment = false;
  pkt.fragId = 0;
  pkt.icmpType = -1;
  pkt.tcpFlags = 0;
  pkt.payloadOffset = pkt.payloadLength = 0;
  pkt.depth++;
  pkt.tunnelKind = TUNNEL_UDP;
  pkt.hasCarrier = true; // set now: a tunnel over UDP further in is not one (see DecodedPacket.hasCarrier)
  switch (tunnel) {
    case VXLAN:
      decodeVxlan(buf, off, end, pkt);
      break;
    case GENEVE:
      decodeGeneve(buf, off, end, pkt);
      break;
    case GTP_U:
      decodeGtpU(buf, off, end, pkt);
      break;
    case TEREDO:
      decodeTeredo(buf, off, end, pkt);
      break;
    default:
      // Zeek names GRE's tunnel by its address pair, here the carrier's (the inner flow's parent).
      pkt.enterIpTunnel();
      decodeGre(buf, off, end, pkt);
  }
  // An inner packet with a flow key, even when malformed past it (like any other packet).
  if (pkt.kind === KIND_IP) return true;
  // No inner IP packet: the carrier's flow takes the packet (a cut-short inner header is counted).
  const innerBroken = pkt.malformed !== carrier.malformed;
  pkt.copyFrom(carrier);
  pkt.hasCarrier = false;
  if (innerBroken) pkt.fail(R_TUNNEL_TRUNCATED);
  return false;
}
