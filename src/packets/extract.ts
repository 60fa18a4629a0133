// Writes packets found in the index as a capture file, each record copied byte for byte from the
// file it was read from. Classic pcap when every packet comes from pcap files with one and the same
// file header (that header, then the records as they were); otherwise pcapng: each source pcapng
// section's header and interface blocks (so the packets keep their original interface
// descriptions and ids), then its packet blocks as they were; a classic pcap source becomes a
// section of its own with one interface block and its records as enhanced packet blocks.
// Reads are coalesced: records close together in a file are read in one go.
import { open, stat } from 'node:fs/promises';
import type { IndexedFile } from './format.js';
import type { PacketRef } from './index-reader.js';

/** A flow whose packets are no longer where the index says: told apart from an empty capture. */
export class PacketsUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PacketsUnavailable';
  }
}

/** Records closer than this in a file are read together. */
const COALESCE_GAP = 64 << 10;
/** Largest single read. */
const MAX_READ = 4 << 20;

export interface ExtractResult {
  format: 'pcap' | 'pcapng';
  packets: number;
  bytes: number;
}

/** Sink for the output: gets chunks in order; may return a promise to apply back-pressure. */
export type ChunkSink = (chunk: Buffer) => void | Promise<void>;

/**
 * Checks that every file the packets are in is still the one indexed (same size and time of
 * last change); throws PacketsUnavailable naming the first that is not.
 */
export async function checkSources(refs: readonly PacketRef[]): Promise<void> {
  const seen = new Set<IndexedFile>();
  for (const r of refs) {
    if (seen.has(r.file)) continue;
    seen.add(r.file);
    let st: { size: number; mtimeMs: number };
    try {
      st = await stat(r.file.path);
    } catch {
      throw new PacketsUnavailable(`the packets were in ${r.file.path}, which is gone (evicted or removed)`);
    }
    if (st.size < r.file.size || st.mtimeMs !== r.file.mtimeMs) {
      throw new PacketsUnavailable(`the packets were in ${r.file.path}, which has changed since it was indexed`);
    }
  }
}

/**
 * Writes `refs` (in the order given) as pcap or pcapng to `sink`. `onFormat` learns the format
 * before the first chunk (an HTTP answer names its type in the headers).
 */
export async function extractPackets(refs: readonly PacketRef[], sink: ChunkSink, onFormat?: (format: 'pcap' | 'pcapng') => void): Promise<ExtractResult> {
  await checkSources(refs);
  const handles = new Map<string, Awaited<ReturnType<typeof open>>>();
  const handle = async (path: string) => {
    let fh = handles.get(path);
    if (!fh) {
      fh = await open(path, 'r');
      handles.set(path, fh);
    }
    return fh;
  };
  try {
    // The 24-byte header of each classic pcap source.
    const pcapHeaders = new Map<IndexedFile, Buffer>();
    for (const r of refs) {
      if (r.file.format !== 'pcap' || pcapHeaders.has(r.file)) continue;
      pcapHeaders.set(r.file, await readAt(await handle(r.file.path), 0, 24));
    }
    const headers = [...pcapHeaders.values()];
    const allPcap = refs.every((r) => r.file.format === 'pcap') && headers.every((h) => h.equals(headers[0]));
    const format = allPcap ? 'pcap' : 'pcapng';
    onFormat?.(format);
    let bytes = 0;
    const emit = async (chunk: Buffer) => {
      bytes += chunk.length;
      await sink(chunk);
    };
    if (allPcap) await emit(headers[0] ?? emptyPcapHeader());

    let section = ''; // pcapng: the source section whose header and interfaces were written last
    for (let i = 0; i < refs.length; ) {
      // A run of records of one file close together: one read.
      const first = refs[i];
      let end = first.offset + first.length;
      let j = i + 1;
      while (j < refs.length && refs[j].file === first.file) {
        const r = refs[j];
        if (r.offset < first.offset || r.offset - end > COALESCE_GAP || r.offset + r.length - first.offset > MAX_READ) break;
        end = Math.max(end, r.offset + r.length);
        j++;
      }
      const fh = await handle(first.file.path);
      const data = await readAt(fh, first.offset, end - first.offset);
      for (let k = i; k < j; k++) {
        const r = refs[k];
        const record = data.subarray(r.offset - first.offset, r.offset - first.offset + r.length);
        if (allPcap) {
          await emit(record);
          continue;
        }
        if (r.file.format === 'pcapng') {
          const s = sectionOf(r.file, r.offset);
          const key = `${r.file.path}#${s}`;
          if (key !== section) {
            section = key;
            await emit(await sectionBlocks(fh, r.file, s));
          }
          await emit(record);
        } else {
          const header = pcapHeaders.get(r.file)!;
          const key = `${r.file.path}#pcap`;
          if (key !== section) {
            section = key;
            await emit(Buffer.concat([sectionHeader(), interfaceFromPcapHeader(header)]));
          }
          await emit(enhancedPacketFromPcap(header, record));
        }
      }
      i = j;
    }
    return { format, packets: refs.length, bytes };
  } finally {
    for (const fh of handles.values()) await fh.close();
  }
}

async function readAt(fh: Awaited<ReturnType<typeof open>>, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new PacketsUnavailable(`a capture file ends before the packets indexed in it (at byte ${position + done})`);
    done += bytesRead;
  }
  return buf;
}

/** Index of the section of a pcapng file that holds the block at `offset` (the last one starting before it). */
function sectionOf(file: IndexedFile, offset: number): number {
  const sections = file.sections ?? [];
  let s = -1;
  for (let i = 0; i < sections.length && sections[i].offset < offset; i++) s = i;
  if (s < 0) throw new PacketsUnavailable(`${file.path}: no section header is indexed before byte ${offset}`);
  return s;
}

/** A source section's header block (its section length made 'unknown', -1, as it no longer holds) and its interface blocks. */
async function sectionBlocks(fh: Awaited<ReturnType<typeof open>>, file: IndexedFile, s: number): Promise<Buffer> {
  const section = file.sections![s];
  const parts = [await readAt(fh, section.offset, section.length)];
  // Section length, 64 bits at byte 16 of the block: all ones in either byte order.
  if (section.length >= 24) parts[0].fill(0xff, 16, 24);
  for (const idb of section.interfaces) parts.push(await readAt(fh, idb.offset, idb.length));
  return Buffer.concat(parts);
}

function emptyPcapHeader(): Buffer {
  // An empty pcap (no packets): microseconds, Ethernet, snaplen 262144.
  const h = Buffer.alloc(24);
  h.writeUInt32LE(0xa1b2c3d4, 0);
  h.writeUInt16LE(2, 4);
  h.writeUInt16LE(4, 6);
  h.writeUInt32LE(262144, 16);
  h.writeUInt32LE(1, 20);
  return h;
}

/** A little-endian section header block without options, of unknown length. */
function sectionHeader(): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt32LE(0x0a0d0d0a, 0);
  b.writeUInt32LE(28, 4);
  b.writeUInt32LE(0x1a2b3c4d, 8);
  b.writeUInt16LE(1, 12);
  b.writeUInt16LE(0, 14);
  b.fill(0xff, 16, 24);
  b.writeUInt32LE(28, 24);
  return b;
}

/** Byte order and timestamp unit of a classic pcap header. */
function pcapKind(header: Buffer): { le: boolean; nano: boolean } {
  const le = header.readUInt32LE(0);
  const littleEndian = le === 0xa1b2c3d4 || le === 0xa1b23c4d;
  const magic = littleEndian ? le : header.readUInt32BE(0);
  return { le: littleEndian, nano: magic === 0xa1b23c4d };
}

/** The interface block of a classic pcap file: its link type and snap length, and if_tsresol 9 for nanoseconds. */
function interfaceFromPcapHeader(header: Buffer): Buffer {
  const { le, nano } = pcapKind(header);
  const snaplen = le ? header.readUInt32LE(16) : header.readUInt32BE(16);
  const linkType = (le ? header.readUInt32LE(20) : header.readUInt32BE(20)) & 0xffff;
  const length = nano ? 20 + 8 + 4 : 20;
  const b = Buffer.alloc(length);
  b.writeUInt32LE(1, 0);
  b.writeUInt32LE(length, 4);
  b.writeUInt16LE(linkType, 8);
  b.writeUInt32LE(snaplen, 12);
  if (nano) {
    b.writeUInt16LE(9, 16); // if_tsresol
    b.writeUInt16LE(1, 18);
    b[20] = 9;
    // end of options at 24..28 (zero)
  }
  b.writeUInt32LE(length, length - 4);
  return b;
}

/** A classic pcap record (16-byte header and data) as an enhanced packet block on interface 0. */
function enhancedPacketFromPcap(header: Buffer, record: Buffer): Buffer {
  const { le, nano } = pcapKind(header);
  const u32 = (at: number) => (le ? record.readUInt32LE(at) : record.readUInt32BE(at));
  const units = BigInt(u32(0)) * (nano ? 1_000_000_000n : 1_000_000n) + BigInt(u32(4));
  const caplen = Math.min(u32(8), record.length - 16);
  const padded = (caplen + 3) & ~3;
  const length = 32 + padded;
  const b = Buffer.alloc(length);
  b.writeUInt32LE(6, 0);
  b.writeUInt32LE(length, 4);
  b.writeUInt32LE(0, 8);
  b.writeUInt32LE(Number(units >> 32n), 12);
  b.writeUInt32LE(Number(units & 0xffffffffn), 16);
  b.writeUInt32LE(caplen, 20);
  b.writeUInt32LE(u32(12), 24);
  record.copy(b, 28, 16, 16 + caplen);
  b.writeUInt32LE(length, length - 4);
  return b;
}
