// Who started a flow, judged from its first packet seen, and the TCP state the flow is in.
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type DecodedPacket } from '../decode/packet.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP } from '../decode/ip.js';

export const STATE_NONE = 0;
export const STATE_ATTEMPTED = 1;
export const STATE_ESTABLISHED = 2;
export const STATE_CLOSED = 3;
export const STATE_RESET = 4;
export const TCP_STATE_NAMES = ['', 'attempted', 'established', 'closed', 'reset'] as const;

/** Service ports at or above 1024 that are servers as surely as the system ports are. */
const SERVICE_PORTS = new Set([
  1080, 1194, 1433, 1521, 1723, 1883, 1900, 2049, 2375, 2376, 3128, 3306, 3389, 3478, 4222, 4443, 5060, 5061, 5222, 5228, 5353, 5355, 5432, 5671, 5672, 5900,
  6379, 6443, 6881, 8000, 8008, 8080, 8081, 8443, 8812, 8883, 8888, 9000, 9042, 9092, 9200, 9418, 11211, 27017,
]);

function isServicePort(port: number): boolean {
  return port < 1024 || SERVICE_PORTS.has(port);
}

/**
 * Whether the sender of a flow's first seen packet is the client. A TCP SYN without ACK marks the
 * initiator and a SYN-ACK the responder; an ICMP echo reply comes from the server. Otherwise the
 * sender is the client unless the capture evidently started mid-conversation: the packet comes
 * from a service port to a non-service port (a DNS answer, an HTTP response), or it is a bare TCP
 * ACK between ports alike, where the lower port is the server's (as nDPI has it).
 */
export function senderIsClient(pkt: DecodedPacket, srcPort: number, dstPort: number): boolean {
  const proto = pkt.ipProto;
  if (proto === IPPROTO_TCP && pkt.tcpFlags & TCP_SYN) return (pkt.tcpFlags & TCP_ACK) === 0;
  if (proto === IPPROTO_ICMP) return pkt.icmpType !== 0; // 0 = echo reply
  if (proto === IPPROTO_ICMPV6) return pkt.icmpType !== 129;
  if (!pkt.hasPorts) return true;
  const srcService = isServicePort(srcPort);
  if (srcService !== isServicePort(dstPort)) return !srcService;
  // A bare TCP ACK (no SYN, no payload) between two service ports or two other ports says nothing
  // of who started: nDPI's rule then (ndpi_main.c, ndpi_connection_tracking: a TCP packet goes
  // client to server when its source port is not below its destination port), the lower port is
  // the server's.
  if (proto === IPPROTO_TCP && pkt.payloadLength === 0 && (pkt.tcpFlags & (TCP_ACK | TCP_FIN | TCP_RST)) === TCP_ACK) return srcPort >= dstPort;
  return true;
}

/** TCP state of a new flow from its first packet. */
export function initialTcpState(flags: number): number {
  if (flags & TCP_RST) return STATE_RESET;
  if (flags & TCP_SYN) return STATE_ATTEMPTED;
  if (flags & TCP_FIN) return STATE_CLOSED;
  return STATE_ESTABLISHED; // picked up mid-stream
}

/**
 * Next TCP state. `fromClient` is the packet's direction; `serverFlags` the flags the server has
 * sent so far (including this packet's, when it is the server's).
 */
export function nextTcpState(state: number, flags: number, fromClient: boolean, serverFlags: number): number {
  if (flags & TCP_RST) return STATE_RESET;
  if (state === STATE_ATTEMPTED) {
    // The handshake completes with the client's ACK after the server's SYN-ACK.
    if (fromClient && flags & TCP_ACK && serverFlags & TCP_SYN) state = STATE_ESTABLISHED;
  }
  if (flags & TCP_FIN && (state === STATE_ESTABLISHED || state === STATE_ATTEMPTED)) return STATE_CLOSED;
  return state;
}
