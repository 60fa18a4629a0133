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
import { growFloat64, growInt32 } from '../flow/open-index.js';
import type { ScanConfig } from './config.js';
import { key3, type PacketFacts } from './facts.js';
import type { Anomaly, AnomalyEmitter } from './lifecycle.js';
import { EvidenceFlows, RecentFlows } from './evidence.js';
import { FirstContacts } from './first-contacts.js';
import { LruSlots } from './lru-slots.js';
import type { Severity } from '../store/types.js';
import { TrwThresholds, TrwWalks } from './trw.js';
import { PROBE_ECHO, PROBE_NAMES, type Attempt, type Detector } from './types.js';

/** Distinct ports remembered per pair (beyond it, a port's repeated attempts count again). */
const MAX_PORTS = 8192;
const MAX_OPEN_LISTED = 20;
const SWEEP_EVERY_US = 30e6;
const INITIAL_PAIRS = 1024;

/**
 * Per (source, target) pair, in slots of an LruSlots table (most recently probed last, so the idle
 * sweep and eviction find the stale pairs at its head): the random walk's log-likelihood ratio, and
 * what the evidence reports. Distinct ports: the first in a number, a Set from the second (most
 * pairs of ordinary traffic only ever see one).
 */
export class PortScanDetector implements Detector {
  private readonly table = new LruSlots(INITIAL_PAIRS, (n) => this.grow(n));
  private srcKey = new Float64Array(0);
  private dstKey = new Float64Array(0);
  private lastTs = new Float64Array(0);
  private probes = new Float64Array(0);
  private bytes = new Float64Array(0);
  /** Failed attempts by probe type (PROBE_*), four per slot. */
  private byProbe = new Int32Array(0);
  /** Distinct ports with an outcome. */
  private readonly ports = new FirstContacts(MAX_PORTS);
  /** Open ports answered, for the evidence. */
  private open: (number[] | null)[] = [];
  /** IPv6 only: the addresses' text (IPv4 text comes from the keys when needed). */
  private source6: string[] = [];
  private target6: string[] = [];
  private anomaly: (Anomaly | null)[] = [];
  /** The flows of the anomaly's evidence (its first contacts), while one is on. */
  private flows: (EvidenceFlows | null)[] = [];
  /** First contacts of pairs without an anomaly, for the one that starts (evidence.ts). */
  private readonly recent = new RecentFlows();
  private readonly walks: TrwWalks;
  private readonly idleUs: number;
  private nextSweep = 0;
  /** A pair in an anomaly is never dropped. */
  private readonly keep = (s: number): boolean => this.anomaly[s] !== null;
  private readonly dropSlot = (s: number): void => this.drop(s);

  constructor(
    private readonly cfg: ScanConfig,
    private readonly emitter: AnomalyEmitter,
  ) {
    this.walks = new TrwWalks(new TrwThresholds(cfg));
    this.idleUs = cfg.idleSec * 1e6;
    this.grow(this.table.capacity);
  }

  packet(): void {
    // Everything this detector needs comes as attempts and outcomes.
  }

  attempt(a: Attempt, p: PacketFacts): void {
    if (a.probe >= PROBE_ECHO) return; // echo and neighbour probes (ARP, ND) have no port
    const key = key3(a.srcKey, a.dstKey, 1);
    let s = this.table.get(key);
    if (s < 0) {
      if (!this.table.makeRoom(this.cfg.maxTracked, this.keep, this.dropSlot)) return;
      s = this.table.insert(key);
      const v4 = p.pkt.ipVersion === 4;
      this.srcKey[s] = a.srcKey;
      this.dstKey[s] = a.dstKey;
      this.source6[s] = v4 ? '' : p.srcIp();
      this.target6[s] = v4 ? '' : p.dstIp();
      this.walks.start(s);
      this.probes[s] = 0;
      this.bytes[s] = 0;
      this.byProbe.fill(0, s * 4, s * 4 + 4);
      this.ports.clear(s);
      this.open[s] = null;
      this.anomaly[s] = null;
      this.flows[s] = null;
    } else this.table.touch(s);
    this.lastTs[s] = a.ts;
    this.probes[s]++;
    this.bytes[s] += a.bytes;
    this.anomaly[s]?.touch(a.ts, a.bytes);
  }

  outcome(a: Attempt, success: boolean, now: number): void {
    if (a.probe >= PROBE_ECHO) return;
    const key = key3(a.srcKey, a.dstKey, 1);
    const s = this.table.get(key);
    if (s < 0) return;
    if (!this.ports.add(s, (a.proto << 16) | a.port)) return; // not a first contact
    // Each first contact is one flow of the evidence (the anomaly's, or the walk's so far).
    const flows = this.flows[s];
    if (flows !== null) flows.add(a.flowHi, a.flowLo);
    else this.recent.add(key, a.ts, a.flowHi, a.flowLo);
    if (success) {
      const open = (this.open[s] ??= []);
      if (open.length < MAX_OPEN_LISTED) open.push(a.port);
    } else this.byProbe[s * 4 + a.probe]++;
    this.walks.observe(s, success, a.ts);
    const anomaly = this.anomaly[s];
    if (anomaly !== null) {
      if (!success) anomaly.alive(now);
    } else if (this.walks.crossed(s)) this.start(s, key, now);
  }

  private drop(s: number): void {
    this.table.remove(s);
    this.ports.clear(s);
    this.open[s] = null;
    this.source6[s] = this.target6[s] = '';
  }

  private start(s: number, key: number, now: number): void {
    const cfg = this.cfg;
    const walks = this.walks;
    // The walk's first contacts since its start (its first failure).
    const flows = new EvidenceFlows();
    this.recent.take(key, walks.walkStart[s], flows);
    this.flows[s] = flows;
    const source = this.source6[s] || ipv4ToString(this.srcKey[s]);
    const target = this.target6[s] || ipv4ToString(this.dstKey[s]);
    // The slot holds this pair until the anomaly ends: neither eviction nor the sweep drops a
    // pair in an anomaly.
    this.anomaly[s] = this.emitter.start({
      kind: 'PORT_SCAN',
      source,
      targetIp: target,
      targetPort: 0,
      startedAt: walks.walkStart[s],
      now,
      packets: this.probes[s],
      bytes: this.bytes[s],
      flows,
      view: () => {
        const ports = this.ports.size(s);
        const probes: Record<string, number> = {};
        for (let i = 0; i < 4; i++) {
          const n = this.byProbe[s * 4 + i];
          if (n > 0) probes[PROBE_NAMES[i]] = n;
        }
        const kinds = Object.keys(probes).join(', ');
        const failures = walks.failures[s];
        const successes = walks.successes[s];
        return {
          severity: scanSeverity(ports),
          evidence: {
            distinctPorts: ports,
            failures,
            successes,
            openPorts: this.open[s] ?? [],
            probes,
            logLikelihoodRatio: walks.logRatio(s),
            // On the same (log) scale as the ratio: ln(β/α), which the walk crossed. The ratio itself
            // (β/α, e.g. 99,000) beside a log ratio (e.g. 1,378) read as 'below the threshold'.
            logLikelihoodThreshold: Math.round(walks.t.upper * 100) / 100,
            theta0: cfg.theta0,
            theta1: cfg.theta1,
            alpha: cfg.alpha,
            beta: cfg.beta,
          },
          summary: `${source} scanned ${ports} ports of ${target} (${kinds} probes): ${failures} failed, ${successes} answered.`,
        };
      },
      onEnd: () => {
        this.anomaly[s] = null;
        this.flows[s] = null;
        walks.restart(s);
      },
    });
  }

  tick(now: number): void {
    // Walks idle for minutes are swept out now and then, not on every tick.
    if (now < this.nextSweep) return;
    this.nextSweep = now + SWEEP_EVERY_US;
    // In order of last probe: stop at the first pair still active (a pair in an anomaly is kept).
    this.table.sweep((s) => now - this.lastTs[s] > this.idleUs, this.keep, this.dropSlot);
  }

  reset(): void {
    this.nextSweep = 0;
    this.table.clear();
    this.ports.clearAll();
    this.open.fill(null);
    this.anomaly.fill(null);
    this.flows.fill(null);
    this.recent.clear();
  }

  private grow(n: number): void {
    const had = this.anomaly.length;
    this.srcKey = growFloat64(this.srcKey, n);
    this.dstKey = growFloat64(this.dstKey, n);
    this.lastTs = growFloat64(this.lastTs, n);
    this.probes = growFloat64(this.probes, n);
    this.bytes = growFloat64(this.bytes, n);
    this.byProbe = growInt32(this.byProbe, n * 4);
    this.walks.grow(n);
    this.ports.grow(n);
    for (let s = had; s < n; s++) {
      this.open.push(null);
      this.source6.push('');
      this.target6.push('');
      this.anomaly.push(null);
      this.flows.push(null);
    }
  }
}

function scanSeverity(ports: number): Severity {
  if (ports >= 1000) return 'high';
  if (ports >= 100) return 'medium';
  return 'low';
}
