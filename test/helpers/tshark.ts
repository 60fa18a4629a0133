// tshark as the reference for per-flow packet and byte counts: runs tshark over a capture, attributes
// every frame to a TCP/UDP 5-tuple (or to none) and sums frames and frame wire lengths per direction.
//
// Attribution rules (chosen so that tshark and a flow meter agree on what "the flow" of a frame is):
// - The flow of a frame is its FIRST TCP or UDP layer: for UDP-encapsulated tunnels (VXLAN, GTP,
//   Teredo, ...) the outer UDP flow.
// - Its addresses are those of the LAST IP/IPv6 header before that layer: IP-in-IP and 6in4 count as
//   the inner packet.
// - Frames with ICMP/ICMPv6 before the first TCP/UDP layer are not attributed: ICMP errors quote the
//   IP+TCP/UDP header of another packet, whose ports tshark shows.
// - IP fragments: tshark (two-pass, reassembly on) shows the ports on the frame that completes the
//   datagram; the other fragments of that datagram (ip.reassembled_in / ipv6.reassembled.in) are
//   attributed to the same 5-tuple, so a datagram counts all its frames. Fragments of a datagram
//   that never completes are not attributed.
// Results are cached (see TSHARK_CACHE) keyed by file name, size, mtime, tshark's version and
// RULES_VERSION: outside the checkout, so that a fresh clone on the same machine (CI) reuses them.
import { spawn, spawnSync } from 'node:child_process';
import { homedir } from 'node:os';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

/** Bump when the tshark invocation or the attribution rules change: invalidates the cache. */
const RULES_VERSION = 4;

/** Where tshark's results are kept: FLOWLENS_TEST_CACHE, else ~/.cache/flowlens-test (tshark/ below it). */
export const TSHARK_CACHE = join(process.env.FLOWLENS_TEST_CACHE ?? join(homedir(), '.cache', 'flowlens-test'), 'tshark');

let tsharkVersion: string | undefined;
/** The installed tshark's version (a Debian upgrade must not reuse results of the one before). */
function installedVersion(): string {
  tsharkVersion ??= /\d+\.\d+\.\d+/.exec(spawnSync('tshark', ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[0] ?? 'unknown';
  return tsharkVersion;
}

const FIELDS = [
  'frame.number',
  'frame.len',
  'frame.protocols',
  'ip.src',
  'ip.dst',
  'ipv6.src',
  'ipv6.dst',
  'tcp.srcport',
  'tcp.dstport',
  'udp.srcport',
  'udp.dstport',
  'ip.reassembled_in',
  'ipv6.reassembled.in',
  'frame.time_epoch',
] as const;

export const TSHARK_ARGS = ['-2', '-n', '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-E', 'aggregator=,', ...FIELDS.flatMap((f) => ['-e', f])];

/** Packets and bytes of a 5-tuple in both directions: a = the lower end of the key, b = the higher. */
export interface DirCounts {
  abPackets: number;
  abBytes: number;
  baPackets: number;
  baBytes: number;
  /** First frame number of the tuple in the capture (for investigating mismatches). */
  firstFrame: number;
}

export interface TsharkResult {
  file: string;
  /** False when tshark could not read the file at all. */
  ok: boolean;
  /** tshark's complaint (stderr without the root warning), '' when none. */
  error: string;
  frames: number;
  /** Frames attributed to a TCP/UDP tuple. */
  attributed: number;
  /** Frames skipped because of an ICMP layer before the transport. */
  icmpQuoted: number;
  /** Earliest and latest frame time (seconds since the epoch; NaN without frames). */
  firstTime: number;
  lastTime: number;
  tuples: Map<string, DirCounts>;
}

/** One end of a tuple as used in keys. */
export interface TupleEnd {
  ip: string;
  port: number;
}

/** Canonical text of an IP address (IPv6 expanded to 8 groups, lower case; IPv4 unchanged). */
export function canonicalIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  let s = ip.toLowerCase();
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  // Embedded dotted IPv4 (::ffff:1.2.3.4).
  const dot = s.lastIndexOf('.');
  if (dot >= 0) {
    const colon = s.lastIndexOf(':');
    const v4 = s
      .slice(colon + 1)
      .split('.')
      .map(Number);
    const hi = ((v4[0] << 8) | v4[1]).toString(16);
    const lo = ((v4[2] << 8) | v4[3]).toString(16);
    s = `${s.slice(0, colon + 1)}${hi}:${lo}`;
  }
  const [head, tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail !== undefined ? new Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...fill, ...t].map((g) => g.padStart(4, '0')).join(':');
}

/** Direction-independent key of a 5-tuple, and whether (src, dst) is the a→b direction. */
export function tupleKey(transport: string, src: TupleEnd, dst: TupleEnd): { key: string; forward: boolean } {
  const s = `${canonicalIp(src.ip)}|${src.port}`;
  const d = `${canonicalIp(dst.ip)}|${dst.port}`;
  const forward = s <= d;
  return { key: forward ? `${transport}|${s}|${d}` : `${transport}|${d}|${s}`, forward };
}

/** Human form of a key: `udp 1.2.3.4:53 <-> 5.6.7.8:1234`. */
export function formatKey(key: string): string {
  const [t, ipA, portA, ipB, portB] = key.split('|');
  const end = (ip: string, port: string) => (ip.includes(':') ? `[${shortIp(ip)}]:${port}` : `${ip}:${port}`);
  return `${t} ${end(ipA, portA)} <-> ${end(ipB, portB)}`;
}

function shortIp(ip: string): string {
  return ip
    .split(':')
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')
    .replace(/(^|:)0(:0)+(:|$)/, '::')
    .replace(/:{3,}/, '::');
}

export function addCounts(map: Map<string, DirCounts>, key: string, forward: boolean, bytes: number, frame: number, packets = 1): void {
  let c = map.get(key);
  if (!c) {
    c = { abPackets: 0, abBytes: 0, baPackets: 0, baBytes: 0, firstFrame: frame };
    map.set(key, c);
  }
  if (forward) {
    c.abPackets += packets;
    c.abBytes += bytes;
  } else {
    c.baPackets += packets;
    c.baBytes += bytes;
  }
  if (frame < c.firstFrame) c.firstFrame = frame;
}

interface FrameTuple {
  key: string;
  forward: boolean;
}

/** Parses tshark's field output (TSHARK_ARGS) into per-tuple counts. */
export function parseTsharkFields(text: string): Omit<TsharkResult, 'file' | 'ok' | 'error'> {
  const tuples = new Map<string, DirCounts>();
  const byFrame = new Map<number, FrameTuple>();
  /** Fragments waiting for the frame that completes their datagram: reassembly frame → fragments. */
  const pending = new Map<number, { frame: number; len: number; fwdSrc: string }[]>();
  let frames = 0;
  let attributed = 0;
  let icmpQuoted = 0;
  let firstTime = NaN;
  let lastTime = NaN;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split('\t');
    const frame = Number(f[0]);
    const len = Number(f[1]);
    const protos = (f[2] ?? '').split(':');
    const time = Number(f[13]);
    if (Number.isFinite(time)) {
      if (Number.isNaN(firstTime) || time < firstTime) firstTime = time;
      if (Number.isNaN(lastTime) || time > lastTime) lastTime = time;
    }
    frames++;
    let ipCount = 0;
    let ip6Count = 0;
    let last: 'ip' | 'ipv6' | '' = '';
    let transport = '';
    let icmp = false;
    for (const p of protos) {
      if (p === 'ip') {
        ipCount++;
        last = 'ip';
      } else if (p === 'ipv6') {
        ip6Count++;
        last = 'ipv6';
      } else if (p === 'icmp' || p === 'icmpv6') {
        icmp = true;
        break;
      } else if (p === 'tcp' || p === 'udp') {
        transport = p;
        break;
      }
    }
    const reasm = Number((last === 'ipv6' ? f[12] : f[11])?.split(',')[0] || 0);
    if (icmp) {
      icmpQuoted++;
      continue;
    }
    if (!transport || !last) {
      // A fragment of a datagram completed in a later frame.
      if (reasm && reasm !== frame && last) {
        const idx = last === 'ip' ? ipCount - 1 : ip6Count - 1;
        const src = (last === 'ip' ? f[3] : f[5])?.split(',')[idx] ?? '';
        const list = pending.get(reasm) ?? [];
        list.push({ frame, len, fwdSrc: canonicalIp(src) });
        pending.set(reasm, list);
      }
      continue;
    }
    const idx = last === 'ip' ? ipCount - 1 : ip6Count - 1;
    const src = (last === 'ip' ? f[3] : f[5])?.split(',')[idx];
    const dst = (last === 'ip' ? f[4] : f[6])?.split(',')[idx];
    const sport = Number((transport === 'tcp' ? f[7] : f[9])?.split(',')[0]);
    const dport = Number((transport === 'tcp' ? f[8] : f[10])?.split(',')[0]);
    if (!src || !dst || !Number.isInteger(sport) || !Number.isInteger(dport) || f[transport === 'tcp' ? 7 : 9] === '') continue;
    const { key, forward } = tupleKey(transport, { ip: src, port: sport }, { ip: dst, port: dport });
    addCounts(tuples, key, forward, len, frame);
    attributed++;
    byFrame.set(frame, { key, forward });
  }
  for (const [reasmFrame, frags] of pending) {
    const t = byFrame.get(reasmFrame);
    if (!t) continue;
    for (const fr of frags) {
      addCounts(tuples, t.key, t.forward, fr.len, fr.frame);
      attributed++;
    }
  }
  return { frames, attributed, icmpQuoted, firstTime, lastTime, tuples };
}

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

interface CacheEntry {
  version: number;
  ok: boolean;
  error: string;
  frames: number;
  attributed: number;
  icmpQuoted: number;
  firstTime: number | null;
  lastTime: number | null;
  tuples: [string, number, number, number, number, number][];
}

/** tshark's per-tuple counts for one capture, from the cache when the file has not changed. */
export async function tsharkTuples(file: string, cacheDir: string): Promise<TsharkResult> {
  const st = await stat(file);
  const cacheFile = join(cacheDir, `${basename(file)}.${st.size}.${Math.floor(st.mtimeMs)}.t${installedVersion()}.v${RULES_VERSION}.json`);
  try {
    const c = JSON.parse(await readFile(cacheFile, 'utf8')) as CacheEntry;
    if (c.version === RULES_VERSION) {
      const tuples = new Map<string, DirCounts>();
      for (const [k, abPackets, abBytes, baPackets, baBytes, firstFrame] of c.tuples) {
        tuples.set(k, { abPackets, abBytes, baPackets, baBytes, firstFrame });
      }
      const firstTime = c.firstTime ?? NaN;
      const lastTime = c.lastTime ?? NaN;
      return { file, ok: c.ok, error: c.error, frames: c.frames, attributed: c.attributed, icmpQuoted: c.icmpQuoted, firstTime, lastTime, tuples };
    }
  } catch {
    // not cached yet
  }
  const r = await run('tshark', ['-r', file, ...TSHARK_ARGS]);
  const error = r.stderr
    .split('\n')
    .filter((l) => l && !l.startsWith('Running as user'))
    .join(' ')
    .trim();
  const parsed = parseTsharkFields(r.stdout);
  // A capture cut short in the middle of a packet is still read up to there (non-zero exit).
  const ok = r.code === 0 || parsed.frames > 0;
  const result: TsharkResult = { file, ok, error, ...parsed };
  const entry: CacheEntry = {
    version: RULES_VERSION,
    ok,
    error,
    frames: parsed.frames,
    attributed: parsed.attributed,
    icmpQuoted: parsed.icmpQuoted,
    firstTime: Number.isNaN(parsed.firstTime) ? null : parsed.firstTime,
    lastTime: Number.isNaN(parsed.lastTime) ? null : parsed.lastTime,
    tuples: [...parsed.tuples].map(([k, c]) => [k, c.abPackets, c.abBytes, c.baPackets, c.baBytes, c.firstFrame]),
  };
  await mkdir(cacheDir, { recursive: true });
  await writeFile(cacheFile, JSON.stringify(entry));
  return result;
}

/** Runs fn over items with at most `limit` running at once, keeping the order of results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
