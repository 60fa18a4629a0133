// Reads capture files: classic pcap (either byte order, micro- or nanosecond timestamps) and
// pcapng (any number of sections and interfaces, each with its own link type and timestamp
// resolution). The file is read in large chunks and packets are handed over as slices of the chunk
// buffer (valid only during the callback), so reading allocates nothing per packet.
import { open, type FileHandle } from 'node:fs/promises';
import { u32be, u32le } from '../decode/bytes.js';
import type { ReadBuffers } from './frame-pool.js';

/**
 * Called for every packet; `data` is only valid during the call. `ts` is in µs since the epoch, or
 * BAD_TIMESTAMP when the record's time is not one (see MAX_TIMESTAMP_US). `recordOffset` and
 * `recordLength` locate the whole record in the file (a pcap record header and its data, or a
 * pcapng block), so that the packet store (src/packets) can copy it later byte for byte.
 */
export type PacketHandler = (
  linkType: number,
  ts: number,
  data: Buffer,
  offset: number,
  caplen: number,
  wirelen: number,
  interfaceId: number,
  recordOffset: number,
  recordLength: number,
) => void;

/** Where a pcapng section's header block and its interface description blocks are in the file. */
export interface PcapngSection {
  offset: number;
  length: number;
  interfaces: { offset: number; length: number }[];
}

export class CaptureFileError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'CaptureFileError';
  }
}

/**
 * Packet times are kept as µs since the epoch in a JS number, exact up to 2^53 µs (2255-06-05), and
 * stored as DuckDB or QuestDB TIMESTAMPs. The window read as time is 1970-01-01T00:00:00Z (0, as
 * old captures and clockless devices have; the flow clock takes negative times for "none yet")
 * up to, not including, 2200-01-01T00:00:00Z: well inside 2^53 µs, so that interval ends and
 * timeouts added to a packet time stay exact. Every
 * classic pcap second (32 bits unsigned: up to 2106) is inside it. A record outside it, or a pcap
 * record whose fraction is a whole second or more, gets BAD_TIMESTAMP: a malformed packet.
 */
export const MAX_TIMESTAMP_US = Date.UTC(2200, 0, 1) * 1000;
/** The `ts` of a record whose time is out of the window or invalid. */
export const BAD_TIMESTAMP = -1;

/** Bytes per read. */
const CHUNK = 4 << 20;

function headroomOf(chunk: number): number {
  return Math.max(64, chunk >> 4);
}

/** The size of each of the `buffers` a reader with this chunk size reads into (see the constructor). */
export function readBufferBytes(chunkBytes = CHUNK): number {
  return chunkBytes + headroomOf(chunkBytes);
}
/**
 * Packet records handed over per readChunk call at most: the caller takes its records between
 * calls, and a 4 MiB read of minimum-size frames holds ~50,000 packets (a SYN flood's new flows:
 * one record each, ~60 MB of heap until the import could take them).
 */
export const PACKETS_PER_CALL = 8192;
/** Larger records are corruption, not packets (libpcap's own bound is 256 KiB; pcapng blocks hold more). */
const MAX_RECORD = 64 << 20;

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;
const PCAPNG_BYTE_ORDER = 0x1a2b3c4d;

const BLOCK_IDB = 1;
const BLOCK_OPB = 2;
const BLOCK_SPB = 3;
const BLOCK_EPB = 6;

interface Interface {
  linkType: number;
  snaplen: number;
  /** Timestamp units per second as 10^k (decimal) or 2^k (binary). */
  resolutionDecimal: boolean;
  resolutionExp: number;
  /** Seconds added to every timestamp (if_tsoffset). */
  offsetUs: number;
}

export interface ReadProgress {
  bytesRead: number;
  fileSize: number;
}

/** A record the file ended in the middle of. */
export interface Truncation {
  offset: number;
  wanted: number;
  got: number;
}

export class CaptureFileReader {
  readonly path: string;
  format: 'pcap' | 'pcapng' | '' = '';
  fileSize = 0;
  /** File offset of the start of `buf`. */
  private base = 0;
  private readonly chunk: number;
  /**
   * Room kept before a read-ahead chunk for the unparsed tail of the current one (a record cut by
   * the chunk boundary). A longer tail takes the plain path: move it to the front, then read.
   */
  private readonly headroom: number;
  private buf: Buffer;
  private filled = 0;
  private pos = 0;
  private eof = false;
  private fh: FileHandle | null = null;
  /** Bytes the parser needs from `pos` before it can go on (set by need()). */
  private want = 0;
  /**
   * Read-ahead of a regular file: the next chunk is read into a second buffer, after the headroom
   * bytes, while the current one is parsed, so decoding never waits on the disk (the wait showed
   * as a tenth of an import's time). Its file position is always base + filled.
   */
  private ahead: { buf: Buffer; read: Promise<{ bytesRead: number }> } | null = null;

  // Classic pcap.
  private littleEndian = true;
  private nano = false;
  private linkType = 0;
  private snaplen = 0;
  // pcapng: interfaces of the current section.
  private interfaces: Interface[] = [];
  private lastTs = 0;
  /** pcapng: every section header and interface description met so far (the packet store copies them). */
  readonly sections: PcapngSection[] = [];

  /** Set when the file ends inside a record. */
  truncated: Truncation | null = null;
  /** Packet records handed to the handler (a record cut short by the end of the file is not one). */
  records = 0;
  /** A read was abandoned on abort and may still be pending in the thread pool. */
  private abandonedRead = false;

  /** Where the file is read into, when not buffers of this reader's own (see ReadBuffers). */
  private readonly pool: ReadBuffers | null;

  /**
   * chunkBytes: bytes per read (tests make it small to cross many chunk boundaries).
   * buffers: read into these (of readBufferBytes(chunkBytes) each) and retire each when done with
   * it, instead of reusing buffers of its own: packets handed out stay valid until the pool frees
   * their buffer, not only during the handler's call.
   */
  constructor(path: string, opts: { chunkBytes?: number; buffers?: ReadBuffers } = {}) {
    this.path = path;
    this.chunk = opts.chunkBytes ?? CHUNK;
    this.headroom = headroomOf(this.chunk);
    this.pool = opts.buffers ?? null;
    if (this.pool !== null && this.pool.size < this.headroom + this.chunk) throw new Error('read buffers smaller than a chunk and its headroom');
    this.buf = this.pool === null ? Buffer.allocUnsafe(this.chunk) : Buffer.allocUnsafe(0);
  }

  get bytesRead(): number {
    return this.base + this.pos;
  }

  /** Link types of the file (for pcapng, those of the interfaces seen so far). */
  get linkTypes(): number[] {
    return this.format === 'pcap' ? [this.linkType] : this.interfaces.map((i) => i.linkType);
  }

  async open(): Promise<void> {
    try {
      this.fh = await open(this.path, 'r');
      const st = await this.fh.stat();
      if (st.isDirectory()) throw new CaptureFileError(this.path, 'is a directory');
      this.fileSize = st.size;
    } catch (err) {
      await this.close();
      if (err instanceof CaptureFileError) throw err;
      const e = err as NodeJS.ErrnoException;
      const reason = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message;
      throw new CaptureFileError(this.path, reason);
    }
    // Outside the file's errors: waiting for a buffer fails only when the pool's consumers do.
    if (this.pool !== null) this.buf = await this.pool.acquire();
    await this.fill(24);
    if (this.filled < 4) throw new CaptureFileError(this.path, this.filled === 0 ? 'empty file' : 'too short to be a capture file');
    const le = this.buf.readUInt32LE(0);
    const be = this.buf.readUInt32BE(0);
    if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS || be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS) {
      if (this.filled < 24) throw new CaptureFileError(this.path, 'truncated pcap file header');
      this.format = 'pcap';
      this.littleEndian = le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS;
      this.nano = (this.littleEndian ? le : be) === PCAP_MAGIC_NS;
      this.snaplen = this.u32(16);
      // The upper bits of the link-type field carry FCS information (LINKTYPE_ in the low 16).
      this.linkType = this.u32(20) & 0xffff;
      this.pos = 24;
    } else if (le === PCAPNG_SHB) {
      this.format = 'pcapng';
    } else {
      throw new CaptureFileError(this.path, `not a pcap or pcapng file (starts with 0x${be.toString(16).padStart(8, '0')})`);
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    const ahead = this.ahead;
    this.fh = null;
    this.ahead = null;
    if (this.pool !== null) {
      this.pool.retire(this.buf);
      this.buf = Buffer.allocUnsafe(0);
      // A read-ahead buffer is free once its read is over (an abandoned read's never is).
      if (ahead && !this.abandonedRead) {
        await ahead.read.catch(() => undefined);
        this.pool.release(ahead.buf);
      }
    }
    if (!fh) return;
    // Closing waits for a pending read, which on a quiet pipe may never complete.
    if (this.abandonedRead) void fh.close().catch(() => {});
    else await fh.close();
  }

  /**
   * Hands every packet of the next chunk to `onPacket`. Returns false at the end of the file.
   * Throws CaptureFileError when the file is corrupt from here on; packets before stay delivered.
   */
  async readChunk(onPacket: PacketHandler, signal?: AbortSignal): Promise<boolean> {
    // Stopped at PACKETS_PER_CALL: the rest of the chunk is parsed at the next call.
    if (this.format === 'pcap' ? this.parsePcap(onPacket) : this.parsePcapng(onPacket)) return true;
    if (this.eof) {
      if (this.pos < this.filled && this.truncated === null) this.noteTruncation();
      return false;
    }
    await this.refill(signal);
    if (signal?.aborted) return false;
    if (this.eof && this.pos >= this.filled) return false;
    return true;
  }

  /** Parses records until the buffer ends or PACKETS_PER_CALL are delivered (then true). */
  private parsePcap(onPacket: PacketHandler): boolean {
    const buf = this.buf;
    const nano = this.nano;
    const fracLimit = nano ? 1e9 : 1e6;
    const linkType = this.linkType;
    const le = this.littleEndian;
    let pos = this.pos;
    const filled = this.filled;
    let budget = PACKETS_PER_CALL;
    while (filled - pos >= 16) {
      if (budget-- === 0) {
        this.pos = pos;
        return true;
      }
      const sec = le ? u32le(buf, pos) : u32be(buf, pos);
      const frac = le ? u32le(buf, pos + 4) : u32be(buf, pos + 4);
      const caplen = le ? u32le(buf, pos + 8) : u32be(buf, pos + 8);
      const wirelen = le ? u32le(buf, pos + 12) : u32be(buf, pos + 12);
      if (caplen > MAX_RECORD) {
        this.pos = pos;
        throw new CaptureFileError(this.path, `corrupt record at byte ${this.base + pos}: captured length ${caplen}`);
      }
      if (filled - pos - 16 < caplen) {
        this.need(16 + caplen);
        break;
      }
      // The fraction must be under a second; the seconds (32 bits) are always in the window.
      const ts = frac < fracLimit ? sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac) : BAD_TIMESTAMP;
      this.records++;
      onPacket(linkType, ts, buf, pos + 16, caplen, wirelen, 0, this.base + pos, 16 + caplen);
      pos += 16 + caplen;
    }
    if (filled - pos < 16) this.need(16);
    this.pos = pos;
    return false;
  }

  /** Parses blocks until the buffer ends or PACKETS_PER_CALL blocks are read (then true). */
  private parsePcapng(onPacket: PacketHandler): boolean {
    const buf = this.buf;
    let pos = this.pos;
    const filled = this.filled;
    let budget = PACKETS_PER_CALL;
    while (filled - pos >= 12) {
      if (budget-- === 0) {
        this.pos = pos;
        return true;
      }
      let type = u32le(buf, pos);
      if (type === PCAPNG_SHB) {
        // A section header sets the byte order of everything up to the next one.
        if (filled - pos < 12) break;
        const magic = buf.readUInt32LE(pos + 8);
        if (magic === PCAPNG_BYTE_ORDER) this.littleEndian = true;
        else if (magic === 0x4d3c2b1a) this.littleEndian = false;
        else {
          this.pos = pos;
          throw new CaptureFileError(this.path, `corrupt pcapng section header at byte ${this.base + pos}`);
        }
      } else if (!this.littleEndian) {
        type = u32be(buf, pos);
      }
      const length = this.u32(pos + 4);
      if (length < 12 || length % 4 !== 0 || length > MAX_RECORD) {
        this.pos = pos;
        throw new CaptureFileError(this.path, `corrupt pcapng block at byte ${this.base + pos}: length ${length}`);
      }
      if (filled - pos < length) {
        this.need(length);
        break;
      }
      const body = pos + 8;
      const bodyEnd = pos + length - 4;
      // A block too short for its fixed fields would have them read from the blocks after it.
      if (length < minBlockLength(type)) {
        this.pos = pos;
        throw new CaptureFileError(this.path, `corrupt pcapng block at byte ${this.base + pos}: length ${length} is too short for a block of type ${type}`);
      }
      switch (type) {
        case PCAPNG_SHB:
          this.interfaces = [];
          this.sections.push({ offset: this.base + pos, length, interfaces: [] });
          break;
        case BLOCK_IDB:
          this.readInterface(body, bodyEnd);
          this.sections[this.sections.length - 1]?.interfaces.push({ offset: this.base + pos, length });
          break;
        case BLOCK_EPB:
        case BLOCK_OPB: {
          // Enhanced and (obsolete) packet blocks differ only in the width of the interface id.
          const ifid = type === BLOCK_EPB ? this.u32(body) : this.littleEndian ? buf.readUInt16LE(body) : buf.readUInt16BE(body);
          const hi = this.u32(body + 4);
          const lo = this.u32(body + 8);
          const caplen = this.u32(body + 12);
          const wirelen = this.u32(body + 16);
          const data = body + 20;
          this.deliver(onPacket, ifid, hi, lo, data, Math.min(caplen, bodyEnd - data), wirelen, pos, length);
          break;
        }
        case BLOCK_SPB: {
          // No timestamp and no interface id: interface 0, at the time of the previous packet.
          const wirelen = this.u32(body);
          const data = body + 4;
          const iface = this.interfaces[0];
          if (!iface) this.missingInterface(0, pos);
          const caplen = Math.max(0, Math.min(wirelen, iface.snaplen || wirelen, bodyEnd - data));
          this.records++;
          onPacket(iface.linkType, this.lastTs, buf, data, caplen, wirelen, 0, this.base + pos, length);
          break;
        }
        default:
          break; // name resolution, statistics, custom and unknown blocks carry no packets
      }
      pos += length;
    }
    if (filled - pos < 12) this.need(12);
    this.pos = pos;
    return false;
  }

  private deliver(
    onPacket: PacketHandler,
    ifid: number,
    hi: number,
    lo: number,
    data: number,
    caplen: number,
    wirelen: number,
    blockPos: number,
    blockLength: number,
  ): void {
    const iface = this.interfaces[ifid];
    if (!iface) this.missingInterface(ifid, blockPos);
    let ts = toMicroseconds(hi, lo, iface.resolutionDecimal, iface.resolutionExp) + iface.offsetUs;
    // Written as a negation so that NaN is out too.
    if (!(ts >= 0 && ts < MAX_TIMESTAMP_US)) ts = BAD_TIMESTAMP;
    else this.lastTs = ts; // a simple packet block after a bad one takes the last good time
    this.records++;
    onPacket(iface.linkType, ts, this.buf, data, Math.max(caplen, 0), wirelen, ifid, this.base + blockPos, blockLength);
  }

  private missingInterface(ifid: number, blockPos: number): never {
    this.pos = blockPos;
    throw new CaptureFileError(this.path, `packet at byte ${this.base + blockPos} names interface ${ifid}, which was never described`);
  }

  private readInterface(body: number, end: number): void {
    const buf = this.buf;
    const linkType = this.littleEndian ? buf.readUInt16LE(body) : buf.readUInt16BE(body);
    const iface: Interface = {
      linkType,
      snaplen: this.u32(body + 4),
      resolutionDecimal: true,
      resolutionExp: 6,
      offsetUs: 0,
    };
    let p = body + 8;
    while (end - p >= 4) {
      const code = this.littleEndian ? buf.readUInt16LE(p) : buf.readUInt16BE(p);
      const len = this.littleEndian ? buf.readUInt16LE(p + 2) : buf.readUInt16BE(p + 2);
      if (code === 0) break;
      const value = p + 4;
      if (value + len > end) break;
      if (code === 9 && len >= 1) {
        // if_tsresol: high bit set means a negative power of 2, else of 10.
        iface.resolutionDecimal = (buf[value] & 0x80) === 0;
        iface.resolutionExp = buf[value] & 0x7f;
      } else if (code === 14 && len >= 8) {
        // if_tsoffset: seconds, signed 64-bit.
        const offset = this.littleEndian ? buf.readBigInt64LE(value) : buf.readBigInt64BE(value);
        iface.offsetUs = Number(offset) * 1e6;
      }
      p = value + ((len + 3) & ~3);
    }
    this.interfaces.push(iface);
  }

  private u32(at: number): number {
    return this.littleEndian ? u32le(this.buf, at) : u32be(this.buf, at);
  }

  /** The next record needs `bytes` from `pos`: make room for it when the chunk is too small. */
  private need(bytes: number): void {
    this.want = bytes;
    if (bytes > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(bytes, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.filled);
      this.pool?.retire(this.buf);
      this.buf = bigger;
    }
  }

  private noteTruncation(): void {
    const left = this.filled - this.pos;
    let wanted = left;
    if (this.format === 'pcap' && left >= 16) wanted = 16 + this.u32(this.pos + 8);
    else if (this.format === 'pcap') wanted = 16;
    else if (left >= 8) wanted = this.u32(this.pos + 4);
    else wanted = 12;
    this.truncated = { offset: this.base + this.pos, wanted, got: left };
    this.pos = this.filled;
  }

  /**
   * Continues with the read-ahead chunk behind the unread tail of this one when there is one and
   * the tail fits its headroom; otherwise moves the tail to the front of the buffer and reads after
   * it. Then starts reading the next chunk ahead.
   */
  private async refill(signal?: AbortSignal): Promise<void> {
    const tail = this.filled - this.pos;
    const ahead = this.ahead;
    this.ahead = null;
    if (ahead && tail <= this.headroom && this.want <= this.chunk) {
      const bytesRead = await this.settle(ahead.read, signal);
      if (bytesRead === null) return;
      const start = this.headroom - tail;
      if (tail > 0) this.buf.copy(ahead.buf, start, this.pos, this.filled);
      const spare = this.buf;
      this.buf = ahead.buf;
      this.base += this.pos - start;
      this.pos = start;
      this.filled = this.headroom + bytesRead;
      if (bytesRead === 0) this.eof = true;
      if (this.pool !== null) {
        this.pool.retire(spare);
        await this.readAhead(null);
      } else await this.readAhead(spare.length === this.headroom + this.chunk ? spare : null);
      return;
    }
    // The pending read (if any) goes to a buffer that is dropped here and never parsed.
    if (ahead && this.pool !== null) {
      await ahead.read.catch(() => undefined);
      this.pool.release(ahead.buf);
    }
    if (this.pos > 0) {
      if (this.pool !== null && tail <= this.pool.size) {
        // Packets handed out from this buffer may still be read: the tail goes to another one.
        const next = await this.pool.acquire();
        if (tail > 0) this.buf.copy(next, 0, this.pos, this.filled);
        this.pool.retire(this.buf);
        this.buf = next;
      } else if (tail > 0) this.buf.copy(this.buf, 0, this.pos, this.filled);
      this.base += this.pos;
      this.pos = 0;
      this.filled = tail;
    }
    await this.fill(this.filled + 1, signal);
    await this.readAhead(null);
  }

  /** Starts reading the chunk after the buffered bytes of a regular file into `into` (or a new buffer). */
  private async readAhead(into: Buffer | null): Promise<void> {
    if (!this.fh || this.eof || this.fileSize <= 0 || this.abandonedRead) return;
    const buf = into ?? (this.pool !== null ? await this.pool.acquire() : Buffer.allocUnsafe(this.headroom + this.chunk));
    this.ahead = { buf, read: this.fh.read(buf, this.headroom, this.chunk, this.base + this.filled) };
  }

  /** Waits for a read; null when the signal aborts first (the read is then abandoned). */
  private async settle(read: Promise<{ bytesRead: number }>, signal?: AbortSignal): Promise<number | null> {
    if (!signal) return (await read).bytesRead;
    // On a pipe a read waits for the writer; an abort must not wait with it.
    let onAbort = () => {};
    const aborted = new Promise<null>((resolve) => {
      onAbort = () => resolve(null);
      if (signal.aborted) resolve(null);
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const result = await Promise.race([read, aborted]);
      if (result !== null) return result.bytesRead;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    this.abandonedRead = true;
    // The buffer may still be written into by the abandoned read: never parse it again.
    this.buf = Buffer.allocUnsafe(0);
    this.filled = this.pos = 0;
    return null;
  }

  /**
   * Reads until at least `minFilled` bytes are buffered (or the end of the file), taking whatever
   * each read gives: a pipe or FIFO delivers packets as they come instead of waiting for a full chunk.
   */
  private async fill(minFilled: number, signal?: AbortSignal): Promise<void> {
    if (!this.fh) return;
    while (this.filled < minFilled && !this.eof) {
      const position = this.fileSize > 0 ? this.base + this.filled : null; // null: a pipe reads on
      const bytesRead = await this.settle(this.fh.read(this.buf, this.filled, this.buf.length - this.filled, position), signal);
      if (bytesRead === null) return;
      if (bytesRead === 0) this.eof = true;
      this.filled += bytesRead;
    }
  }
}

/** Length of a pcapng block whose body holds just its fixed fields (12 bytes of type, length and trailing length around them). */
function minBlockLength(type: number): number {
  switch (type) {
    case BLOCK_IDB:
      return 12 + 8; // link type, reserved, snaplen
    case BLOCK_EPB:
    case BLOCK_OPB:
      return 12 + 20; // interface, timestamp (2 words), captured and original length
    case BLOCK_SPB:
      return 12 + 4; // original length
    default:
      return 12;
  }
}

/**
 * A pcapng timestamp (64 bits as two words, in units of 10^-exp or 2^-exp seconds) in µs, exact for
 * decimal resolutions without going through BigInt: 2^32 = a*d + b with d = 10^(exp-6).
 */
export function toMicroseconds(hi: number, lo: number, decimal: boolean, exp: number): number {
  if (decimal) {
    if (exp === 6) return hi * 4294967296 + lo;
    if (exp < 6) return (hi * 4294967296 + lo) * 10 ** (6 - exp);
    const d = 10 ** (exp - 6);
    const a = Math.floor(4294967296 / d);
    const b = 4294967296 - a * d;
    return hi * a + Math.floor((hi * b + lo) / d);
  }
  return Math.floor(((hi * 4294967296 + lo) / 2 ** exp) * 1e6);
}
