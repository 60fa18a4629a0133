// GTPv1-U (3GPP TS 29.281) user data (G-PDU): flags (version, protocol type, E, S, PN), message
// type, length and tunnel id; with any of E, S or PN set, 4 more bytes (sequence number, N-PDU
// number, next extension type), then the chain of extension headers (length in 4-byte words, the
// next type in the last byte); then the subscriber's IP packet. The caller checked the version and
// the message type.
import { decodeIp } from './ip.js';
import { R_TUNNEL_TRUNCATED, type DecodedPacket } from './packet.js';

/** Extension headers followed; more is not a real packet. */
const MAX_EXTENSIONS = 8;

export function decodeGtpU(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  const flags = buf[off];
  let p = off + 8;
  if (flags & 0x07) {
    if (end - p < 4) {
      pkt.fail(R_TUNNEL_TRUNCATED);
      return;
    }
    let next = flags & 0x04 ? buf[p + 3] : 0;
    p += 4;
    for (let n = 0; next !== 0; n++) {
      if (n >= MAX_EXTENSIONS || end - p < 4 || buf[p] === 0) {
        pkt.fail(R_TUNNEL_TRUNCATED);
        return;
      }
      const len = buf[p] * 4;
      if (end - p < len) {
        pkt.fail(R_TUNNEL_TRUNCATED);
        return;
      }
      next = buf[p + len - 1];
      p += len;
    }
  }
  const version = end > p ? buf[p] >> 4 : 0;
  if (version === 4 || version === 6) decodeIp(buf, p, end, pkt);
}
