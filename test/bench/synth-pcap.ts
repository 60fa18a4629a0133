// Synthetic benchmark capture, for when ../shared (the real-traffic corpus) is absent: classic pcap,
// Ethernet, a mix of interleaved TCP conversations (handshake, data both ways, FIN), UDP exchanges
// and ICMP echoes over IPv4 and IPv6, on one monotonic timeline. Deterministic (seeded).
import { closeSync, openSync, readSync, renameSync, writeSync } from 'node:fs';

/** Small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SynthFlow {
  kind: 'tcp' | 'udp' | 'icmp';
  v6: boolean;
  client: number;
  server: number;
  cport: number;
  sport: number;
  /** Remaining packets as [fromClient, payloadBytes, tcpFlags]. */
  script: [boolean, number, number][];
  next: number;
}

const FIN = 0x01;
const SYN = 0x02;
const PSH = 0x08;
const ACK = 0x10;

class PcapOut {
  private buf = Buffer.alloc(8 << 20);
  private pos = 0;
  constructor(private readonly fd: number) {
    const h = this.buf;
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8);
    h.writeUInt32LE(0, 12);
    h.writeUInt32LE(262144, 16);
    h.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
    this.pos = 24;
  }
  /** Reserves room for one record of `len` frame bytes and returns the frame's offset. */
  record(tsUs: number, len: number): { b: Buffer; o: number } {
    if (this.pos + 16 + len > this.buf.length) this.drain();
    const b = this.buf;
    b.writeUInt32LE(Math.floor(tsUs / 1e6), this.pos);
    b.writeUInt32LE(tsUs % 1e6, this.pos + 4);
    b.writeUInt32LE(len, this.pos + 8);
    b.writeUInt32LE(len, this.pos + 12);
    const o = this.pos + 16;
    b.fill(0, o, o + len);
    this.pos = o + len;
    return { b, o };
  }
  drain(): void {
    writeSync(this.fd, this.buf, 0, this.pos);
    this.pos = 0;
  }
}

function makeFlow(r: () => number, id: number): SynthFlow {
  const x = r();
  const kind = x < 0.68 ? 'tcp' : x < 0.96 ? 'udp' : 'icmp';
  const v6 = r() < 0.1;
  const client = 0x0a000000 + Math.floor(r() * 5000);
  const server = 0xc6330000 + Math.floor(r() * 2000);
  const script: [boolean, number, number][] = [];
  if (kind === 'tcp') {
    script.push([true, 0, SYN], [false, 0, SYN | ACK], [true, 0, ACK]);
    const rounds = 1 + Math.floor(r() * r() * 12);
    for (let i = 0; i < rounds; i++) {
      script.push([true, 40 + Math.floor(r() * 500), PSH | ACK]);
      const down = 1 + Math.floor(r() * 4);
      for (let j = 0; j < down; j++) script.push([false, r() < 0.4 ? 1448 : Math.floor(r() * 900), ACK]);
      script.push([true, 0, ACK]);
    }
    script.push([true, 0, FIN | ACK], [false, 0, FIN | ACK], [true, 0, ACK]);
  } else if (kind === 'udp') {
    const n = r() < 0.7 ? 1 : 2 + Math.floor(r() * 30);
    for (let i = 0; i < n; i++) script.push([true, 30 + Math.floor(r() * 200), 0], [false, 50 + Math.floor(r() * 1000), 0]);
  } else {
    const n = 1 + Math.floor(r() * 4);
    for (let i = 0; i < n; i++) script.push([true, 56, 0], [false, 56, 0]);
  }
  return {
    kind,
    v6,
    client,
    server,
    cport: 1024 + ((id * 7919) % 64000),
    sport: kind === 'tcp' ? [443, 80, 22, 8080][Math.floor(r() * 4)] : [53, 123, 443, 5353][Math.floor(r() * 4)],
    script,
    next: 0,
  };
}

function writeAddr(b: Buffer, o: number, v6: boolean, a: number): void {
  if (v6) {
    b.writeUInt32BE(0x20010db8, o);
    b.writeUInt32BE(a, o + 12);
  } else {
    b.writeUInt32BE(a, o);
  }
}

/** Writes about `packets` packets to `path` (via a temp file). Returns the exact count. */
export function writeSyntheticCapture(path: string, packets: number, seed = 1): number {
  const r = rng(seed);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  const out = new PcapOut(fd);
  const active: SynthFlow[] = [];
  let nextId = 0;
  let written = 0;
  let tsUs = 1_700_000_000_000_000;
  const concurrent = 3000;
  while (written < packets) {
    while (active.length < concurrent) active.push(makeFlow(r, nextId++));
    const i = Math.floor(r() * active.length);
    const f = active[i];
    const [fromClient, pay, flags] = f.script[f.next++];
    if (f.next >= f.script.length) {
      active[i] = active[active.length - 1];
      active.pop();
    }
    const l4 = f.kind === 'tcp' ? 20 : 8;
    const l3 = f.v6 ? 40 : 20;
    const len = 14 + l3 + l4 + pay;
    tsUs += 1 + Math.floor(r() * 80);
    const { b, o } = out.record(tsUs, len);
    const src = fromClient ? f.client : f.server;
    const dst = fromClient ? f.server : f.client;
    b.writeUInt32BE(0x02000000, o); // dst MAC 02:00:00:00:00:01
    b.writeUInt16BE(fromClient ? 1 : 2, o + 4);
    b.writeUInt32BE(0x02000000, o + 6);
    b.writeUInt16BE(fromClient ? 2 : 1, o + 10);
    const proto = f.kind === 'tcp' ? 6 : f.kind === 'udp' ? 17 : f.v6 ? 58 : 1;
    const ip = o + 14;
    if (f.v6) {
      b.writeUInt16BE(0x86dd, o + 12);
      b.writeUInt32BE(0x60000000, ip);
      b.writeUInt16BE(l4 + pay, ip + 4);
      b[ip + 6] = proto;
      b[ip + 7] = 64;
      writeAddr(b, ip + 8, true, src);
      writeAddr(b, ip + 24, true, dst);
    } else {
      b.writeUInt16BE(0x0800, o + 12);
      b[ip] = 0x45;
      b.writeUInt16BE(20 + l4 + pay, ip + 2);
      b.writeUInt16BE(written & 0xffff, ip + 4);
      b[ip + 8] = 64;
      b[ip + 9] = proto;
      writeAddr(b, ip + 12, false, src);
      writeAddr(b, ip + 16, false, dst);
    }
    const t = ip + l3;
    if (f.kind === 'icmp') {
      b[t] = f.v6 ? (fromClient ? 128 : 129) : fromClient ? 8 : 0;
      b.writeUInt16BE(f.cport, t + 4);
    } else {
      b.writeUInt16BE(fromClient ? f.cport : f.sport, t);
      b.writeUInt16BE(fromClient ? f.sport : f.cport, t + 2);
      if (f.kind === 'tcp') {
        b.writeUInt32BE((f.next * 1000) >>> 0, t + 4);
        b.writeUInt32BE(flags & ACK ? 1 : 0, t + 8);
        b[t + 12] = 5 << 4;
        b[t + 13] = flags;
        b.writeUInt16BE(65535, t + 14);
      } else {
        b.writeUInt16BE(8 + pay, t + 4);
      }
    }
    written++;
  }
  out.drain();
  closeSync(fd);
  renameSync(tmp, path);
  return written;
}

/** Counts the records of a classic pcap file (either byte order, micro or nano). */
export function countPcapRecords(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(24);
    readExactly(fd, head, 0);
    const magic = head.readUInt32LE(0);
    const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
    if (!le && head.readUInt32BE(0) !== 0xa1b2c3d4 && head.readUInt32BE(0) !== 0xa1b23c4d) throw new Error(`${path}: not a classic pcap`);
    let pos = 24;
    let n = 0;
    const rec = Buffer.alloc(16);
    for (;;) {
      if (readExactly(fd, rec, pos) < 16) break;
      const incl = le ? rec.readUInt32LE(8) : rec.readUInt32BE(8);
      pos += 16 + incl;
      n++;
    }
    return n;
  } finally {
    closeSync(fd);
  }
}

function readExactly(fd: number, b: Buffer, pos: number): number {
  let got = 0;
  while (got < b.length) {
    const n = readSync(fd, b, got, b.length - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
