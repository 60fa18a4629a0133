// Horizontal scan and host sweep: one source probing one port (TCP or UDP), or ICMP echo, across
// many hosts.
//
// Per (source, probe class) where the class is the transport and port, or ICMP echo: a Threshold
// Random Walk (trw.ts) over first contacts to distinct hosts, as in Jung et al. 2004: a host that
// exists and serves the port answers, an address with nobody behind it stays silent or draws an
// ICMP unreachable. A walk flags at η1 once it has contacted `minHosts` distinct hosts. A source
// gets one anomaly while it lasts, whatever number of classes it sweeps with (nmap -sn sends ICMP
// echo and TCP SYN to 443 to each host); its target is the smallest prefix covering the hosts
// probed (IPv4), or the first host probed (IPv6). Neighbour probes (ARP requests, IPv6 neighbour
// solicitations: attempts.ts) are classes of their own: `nmap -sn` on its own subnet sends only
// those.
import { IPPROTO_ICMP, IPPROTO_ICMPV6 } from '../decode/ip.js';
import { growFloat64, growInt32, growUint8 } from '../flow/open-index.js';
import type { Severity } from '../store/types.js';
import type { DetectConfig } from './config.js';
import { key3, type PacketFacts } from './facts.js';
import { EvidenceFlows, RecentFlows } from './evidence.js';
import { FirstContacts } from './first-contacts.js';
import type { Anomaly, AnomalyEmitter } from './lifecycle.js';
import { LruSlots } from './lru-slots.js';
import { TrwThresholds, TrwWalks } from './trw.js';
import { PROTO_ARP, PROTO_ND, type Attempt, type Detector } from './types.js';
import { ipv4ToString } from '../flow/address.js';

const MAX_HOSTS = 65_536;
const MAX_CLASSES_LISTED = 8;
const SWEEP_EVERY_US = 30e6;
const INITIAL_WALKS = 1024;

/** One anomaly per source, over all its classes: the slots of the walks that crossed. */
interface SourceScan {
  anomaly: Anomaly;
  walks: Set<number>;
  /** The first contacts of those walks since each started (evidence.ts). */
  flows: EvidenceFlows;
}

/**
 * Per (source, probe class) walk, in slots of an LruSlots table (most recently probed last, see
 * port-scan.ts): the random walk's log-likelihood ratio and what the evidence reports.
 */
export class HostScanDetector implements Detector {
  private readonly table = new LruSlots(INITIAL_WALKS, (n) => this.grow(n));
  private srcKey = new Float64Array(0);
  private proto = new Int32Array(0);
  private port = new Int32Array(0);
  private lastTs = new Float64Array(0);
  /** Probe packets and their bytes. */
  private probes = new Float64Array(0);
  private bytes = new Float64Array(0);
  /** IPv4 targets: lowest and highest address probed; IPv6: the first target. */
  private v4 = new Uint8Array(0);
  private lo = new Float64Array(0);
  private hi = new Float64Array(0);
  /** Distinct hosts with an outcome. */
  private readonly hosts = new FirstContacts(MAX_HOSTS);
  /** IPv6 only: the source's and first target's text (IPv4 text comes from the keys when needed). */
  private source6: string[] = [];
  private firstTarget6: string[] = [];
  private readonly sources = new Map<number, SourceScan>();
  /** First contacts of walks in no anomaly, for the one that starts or that they join. */
  private readonly recent = new RecentFlows();
  private readonly walks: TrwWalks;
  private readonly idleUs: number;
  private nextSweep = 0;
  /** A walk whose source is in an anomaly is never dropped. */
  private readonly keep = (s: number): boolean => this.sources.has(this.srcKey[s]);
  private readonly dropSlot = (s: number): void => this.drop(s);

  constructor(
    private readonly cfg: DetectConfig['hostScan'],
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
    const key = key3(a.srcKey, (a.proto << 16) | a.port, 2);
    let s = this.table.get(key);
    if (s < 0) {
      if (!this.table.makeRoom(this.cfg.maxTracked, this.keep, this.dropSlot)) return;
      s = this.table.insert(key);
      const v4 = p.pkt.ipVersion === 4;
      this.srcKey[s] = a.srcKey;
      this.source6[s] = v4 ? '' : p.srcIp();
      this.proto[s] = a.proto;
      this.port[s] = a.port;
      this.walks.start(s);
      this.probes[s] = 0;
      this.bytes[s] = 0;
      this.v4[s] = v4 ? 1 : 0;
      this.lo[s] = v4 ? a.dstKey : 0;
      this.hi[s] = v4 ? a.dstKey : 0;
      this.firstTarget6[s] = v4 ? '' : p.targetIp();
      this.hosts.clear(s);
    } else this.table.touch(s);
    this.lastTs[s] = a.ts;
    this.probes[s]++;
    this.bytes[s] += a.bytes;
    if (this.v4[s] === 1) {
      if (a.dstKey < this.lo[s]) this.lo[s] = a.dstKey;
      if (a.dstKey > this.hi[s]) this.hi[s] = a.dstKey;
    }
    if (this.sources.size > 0) this.sources.get(a.srcKey)?.anomaly.touch(a.ts, a.bytes);
  }

  outcome(a: Attempt, success: boolean, now: number): void {
    const key = key3(a.srcKey, (a.proto << 16) | a.port, 2);
    const s = this.table.get(key);
    if (s < 0) return;
    if (!this.hosts.add(s, a.dstKey)) return; // not a first contact
    this.walks.observe(s, success, a.ts);
    const crossed = this.walks.crossed(s) && this.hosts.size(s) >= this.cfg.minHosts;
    const scan = this.sources.size > 0 ? this.sources.get(a.srcKey) : undefined;
    // Each first contact is one flow of the evidence: the anomaly's when its walk is in one.
    if (scan?.walks.has(s)) scan.flows.add(a.flowHi, a.flowLo);
    else this.recent.add(key, a.ts, a.flowHi, a.flowLo);
    if (scan !== undefined) {
      // Another class of the same source crossing joins its anomaly (nmap -sn: echo and tcp/443),
      // with its first contacts since its walk started.
      if (crossed && !scan.walks.has(s)) {
        scan.walks.add(s);
        this.recent.take(key, this.walks.walkStart[s], scan.flows);
      }
      if (!success) scan.anomaly.alive(now);
    } else if (crossed) this.start(s, key, now);
  }

  private drop(s: number): void {
    this.table.remove(s);
    this.hosts.clear(s);
    this.source6[s] = this.firstTarget6[s] = '';
  }

  private start(s: number, key: number, now: number): void {
    const cfg = this.cfg;
    const state = this.walks;
    const flows = new EvidenceFlows();
    this.recent.take(key, state.walkStart[s], flows);
    const srcKey = this.srcKey[s];
    // The walks' slots stay theirs while the source's anomaly lasts: neither eviction nor the
    // sweep drops a walk of a source in an anomaly.
    const walks = new Set<number>([s]);
    const v4 = this.v4[s] === 1;
    const target = v4 ? coveringPrefix(this.lo[s], this.hi[s]) : this.firstTarget6[s];
    const source = v4 ? ipv4ToString(srcKey) : this.source6[s];
    const proto = this.proto[s];
    const icmp = proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6;
    const anomaly = this.emitter.start({
      kind: 'HOST_SCAN',
      source,
      targetIp: target,
      targetPort: icmp ? 0 : this.port[s],
      startedAt: state.walkStart[s],
      now,
      packets: this.probes[s],
      bytes: this.bytes[s],
      flows,
      view: () => {
        let hosts = 0;
        let failures = 0;
        let successes = 0;
        const classes: string[] = [];
        for (const x of walks) {
          hosts = Math.max(hosts, this.hosts.size(x));
          failures += state.failures[x];
          successes += state.successes[x];
          if (classes.length < MAX_CLASSES_LISTED) classes.push(className(this.proto[x], this.port[x]));
        }
        return {
          severity: sweepSeverity(hosts),
          evidence: {
            distinctHosts: hosts,
            failures,
            successes,
            probes: classes,
            logLikelihoodRatio: state.logRatio(s),
            // On the same (log) scale as the ratio: ln(β/α), which the walk crossed. The ratio itself
            // (β/α, e.g. 99,000) beside a log ratio (e.g. 1,378) read as 'below the threshold'.
            logLikelihoodThreshold: Math.round(state.t.upper * 100) / 100,
            theta0: cfg.theta0,
            theta1: cfg.theta1,
            alpha: cfg.alpha,
            beta: cfg.beta,
          },
          summary: `${source} ${walks.size === 1 ? sweepVerb(proto) : 'scanned'} ${hosts} hosts of ${target} (${classes.join(', ')}): ${successes} answered, ${failures} did not.`,
        };
      },
      onEnd: () => {
        this.sources.delete(srcKey);
        for (const x of walks) state.restart(x);
      },
    });
    this.sources.set(srcKey, { anomaly, walks, flows });
  }

  tick(now: number): void {
    // Walks idle for minutes are swept out now and then, not on every tick.
    if (now < this.nextSweep) return;
    this.nextSweep = now + SWEEP_EVERY_US;
    this.table.sweep((s) => now - this.lastTs[s] > this.idleUs, this.keep, this.dropSlot);
  }

  reset(): void {
    this.nextSweep = 0;
    this.table.clear();
    this.hosts.clearAll();
    this.sources.clear();
    this.recent.clear();
  }

  private grow(n: number): void {
    const had = this.source6.length;
    this.srcKey = growFloat64(this.srcKey, n);
    this.proto = growInt32(this.proto, n);
    this.port = growInt32(this.port, n);
    this.lastTs = growFloat64(this.lastTs, n);
    this.probes = growFloat64(this.probes, n);
    this.bytes = growFloat64(this.bytes, n);
    this.v4 = growUint8(this.v4, n);
    this.lo = growFloat64(this.lo, n);
    this.hi = growFloat64(this.hi, n);
    this.hosts.grow(n);
    this.walks.grow(n);
    for (let s = had; s < n; s++) {
      this.source6.push('');
      this.firstTarget6.push('');
    }
  }
}

function className(proto: number, port: number): string {
  if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) return 'icmp-echo';
  if (proto === PROTO_ARP) return 'arp';
  if (proto === PROTO_ND) return 'nd';
  return `${proto === 6 ? 'tcp' : proto === 17 ? 'udp' : `ip-${proto}`}/${port}`;
}

function sweepVerb(proto: number): string {
  if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) return 'ping-swept';
  if (proto === PROTO_ARP) return 'ARP-swept';
  if (proto === PROTO_ND) return 'neighbour-solicitation-swept';
  return 'scanned';
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
