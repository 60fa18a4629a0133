// What the three flood detectors (syn-flood.ts, udp-flood.ts, icmp-flood.ts) share: a bounded table
// of targets, each with its sliding one-second RateWindow and its anomaly while one lasts. A flood
// starts when the detector's own criterion holds and lasts while the rate stays at or above half
// of its threshold (hysteresis, so that a flood hovering at the threshold is one anomaly).
import type { AnomalyKind } from '../store/types.js';
import type { PacketFacts } from './facts.js';
import type { Anomaly, AnomalyEmitter, AnomalyView } from './lifecycle.js';
import type { Detector } from './types.js';
import { RateWindow, makeRoom } from './window.js';

export interface FloodTarget {
  ip: string;
  w: RateWindow;
  anomaly: Anomaly | null;
}

/** Targets with no packet for this long are forgotten (µs). */
const TARGET_IDLE_US = 10e6;

export abstract class FloodDetector<T extends FloodTarget> implements Detector {
  protected readonly targets = new Map<number, T>();

  constructor(
    private readonly maxTargets: number,
    private readonly minRate: number,
    private readonly emitter: AnomalyEmitter,
  ) {}

  abstract packet(p: PacketFacts): void;

  /** The target under `key`, made by `make` when new; undefined when the table is full of ongoing floods. */
  protected target(key: number, make: () => T): T | undefined {
    let t = this.targets.get(key);
    if (t === undefined) {
      if (!makeRoom(this.targets, this.maxTargets, (v) => v.anomaly !== null)) return undefined;
      t = make();
      this.targets.set(key, t);
    }
    return t;
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
    if (t.anomaly === null) return rate;
    if (rate >= this.minRate / 2) t.anomaly.touch(p.ts, p.bytes);
    return -1;
  }

  protected startFlood(t: T, kind: AnomalyKind, source: string, targetPort: number, now: number, view: () => AnomalyView): void {
    const w = t.w;
    t.anomaly = this.emitter.start({
      kind,
      source,
      targetIp: t.ip,
      targetPort,
      startedAt: w.surgeStart(this.minRate / 4),
      now,
      packets: w.packets(),
      bytes: w.bytes(),
      view,
      onEnd: () => {
        t.anomaly = null;
      },
    });
  }

  tick(now: number): void {
    for (const [k, t] of this.targets) {
      if (t.anomaly === null && now - t.w.lastTs > TARGET_IDLE_US) this.targets.delete(k);
    }
  }

  reset(): void {
    this.targets.clear();
  }
}

/** "from 10.0.0.1" or "from about 3000 sources". */
export function fromWhom(source: string, w: RateWindow): string {
  return source === 'distributed' ? `from about ${w.distinctSources()} sources` : `from ${source}`;
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
