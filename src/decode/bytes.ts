// 32-bit reads for the per-packet path. Buffer's readUInt32BE/LE validate their offset argument
// on every call (validateNumber and a bounds check): eight calls a packet between the file reader,
// the IP decoders and the TCP state, 3% of a decode-only import's profile. Callers have checked
// that the four bytes are inside the buffer; out of bounds these return NaN, not throw.

/** Unsigned big-endian 32-bit integer at buf[off..off+4). */
export function u32be(buf: Uint8Array, off: number): number {
  return buf[off] * 0x1000000 + ((buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]);
}

/** Unsigned little-endian 32-bit integer at buf[off..off+4). */
export function u32le(buf: Uint8Array, off: number): number {
  return buf[off + 3] * 0x1000000 + ((buf[off + 2] << 16) | (buf[off + 1] << 8) | buf[off]);
}
