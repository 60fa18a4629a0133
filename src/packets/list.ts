// The first packets of a flow as a list (the web client's packet view and GraphQL's flowPackets):
// each packet's time, ends, lengths, TCP flags and the first bytes of its payload, read back from
// where the index says the packet is and decoded again. Bounded: at most MAX_LIST_PACKETS packets
// and MAX_PAYLOAD_BYTES of each payload.
import { decodePacket, DecodedPacket } from '../decode/index.js';
import { KIND_NON_IP } from '../decode/packet.js';
import { addressToString } from '../flow/address.js';
import { readFrame } from './frames.js';
import type { PacketRef } from './index-reader.js';

export const MAX_LIST_PACKETS = 200;
export const MAX_PAYLOAD_BYTES = 4096;

export interface ListedPacket {
  /** µs since the epoch. */
  ts: number;
  /** Source and destination addresses; null when the frame is not IP. */
  src: string | null;
  dst: string | null;
  /** Ports; null when the packet has none (not TCP/UDP/SCTP, or a later fragment). */
  srcPort: number | null;
  dstPort: number | null;
  /** Length on the wire and as captured (snaplen may cut it). */
  length: number;
  capturedLength: number;
  /** TCP flags; null when the packet is not TCP. */
  tcpFlags: number | null;
  /** Captured bytes after the transport header (the whole frame for non-IP frames). */
  payloadLength: number;
  /** The first payloadBytes of the payload, as lower-case hex. */
  payloadHex: string;
}

const IPPROTO_TCP = 6;

/**
 * The first `first` packets of `refs`, in the order given: packetsOfFlows's (select.ts), so that
 * the list shows the packets in the order the flow's download holds them.
 */
export async function listPackets(refs: readonly PacketRef[], first: number, payloadBytes: number): Promise<ListedPacket[]> {
  const pkt = new DecodedPacket();
  const out: ListedPacket[] = [];
  for (const ref of refs.slice(0, first)) {
    const frame = await readFrame(ref);
    if (!frame) continue;
    decodePacket(frame.linkType, frame.data, 0, frame.data.length, frame.wirelen, pkt);
    const ip = pkt.kind !== KIND_NON_IP && pkt.ipVersion !== 0;
    // The decoder's payload is what follows the transport header (or the IP header when it has none).
    const payloadStart = ip ? Math.min(pkt.payloadOffset, frame.data.length) : 0;
    const payloadEnd = ip ? Math.min(pkt.payloadOffset + pkt.payloadLength, frame.data.length) : frame.data.length;
    out.push({
      ts: ref.ts,
      src: ip ? addressToString(pkt.ipVersion, pkt.src, 0) : null,
      dst: ip ? addressToString(pkt.ipVersion, pkt.dst, 0) : null,
      srcPort: ip && pkt.hasPorts ? pkt.srcPort : null,
      dstPort: ip && pkt.hasPorts ? pkt.dstPort : null,
      length: frame.wirelen,
      capturedLength: frame.data.length,
      tcpFlags: ip && pkt.ipProto === IPPROTO_TCP && !pkt.laterFragment ? pkt.tcpFlags : null,
      payloadLength: Math.max(0, payloadEnd - payloadStart),
      payloadHex: frame.data.subarray(payloadStart, Math.min(payloadEnd, payloadStart + payloadBytes)).toString('hex'),
    });
  }
  return out;
}
