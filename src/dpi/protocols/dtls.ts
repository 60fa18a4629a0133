// DTLS (RFC 6347/9147) over UDP: a record header with content type 20..25, version 0xfeff, 0xfefd
// or 0xfefc, epoch, sequence and a length within the datagram. A ClientHello gives SNI and JA4 ('d');
// the flow is then followed to the server's hello, whose DTLS 1.0 is an obsolete version (nDPI's
// "Obsolete TLS (v1.1 or older)").
import { RISK_TLS_OBSOLETE_VERSION } from '../risks.js';
import { describeHello } from './tls.js';
import { FOLLOW, MATCH, MORE, NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const SERVER_HELLO_AWAITED = 'dtls-server-hello';
/** DTLS 1.0, and OpenSSL's pre-standard DTLS (0x0100, "DTLS1_BAD_VER"). */
const DTLS_OBSOLETE = (v: number) => v === 0xfeff || v === 0x0100;

/** While following: a ServerHello (handshake type 2) from the server ends it, with its version. */
function serverHello(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.fromClient || len < 13 + 14 || buf[off] !== 22 || buf[off + 13] !== 2) return MORE;
  const version = (buf[off + 13 + 12] << 8) | buf[off + 13 + 13];
  if (DTLS_OBSOLETE(version)) ctx.extra().risks |= RISK_TLS_OBSOLETE_VERSION;
  return MATCH;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.state() === SERVER_HELLO_AWAITED) return serverHello(ctx, buf, off, len);
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
    if (msgLen === fragLen && 12 + msgLen <= rlen && describeHello(ctx, buf, off + 13, 12 + msgLen, 'd') && ctx.fromClient) {
      ctx.setState(SERVER_HELLO_AWAITED);
      return FOLLOW;
    }
  }
  // A ServerHello seen first (the capture missed the client's): its version still counts.
  if (!ctx.fromClient) serverHello(ctx, buf, off, len);
  return MATCH;
}

export const dtls: Dissector = { app: 'DTLS', transports: TRANSPORT_UDP, ports: [4433, 5684, 3391], inspect };
