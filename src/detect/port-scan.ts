// Vertical port scan: one source probing many ports of one host, with TCP SYN or connect() probes,
// FIN/NULL/Xmas probes, or UDP datagrams, fast or spread over minutes.
//
// Per (source, target) pair, a Threshold Random Walk (trw.ts) over first contacts to distinct
// ports: each port's first attempt adds its outcome (an open port answers, a closed one resets or
// sends ICMP port unreachable, a filtered one stays silent; a FIN/NULL/Xmas probe never gets a
// SYN-ACK, so it always fails). The walk has no window, so a slow scan crosses η1 as a fast one
// does; it is forgotten only after `idleSec` without an attempt. Defaults in config.ts (θ0 = 0.8,
// θ1 = 0.2, α = 1e-5, β = 0.99: 9 failures net of successes).
import { ipv4ToString } from '../flow/address.js';
import type { ScanConfig } from './config.js';
import { key3, type PacketFacts } from './facts.js';
import type { Anomaly, AnomalyEmitter } from './lifecycle.js';
import type { Severity } from '../store/types.js';
import { TRW_BENIGN, TrwThresholds, TrwWalk } from './trw.js';
import { PROBE_ECHO, PROBE_NAMES, type Attempt, type Detector } from './types.js';
import { makeRoom } from './window.js';

/** Distinct ports remembered per pair (beyond it, a port's repeated attempts count again). */
const MAX_PORTS = 8192;
const MAX_OPEN_LISTED = 20;
const SWEEP_EVERY_US = 30e6;

interface Pair {
  srcKey: number;
  dstKey: number;
  /** IPv6 only: the addresses' text (IPv4 text comes from the keys when needed, to spare allocations per pair). */
  source6: string;
  target6: string;
  walk: TrwWalk;
  /** Earliest failed attempt observed by the current walk (µs): a scan starts with its first unanswered probe, not with the ordinary connections before it. */
  walkStart: number;
  lastTs: number;
  /** Distinct ports whose first contact was observed; made at the first outcome. */
  ports: Set<number> | null;
  failures: number;
  successes: number;
  open: number[];
  probes: number;
  bytes: number;
  /** Failed attempts by probe type (PROBE_*). */
  byProbe: number[];
  anomaly: Anomaly | null;
}

export class PortScanDetector implements Detector {
  private readonly pairs = new Map<number, Pair>();
  private readonly trw: TrwThresholds;
  private readonly idleUs: number;
  private nextSweep = 0;

  constructor(
    private readonly cfg: ScanConfig,
    private readonly emitter: AnomalyEmitter,
  ) {
    this.trw = new TrwThresholds(cfg);
    this.idleUs = cfg.idleSec * 1e6;
  }

  packet(): void {
    // Everything this detector needs comes as attempts and outcomes.
  }

  attempt(a: Attempt, p: PacketFacts): void {
    if (a.probe === PROBE_ECHO) return; // no port
    const key = key3(a.srcKey, a.dstKey, 1);
    let pair = this.pairs.get(key);
    if (pair === undefined) {
      if (!makeRoom(this.pairs, this.cfg.maxTracked, (v) => v.anomaly !== null)) return;
      const v4 = p.pkt.ipVersion === 4;
      pair = {
        srcKey: a.srcKey,
        dstKey: a.dstKey,
        source6: v4 ? '' : p.srcIp(),
        target6: v4 ? '' : p.dstIp(),
        walk: new TrwWalk(),
        walkStart: Infinity,
        lastTs: a.ts,
        ports: null,
        failures: 0,
        successes: 0,
        open: [],
        probes: 0,
        bytes: 0,
        byProbe: [0, 0, 0, 0],
        anomaly: null,
      };
      this.pairs.set(key, pair);
    } else {
      // Most recently probed last: the map stays in order of lastTs, so the idle sweep and
      // makeRoom find the stale pairs at its head.
      this.pairs.delete(key);
      this.pairs.set(key, pair);
    }
    pair.lastTs = a.ts;
    pair.probes++;
    pair.bytes += a.bytes;
    pair.anomaly?.touch(a.ts, a.bytes);
  }

  outcome(a: Attempt, success: boolean, now: number): void {
    if (a.probe === PROBE_ECHO) return;
    const pair = this.pairs.get(key3(a.srcKey, a.dstKey, 1));
    if (pair === undefined) return;
    const port = (a.proto << 16) | a.port;
    const ports = (pair.ports ??= new Set());
    if (ports.has(port)) return; // not a first contact
    if (ports.size < MAX_PORTS) ports.add(port);
    if (success) {
      pair.successes++;
      if (pair.open.length < MAX_OPEN_LISTED) pair.open.push(a.port);
    } else {
      pair.failures++;
      pair.byProbe[a.probe]++;
      if (a.ts < pair.walkStart) pair.walkStart = a.ts;
    }
    if (pair.walk.observe(this.trw, success) === TRW_BENIGN) pair.walkStart = Infinity;
    if (pair.anomaly !== null) {
      if (!success) pair.anomaly.alive(now);
    } else if (pair.walk.llr >= this.trw.upper) this.start(pair, now);
  }

  private start(pair: Pair, now: number): void {
    const cfg = this.cfg;
    const trw = this.trw;
    const source = pair.source6 || ipv4ToString(pair.srcKey);
    const target = pair.target6 || ipv4ToString(pair.dstKey);
    pair.anomaly = this.emitter.start({
      kind: 'PORT_SCAN',
      source,
      targetIp: target,
      targetPort: 0,
      startedAt: pair.walkStart,
      now,
      packets: pair.probes,
      bytes: pair.bytes,
      view: () => {
        const ports = pair.ports?.size ?? 0;
        const probes: Record<string, number> = {};
        pair.byProbe.forEach((n, i) => {
          if (n > 0) probes[PROBE_NAMES[i]] = n;
        });
        const kinds = Object.keys(probes).join(', ');
        return {
          severity: scanSeverity(ports),
          evidence: {
            distinctPorts: ports,
            failures: pair.failures,
            successes: pair.successes,
            openPorts: pair.open,
            probes,
            logLikelihoodRatio: pair.walk.logRatio(),
            threshold: Math.round(Math.exp(trw.upper)),
            theta0: cfg.theta0,
            theta1: cfg.theta1,
            alpha: cfg.alpha,
            beta: cfg.beta,
          },
          summary: `${source} scanned ${ports} ports of ${target} (${kinds} probes): ${pair.failures} failed, ${pair.successes} answered.`,
        };
      },
      onEnd: () => {
        pair.anomaly = null;
        pair.walk.restart();
        pair.walkStart = Infinity;
      },
    });
  }

  tick(now: number): void {
    // Walks idle for minutes are swept out now and then, not on every tick.
    if (now < this.nextSweep) return;
    this.nextSweep = now + SWEEP_EVERY_US;
    // In order of last probe: stop at the first pair still active (a pair in an anomaly is kept).
    for (const [k, pair] of this.pairs) {
      if (now - pair.lastTs <= this.idleUs) break;
      if (pair.anomaly === null) this.pairs.delete(k);
    }
  }

  reset(): void {
    this.nextSweep = 0;
    this.pairs.clear();
  }
}

function scanSeverity(ports: number): Severity {
  if (ports >= 1000) return 'high';
  if (ports >= 100) return 'medium';
  return 'low';
}
