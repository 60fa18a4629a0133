/**
 * BEACON (src/detect/beacon.ts), evaluated on byte-built traffic run through the aggregator: six
 * beacons (TCP and UDP; periods from 15 s to 10 min; jitter from none to ±30 %; sizes fixed or
 * varying ±20 %; one missing a tenth of its calls) among three hours of ordinary traffic: ten
 * clients browsing thirty servers (Poisson arrivals, log-normal sizes, the popular servers
 * visited hundreds of times), plus NTP and DNS on their timers. Every beacon must be found once,
 * with its period; nothing else may be. The score itself is checked on exact, jittered and random
 * series, and the noise pairs' highest score is printed beside the beacons' lowest.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BeaconDetector, RING, scoreBeacon } from '../src/detect/beacon.js';
import { resolveDetectConfig } from '../src/detect/config.js';
import { F_FROM_CLIENT, F_NEW_FLOW, PacketFacts } from '../src/detect/facts.js';
import { AnomalyEmitter } from '../src/detect/lifecycle.js';
import { DecodedPacket } from '../src/decode/packet.js';
import { Aggregator } from '../src/flow/aggregator.js';
import type { AnomalyRecord } from '../src/store/types.js';
import { ETHERTYPE, ethernet, ip, LINKTYPE, payload, TCP_FLAGS, tcp, udp } from './helpers/frames.js';
import { rng } from './helpers/random.js';

const T0 = 1_700_000_000_000_000; // µs
const HOUR = 3_600_000_000;

interface Packet {
  ts: number;
  frame: Uint8Array;
}

/** One connection: TCP (handshake, request, response in segments of 1,400 bytes, FIN) or UDP (request, response). */
function connection(
  out: Packet[],
  proto: 'tcp' | 'udp',
  client: string,
  cport: number,
  server: string,
  sport: number,
  at: number,
  req: number,
  resp: number,
): void {
  let t = at;
  const push = (fromClient: boolean, l4: ReturnType<typeof tcp>) => {
    const [src, dst] = fromClient ? [client, server] : [server, client];
    out.push({ ts: t, frame: ethernet({ etherType: ETHERTYPE.IPV4, payload: ip({ src, dst, l4 }) }) });
    t += 2_000;
  };
  if (proto === 'udp') {
    push(true, udp({ srcPort: cport, dstPort: sport, payload: payload(req) }));
    push(false, udp({ srcPort: sport, dstPort: cport, payload: payload(resp) }));
    return;
  }
  const seq = { c: 1000, s: 7000 };
  const seg = (fromClient: boolean, flags: number, data = 0) => {
    const [sp, dp, me, other] = fromClient ? [cport, sport, 'c', 's'] : [sport, cport, 's', 'c'];
    push(fromClient, tcp({ srcPort: sp, dstPort: dp, seq: seq[me as 'c'], ack: seq[other as 'c'], flags, payload: data > 0 ? payload(data) : undefined }));
    seq[me as 'c'] += data + (flags & (TCP_FLAGS.SYN | TCP_FLAGS.FIN) ? 1 : 0);
  };
  seg(true, TCP_FLAGS.SYN);
  seg(false, TCP_FLAGS.SYN | TCP_FLAGS.ACK);
  seg(true, TCP_FLAGS.ACK);
  seg(true, TCP_FLAGS.PSH | TCP_FLAGS.ACK, req);
  for (let left = resp; left > 0; left -= 1400) seg(false, TCP_FLAGS.PSH | TCP_FLAGS.ACK, Math.min(1400, left));
  seg(true, TCP_FLAGS.FIN | TCP_FLAGS.ACK);
  seg(false, TCP_FLAGS.FIN | TCP_FLAGS.ACK);
  seg(true, TCP_FLAGS.ACK);
}

interface Beacon {
  client: string;
  server: string;
  port: number;
  proto: 'tcp' | 'udp';
  periodSec: number;
  /** Uniform jitter, ± this share of the period. */
  jitter: number;
  req: number;
  resp: number;
  /** ± this share of the sizes. */
  sizeJitter: number;
  hours: number;
  /** Share of calls that never happen. */
  missing: number;
}

const BEACONS: Beacon[] = [
  { client: '10.1.0.10', server: '198.51.100.10', port: 443, proto: 'tcp', periodSec: 60, jitter: 0, req: 180, resp: 320, sizeJitter: 0, hours: 2, missing: 0 },
  {
    client: '10.1.0.11',
    server: '198.51.100.11',
    port: 443,
    proto: 'tcp',
    periodSec: 300,
    jitter: 0.1,
    req: 250,
    resp: 900,
    sizeJitter: 0.05,
    hours: 3,
    missing: 0,
  },
  {
    client: '10.1.0.12',
    server: '198.51.100.12',
    port: 8080,
    proto: 'tcp',
    periodSec: 30,
    jitter: 0.3,
    req: 400,
    resp: 150,
    sizeJitter: 0.1,
    hours: 2,
    missing: 0,
  },
  {
    client: '10.1.0.13',
    server: '198.51.100.13',
    port: 4444,
    proto: 'udp',
    periodSec: 15,
    jitter: 0.2,
    req: 64,
    resp: 64,
    sizeJitter: 0,
    hours: 1.5,
    missing: 0,
  },
  {
    client: '10.1.0.14',
    server: '198.51.100.14',
    port: 443,
    proto: 'tcp',
    periodSec: 600,
    jitter: 0.05,
    req: 300,
    resp: 2000,
    sizeJitter: 0.2,
    hours: 3,
    missing: 0,
  },
  {
    client: '10.1.0.15',
    server: '198.51.100.15',
    port: 80,
    proto: 'tcp',
    periodSec: 120,
    jitter: 0.1,
    req: 200,
    resp: 400,
    sizeJitter: 0.05,
    hours: 2,
    missing: 0.1,
  },
];

/** Start times of a beacon's calls (µs). */
function beaconStarts(b: Beacon, r: () => number): number[] {
  const out: number[] = [];
  const period = b.periodSec * 1e6;
  for (let t = T0 + 5e6 + r() * period; t < T0 + b.hours * HOUR; ) {
    if (r() >= b.missing) out.push(Math.round(t));
    t += period * (1 + (2 * r() - 1) * b.jitter);
  }
  return out;
}

/** Log-normal with the given median. */
function logNormal(r: () => number, median: number, sigma: number): number {
  const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return Math.max(40, Math.round(median * Math.exp(sigma * z)));
}

interface Traffic {
  packets: Packet[];
  /** Every pair's connection starts and sizes (client bytes + server bytes), for the printed figures. */
  pairs: Map<string, { starts: number[]; sizes: number[] }>;
}

function traffic(seed: number): Traffic {
  const r = rng(seed);
  const packets: Packet[] = [];
  const pairs = new Map<string, { starts: number[]; sizes: number[] }>();
  let port = 20000;
  const record = (key: string, at: number, size: number) => {
    let p = pairs.get(key);
    if (!p) pairs.set(key, (p = { starts: [], sizes: [] }));
    p.starts.push(at);
    p.sizes.push(size);
  };
  for (const b of BEACONS) {
    for (const at of beaconStarts(b, r)) {
      const k = 1 + (2 * r() - 1) * b.sizeJitter;
      const req = Math.round(b.req * k);
      const resp = Math.round(b.resp * k);
      connection(packets, b.proto, b.client, port++, b.server, b.port, at, req, resp);
      record(`${b.client} ${b.server}:${b.port}`, at, req + resp);
      if (port > 60000) port = 20000;
    }
  }
  // Ten clients browsing thirty servers for three hours: Poisson arrivals (mean 30 s), the server
  // drawn with weights 1/rank (the first few get hundreds of visits each), log-normal sizes.
  const servers = Array.from({ length: 30 }, (_, i) => `203.0.113.${i + 1}`);
  const weights = servers.map((_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  for (let c = 0; c < 10; c++) {
    const client = `10.2.0.${c + 1}`;
    for (let t = T0 + r() * 30e6; t < T0 + 3 * HOUR; t += -Math.log(1 - r()) * 30e6) {
      let x = r() * total;
      let s = 0;
      while (x > weights[s]! && s < servers.length - 1) x -= weights[s++]!;
      const resp = Math.min(28_000, logNormal(r, 6_000, 1.2));
      const req = logNormal(r, 400, 0.5);
      const sport = r() < 0.8 ? 443 : 80;
      connection(packets, 'tcp', client, port++, servers[s]!, sport, Math.round(t), req, resp);
      record(`${client} ${servers[s]}:${sport}`, Math.round(t), req + resp);
      if (port > 60000) port = 20000;
    }
    // Time keeping and name lookups on their timers: periodic by design, not judged.
    for (let t = T0 + 1e6 * c; t < T0 + 3 * HOUR; t += 64e6) connection(packets, 'udp', client, 123, '192.0.2.123', 123, t, 48, 48);
    for (let t = T0 + 2e6 * c; t < T0 + 3 * HOUR; t += 30e6) connection(packets, 'udp', client, port++, '192.0.2.53', 53, t, 40, 120);
  }
  packets.sort((a, b) => a.ts - b.ts);
  return { packets, pairs };
}

function run(t: Traffic): AnomalyRecord[] {
  const agg = new Aggregator({ dpi: false });
  const latest = new Map<string, AnomalyRecord>();
  const take = () => {
    for (const a of agg.takeBatch().anomalies ?? []) latest.set(a.anomalyId, a);
  };
  for (const p of t.packets) {
    const buf = Buffer.from(p.frame);
    agg.packet(LINKTYPE.ETHERNET, p.ts, buf, 0, buf.length, buf.length);
  }
  take();
  agg.finish();
  take();
  return [...latest.values()];
}

/** The score of a pair's last RING connections, as the detector computes it. */
function pairScore(p: { starts: number[]; sizes: number[] }): number {
  const n = Math.min(RING, p.starts.length - 1);
  const starts = p.starts.slice(-n - 1);
  const sizes = p.sizes.slice(-n - 1, -1);
  return scoreBeacon(starts, sizes, n).score;
}

describe('BEACON', () => {
  it('scores an exact series 1, a jittered one high, Poisson arrivals of random sizes low', () => {
    const r = rng(7);
    const n = 20;
    const exact = scoreBeacon(
      Array.from({ length: n + 1 }, (_, i) => i * 60e6),
      Array.from({ length: n }, () => 500),
      n,
    );
    assert.equal(exact.score, 0.5 * (1 + (1 + 1 + (1 - 500 / 65535)) / 3));
    assert.equal(exact.connections, n);
    assert.equal(exact.period, 60e6);
    assert.equal(exact.jitter, 0);
    const jittered: number[] = [0];
    for (let i = 0; i < n; i++) jittered.push(jittered[i]! + 60e6 * (0.9 + 0.2 * r()));
    const j = scoreBeacon(
      jittered,
      Array.from({ length: n }, () => 500 + Math.round(50 * r())),
      n,
    );
    assert.ok(j.score > 0.9 && j.jitter < 0.1, JSON.stringify(j));
    const poisson: number[] = [0];
    for (let i = 0; i < 30; i++) poisson.push(poisson[i]! - Math.log(1 - r()) * 60e6);
    const p = scoreBeacon(
      poisson,
      Array.from({ length: 30 }, () => logNormal(r, 6000, 1.2)),
      30,
    );
    assert.ok(p.score < 0.7, JSON.stringify(p));
  });

  it('finds each of six beacons once, with its period, among three hours of ordinary traffic; nothing else', () => {
    const t = traffic(2026);
    const anomalies = run(t);
    const beacons = anomalies.filter((a) => a.kind === 'BEACON');
    const lines = beacons.map((a) => `${a.source} -> ${a.targetIp}:${a.targetPort} ${a.summary}`).join('\n');
    const scores: string[] = [];
    for (const b of BEACONS) {
      const found = beacons.filter((a) => a.source === b.client && a.targetIp === b.server && a.targetPort === b.port);
      assert.equal(found.length, 1, `${b.client} -> ${b.server}:${b.port} every ${b.periodSec} s ±${b.jitter * 100}%:\n${lines}`);
      const ev = JSON.parse(found[0]!.evidence) as { periodSec: number; jitter: number; score: number; peakScore: number; transport: string };
      assert.ok(Math.abs(ev.periodSec - b.periodSec) <= 0.1 * b.periodSec, `period ${ev.periodSec} for ${b.periodSec}`);
      assert.ok(ev.jitter <= Math.max(0.01, b.jitter), `jitter ${ev.jitter} for ±${b.jitter}`);
      assert.equal(ev.transport, b.proto);
      assert.ok(ev.peakScore >= 0.8 && ev.peakScore >= ev.score, JSON.stringify(ev));
      scores.push(`${b.periodSec}s±${b.jitter * 100}%: peak ${ev.peakScore}, last ${ev.score}`);
    }
    assert.equal(beacons.length, BEACONS.length, `only the beacons:\n${lines}`);
    // The ordinary pairs that could be judged (10+ connections over an hour or more), and their best score.
    const beaconKeys = new Set(BEACONS.map((b) => `${b.client} ${b.server}:${b.port}`));
    let judged = 0;
    let best = 0;
    for (const [key, p] of t.pairs) {
      if (beaconKeys.has(key) || p.starts.length <= 10 || p.starts.at(-1)! - p.starts[0]! < HOUR) continue;
      judged++;
      best = Math.max(best, pairScore(p));
    }
    assert.ok(judged >= 30, `${judged} ordinary pairs judged`);
    assert.ok(best < resolveDetectConfig().beacon.minScore);
    console.log(`beacons' scores: ${scores.join(', ')}; ${judged} ordinary pairs judged, highest score ${best.toFixed(3)}; ${t.packets.length} packets`);
  });

  it('holds at most maxTracked pairs (least recently used evicted), and a beacon among fewer new pairs per period than that is still found', () => {
    const cfg = { ...resolveDetectConfig().beacon, maxTracked: 50, minDurationSec: 600 };
    const found: AnomalyRecord[] = [];
    const det = new BeaconDetector(cfg, new AnomalyEmitter({ quietSec: 30, updateSec: 5 }, '', (_, a) => found.push(a)));
    const pkt = new DecodedPacket();
    const facts = new PacketFacts();
    const send = (client: number, server: number, port: number, ts: number) => {
      pkt.ipVersion = 4;
      pkt.ipProto = 6;
      pkt.hasPorts = true;
      pkt.src[0] = client;
      pkt.dst[0] = server;
      pkt.srcPort = 40000;
      pkt.dstPort = port;
      facts.set(pkt, Buffer.alloc(0), ts, 300, F_NEW_FLOW | F_FROM_CLIENT);
      det.packet(facts);
    };
    let most = 0;
    for (let i = 0; i < 40; i++) {
      const t = T0 + i * 60e6;
      send(0x0a000001, 0xc6336401, 443, t);
      // 40 one-off pairs between two calls of the beacon (1,600 in all, 50 held).
      for (let k = 0; k < 40; k++) send(0x0a000100 + k, 0xcb007100 + ((i * 40 + k) % 250), 1000 + i, t + 1000 + k);
      det.tick(t + 30e6);
      most = Math.max(most, det.tracked);
    }
    assert.ok(most <= 50, `${most} pairs held`);
    assert.deepEqual([...new Set(found.map((a) => `${a.kind} ${a.source} -> ${a.targetIp}:${a.targetPort}`))], ['BEACON 10.0.0.1 -> 198.51.100.1:443']);
  });
});
