/**
 * A small MaxMind DB writer (format 2.0: maxmind.github.io/MaxMind-DB): an IPv6 search tree of
 * 24-bit records (IPv4 prefixes under ::/96, as MaxMind's own databases hold them), a data section
 * of maps, strings and unsigned integers, and the metadata. Enough to build GeoLite2-like country
 * and ASN databases of a few prefixes for tests, read back by the real reader.
 */
import { isIPv4 } from 'node:net';

export type MmdbValue = string | number | { [key: string]: MmdbValue };

function ctrl(type: number, size: number): Buffer {
  const head: number[] = [];
  let sizeBytes: number[] = [];
  let code = size;
  if (size >= 29 && size < 285) {
    code = 29;
    sizeBytes = [size - 29];
  } else if (size >= 285) {
    code = 30;
    sizeBytes = [(size - 285) >> 8, (size - 285) & 0xff];
  }
  if (type <= 7) head.push((type << 5) | code);
  else head.push(code, type - 7);
  return Buffer.from([...head, ...sizeBytes]);
}

function uintBytes(n: number): Buffer {
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return Buffer.from(out);
}

function encode(v: MmdbValue): Buffer {
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([ctrl(2, b.length), b]);
  }
  if (typeof v === 'number') {
    const b = uintBytes(v);
    return Buffer.concat([ctrl(v < 2 ** 16 ? 5 : v < 2 ** 32 ? 6 : 9, b.length), b]);
  }
  const entries = Object.entries(v);
  return Buffer.concat([ctrl(7, entries.length), ...entries.flatMap(([k, x]) => [encode(k), encode(x)])]);
}

interface TreeNode {
  kids: [TreeNode | number | null, TreeNode | number | null];
}

/** The 128 bits of an address (IPv4 as ::a.b.c.d). */
function addressBits(ip: string): number[] {
  const bytes = isIPv4(ip) ? [...new Array(12).fill(0), ...ip.split('.').map(Number)] : ipv6Bytes(ip);
  return bytes.flatMap((b) => Array.from({ length: 8 }, (_, i) => (b >> (7 - i)) & 1));
}

function ipv6Bytes(ip: string): number[] {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, ''];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t].map((g) => Number.parseInt(g, 16));
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/**
 * A database holding `records`: [CIDR prefix, record], the prefixes not overlapping; tree records
 * of 24, 28 or 32 bits. `dataPadding` unreferenced bytes start the data section, so that pointers
 * to the records need more than 24 bits (the high nibbles of 28-bit records).
 */
export function buildMmdb(databaseType: string, records: [string, MmdbValue][], recordSize: 24 | 28 | 32 = 24, dataPadding = 0): Buffer {
  const root: TreeNode = { kids: [null, null] };
  const data: Buffer[] = [Buffer.alloc(dataPadding)];
  let dataSize = dataPadding;
  for (const [cidr, value] of records) {
    const [ip, lenText] = cidr.split('/');
    const len = Number(lenText) + (isIPv4(ip) ? 96 : 0);
    const bits = addressBits(ip);
    const offset = dataSize;
    const encoded = encode(value);
    data.push(encoded);
    dataSize += encoded.length;
    let node = root;
    for (let i = 0; i < len - 1; i++) {
      let next = node.kids[bits[i]];
      if (typeof next !== 'object' || next === null) {
        next = { kids: [null, null] };
        node.kids[bits[i]] = next;
      }
      node = next;
    }
    node.kids[bits[len - 1]] = offset;
  }
  // Nodes numbered breadth first.
  const nodes: TreeNode[] = [root];
  for (let i = 0; i < nodes.length; i++) for (const k of nodes[i].kids) if (k !== null && typeof k === 'object') nodes.push(k);
  const index = new Map(nodes.map((n, i) => [n, i]));
  const count = nodes.length;
  const nodeBytes = recordSize / 4;
  const tree = Buffer.alloc(count * nodeBytes);
  const record = (k: TreeNode | number | null) => (k === null ? count : typeof k === 'number' ? count + 16 + k : (index.get(k) as number));
  nodes.forEach((n, i) => {
    const left = record(n.kids[0]);
    const right = record(n.kids[1]);
    const at = i * nodeBytes;
    if (recordSize === 24) {
      tree.writeUIntBE(left, at, 3);
      tree.writeUIntBE(right, at + 3, 3);
    } else if (recordSize === 28) {
      // The middle byte holds the high nibbles: the left record's, then the right's.
      tree.writeUIntBE(left & 0xffffff, at, 3);
      tree[at + 3] = ((left >>> 24) << 4) | (right >>> 24);
      tree.writeUIntBE(right & 0xffffff, at + 4, 3);
    } else {
      tree.writeUInt32BE(left, at);
      tree.writeUInt32BE(right, at + 4);
    }
  });
  const metadata = Buffer.concat([
    ctrl(7, 9),
    encode('node_count'),
    Buffer.concat([ctrl(6, uintBytes(count).length), uintBytes(count)]),
    encode('record_size'),
    encode(recordSize),
    encode('ip_version'),
    encode(6),
    encode('database_type'),
    encode(databaseType),
    encode('languages'),
    Buffer.from([0x00, 0x04]), // an empty array (extended type 11)
    encode('binary_format_major_version'),
    encode(2),
    encode('binary_format_minor_version'),
    Buffer.from([0xa0]), // uint16 0
    encode('build_epoch'),
    encode(1_700_000_000),
    encode('description'),
    encode({ en: 'flowlens test database' }),
  ]);
  return Buffer.concat([tree, Buffer.alloc(16), ...data, Buffer.from([0xab, 0xcd, 0xef]), Buffer.from('MaxMind.com'), metadata]);
}
