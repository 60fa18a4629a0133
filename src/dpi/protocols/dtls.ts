// DTLS (RFC 6347/9147) over UDP: a record header with content type 20..25, version 0xfeff, 0xfefd
// or 0xfefc, epoch, sequence and a length within the datagram. A ClientHello gives SNI and JA4 ('d').
import { describeHello } from './tls.js';
import { MATCH, NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (len < 13) return NO;
  const type = buf[off];
  const version = (buf[off + 1] << 8) | buf[off + 2];
  if (type < 20 || type > 25 || (version !== 0xfeff && version !== 0xfefd && version !== 0xfefc && version !== 0x0100)) return NO;
  const rlen = (buf[off + 11] << 8) | buf[off + 12];
  if (rlen + 13 > len) return NO;
  if (type === 22 && rlen >= 12 && buf[off + 13] === 1) {
    // Unfragmented ClientHello: fragment offset 0 and fragment length = message length.
    const msgLen = (buf[off + 14] << 16) | (buf[off + 15] << 8) | buf[off + 16];
    const fragLen = (buf[off + 22] << 16) | (buf[off + 23] << 8) | buf[off + 24];
    if (msgLen === fragLen && 12 + msgLen <= rlen) describeHello(ctx, buf, off + 13, 12 + msgLen, 'd');
  }
  return MATCH;
}

export const dtls: Dissector = { app: 'DTLS', transports: TRANSPORT_UDP, ports: [4433, 5684, 3391], inspect };
