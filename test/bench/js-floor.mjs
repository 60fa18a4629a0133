// The JavaScript floor of the import benchmark: the least a JavaScript flow meter must do with the
// benchmark capture, and nothing else. It reads the file in 4 MiB chunks, walks the classic pcap
// records, decodes Ethernet (802.1Q tags), IPv4 and IPv6 to the ports, and counts packets and bytes
// per direction in an open-addressing table of 5-tuples in typed arrays. No hosts, no intervals,
// no segments or records, no TCP state, no DPI, no detection, no store, no error accounting beyond
// skipping what it cannot read: what softflowd does, minus its expiry and export.
// Plain JavaScript so that node runs it with no loader, as it runs flowlens from dist/.
// Usage: node test/bench/js-floor.mjs FILE.pcap  → one JSON line {packets, bytes, flows}.
import { closeSync, openSync, readSync } from 'node:fs';

const path = process.argv[2];
if (!path) {
  console.error('usage: node test/bench/js-floor.mjs FILE.pcap');
  process.exit(2);
}
const fd = openSync(path, 'r');
const CHUNK = 4 << 20;
const buf = Buffer.allocUnsafe(CHUNK + 262_144 + 16);
let have = readSync(fd, buf, 0, CHUNK, 0);
let filePos = have;
const magic = buf.readUInt32LE(0);
const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d) {
  console.error(`${path}: not a classic pcap file`);
  process.exit(1);
}
const u32 = le ? (o) => buf.readUInt32LE(o) : (o) => buf.readUInt32BE(o);
if ((u32(20) & 0xffff) !== 1) {
  console.error(`${path}: not an Ethernet capture`);
  process.exit(1);
}

// Table: key = version, proto, ports, then 8 address words (A then B, A the lower endpoint).
let cap = 1 << 18;
let mask = cap - 1;
let keys = new Uint32Array(cap * 10);
let used = new Uint8Array(cap);
let hashes = new Uint32Array(cap); // kept so that growing re-places slots without hashing again
let counts = new Float64Array(cap * 4); // packets A→B, B→A, bytes A→B, B→A
let flows = 0;
const src = new Uint32Array(4);
const dst = new Uint32Array(4);

function grow() {
  const oldKeys = keys;
  const oldUsed = used;
  const oldCounts = counts;
  const oldHashes = hashes;
  cap *= 2;
  mask = cap - 1;
  keys = new Uint32Array(cap * 10);
  used = new Uint8Array(cap);
  hashes = new Uint32Array(cap);
  counts = new Float64Array(cap * 4);
  for (let i = 0; i < oldUsed.length; i++) {
    if (!oldUsed[i]) continue;
    let j = oldHashes[i] & mask;
    while (used[j]) j = (j + 1) & mask;
    used[j] = 1;
    hashes[j] = oldHashes[i];
    keys.set(oldKeys.subarray(i * 10, i * 10 + 10), j * 10);
    counts.set(oldCounts.subarray(i * 4, i * 4 + 4), j * 4);
  }
}

function account(version, proto, sport, dport, wirelen) {
  let aIsSrc = true;
  for (let i = 0; i < 4; i++) {
    if (src[i] !== dst[i]) {
      aIsSrc = src[i] < dst[i];
      break;
    }
    if (i === 3) aIsSrc = sport <= dport;
  }
  const a = aIsSrc ? src : dst;
  const b = aIsSrc ? dst : src;
  const ports = aIsSrc ? ((sport << 16) | dport) >>> 0 : ((dport << 16) | sport) >>> 0;
  const head = (version << 8) | proto;
  let h = 0x811c9dc5;
  h = Math.imul(h ^ head, 0x01000193);
  h = Math.imul(h ^ ports, 0x01000193);
  for (let i = 0; i < 4; i++) h = Math.imul(h ^ a[i], 0x01000193);
  for (let i = 0; i < 4; i++) h = Math.imul(h ^ b[i], 0x01000193);
  const hash = (h ^ (h >>> 15)) >>> 0;
  let slot = hash & mask;
  for (;;) {
    const k = slot * 10;
    if (!used[slot]) {
      used[slot] = 1;
      hashes[slot] = hash;
      keys[k] = head;
      keys[k + 1] = ports;
      keys.set(a, k + 2);
      keys.set(b, k + 6);
      flows++;
      break;
    }
    if (
      keys[k] === head &&
      keys[k + 1] === ports &&
      keys[k + 2] === a[0] &&
      keys[k + 3] === a[1] &&
      keys[k + 4] === a[2] &&
      keys[k + 5] === a[3] &&
      keys[k + 6] === b[0] &&
      keys[k + 7] === b[1] &&
      keys[k + 8] === b[2] &&
      keys[k + 9] === b[3]
    )
      break;
    slot = (slot + 1) & mask;
  }
  const dir = aIsSrc ? 0 : 1;
  counts[slot * 4 + dir]++;
  counts[slot * 4 + 2 + dir] += wirelen;
  if (flows * 2 > cap) grow(); // the new flow's slot moves, but its counts move with it
}

function frame(p, end, wirelen) {
  if (end - p < 14) return;
  let type = (buf[p + 12] << 8) | buf[p + 13];
  let ip = p + 14;
  while ((type === 0x8100 || type === 0x88a8) && end - ip >= 4) {
    type = (buf[ip + 2] << 8) | buf[ip + 3];
    ip += 4;
  }
  let proto;
  let l4;
  let version;
  if (type === 0x0800) {
    if (end - ip < 20) return;
    version = 4;
    proto = buf[ip + 9];
    src[0] = buf.readUInt32BE(ip + 12);
    dst[0] = buf.readUInt32BE(ip + 16);
    src[1] = src[2] = src[3] = dst[1] = dst[2] = dst[3] = 0;
    if ((((buf[ip + 6] << 8) | buf[ip + 7]) & 0x1fff) !== 0) return account(4, proto, 0, 0, wirelen);
    l4 = ip + (buf[ip] & 15) * 4;
  } else if (type === 0x86dd) {
    if (end - ip < 40) return;
    version = 6;
    proto = buf[ip + 6];
    for (let i = 0; i < 4; i++) {
      src[i] = buf.readUInt32BE(ip + 8 + 4 * i);
      dst[i] = buf.readUInt32BE(ip + 24 + 4 * i);
    }
    l4 = ip + 40;
  } else {
    return;
  }
  if ((proto === 6 || proto === 17 || proto === 132) && end - l4 >= 4) {
    account(version, proto, (buf[l4] << 8) | buf[l4 + 1], (buf[l4 + 2] << 8) | buf[l4 + 3], wirelen);
  } else {
    account(version, proto, 0, 0, wirelen);
  }
}

let packets = 0;
let bytes = 0;
let pos = 24;
for (;;) {
  while (have - pos >= 16) {
    const caplen = u32(pos + 8);
    if (have - pos - 16 < caplen) break;
    const wirelen = u32(pos + 12);
    packets++;
    bytes += wirelen;
    frame(pos + 16, pos + 16 + caplen, wirelen);
    pos += 16 + caplen;
  }
  const rest = have - pos;
  buf.copy(buf, 0, pos, have);
  const n = readSync(fd, buf, rest, CHUNK, filePos);
  filePos += n;
  have = rest + n;
  pos = 0;
  if (n === 0) break;
}
closeSync(fd);
console.log(JSON.stringify({ packets, bytes, flows }));
