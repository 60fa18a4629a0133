// Zabbix (agent, proxy, sender and trapper protocol, "Zabbix protocols: header and data length" in
// the Zabbix manual): every message starts with "ZBXD", a flags byte (0x01 always set; 0x02 the
// data is zlib-compressed, 0x04 large packet), then the data length and a reserved field (the
// uncompressed length when compressed), 4 bytes little-endian each, or 8 each for a large packet.
// Either side may be the first one seen (the server polls an agent on 10050; agents, proxies and
// zabbix_sender push to the server's trapper on 10051). The 5-byte magic with a valid flags byte
// and a data length that covers the segment is strong enough on any port.
// nDPI's default port for Zabbix is TCP 10050 only: 10051 is recognised by the magic, not guessed.
import { MATCH, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

/** Flags other than these three are not defined. */
const FLAGS_KNOWN = 0x07;
const FLAG_PROTOCOL = 0x01;
const FLAG_COMPRESSED = 0x02;
const FLAG_LARGE = 0x04;
/** The server's default limit on a message (1 GiB); beyond it no Zabbix component sends one. */
const MAX_DATA = 0x40000000;

function inspect(_ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (len < 13 || buf[off] !== 0x5a || buf[off + 1] !== 0x42 || buf[off + 2] !== 0x58 || buf[off + 3] !== 0x44) return NO;
  const flags = buf[off + 4];
  if ((flags & FLAG_PROTOCOL) === 0 || (flags & ~FLAGS_KNOWN) !== 0) return NO;
  let dataLen: number;
  let reserved: number;
  let header: number;
  if ((flags & FLAG_LARGE) !== 0) {
    // 8-byte lengths; a message above 4 GiB does not exist, so the high words are zero.
    if (len < 21 || buf.readUInt32LE(off + 9) !== 0 || buf.readUInt32LE(off + 17) !== 0) return NO;
    dataLen = buf.readUInt32LE(off + 5);
    reserved = buf.readUInt32LE(off + 13);
    header = 21;
  } else {
    dataLen = buf.readUInt32LE(off + 5);
    reserved = buf.readUInt32LE(off + 9);
    header = 13;
  }
  // The data length covers what follows the header in this segment (more may follow in later
  // segments); the reserved field is zero unless the data is compressed.
  if (dataLen > MAX_DATA || header + dataLen < len) return NO;
  if ((flags & FLAG_COMPRESSED) === 0 ? reserved !== 0 : reserved > MAX_DATA) return NO;
  return MATCH;
}

export const zabbix: Dissector = { app: 'Zabbix', transports: TRANSPORT_TCP, ports: [10050], inspect };
