// The per-packet 32-bit reads (src/decode/bytes.ts) read what Buffer's own methods read, at every
// offset and for every top bit, so that addresses, sequence numbers and pcap record headers are
// unchanged by them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { u32be, u32le } from '../src/decode/bytes.js';

describe('u32be / u32le', () => {
  it('equal readUInt32BE / readUInt32LE at every offset of random bytes', () => {
    const buf = Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0x80]), randomBytes(4096)]);
    for (let off = 0; off + 4 <= buf.length; off++) {
      assert.equal(u32be(buf, off), buf.readUInt32BE(off), `big-endian at ${off}`);
      assert.equal(u32le(buf, off), buf.readUInt32LE(off), `little-endian at ${off}`);
    }
  });
});
