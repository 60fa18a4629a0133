// What the three flood detectors (syn-flood.ts, udp-flood.ts, icmp-flood.ts) share: a bounded table
// of targets, each with its sliding one-second RateWindow and its anomaly while one lasts. A flood
// starts when the detector's own criterion holds and lasts while the rate stays at or above half
// of its threshold (hysteresis, so that a flood hovering at the threshold is one anomaly).
import { finish, mix } from '../flow/hash.js';
import type { AnomalyKind } from '../store/types.js';
import type { PacketFacts } from './facts.js';
import type { Anomaly, AnomalyEmitter, AnomalyView } from './lifecycle.js';
import type { Detector } from './types.js';
import { type RateWindow, makeRoom } from './window.js';
import { EvidenceFlows, RecentFlows } from './evidence.js';

export interface FloodTarget {
  ip: string;
  /** The target's key in the table (RecentFlows' key). */
  key: number;
  w: RateWindow;
  anomaly: Anomaly | null;
  /** The flows of the anomaly's evidence while one is on. */
  flows: EvidenceFlows | null;
}

/** Targets with no packet for this long are forgotten (µs). */
const TARGET_IDLE_US = 10e6;
const SWEEP_EVERY_US = 5e6;
/** Buckets of the admission sketch. */
const SKETCH = 4096;

const isOngoing = (t: FloodTarget) => t.anomaly !== null;

export abstract class FloodDetector<T extends FloodTarget> implements Detector {
  protected readonly targets = new Map<number, T>();
  private nextSweep = 0;
  /**
   * Admission: packets per target in the current second, counted in a small hashed array. A target
   * gets a table entry (and its RateWindow) only once it has drawn an eighth of the threshold in
   * one second, so ordinary traffic to thousands of hosts costs no allocation at all; a surge
   * loses at most its first eighth of a second to it.
   */
  private readonly sketch = new Uint16Array(SKETCH);
  private sketchSec = -1;
  private readonly admitAt: number;
  /** The flows of the packets counted towards targets without a flood, for the one that starts. */
  private readonly recent = new RecentFlows();

  constructor(
    private readonly maxTargets: number,
    private readonly minRate: number,
    private readonly emitter: AnomalyEmitter,
  ) {
    this.admitAt = Math.max(1, Math.floor(minRate / 8));
  }

  abstract packet(p: PacketFacts): void;

  /** A new target for the packet's destination. */
  protected abstract newTarget(p: PacketFacts): T;

  /**
   * The target under `key` for packet `p`, made by newTarget() when new; undefined when not yet
   * admitted or when the table is full of ongoing floods. (No closure argument: this runs for
   * every SYN, UDP datagram and ICMP query, and a closure per call was an allocation each.)
   */
  protected target(key: number, p: PacketFacts): T | undefined {
    let t = this.targets.get(key);
    if (t === undefined) {
      if (!this.admit(key, p.ts)) {
        // Not counted yet, but a surge's first packets: its evidence if it becomes a flood.
        this.recent.add(key, p.ts, p.flowHi, p.flowLo);
        return undefined;
      }
      if (!makeRoom(this.targets, this.maxTargets, isOngoing)) return undefined;
      t = this.newTarget(p);
      t.key = key;
      this.targets.set(key, t);
    }
    return t;
  }

  private admit(key: number, ts: number): boolean {
    const sec = Math.floor(ts / 1e6);
    if (sec !== this.sketchSec) {
      this.sketch.fill(0);
      this.sketchSec = sec;
    }
    const i = finish(mix(key % 4294967296, Math.floor(key / 4294967296))) & (SKETCH - 1);
    const c = this.sketch[i] + 1;
    if (c < 65535) this.sketch[i] = c;
    return c >= this.admitAt;
  }

  /**
   * Counts a packet towards `t`. Returns the current rate when no flood is on (for the caller to
   * test its criterion), or -1 when the packet went to the ongoing flood.
   */
  protected count(t: T, p: PacketFacts): number {
    const w = t.w;
    w.add(p);
    const rate = w.rate(p.ts);
    if (rate > w.peak) w.peak = rate;
    if (t.anomaly === null) {
      this.recent.add(t.key, p.ts, p.flowHi, p.flowLo);
      return rate;
    }
    if (rate >= this.minRate / 2) {
      t.anomaly.touch(p.ts, p.bytes);
      (t.flows as EvidenceFlows).add(p.flowHi, p.flowLo);
    }
    return -1;
  }

  protected startFlood(t: T, kind: AnomalyKind, source: string, targetPort: number, now: number, view: () => AnomalyView): void {
    const w = t.w;
    const startedAt = w.surgeStart(this.minRate / 4);
    // The flows of the surge so far: the packets counted since it began, and those of its second
    // before the target was admitted (see admit()).
    const flows = new EvidenceFlows();
    this.recent.take(t.key, Math.floor(startedAt / 1e6) * 1e6, flows);
    t.flows = flows;
    t.anomaly = this.emitter.start({
      kind,
      source,
      targetIp: t.ip,
      targetPort,
      startedAt,
      now,
      packets: w.packets(),
      bytes: w.bytes(),
      view,
      flows,
      onEnd: () => {
        t.anomaly = null;
        t.flows = null;
      },
    });
  }

  tick(now: number): void {
    // The table is swept for idle targets every few seconds, not on every tick.
    if (now < this.nextSweep) return;
    this.nextSweep = now + SWEEP_EVERY_US;
    for (const [k, t] of this.targets) {
      if (t.anomaly === null && now - t.w.lastTs > TARGET_IDLE_US) this.targets.delete(k);
    }
  }

  reset(): void {
    this.nextSweep = 0;
    this.targets.clear();
    this.recent.clear();
  }
}

/** "from 10.0.0.1" or "from about 3000 sources". */
export function fromWhom(source: string, distinctSources: number): string {
  return source === 'distributed' ? `from about ${distinctSources} sources` : `from ${source}`;
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
