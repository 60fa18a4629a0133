// Beaconing (RITA's best-known detection): one host connecting to one service (address, transport,
// port) again and again at a regular period, with jitter, each connection small and alike in size,
// over a long time: malware calling home. Each new flow of a pair is one connection; its size is
// every byte of the pair's packets until the next connection starts (a beacon's connections do
// not overlap).
//
// Per pair, the last RING connections' start times and sizes are kept; when a connection starts
// and the pair has at least `minConnections` over at least `minDurationSec`, its score is computed
// as RITA does, with robust statistics that a few missed or extra connections do not upset:
//   intervals between starts: Bowley skewness (Q1 + Q3 - 2·median) / (Q3 - Q1), and the median
//     absolute deviation relative to the median (the jitter); timing score = mean of
//     (1 - |skew|) and max(0, 1 - 2·jitter);
//   sizes: the same two on the sizes, and smallness max(0, 1 - median / 65,535) (RITA's
//     "data size" score); size score = their mean;
//   score = mean of the timing and size scores, in [0, 1].
// A pair scoring at least `minScore` with a median interval of at least `minPeriodSec` is a BEACON
// (source: the client, target: the service). It lasts while the connections keep coming: it ends
// when none came for twice the period (plus the lifecycle's quiet time).
//
// Not judged: services that are periodic by design (DNS, NTP, mDNS, NetBIOS, SSDP, DHCP, ...) and
// multicast or broadcast destinations. A beacon inside one long connection (HTTP keep-alive) is one
// connection here: not seen.
//
// Bounded: at most `maxTracked` pairs (least recently used evicted first, pairs with an active
// BEACON kept), each with RING start times (Float64) and sizes (Float32); the arrays grow with the
// pairs held, not with packets. Per packet: one 53-bit key and one open-addressing probe. A pair
// is forgotten when more than `maxTracked` other pairs start between two of its connections.
import { IPPROTO_TCP, IPPROTO_UDP } from '../decode/ip.js';
import { finish, mix } from '../flow/hash.js';
import type { BeaconConfig } from './config.js';
import { F_FROM_CLIENT, F_NEW_FLOW, key3, type PacketFacts } from './facts.js';
import type { Anomaly, AnomalyEmitter } from './lifecycle.js';
import { EvidenceFlows } from './evidence.js';
import { LruSlots } from './lru-slots.js';
import type { Detector } from './types.js';

/** Connections kept per pair (the window the score is computed over). */
export const RING = 32;
/** RITA's size scale: a beacon's median connection at this size or more scores 0 for smallness. */
const SIZE_SCALE = 65_535;
/**
 * Server ports whose clients call on a timer by design: DNS, DHCP, NTP, NetBIOS, mDNS, SSDP, LLMNR,
 * and TeamSpeak 3's server list (a TS3 server announces itself every 10 minutes to UDP 2010: the
 * nDPI corpus's teamspeak3.pcap).
 */
const PERIODIC_SERVICES = new Set([53, 67, 68, 123, 137, 138, 5353, 1900, 5355, 2010]);
const INITIAL_SLOTS = 256;
const TWO32 = 4294967296;

/**
 * The pair's 53-bit key: key3's, with a shorter path for two IPv4 addresses (below 2^32: no
 * splitting into words), which every packet of a pair takes (key3 was two thirds of the cost).
 */
function pairKey(client: number, server: number, service: number): number {
  if (client >= TWO32 || server >= TWO32) return key3(client, server, service);
  const h1 = finish(mix(mix(mix(0x85ebca6b, client), server), service));
  const h2 = finish(mix(mix(mix(0xc2b2ae35, service), server), client));
  return h1 * 2097152 + (h2 & 0x1fffff);
}

/** One pair's score and the figures it came from. */
export interface BeaconScore {
  score: number;
  timingScore: number;
  sizeScore: number;
  /** Median interval (µs). */
  period: number;
  /** Median absolute deviation of the intervals over their median. */
  jitter: number;
  /** Bowley skewness of the intervals. */
  skew: number;
  medianBytes: number;
  sizeJitter: number;
  /** Connections scored (as many intervals: to the next connection's start). */
  connections: number;
}

/** Value at rank q (0..1) of sorted[0, n): nearest rank, interpolated between the two neighbours. */
function quantile(sorted: Float64Array, n: number, q: number): number {
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** |Bowley skewness| and MAD/median of values[0, n) (sorted in place; `work` is scratch of at least n). */
function dispersion(values: Float64Array, n: number, work: Float64Array): { skew: number; jitter: number; median: number } {
  const v = values.subarray(0, n).sort();
  const q1 = quantile(v, n, 0.25);
  const median = quantile(v, n, 0.5);
  const q3 = quantile(v, n, 0.75);
  const skew = q3 > q1 ? Math.abs(q1 + q3 - 2 * median) / (q3 - q1) : 0;
  for (let i = 0; i < n; i++) work[i] = Math.abs(v[i] - median);
  const mad = quantile(work.subarray(0, n).sort(), n, 0.5);
  return { skew, jitter: median > 0 ? mad / median : mad > 0 ? 1 : 0, median };
}

/**
 * The score of n connections (oldest first, 3 <= n <= RING) of sizes `sizes[0, n)`, started at
 * `starts[0, n)`, and of the next one's start `starts[n]` (n intervals). Exported for the tests; the
 * detector calls it with its own scratch arrays.
 */
export function scoreBeacon(starts: ArrayLike<number>, sizes: ArrayLike<number>, n: number, scratch = new Float64Array(3 * RING)): BeaconScore {
  const a = scratch.subarray(0, RING);
  const b = scratch.subarray(RING, 2 * RING);
  const work = scratch.subarray(2 * RING, 3 * RING);
  for (let i = 1; i <= n; i++) a[i - 1] = starts[i] - starts[i - 1];
  const t = dispersion(a, n, work);
  for (let i = 0; i < n; i++) b[i] = sizes[i];
  const s = dispersion(b, n, work);
  // Jitter counts double: a beacon's ±30 % uniform jitter is a MAD of 15 % of the period (0.7),
  // Poisson arrivals' is ~60 % (0).
  const timingScore = (1 - Math.min(1, t.skew) + Math.max(0, 1 - 2 * t.jitter)) / 2;
  const sizeScore = (1 - Math.min(1, s.skew) + Math.max(0, 1 - s.jitter) + Math.max(0, 1 - s.median / SIZE_SCALE)) / 3;
  return {
    score: (timingScore + sizeScore) / 2,
    timingScore,
    sizeScore,
    period: t.median,
    jitter: t.jitter,
    skew: t.skew,
    medianBytes: s.median,
    sizeJitter: s.jitter,
    connections: n,
  };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export class BeaconDetector implements Detector {
  private readonly slots: LruSlots;
  /** Per slot: connections seen (all time) and the first one's start, the ring's next position, the current connection's start and bytes, last packet. */
  private count = new Float64Array(INITIAL_SLOTS);
  private firstStart = new Float64Array(INITIAL_SLOTS);
  private next = new Int32Array(INITIAL_SLOTS);
  private curStart = new Float64Array(INITIAL_SLOTS);
  private curBytes = new Float64Array(INITIAL_SLOTS);
  private lastSeen = new Float64Array(INITIAL_SLOTS);
  private starts = new Float64Array(INITIAL_SLOTS * RING);
  private sizes = new Float32Array(INITIAL_SLOTS * RING);
  /** The connections' flow ids (two words each): the ring's, and the current one's (evidence.ts). */
  private flowIds = new Uint32Array(INITIAL_SLOTS * RING * 2);
  private curFlow = new Uint32Array(INITIAL_SLOTS * 2);
  /** Active BEACONs by slot, with the pair's last score (few: a Map). */
  private readonly active = new Map<number, { anomaly: Anomaly; score: BeaconScore; peak: number; flows: EvidenceFlows }>();
  private readonly orderedStarts = new Float64Array(RING + 1);
  private readonly orderedSizes = new Float64Array(RING);
  private readonly scratch = new Float64Array(3 * RING);
  private readonly keep = (slot: number) => this.active.has(slot);
  private readonly drop = (slot: number) => this.slots.remove(slot);
  private readonly idleUs: number;

  constructor(
    private readonly cfg: BeaconConfig,
    private readonly emitter: AnomalyEmitter,
  ) {
    this.slots = new LruSlots(INITIAL_SLOTS, (n) => this.grow(n));
    this.idleUs = cfg.idleSec * 1e6;
  }

  /** Pairs held now. */
  get tracked(): number {
    return this.slots.size;
  }

  packet(p: PacketFacts): void {
    const pkt = p.pkt;
    const proto = pkt.ipProto;
    if ((proto !== IPPROTO_TCP && proto !== IPPROTO_UDP) || !pkt.hasPorts || pkt.laterFragment) return;
    const fromClient = (p.flags & F_FROM_CLIENT) !== 0;
    const serverPort = fromClient ? pkt.dstPort : pkt.srcPort;
    if (PERIODIC_SERVICES.has(serverPort)) return;
    const client = fromClient ? p.srcKey : p.dstKey;
    const server = fromClient ? p.dstKey : p.srcKey;
    const key = pairKey(client, server, proto * 65536 + serverPort);
    let slot = this.slots.get(key);
    if ((p.flags & F_NEW_FLOW) === 0) {
      // Bytes of the pair's current connection (answers included).
      if (slot >= 0) {
        this.curBytes[slot] += p.bytes;
        this.lastSeen[slot] = p.ts;
      }
      return;
    }
    if (slot < 0) {
      if (!fromClient || isGroupAddress(pkt.ipVersion, pkt.dst)) return;
      if (!this.slots.makeRoom(this.cfg.maxTracked, this.keep, this.drop)) return;
      slot = this.slots.insert(key);
      this.count[slot] = 0;
      this.next[slot] = 0;
      this.firstStart[slot] = p.ts;
    } else {
      this.slots.touch(slot);
      this.closeConnection(slot);
    }
    this.count[slot]++;
    this.curStart[slot] = p.ts;
    this.curBytes[slot] = p.bytes;
    this.curFlow[slot * 2] = p.flowHi;
    this.curFlow[slot * 2 + 1] = p.flowLo;
    this.lastSeen[slot] = p.ts;
    if (this.count[slot] > this.cfg.minConnections) this.judge(slot, p);
  }

  /** The pair's current connection ends where the next one starts: into the ring. */
  private closeConnection(slot: number): void {
    const at = slot * RING + this.next[slot];
    this.starts[at] = this.curStart[slot];
    this.sizes[at] = this.curBytes[slot];
    this.flowIds[at * 2] = this.curFlow[slot * 2];
    this.flowIds[at * 2 + 1] = this.curFlow[slot * 2 + 1];
    this.next[slot] = (this.next[slot] + 1) % RING;
  }

  /** Scores the pair's closed connections (the last RING), starts or updates its BEACON. */
  private judge(slot: number, p: PacketFacts): void {
    const closed = Math.min(RING, this.count[slot] - 1);
    const first = closed < RING ? 0 : this.next[slot];
    for (let i = 0; i < closed; i++) {
      const at = slot * RING + ((first + i) % RING);
      this.orderedStarts[i] = this.starts[at];
      this.orderedSizes[i] = this.sizes[at];
    }
    // The current connection's start is one more interval.
    this.orderedStarts[closed] = this.curStart[slot];
    const span = this.curStart[slot] - this.firstStart[slot];
    const current = this.active.get(slot);
    if (current !== undefined) {
      current.score = scoreBeacon(this.orderedStarts, this.orderedSizes, closed, this.scratch);
      if (current.score.score > current.peak) current.peak = current.score.score;
      current.anomaly.touch(p.ts, this.sizes[slot * RING + ((this.next[slot] + RING - 1) % RING)]);
      current.flows.add(p.flowHi, p.flowLo);
      return;
    }
    if (span < this.cfg.minDurationSec * 1e6) return;
    const score = scoreBeacon(this.orderedStarts, this.orderedSizes, closed, this.scratch);
    if (score.score < this.cfg.minScore || score.period < this.cfg.minPeriodSec * 1e6) return;
    const fromClient = (p.flags & F_FROM_CLIENT) !== 0;
    const source = fromClient ? p.srcIp() : p.dstIp();
    const target = fromClient ? p.dstIp() : p.srcIp();
    const port = fromClient ? p.pkt.dstPort : p.pkt.srcPort;
    const transport = p.pkt.ipProto === IPPROTO_TCP ? 'tcp' : 'udp';
    // Its evidence: the connections scored (the ring, oldest first) and the one starting now.
    const flows = new EvidenceFlows();
    for (let i = 0; i < closed; i++) {
      const at = slot * RING + ((first + i) % RING);
      flows.add(this.flowIds[at * 2], this.flowIds[at * 2 + 1]);
    }
    flows.add(p.flowHi, p.flowLo);
    const entry = { anomaly: null as unknown as Anomaly, score, peak: score.score, flows };
    entry.anomaly = this.emitter.start({
      kind: 'BEACON',
      source,
      targetIp: target,
      targetPort: port,
      startedAt: this.orderedStarts[0],
      now: p.ts,
      packets: closed,
      bytes: score.medianBytes * closed,
      flows,
      view: () => {
        const s = entry.score;
        const periodSec = s.period / 1e6;
        return {
          severity: entry.peak >= 0.95 ? 'high' : entry.peak >= 0.9 ? 'medium' : 'low',
          evidence: {
            transport,
            periodSec: round3(periodSec),
            jitter: round3(s.jitter),
            skew: round3(s.skew),
            score: round3(s.score),
            peakScore: round3(entry.peak),
            timingScore: round3(s.timingScore),
            sizeScore: round3(s.sizeScore),
            medianBytes: Math.round(s.medianBytes),
            sizeJitter: round3(s.sizeJitter),
            connections: this.count[slot],
            connectionsScored: s.connections,
          },
          summary: `${source} beacons to ${target}:${port}/${transport} every ${formatPeriod(periodSec)} (jitter ${Math.round(s.jitter * 100)}%, ~${Math.round(s.medianBytes)} bytes each), score ${entry.peak.toFixed(2)}`,
        };
      },
      onEnd: () => this.active.delete(slot),
    });
    this.active.set(slot, entry);
  }

  tick(now: number): void {
    // A beacon lasts while its connections keep coming: kept alive up to twice its period after
    // the last one (without an update: lastSeen only), then left to the lifecycle's quiet time.
    // forEach, not for...of with destructuring: that builds an entry array per beacon per tick
    // (~85 MB of the benchmark import's allocations, a tick a second of packet time).
    this.active.forEach(({ anomaly, score }, slot) => {
      if (now - this.curStart[slot] <= 2 * score.period && now > anomaly.lastSeen) anomaly.lastSeen = now;
    });
    const horizon = now - this.idleUs;
    this.slots.sweep((s) => this.lastSeen[s] < horizon, this.keep, this.drop);
  }

  reset(): void {
    this.slots.clear();
    this.active.clear();
  }

  private grow(n: number): void {
    const f64 = (a: Float64Array, size: number) => {
      const b = new Float64Array(size);
      b.set(a);
      return b;
    };
    this.count = f64(this.count, n);
    this.firstStart = f64(this.firstStart, n);
    this.curStart = f64(this.curStart, n);
    this.curBytes = f64(this.curBytes, n);
    this.lastSeen = f64(this.lastSeen, n);
    this.starts = f64(this.starts, n * RING);
    const next = new Int32Array(n);
    next.set(this.next);
    this.next = next;
    const flowIds = new Uint32Array(n * RING * 2);
    flowIds.set(this.flowIds);
    this.flowIds = flowIds;
    const curFlow = new Uint32Array(n * 2);
    curFlow.set(this.curFlow);
    this.curFlow = curFlow;
    const sizes = new Float32Array(n * RING);
    sizes.set(this.sizes);
    this.sizes = sizes;
  }
}

function formatPeriod(sec: number): string {
  if (sec >= 3600) return `${round3(sec / 3600)} h`;
  if (sec >= 60) return `${round3(sec / 60)} min`;
  return `${round3(sec)} s`;
}

/** IPv4 multicast (224/4) or limited broadcast, IPv6 multicast (ff00::/8). */
function isGroupAddress(version: number, w: Uint32Array): boolean {
  if (version === 4) return w[0] >>> 28 === 0xe || w[0] === 0xffffffff;
  return w[0] >>> 24 === 0xff;
}
