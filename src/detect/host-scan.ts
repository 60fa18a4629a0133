// Horizontal scan and host sweep: one source probing one port (TCP or UDP), or ICMP echo, across
// many hosts.
//
// Per (source, probe class) where the class is the transport and port, or ICMP echo: a Threshold
// Random Walk (trw.ts) over first contacts to distinct hosts, as in Jung et al. 2004: a host that
// exists and serves the port answers, an address with nobody behind it stays silent or draws an
// ICMP unreachable. A walk flags at η1 once it has contacted `minHosts` distinct hosts. A source
// gets one anomaly while it lasts, whatever number of classes it sweeps with (nmap -sn sends ICMP
// echo and TCP SYN to 443 to each host); its target is the smallest prefix covering the hosts
// probed (IPv4), or the first host probed (IPv6).
import { IPPROTO_ICMP, IPPROTO_ICMPV6 } from '../decode/ip.js';
import type { Severity } from '../store/types.js';
import type { DetectConfig } from './config.js';
import { key3, type PacketFacts } from './facts.js';
import type { Anomaly, AnomalyEmitter } from './lifecycle.js';
import { TRW_BENIGN, TrwThresholds, TrwWalk } from './trw.js';
import { type Attempt, type Detector } from './types.js';
import { makeRoom } from './window.js';
import { ipv4ToString } from '../flow/address.js';

const MAX_HOSTS = 65_536;
const MAX_CLASSES_LISTED = 8;
const SWEEP_EVERY_US = 30e6;

interface Walk {
  srcKey: number;
  /** IPv6 only: the source's text (IPv4 text comes from its key when needed, to spare an allocation per walk). */
  source6: string;
  proto: number;
  port: number;
  walk: TrwWalk;
  walkStart: number;
  lastTs: number;
  /** Distinct hosts whose first contact was observed; made at the first outcome. */
  hosts: Set<number> | null;
  failures: number;
  successes: number;
  /** Probe packets and their bytes. */
  probes: number;
  bytes: number;
  /** IPv4 targets: lowest and highest address probed; IPv6: the first target. */
  v4: boolean;
  lo: number;
  hi: number;
  firstTarget: string;
}

/** One anomaly per source, over all its classes. */
interface SourceScan {
  anomaly: Anomaly;
  walks: Set<Walk>;
}

export class HostScanDetector implements Detector {
  private readonly walks = new Map<number, Walk>();
  private readonly sources = new Map<number, SourceScan>();
  private readonly trw: TrwThresholds;
  private readonly idleUs: number;
  private nextSweep = 0;

  constructor(
    private readonly cfg: DetectConfig['hostScan'],
    private readonly emitter: AnomalyEmitter,
  ) {
    this.trw = new TrwThresholds(cfg);
    this.idleUs = cfg.idleSec * 1e6;
  }

  packet(): void {
    // Everything this detector needs comes as attempts and outcomes.
  }

  attempt(a: Attempt, p: PacketFacts): void {
    const cls = (a.proto << 16) | a.port;
    const key = key3(a.srcKey, cls, 2);
    let w = this.walks.get(key);
    if (w === undefined) {
      if (!makeRoom(this.walks, this.cfg.maxTracked, (v) => this.sources.has(v.srcKey))) return;
      const v4 = p.pkt.ipVersion === 4;
      w = {
        srcKey: a.srcKey,
        source6: v4 ? '' : p.srcIp(),
        proto: a.proto,
        port: a.port,
        walk: new TrwWalk(),
        walkStart: Infinity,
        lastTs: a.ts,
        hosts: null,
        failures: 0,
        successes: 0,
        probes: 0,
        bytes: 0,
        v4,
        lo: v4 ? a.dstKey : 0,
        hi: v4 ? a.dstKey : 0,
        firstTarget: v4 ? '' : p.dstIp(),
      };
      this.walks.set(key, w);
    } else {
      // Most recently probed last (see port-scan.ts).
      this.walks.delete(key);
      this.walks.set(key, w);
    }
    w.lastTs = a.ts;
    w.probes++;
    w.bytes += a.bytes;
    if (w.v4) {
      if (a.dstKey < w.lo) w.lo = a.dstKey;
      if (a.dstKey > w.hi) w.hi = a.dstKey;
    }
    this.sources.get(a.srcKey)?.anomaly.touch(a.ts, a.bytes);
  }

  outcome(a: Attempt, success: boolean, now: number): void {
    const w = this.walks.get(key3(a.srcKey, (a.proto << 16) | a.port, 2));
    if (w === undefined) return;
    const hosts = (w.hosts ??= new Set());
    if (hosts.has(a.dstKey)) return; // not a first contact
    if (hosts.size < MAX_HOSTS) hosts.add(a.dstKey);
    if (success) w.successes++;
    else w.failures++;
    // A sweep starts with its first unanswered probe (see port-scan.ts).
    if (!success && a.ts < w.walkStart) w.walkStart = a.ts;
    if (w.walk.observe(this.trw, success) === TRW_BENIGN) w.walkStart = Infinity;
    const crossed = w.walk.llr >= this.trw.upper && hosts.size >= this.cfg.minHosts;
    const scan = this.sources.get(a.srcKey);
    if (scan !== undefined) {
      // Another class of the same source crossing joins its anomaly (nmap -sn: echo and tcp/443).
      if (crossed) scan.walks.add(w);
      if (!success) scan.anomaly.alive(now);
    } else if (crossed) this.start(w, now);
  }

  private start(w: Walk, now: number): void {
    const cfg = this.cfg;
    const trw = this.trw;
    const walks = new Set<Walk>([w]);
    const target = w.v4 ? coveringPrefix(w.lo, w.hi) : w.firstTarget;
    const source = w.v4 ? ipv4ToString(w.srcKey) : w.source6;
    const icmp = w.proto === IPPROTO_ICMP || w.proto === IPPROTO_ICMPV6;
    const anomaly = this.emitter.start({
      kind: 'HOST_SCAN',
      source,
      targetIp: target,
      targetPort: icmp ? 0 : w.port,
      startedAt: w.walkStart,
      now,
      packets: w.probes,
      bytes: w.bytes,
      view: () => {
        let hosts = 0;
        let failures = 0;
        let successes = 0;
        const classes: string[] = [];
        for (const x of walks) {
          hosts = Math.max(hosts, x.hosts?.size ?? 0);
          failures += x.failures;
          successes += x.successes;
          if (classes.length < MAX_CLASSES_LISTED) classes.push(className(x));
        }
        return {
          severity: sweepSeverity(hosts),
          evidence: {
            distinctHosts: hosts,
            failures,
            successes,
            probes: classes,
            logLikelihoodRatio: w.walk.logRatio(),
            threshold: Math.round(Math.exp(trw.upper)),
            theta0: cfg.theta0,
            theta1: cfg.theta1,
            alpha: cfg.alpha,
            beta: cfg.beta,
          },
          summary: `${source} ${icmp && walks.size === 1 ? 'ping-swept' : 'scanned'} ${hosts} hosts of ${target} (${classes.join(', ')}): ${successes} answered, ${failures} did not.`,
        };
      },
      onEnd: () => {
        this.sources.delete(w.srcKey);
        for (const x of walks) {
          x.walk.restart();
          x.walkStart = Infinity;
        }
      },
    });
    this.sources.set(w.srcKey, { anomaly, walks });
  }

  tick(now: number): void {
    // Walks idle for minutes are swept out now and then, not on every tick.
    if (now < this.nextSweep) return;
    this.nextSweep = now + SWEEP_EVERY_US;
    for (const [k, w] of this.walks) {
      if (now - w.lastTs <= this.idleUs) break;
      if (!this.sources.has(w.srcKey)) this.walks.delete(k);
    }
  }

  reset(): void {
    this.nextSweep = 0;
    this.walks.clear();
    this.sources.clear();
  }
}

function className(w: Walk): string {
  if (w.proto === IPPROTO_ICMP || w.proto === IPPROTO_ICMPV6) return 'icmp-echo';
  return `${w.proto === 6 ? 'tcp' : w.proto === 17 ? 'udp' : `ip-${w.proto}`}/${w.port}`;
}

/** Smallest IPv4 prefix holding both addresses, as a.b.c.d/len. */
export function coveringPrefix(lo: number, hi: number): string {
  const diff = (lo ^ hi) >>> 0;
  const len = diff === 0 ? 32 : Math.clz32(diff);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return `${ipv4ToString((lo & mask) >>> 0)}/${len}`;
}

function sweepSeverity(hosts: number): Severity {
  if (hosts >= 1000) return 'high';
  if (hosts >= 50) return 'medium';
  return 'low';
}
