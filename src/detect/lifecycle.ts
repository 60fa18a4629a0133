// The lifecycle every detector's anomalies share: started (emitted at once), updated while it
// lasts (at most every `updateSec` of packet time, and only when something changed), ended after
// `quietSec` without a packet that still meets the detector's criterion, or at the end of input.
// Each emission is a full AnomalyRecord with the same anomalyId, which the stores upsert.
import { createHash } from 'node:crypto';
import type { AnomalyKind, AnomalyRecord, Severity } from '../store/types.js';
import type { LifecycleConfig } from './config.js';
import type { EvidenceFlows } from './evidence.js';

export type LifecycleEvent = 'start' | 'update' | 'end';
export type AnomalySink = (type: LifecycleEvent, record: AnomalyRecord) => void;

const SEVERITY_RANK: Record<Severity, number> = { low: 0, medium: 1, high: 2, critical: 3 };

/** The current figures of an anomaly, asked of its detector at each emission. */
export interface AnomalyView {
  severity: Severity;
  evidence: Record<string, unknown>;
  summary: string;
}

export interface AnomalyStart {
  kind: AnomalyKind;
  source: string;
  targetIp: string;
  targetPort: number;
  startedAt: number;
  /** Time of the packet that crossed the threshold. */
  now: number;
  /** Packets and bytes already counted before the threshold was crossed. */
  packets: number;
  bytes: number;
  view: () => AnomalyView;
  /** The flows of its evidence, which the detector goes on adding to while it lasts (evidence.ts). */
  flows: EvidenceFlows;
  /** Called once the anomaly has ended, so that the detector drops its reference. */
  onEnd?: () => void;
}

/** Deterministic id: the same anomaly seen again (a re-import of the same capture) gets the same id. */
export function anomalyId(node: string, kind: string, source: string, targetIp: string, targetPort: number, startedAt: number): string {
  return createHash('sha256').update(`${node}\0${kind}\0${source}\0${targetIp}\0${targetPort}\0${startedAt}`).digest('hex').slice(0, 16);
}

export class Anomaly {
  lastSeen: number;
  packets: number;
  bytes: number;
  dirty = false;
  lastEmitted: number;
  ended = false;
  severity: Severity = 'low';

  constructor(
    readonly id: string,
    readonly start: AnomalyStart,
  ) {
    this.lastSeen = start.now;
    this.packets = start.packets;
    this.bytes = start.bytes;
    this.lastEmitted = start.now;
  }

  /** One more packet that meets the criterion. */
  touch(ts: number, bytes: number): void {
    if (ts > this.lastSeen) this.lastSeen = ts;
    this.packets++;
    this.bytes += bytes;
    this.dirty = true;
  }

  /** Still going without a packet to count (a walk step resolved on a timeout). */
  alive(ts: number): void {
    if (ts > this.lastSeen) this.lastSeen = ts;
    this.dirty = true;
  }
}

export class AnomalyEmitter {
  private readonly active = new Map<string, Anomaly>();
  private readonly quietUs: number;
  private readonly updateUs: number;

  constructor(
    cfg: LifecycleConfig,
    private readonly node: string,
    private readonly sink: AnomalySink,
  ) {
    this.quietUs = cfg.quietSec * 1e6;
    this.updateUs = cfg.updateSec * 1e6;
  }

  /** Starts an anomaly and emits it. */
  start(s: AnomalyStart): Anomaly {
    const id = anomalyId(this.node, s.kind, s.source, s.targetIp, s.targetPort, s.startedAt);
    const a = new Anomaly(id, s);
    this.active.set(id, a);
    this.emit('start', a);
    return a;
  }

  get size(): number {
    return this.active.size;
  }

  /** Ends quiet anomalies and emits due updates, as of `now` (packet time). */
  tick(now: number): void {
    for (const a of this.active.values()) {
      if (now - a.lastSeen >= this.quietUs) this.end(a);
      else if (a.dirty && now - a.lastEmitted >= this.updateUs) {
        a.lastEmitted = now;
        this.emit('update', a);
      }
    }
  }

  /** Ends every anomaly (end of input, or the clock jumped back to another capture). */
  endAll(): void {
    for (const a of this.active.values()) this.end(a);
  }

  private end(a: Anomaly): void {
    a.ended = true;
    this.active.delete(a.id);
    this.emit('end', a);
    a.start.onEnd?.();
  }

  private emit(type: LifecycleEvent, a: Anomaly): void {
    const s = a.start;
    const view = s.view();
    // Severity only rises while an anomaly lasts: its peak is what an operator needs to see.
    if (SEVERITY_RANK[view.severity] > SEVERITY_RANK[a.severity]) a.severity = view.severity;
    a.dirty = false;
    this.sink(type, {
      ts: s.startedAt,
      anomalyId: a.id,
      node: this.node,
      kind: s.kind,
      severity: a.severity,
      source: s.source,
      targetIp: s.targetIp,
      targetPort: s.targetPort,
      startedAt: s.startedAt,
      lastSeen: a.lastSeen,
      state: a.ended ? 'ended' : 'active',
      packets: a.packets,
      bytes: a.bytes,
      evidence: JSON.stringify(view.evidence),
      summary: view.summary,
      evidenceFlows: s.flows.toString(),
    });
  }
}

/** Severity from how far a rate exceeds its threshold. */
export function severityFromRatio(ratio: number): Severity {
  if (ratio >= 50) return 'critical';
  if (ratio >= 10) return 'high';
  if (ratio >= 2) return 'medium';
  return 'low';
}
