// Decodes one captured frame into the reusable DecodedPacket.
import { decodeLink } from './linktype.js';
import type { DecodedPacket } from './packet.js';

export { DecodedPacket, MALFORMED_REASONS } from './packet.js';
export { isSupportedLinkType } from './linktype.js';

/**
 * @param caplen bytes captured (what `buf` holds from `off`)
 * @param wirelen the frame's original length on the wire
 */
export function decodePacket(linkType: number, buf: Buffer, off: number, caplen: number, wirelen: number, pkt: DecodedPacket): DecodedPacket {
  pkt.reset();
  pkt.wireEnd = off + Math.max(wirelen, caplen);
  decodeLink(linkType, buf, off, off + caplen, pkt);
  return pkt;
}
