// RTSP (RFC 2326/7826): HTTP-like requests ending "RTSP/1.0" or responses "RTSP/1.0 200 OK".
import { lineEnd, startsWith } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const METHODS = ['OPTIONS ', 'DESCRIBE ', 'SETUP ', 'PLAY ', 'PAUSE ', 'TEARDOWN ', 'ANNOUNCE ', 'GET_PARAMETER ', 'SET_PARAMETER ', 'RECORD '];

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (startsWith(buf, off, len, 'RTSP/1.0 ') || startsWith(buf, off, len, 'RTSP/2.0 ')) return MATCH;
  for (const m of METHODS) {
    if (!startsWith(buf, off, len, m)) continue;
    const le = lineEnd(buf, off, Math.min(off + len, off + 2048));
    return le > 8 && (startsWith(buf, le - 8, 8, 'RTSP/1.0') || startsWith(buf, le - 8, 8, 'RTSP/2.0')) ? MATCH : NO;
  }
  return ctx.dirPackets >= 2 ? NO : MORE;
}

export const rtsp: Dissector = { app: 'RTSP', transports: TRANSPORT_TCP, ports: [554, 8554], inspect };
