// SMB over NetBIOS session service or direct TCP (port 445): a 4-byte session header (type 0,
// 24-bit length), then "\xffSMB" (SMBv1) or "\xfeSMB"/"\xfdSMB" (SMB 2/3). nDPI names SMBv1 and SMBv23.
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (len < 8 || buf[off] !== 0) return ctx.dirPackets >= 2 ? NO : MORE;
  const m = buf[off + 4];
  if (buf[off + 5] !== 0x53 || buf[off + 6] !== 0x4d || buf[off + 7] !== 0x42) return ctx.dirPackets >= 2 ? NO : MORE;
  if (m === 0xff) {
    ctx.extra().app = 'SMBv1';
    return MATCH;
  }
  return m === 0xfe || m === 0xfd ? MATCH : NO;
}

export const smb: Dissector = { app: 'SMBv23', transports: TRANSPORT_TCP, ports: [445, 139], inspect };
