// Reads single packets back from where the index says they are, as frames with their link type:
// for the file name of a download (the flow's two ends and its first time, as a Wireshark user
// expects: flowlens-<client>-<server>-<time>.pcap) and for listing a flow's first packets.
import { open } from 'node:fs/promises';
import { decodePacket, DecodedPacket } from '../decode/index.js';
import { KIND_NON_IP } from '../decode/packet.js';
import { addressToString } from '../flow/address.js';
import type { IndexedFile } from './format.js';
import type { PacketRef } from './index-reader.js';

export interface Frame {
  ts: number;
  linkType: number;
  /** Captured bytes of the frame. */
  data: Buffer;
  wirelen: number;
}

const BLOCK_EPB = 6;
const BLOCK_OPB = 2;
const BLOCK_SPB = 3;

async function readAt(path: string, position: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The frame of one indexed packet; null when its record is not one this reads (it was indexed, so it was). */
export async function readFrame(ref: PacketRef): Promise<Frame | null> {
  const record = await readAt(ref.file.path, ref.offset, ref.length);
  if (ref.file.format === 'pcap') {
    const header = await readAt(ref.file.path, 0, 24);
    const le = header.readUInt32LE(0) === 0xa1b2c3d4 || header.readUInt32LE(0) === 0xa1b23c4d;
    const u32 = (b: Buffer, at: number) => (le ? b.readUInt32LE(at) : b.readUInt32BE(at));
    const caplen = Math.min(u32(record, 8), record.length - 16);
    return { ts: ref.ts, linkType: u32(header, 20) & 0xffff, data: record.subarray(16, 16 + caplen), wirelen: u32(record, 12) };
  }
  return pcapngFrame(ref, record);
}

async function pcapngFrame(ref: PacketRef, block: Buffer): Promise<Frame | null> {
  const section = sectionOf(ref.file, ref.offset);
  if (!section) return null;
  const shb = await readAt(ref.file.path, section.offset, 12);
  const le = shb.readUInt32LE(8) === 0x1a2b3c4d;
  const u32 = (at: number) => (le ? block.readUInt32LE(at) : block.readUInt32BE(at));
  const u16 = (at: number) => (le ? block.readUInt16LE(at) : block.readUInt16BE(at));
  const type = u32(0);
  let ifid = 0;
  let caplen: number;
  let wirelen: number;
  let data: number;
  if (type === BLOCK_EPB || type === BLOCK_OPB) {
    ifid = type === BLOCK_EPB ? u32(8) : u16(8);
    caplen = u32(20);
    wirelen = u32(24);
    data = 28;
  } else if (type === BLOCK_SPB) {
    wirelen = u32(8);
    data = 12;
    caplen = Math.min(wirelen, block.length - 16);
  } else return null;
  const idb = section.interfaces[ifid];
  if (!idb) return null;
  const idbHead = await readAt(ref.file.path, idb.offset, 12);
  const linkType = le ? idbHead.readUInt16LE(8) : idbHead.readUInt16BE(8);
  return { ts: ref.ts, linkType, data: block.subarray(data, data + Math.min(caplen, block.length - 4 - data)), wirelen };
}

function sectionOf(file: IndexedFile, offset: number) {
  let found: NonNullable<IndexedFile['sections']>[number] | undefined;
  for (const s of file.sections ?? []) if (s.offset < offset) found = s;
  return found;
}

/** The first packet's two ends (IP addresses) and time; null when it is not an IP packet. */
export async function firstPacketEnds(ref: PacketRef): Promise<{ src: string; dst: string; ts: number } | null> {
  const frame = await readFrame(ref);
  if (!frame) return null;
  const pkt = decodePacket(frame.linkType, frame.data, 0, frame.data.length, frame.wirelen, new DecodedPacket());
  if (pkt.kind === KIND_NON_IP || pkt.ipVersion === 0) return null;
  return { src: addressToString(pkt.ipVersion, pkt.src, 0), dst: addressToString(pkt.ipVersion, pkt.dst, 0), ts: ref.ts };
}

/** The download's file name: flowlens-<client>-<server>-<time>.pcap (IPv6 colons as dots, time in UTC to the second). */
export function captureFileName(ends: { src: string; dst: string; ts: number } | null, fallback: string, format: 'pcap' | 'pcapng'): string {
  const ext = format === 'pcap' ? 'pcap' : 'pcapng';
  if (!ends) return `flowlens-${fallback}.${ext}`;
  const time = new Date(Math.floor(ends.ts / 1000))
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/[-:]/g, '');
  const safe = (ip: string) => ip.replace(/:/g, '.');
  return `flowlens-${safe(ends.src)}-${safe(ends.dst)}-${time}.${ext}`;
}
