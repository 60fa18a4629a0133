// Anomaly detection in the packet stream. The aggregator hands every IP packet to one DetectorSet
// with a few flags from its flow table (new flow, direction, first reply, handshake completed);
// the set classifies connection attempts and their outcomes once (attempts.ts), feeds the
// detectors, ticks them about once a second of packet time, and collects the anomaly records for
// the next store batch (the latest version of each) while publishing lifecycle events on the bus.
//
// Time is the packets' own clock, so an imported capture and a live interface behave alike.
import type { EventBus } from '../bus/types.js';
import type { DecodedPacket } from '../decode/packet.js';
import type { AnomalyRecord } from '../store/types.js';
import { AttemptTracker } from './attempts.js';
import { BeaconDetector } from './beacon.js';
import { resolveDetectConfig, type DetectConfig, type DetectConfigInput } from './config.js';
import { PacketFacts } from './facts.js';
import { HostScanDetector } from './host-scan.js';
import { IcmpFloodDetector } from './icmp-flood.js';
import { AnomalyEmitter, type LifecycleEvent } from './lifecycle.js';
import { PortScanDetector } from './port-scan.js';
import { SynFloodDetector } from './syn-flood.js';
import type { Detector } from './types.js';
import { UdpFloodDetector } from './udp-flood.js';

export { F_ESTABLISHED, F_FIRST_REPLY, F_FROM_CLIENT, F_NEW_FLOW, F_PEER_TO_PEER } from './facts.js';
export { DEFAULT_DETECT_CONFIG, resolveDetectConfig, type DetectConfig, type DetectConfigInput } from './config.js';

const TICK_US = 1_000_000;

export class DetectorSet {
  readonly config: DetectConfig;
  private readonly facts = new PacketFacts();
  private readonly detectors: Detector[];
  // The same detectors by class: the per-packet calls go through these, so that each call site
  // sees one class (a loop over the array is a megamorphic call, a few % of an import).
  private readonly synFlood: SynFloodDetector;
  private readonly portScan: PortScanDetector;
  private readonly hostScan: HostScanDetector;
  private readonly udpFlood: UdpFloodDetector;
  private readonly icmpFlood: IcmpFloodDetector;
  private readonly beacon: BeaconDetector;
  private readonly attempts: AttemptTracker;
  private readonly emitter: AnomalyEmitter;
  private out = new Map<string, AnomalyRecord>();
  private nextTick = -1;
  private lastTs = -1;
  /** Anomalies started so far (all kinds). */
  started = 0;

  constructor(
    input: DetectConfigInput | DetectConfig = {},
    node = '',
    private readonly bus?: EventBus,
  ) {
    const cfg = resolveDetectConfig(input as DetectConfigInput);
    this.config = cfg;
    this.emitter = new AnomalyEmitter(cfg.lifecycle, node, (type, record) => this.record(type, record));
    this.synFlood = new SynFloodDetector(cfg.synFlood, this.emitter);
    this.portScan = new PortScanDetector(cfg.portScan, this.emitter);
    this.hostScan = new HostScanDetector(cfg.hostScan, this.emitter);
    this.udpFlood = new UdpFloodDetector(cfg.udpFlood, this.emitter);
    this.icmpFlood = new IcmpFloodDetector(cfg.icmpFlood, this.emitter);
    this.beacon = new BeaconDetector(cfg.beacon, this.emitter);
    this.detectors = [this.synFlood, this.portScan, this.hostScan, this.udpFlood, this.icmpFlood, this.beacon];
    // Only the scan detectors follow attempts and their outcomes.
    this.attempts = new AttemptTracker(
      cfg.attemptTimeoutSec,
      cfg.maxPendingAttempts,
      (a, p) => {
        this.portScan.attempt(a, p);
        this.hostScan.attempt(a, p);
      },
      (a, success, now) => {
        this.portScan.outcome(a, success, now);
        this.hostScan.outcome(a, success, now);
      },
    );
  }

  /** One IP packet; `flags` are F_* bits; `flowHi`/`flowLo` its flow's id (evidence.ts). */
  packet(pkt: DecodedPacket, buf: Buffer, ts: number, bytes: number, flags: number, flowHi = 0, flowLo = 0): void {
    const p = this.facts;
    p.set(pkt, buf, ts, bytes, flags, flowHi, flowLo);
    if (ts > this.lastTs) this.lastTs = ts;
    this.attempts.packet(p);
    // The scan detectors work from attempts and outcomes only (their packet() is empty).
    this.synFlood.packet(p);
    this.udpFlood.packet(p);
    this.icmpFlood.packet(p);
    this.beacon.packet(p);
    if (ts >= this.nextTick) this.tick(ts);
  }

  /** An ARP packet (KIND_ARP), which forms no flow: its requests and replies are neighbour probes and their answers for the host sweep detector. */
  arp(pkt: DecodedPacket, buf: Buffer, ts: number, bytes: number): void {
    const p = this.facts;
    p.set(pkt, buf, ts, bytes, 0);
    if (ts > this.lastTs) this.lastTs = ts;
    this.attempts.arp(p);
    if (ts >= this.nextTick) this.tick(ts);
  }

  /** Advances the detectors' clock (also called on a quiet live link). */
  tick(now: number): void {
    this.nextTick = now + TICK_US;
    this.attempts.tick(now);
    for (const d of this.detectors) d.tick(now);
    this.emitter.tick(now);
  }

  /** End of input, or another capture's clock: unanswered attempts fail, anomalies end, state is dropped. */
  finish(): void {
    if (this.lastTs >= 0) this.attempts.flush(this.lastTs);
    this.emitter.endAll();
    for (const d of this.detectors) d.reset();
    this.attempts.clear();
    this.nextTick = -1;
    this.lastTs = -1;
  }

  /** Anomaly records for the next store batch: the latest version of each, handed over once. */
  take(): AnomalyRecord[] {
    if (this.out.size === 0) return [];
    const records = [...this.out.values()];
    this.out = new Map();
    return records;
  }

  pending(): number {
    return this.out.size;
  }

  /** Anomalies active now. */
  active(): number {
    return this.emitter.size;
  }

  private record(type: LifecycleEvent, record: AnomalyRecord): void {
    if (type === 'start') this.started++;
    this.out.set(record.anomalyId, record);
    const bus = this.bus;
    if (bus?.hasSubscribers('anomaly')) bus.publish('anomaly', { type, anomaly: record });
  }
}
