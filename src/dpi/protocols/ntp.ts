// NTP (RFC 5905) on UDP port 123: a 48-byte header (more with extensions or a MAC), version 1..4,
// mode 1..7 in the first byte. The format has no magic, so the port is required.
import { MATCH, NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.serverPort !== 123 && ctx.clientPort !== 123) return NO;
  const version = (buf[off] >> 3) & 7;
  const mode = buf[off] & 7;
  if (len < 12 || version < 1 || version > 4) return NO;
  // Mode 6/7 control messages are short (12+ bytes); the others carry the 48-byte header.
  if (mode < 6 && len < 48) return NO;
  const info = { version, mode };
  ctx.extra().info = info;
  return MATCH;
}

export const ntp: Dissector = { app: 'NTP', transports: TRANSPORT_UDP, ports: [123], inspect };
