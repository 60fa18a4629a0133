/**
 * Writers for classic pcap and pcapng capture files, byte by byte, in either
 * byte order. Timestamps are nanosecond bigints (see frames.ts `ts`).
 */
import { writeFileSync } from 'node:fs';
import { concat, padTo, type Frame } from './frames.js';

export type Endian = 'le' | 'be';

/** Little helper that appends integers in a fixed byte order. */
class Out {
  private parts: Uint8Array[] = [];
  constructor(private readonly endian: Endian) {}
  private num(bytes: number, v: number | bigint): this {
    const b = new Uint8Array(bytes);
    const dv = new DataView(b.buffer);
    const le = this.endian === 'le';
    if (bytes === 1) dv.setUint8(0, Number(v));
    else if (bytes === 2) dv.setUint16(0, Number(v), le);
    else if (bytes === 4) dv.setUint32(0, Number(v) >>> 0, le);
    else dv.setBigUint64(0, BigInt.asUintN(64, BigInt(v)), le);
    this.parts.push(b);
    return this;
  }
  u8(v: number): this {
    return this.num(1, v);
  }
  u16(v: number): this {
    return this.num(2, v);
  }
  u32(v: number | bigint): this {
    return this.num(4, v);
  }
  u64(v: bigint): this {
    return this.num(8, v);
  }
  bytes(b: Uint8Array): this {
    this.parts.push(b);
    return this;
  }
  done(): Uint8Array {
    return concat(...this.parts);
  }
}

function frameLengths(f: Frame, snaplen: number): { data: Uint8Array; caplen: number; origLen: number } {
  const origLen = Math.max(f.origLen ?? f.data.length, f.data.length);
  const caplen = Math.min(f.data.length, snaplen);
  return { data: f.data.subarray(0, caplen), caplen, origLen };
}

// ---------------------------------------------------------------- classic pcap

export interface PcapOptions {
  linktype: number;
  endian?: Endian;
  resolution?: 'micro' | 'nano';
  /** Frames longer than this are truncated (caplen < origlen). Default 262144. */
  snaplen?: number;
  /** Version numbers in the header (default 2.4). */
  version?: [number, number];
}

export function pcapHeader(o: PcapOptions): Uint8Array {
  const magic = o.resolution === 'nano' ? 0xa1b23c4d : 0xa1b2c3d4;
  const [major, minor] = o.version ?? [2, 4];
  return new Out(o.endian ?? 'le')
    .u32(magic)
    .u16(major)
    .u16(minor)
    .u32(0) // thiszone
    .u32(0) // sigfigs
    .u32(o.snaplen ?? 262144)
    .u32(o.linktype)
    .done();
}

/** A frame whose record header carries these seconds and fraction (µs or ns) as they are, not `ts`: for bad times. */
export interface PcapFrame extends Frame {
  rawTs?: { sec: number; frac: number };
}

export function pcapRecord(o: PcapOptions, f: PcapFrame): Uint8Array {
  const { data, caplen, origLen } = frameLengths(f, o.snaplen ?? 262144);
  const div = o.resolution === 'nano' ? 1n : 1000n;
  const sec = f.rawTs?.sec ?? f.ts / 1_000_000_000n;
  const frac = f.rawTs?.frac ?? (f.ts % 1_000_000_000n) / div;
  return new Out(o.endian ?? 'le').u32(sec).u32(frac).u32(caplen).u32(origLen).bytes(data).done();
}

export function pcap(o: PcapOptions, frames: PcapFrame[]): Uint8Array {
  return concat(pcapHeader(o), ...frames.map((f) => pcapRecord(o, f)));
}

// ---------------------------------------------------------------- pcapng

export interface PcapngInterface {
  linktype: number;
  snaplen?: number;
  name?: string;
  /**
   * if_tsresol byte: undefined = option absent (microseconds), n = 10^-n s,
   * 0x80 | n = 2^-n s.
   */
  tsresol?: number;
  /** if_tsoffset: seconds added to every timestamp of the interface (signed 64-bit). */
  tsoffset?: bigint;
}

export type PacketBlockKind = 'epb' | 'spb' | 'opb';

export interface PcapngFrame extends Frame {
  block?: PacketBlockKind;
  comment?: string;
  /** The 64-bit timestamp field as it is, in the interface's units (instead of `ts`): for bad times. */
  units?: bigint;
}

export interface PcapngSectionOptions {
  endian?: Endian;
  interfaces: PcapngInterface[];
  /** Append an Interface Statistics Block and a Name Resolution Block after the packets. */
  trailerBlocks?: boolean;
}

const BT = { SHB: 0x0a0d0d0a, IDB: 1, OPB: 2, SPB: 3, NRB: 4, ISB: 5, EPB: 6 } as const;

function option(endian: Endian, code: number, value: Uint8Array): Uint8Array {
  return new Out(endian).u16(code).u16(value.length).bytes(padTo(value, 4)).done();
}

function options(endian: Endian, opts: Uint8Array[]): Uint8Array {
  if (opts.length === 0) return new Uint8Array(0);
  return concat(...opts, new Out(endian).u16(0).u16(0).done()); // opt_endofopt
}

function block(endian: Endian, type: number, body: Uint8Array): Uint8Array {
  const body4 = padTo(body, 4);
  const total = 12 + body4.length;
  return new Out(endian).u32(type).u32(total).bytes(body4).u32(total).done();
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Timestamp in interface units; throws if not exactly representable. */
export function toUnits(tsNs: bigint, tsresol: number | undefined): bigint {
  const r = tsresol ?? 6;
  let units: bigint;
  let back: bigint;
  if (r & 0x80) {
    const n = BigInt(r & 0x7f);
    units = (tsNs << n) / 1_000_000_000n;
    back = (units * 1_000_000_000n) >> n;
  } else {
    const scale = 10n ** BigInt(r);
    units = (tsNs * scale) / 1_000_000_000n;
    back = (units * 1_000_000_000n) / scale;
  }
  if (back !== tsNs) throw new Error(`timestamp ${tsNs} ns is not exact with if_tsresol 0x${r.toString(16)}`);
  return units;
}

function shb(endian: Endian): Uint8Array {
  const body = new Out(endian)
    .u32(0x1a2b3c4d)
    .u16(1)
    .u16(0)
    .u64(-1n) // section length unknown
    .bytes(options(endian, [option(endian, 4, text('flowlens test fixtures'))])) // shb_userappl
    .done();
  return block(endian, BT.SHB, body);
}

function idb(endian: Endian, i: PcapngInterface): Uint8Array {
  const opts: Uint8Array[] = [];
  if (i.name !== undefined) opts.push(option(endian, 2, text(i.name)));
  if (i.tsresol !== undefined) opts.push(option(endian, 9, Uint8Array.of(i.tsresol)));
  if (i.tsoffset !== undefined) opts.push(option(endian, 14, new Out(endian).u64(i.tsoffset).done()));
  const body = new Out(endian)
    .u16(i.linktype)
    .u16(0)
    .u32(i.snaplen ?? 0)
    .bytes(options(endian, opts))
    .done();
  return block(endian, BT.IDB, body);
}

function packetBlock(endian: Endian, ifaces: PcapngInterface[], f: PcapngFrame): Uint8Array {
  const ifIndex = f.iface ?? 0;
  const iface = ifaces[ifIndex];
  if (!iface) throw new Error(`no interface ${ifIndex}`);
  const snap = iface.snaplen ? iface.snaplen : Number.MAX_SAFE_INTEGER;
  const { data, caplen, origLen } = frameLengths(f, snap);
  const kind = f.block ?? 'epb';
  const opts = f.comment ? options(endian, [option(endian, 1, text(f.comment))]) : new Uint8Array(0);
  if (kind === 'spb') {
    if (ifIndex !== 0) throw new Error('a Simple Packet Block always belongs to interface 0');
    return block(endian, BT.SPB, new Out(endian).u32(origLen).bytes(padTo(data, 4)).done());
  }
  const units = f.units ?? toUnits(f.ts, iface.tsresol);
  const out = new Out(endian);
  if (kind === 'opb') out.u16(ifIndex).u16(0);
  else out.u32(ifIndex);
  out
    .u32(units >> 32n)
    .u32(units & 0xffffffffn)
    .u32(caplen)
    .u32(origLen)
    .bytes(padTo(data, 4))
    .bytes(opts);
  return block(endian, kind === 'opb' ? BT.OPB : BT.EPB, out.done());
}

function trailer(endian: Endian, ifaces: PcapngInterface[], frames: PcapngFrame[]): Uint8Array[] {
  const nrb = new Out(endian)
    .u16(1) // nrb_record_ipv4
    .u16(4 + 'host.example'.length + 1)
    .bytes(padTo(concat(Uint8Array.of(192, 0, 2, 1), text('host.example'), Uint8Array.of(0)), 4))
    .u16(0)
    .u16(0) // nrb_record_end
    .done();
  const lastTs = frames.length ? frames[frames.length - 1].ts : 0n;
  const isbs = ifaces.map((iface, i) => {
    const units = toUnits((lastTs / 1_000_000_000n) * 1_000_000_000n, iface.tsresol);
    return block(
      endian,
      BT.ISB,
      new Out(endian)
        .u32(i)
        .u32(units >> 32n)
        .u32(units & 0xffffffffn)
        .done(),
    );
  });
  return [block(endian, BT.NRB, nrb), ...isbs];
}

/** One pcapng section: SHB, IDBs, packet blocks (and optional trailer blocks). */
export function pcapngSection(o: PcapngSectionOptions, frames: PcapngFrame[]): Uint8Array {
  const e = o.endian ?? 'le';
  return concat(
    shb(e),
    ...o.interfaces.map((i) => idb(e, i)),
    ...frames.map((f) => packetBlock(e, o.interfaces, f)),
    ...(o.trailerBlocks ? trailer(e, o.interfaces, frames) : []),
  );
}

/** A pcapng file of one or more sections (each may have its own byte order). */
export function pcapng(...sections: { options: PcapngSectionOptions; frames: PcapngFrame[] }[]): Uint8Array {
  return concat(...sections.map((s) => pcapngSection(s.options, s.frames)));
}

export function writeCapture(path: string, bytes: Uint8Array): string {
  writeFileSync(path, bytes);
  return path;
}
