// From packets to records: decodes each frame, accounts it to its flow and hosts, and on the
// packets' own clock (never the wall clock, so an import and a live capture behave alike) closes
// aggregation intervals, exports flow segments on the active timeout and ends idle flows.
// The per-packet path touches only typed arrays; records are built per segment and per interval.
import { decodePacket } from '../decode/index.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP } from '../decode/ip.js';
import { DecodedPacket, KIND_ARP, KIND_IP, MALFORMED_REASONS } from '../decode/packet.js';
import type { EventBus } from '../bus/types.js';
import { CLASSIFY_PACKETS, type ClassifierModel, FLOW_FEATURES, FlowClassifier, NO_PREDICTION, shippedModel } from '../classify/classifier.js';
import { DetectorSet, F_ESTABLISHED, F_FIRST_REPLY, F_FROM_CLIENT, F_NEW_FLOW, F_PEER_TO_PEER, type DetectConfigInput } from '../detect/index.js';
import { FIRST_SIZES, DpiEngine, tcpSeqOf } from '../dpi/engine.js';
import type { EndReason, FlowRecord, FlowSummary, HostRecord, TrafficRecord } from '../records/index.js';
import type { RecordBatch } from '../store/types.js';
import { STATE_ATTEMPTED, STATE_CLOSED, STATE_ESTABLISHED, STATE_RESET, TCP_STATE_NAMES, initialTcpState, nextTcpState, senderIsClient } from './direction.js';
import { defaultMaxFlows, defaultMaxHosts, evictionBatch, kthSmallest } from './caps.js';
import { DistinctAddresses } from './distinct.js';
import { FlowTable, NO_SEGMENT } from './flow-table.js';
import { finish, mix } from './hash.js';
import { HostTable } from './host-table.js';
import { ZeekConn } from './zeek-conn.js';
import { type Enricher, type EndInfo, type EnrichSettings, NO_END, enricherOf } from '../enrich/enricher.js';

export interface IdleTimeouts {
  /** Established TCP flows. */
  tcp: number;
  /** TCP flows closed by FIN or RST: kept briefly for the last ACKs and retransmissions. */
  tcpClosed: number;
  /** TCP flows whose handshake never completed. */
  tcpAttempted: number;
  udp: number;
  icmp: number;
  other: number;
}

export interface AggregatorOptions {
  /** Aggregation interval for host and traffic records (seconds). */
  intervalSec: number;
  /** A flow still active is exported at the first interval boundary this long after its segment began (seconds). */
  activeTimeoutSec: number;
  /** Idle timeouts (seconds). */
  idle: IdleTimeouts;
  node: string;
  iface: string;
  /** The run's source, carried by every record (src/capture/source.ts); '' when not set. */
  source?: string;
  bus?: EventBus;
  /** Anomaly detection thresholds (src/detect/config.ts); false turns detection off. Default on. */
  detect?: DetectConfigInput | false;
  /** Application protocol identification (default on); off only to measure what it costs. */
  dpi?: boolean;
  /**
   * The learned classifier's predictions (predictedCategory, predictedApp, predictedConfidence)
   * where DPI names no application (default on; needs dpi). Off (--no-classify), its features are
   * not collected either.
   */
  classify?: boolean;
  /**
   * Given each flow's packet features when it ends (src/classify: FlowClassifier.flowFeatures, a
   * fresh copy) with its summary: the learned classifier's training and evaluation input
   * (test/dpi/ml.ts). The classifier and the flow's slot are given too, for classifier.predict(slot, ...).
   */
  onFlowFeatures?: (flow: FlowSummary, flowFeatures: Float32Array, classifier: FlowClassifier, slot: number) => void;
  /** The model the classifier predicts with (tests and evaluation); default the shipped one (src/classify/model.json). */
  classifierModel?: ClassifierModel;
  /**
   * Country, AS and network names of each flow's ends (src/enrich/enricher.ts), looked up once per
   * new flow; none when absent. Settings (plain data, as capture workers get them) open the
   * process's shared Enricher for them.
   */
  enrich?: Enricher | EnrichSettings | null;
  /** Most live flows (default: sized from the machine's memory, src/flow/caps.ts); past it the oldest idle flows are evicted. */
  maxFlows?: number;
  /** Most hosts held (default: from maxFlows); past it hosts without a live flow are freed before their interval ends. */
  maxHosts?: number;
  /**
   * Sets lastDetect for each packet (what the detectors would be given) even with detection off:
   * a parallel import's decode workers hand it to the one DetectorSet that sees every packet.
   */
  detectFlags?: boolean;
  /**
   * The caps as one budget over the decode workers of a capture or an import (newTableBudget), not
   * a share each: no worker evicts while the workers' tables together are under the cap, whatever
   * the number of workers and however unevenly the address pairs spread over them.
   */
  tableBudget?: TableBudget;
}

/**
 * Live flows and hosts of every decode worker together, each an Int32 in a SharedArrayBuffer that
 * the workers' tables keep up to date. A worker evicts when its own table is at the cap, or when
 * the total is at the cap and it holds at least its share (cap / workers): the one whose new flow
 * finds the budget spent evicts its own oldest entries, unless it holds less than its share (then
 * a worker over its share evicts at its next new flow). The total can pass the cap by the entries
 * the workers under their share add meanwhile: at most cap x (2 - 1/workers) when one worker holds
 * the whole cap and never starts another flow.
 */
export interface TableBudget {
  flows: SharedArrayBuffer;
  hosts: SharedArrayBuffer;
  workers: number;
}

export function newTableBudget(workers: number): TableBudget {
  return { flows: new SharedArrayBuffer(4), hosts: new SharedArrayBuffer(4), workers: Math.max(1, workers) };
}

/** What clock() did: nothing, the first interval, intervals closed, or a restart (endAll). */
export const CLOCK_SAME = 0;
export const CLOCK_FIRST = 1;
export const CLOCK_ADVANCE = 2;
export const CLOCK_RESTART = 3;

/** lastDetect: the packet goes to no detector. */
export const DETECT_NONE = -1;
/** lastDetect: an ARP packet, for DetectorSet.arp(). */
export const DETECT_ARP = -2;

export const DEFAULT_IDLE: IdleTimeouts = { tcp: 300, tcpClosed: 10, tcpAttempted: 60, udp: 60, icmp: 60, other: 60 };

export const DEFAULT_AGGREGATOR_OPTIONS: AggregatorOptions = {
  intervalSec: 60,
  activeTimeoutSec: 60,
  idle: DEFAULT_IDLE,
  node: '',
  iface: '',
};

/** Live updates of one flow are published at most this often (packet time, µs). */
const PUBLISH_EVERY_US = 1_000_000;
/** Flows publishUpdates publishes at most per call, the rest at the next (a bounded burst on the bus). */
const MAX_UPDATES_PER_FLUSH = 2_000;
/** A later fragment is matched to its first fragment for this long (µs). */
const FRAGMENT_TTL_US = 30_000_000;
/** First fragments awaiting their later ones; past it the oldest is forgotten. */
const MAX_FRAGMENTS_PENDING = 65_536;

/** Two lower-case hex digits per byte value: flow ids without Number.prototype.toString(16). */
const HEX_BYTES: string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

function hex32(n: number): string {
  return HEX_BYTES[n >>> 24] + HEX_BYTES[(n >>> 16) & 255] + HEX_BYTES[(n >>> 8) & 255] + HEX_BYTES[n & 255];
}

const TRANSPORT_NAMES: string[] = [];
for (let p = 0; p < 256; p++) TRANSPORT_NAMES.push(`ip-${p}`);
TRANSPORT_NAMES[IPPROTO_TCP] = 'tcp';
TRANSPORT_NAMES[IPPROTO_UDP] = 'udp';
TRANSPORT_NAMES[IPPROTO_ICMP] = 'icmp';
TRANSPORT_NAMES[IPPROTO_ICMPV6] = 'icmpv6';
TRANSPORT_NAMES[IPPROTO_SCTP] = 'sctp';

export interface AggregatorStats {
  packets: number;
  bytes: number;
  malformed: number;
  nonIp: number;
  fragments: number;
  flows: number;
  /** Distinct host addresses seen (exact up to src/flow/distinct.ts's EXACT_MAX, estimated past it). */
  hosts: number;
  /** Flows ended early because the flow table was at its cap (exported with endReason 'evicted', or fin/rst if they had closed). */
  evictedFlows: number;
  /** Hosts freed before their interval ended because the host table was at its cap. */
  evictedHosts: number;
  malformedByReason: Record<string, number>;
  /** Time of the earliest and latest packet (µs), -1 before any. */
  firstPacket: number;
  lastPacket: number;
}

interface FragmentEntry {
  flow: number;
  /** Guards against the slot having been reused by another flow. */
  idLo: number;
  fromClient: boolean;
  ts: number;
}

export class Aggregator {
  private readonly opts: AggregatorOptions;
  private readonly intervalUs: number;
  private readonly activeUs: number;
  private readonly idleUs: IdleTimeouts;
  private readonly nodeHash: number;
  private readonly pkt = new DecodedPacket();
  readonly flows = new FlowTable();
  /** Per-slot DPI state; null when DPI is off. */
  readonly dpi: DpiEngine | null;
  /** Per-slot features of the learned classifier; null with neither predictions nor onFlowFeatures. */
  readonly classifier: FlowClassifier | null;
  /** Records carry the classifier's predictions (classify on, with DPI). */
  private readonly predicting: boolean;
  /** Every flow's features are collected (onFlowFeatures), not only those of flows DPI has not named. */
  private readonly featuresForAll: boolean;
  private readonly hosts = new HostTable();
  /** Anomaly detectors fed from the per-packet path; null when detection is off. */
  readonly detect: DetectorSet | null;
  /** Zeek's view of each flow (originator, conn_state, history, payload and IP bytes) and its Community ID. */
  readonly conn = new ZeekConn();
  /** Each live flow's ends as enrichment found them (slot*2: client, +1: server); shared, cached objects. */
  private ends: EndInfo[] = [];
  private readonly enricher: Enricher | null;

  // Counters of the whole run.
  packets = 0;
  bytes = 0;
  malformed = 0;
  nonIp = 0;
  fragments = 0;
  flowsStarted = 0;
  /** Time of the first and last packet (µs); -1 before any (0 is a valid time: pcapng simple packet blocks have none). */
  private firstPacket = -1;
  private lastPacket = -1;
  /**
   * Slot of the flow the last packet was accounted to (-1: none, as for non-IP or malformed
   * frames): the packet store (src/packets) indexes each packet under its flow's id without a
   * per-packet callback.
   */
  lastFlow = -1;
  /** What the last packet gave the detectors: F_* flags for DetectorSet.packet(), DETECT_ARP or DETECT_NONE (see detectFlags). */
  lastDetect = DETECT_NONE;
  private readonly detectFlags: boolean;
  private readonly malformedCounts = new Float64Array(MALFORMED_REASONS.length);
  /** Distinct host addresses of the run, in bounded memory. */
  readonly distinctHosts = new DistinctAddresses();
  flowsEvicted = 0;
  private readonly maxFlows: number;
  private readonly maxHosts: number;
  /** lastSeen of the live flows, to find an eviction round's threshold (allocated at the first round). */
  private evictScratch: Float64Array | null = null;
  /** Entries a worker may hold before it evicts for the shared budget (the cap when there is none). */
  private readonly flowShare: number;
  private readonly hostShare: number;

  // The current interval.
  private interval = -1;
  private intervalBytes = 0;
  private intervalPackets = 0;
  private intervalFlows = 0;

  private readonly fragmentsPending = new Map<string, FragmentEntry>();
  private readonly ifaceNames: string[];
  private ifaceIndex = 0;

  private out: RecordBatch = { flows: [], hosts: [], traffic: [] };

  constructor(opts: Partial<AggregatorOptions> = {}) {
    this.opts = { ...DEFAULT_AGGREGATOR_OPTIONS, ...opts, idle: { ...DEFAULT_IDLE, ...opts.idle } };
    this.intervalUs = this.opts.intervalSec * 1e6;
    this.activeUs = this.opts.activeTimeoutSec * 1e6;
    const idle = this.opts.idle;
    this.idleUs = {
      tcp: idle.tcp * 1e6,
      tcpClosed: idle.tcpClosed * 1e6,
      tcpAttempted: idle.tcpAttempted * 1e6,
      udp: idle.udp * 1e6,
      icmp: idle.icmp * 1e6,
      other: idle.other * 1e6,
    };
    let h = 0x2545f491;
    for (let i = 0; i < this.opts.node.length; i++) h = mix(h, this.opts.node.charCodeAt(i));
    this.nodeHash = finish(h);
    this.ifaceNames = [this.opts.iface];
    this.detect = this.opts.detect === false ? null : new DetectorSet(this.opts.detect ?? {}, this.opts.node, this.opts.bus);
    this.dpi = this.opts.dpi === false ? null : new DpiEngine();
    // The DPI's endpoint-named services (STUN's cache of known endpoints) ask for a flow's addresses.
    if (this.dpi !== null) this.dpi.addresses = (f) => [this.hosts.ipOf(this.flows.hostClient[f]), this.hosts.ipOf(this.flows.hostServer[f])];
    // Predictions stand in where DPI named nothing: without DPI there is nothing to stand in for.
    const predicting = this.opts.classify !== false && this.dpi !== null;
    const model = this.opts.classifierModel ?? (predicting ? shippedModel() : null);
    this.classifier = predicting || this.opts.onFlowFeatures !== undefined ? new FlowClassifier(model) : null;
    this.predicting = predicting;
    this.featuresForAll = this.opts.onFlowFeatures !== undefined;
    const e = this.opts.enrich;
    this.enricher = enricherOf(e);
    this.hosts.enrich = this.enricher;
    this.maxFlows = Math.max(1, this.opts.maxFlows ?? defaultMaxFlows());
    this.maxHosts = Math.max(3, this.opts.maxHosts ?? defaultMaxHosts(this.maxFlows));
    this.flows.limit = this.maxFlows;
    this.hosts.limit = this.maxHosts;
    const budget = this.opts.tableBudget;
    if (budget !== undefined) {
      this.flows.shared = new Int32Array(budget.flows);
      this.hosts.shared = new Int32Array(budget.hosts);
    }
    this.flowShare = budget === undefined ? this.maxFlows : Math.ceil(this.maxFlows / budget.workers);
    this.hostShare = budget === undefined ? this.maxHosts : Math.ceil(this.maxHosts / budget.workers);
    this.detectFlags = this.opts.detectFlags === true;
  }

  /** Accounts one captured frame. */
  packet(linkType: number, ts: number, buf: Buffer, off: number, caplen: number, wirelen: number): void {
    const pkt = decodePacket(linkType, buf, off, caplen, wirelen, this.pkt);
    const bytes = Math.max(wirelen, caplen);
    this.lastFlow = -1;
    this.lastDetect = DETECT_NONE;
    this.packets++;
    this.bytes += bytes;
    // Earliest and latest, not first and last read: files and capture clocks go back and forth.
    if (this.firstPacket < 0 || ts < this.firstPacket) this.firstPacket = ts;
    if (ts > this.lastPacket) this.lastPacket = ts;
    if (pkt.malformed !== 0) {
      this.malformed++;
      this.malformedCounts[pkt.malformed]++;
    }

    this.clock(ts);
    this.intervalBytes += bytes;
    this.intervalPackets++;

    if (pkt.kind !== KIND_IP) {
      if (pkt.malformed === 0) this.nonIp++; // a broken IP header is malformed, not non-IP
      // ARP forms no flow, but its requests and replies tell a neighbour sweep.
      if (pkt.kind === KIND_ARP) {
        this.lastDetect = DETECT_ARP;
        if (this.detect !== null) this.detect.arp(pkt, buf, ts, bytes);
      }
      return;
    }

    // A tunnel over UDP: the carrier's UDP flow counts the packet too (Zeek logs both), and the
    // inner flow names it as its tunnel parent. The detectors and the packet index see the inner.
    const carrier = pkt.hasCarrier ? pkt.carrier : null;
    if (carrier !== null) {
      const cf = this.account(carrier, ts, buf, off, bytes, false);
      // The carrier's id read now: making room for the inner flow may end the carrier's.
      const parentHi = this.flows.idHi[cf];
      const parentLo = this.flows.idLo[cf];
      const f = this.account(pkt, ts, buf, off, bytes, true);
      if (pkt.inIpTunnel()) this.addIpTunnelParent(f, pkt);
      else this.conn.addParent(f, parentHi, parentLo);
    } else {
      const f = this.account(pkt, ts, buf, off, bytes, true);
      if (pkt.inIpTunnel()) this.addIpTunnelParent(f, pkt);
    }
  }

  /**
   * An IP-level tunnel (IP-in-IP, GRE, ERSPAN) has no flow of its own; Zeek still names it in its
   * inner connections' tunnel_parents, one id per outer address pair: so does flowlens.
   */
  private addIpTunnelParent(f: number, pkt: DecodedPacket): void {
    const s = pkt.tunnelSrc;
    const d = pkt.tunnelDst;
    let srcFirst = true;
    for (let i = 0; i < 4; i++) {
      if (s[i] !== d[i]) {
        srcFirst = s[i] < d[i];
        break;
      }
    }
    const a = srcFirst ? s : d;
    const b = srcFirst ? d : s;
    let hi = 0x7a11e1 + pkt.tunnelVersion;
    for (let i = 0; i < 4; i++) hi = mix(mix(hi, a[i]), b[i]);
    const lo = finish(mix(hi, 0x9e3779b9));
    this.conn.addParent(f, finish(mix(hi, this.nodeHash)), lo);
  }

  /**
   * Accounts an IP packet (or a tunnel's carrier) to its flow and hosts; returns the flow's slot.
   * `innermost`: the packet as the detectors and the packet index know it.
   */
  private account(pkt: DecodedPacket, ts: number, buf: Buffer, off: number, bytes: number, innermost: boolean): number {
    const flows = this.flows;
    let f = -1;
    let fromClient = true;
    let started = false;
    if (pkt.laterFragment) {
      this.fragments++;
      const entry = this.fragmentsPending.get(this.fragmentKey(pkt));
      if (entry && flows.used[entry.flow] && flows.idLo[entry.flow] === entry.idLo) {
        f = entry.flow;
        fromClient = entry.fromClient;
      }
    }
    if (f < 0) {
      const srcPort = pkt.hasPorts ? pkt.srcPort : 0;
      const dstPort = pkt.hasPorts ? pkt.dstPort : 0;
      f = flows.find(pkt, srcPort, dstPort);
      if (f >= 0 && pkt.ipProto === IPPROTO_TCP && this.isNewConnection(f, pkt.tcpFlags)) {
        this.endFlow(f, 'idle'); // the same ports reused for a new connection (closed or reset: fin/rst)
        flows.find(pkt, srcPort, dstPort);
        f = -1;
      }
      if (f < 0) {
        if (this.flowsFull() || this.hostsFull()) this.makeRoom();
        f = flows.insert(pkt, srcPort, dstPort);
        this.startFlow(f, pkt, ts, srcPort, dstPort);
        started = true;
      }
      fromClient = (flows.clientIsA[f] === 1) === flows.srcIsA;
      if (started) {
        this.conn.ensure(flows.cap);
        this.conn.start(f, pkt, buf, fromClient, ts);
      } else if (this.conn.expired(f, ts, pkt.ipProto)) {
        // Zeek's timers ended its connection: the flow goes on, its next conn.log row starts here.
        this.conn.split(f, pkt, buf, fromClient, ts, pkt.ipProto);
      }
      if (pkt.isFragment && !pkt.laterFragment) {
        if (this.fragmentsPending.size >= MAX_FRAGMENTS_PENDING) this.fragmentsPending.delete(this.fragmentsPending.keys().next().value!);
        this.fragmentsPending.set(this.fragmentKey(pkt), { flow: f, idLo: flows.idLo[f], fromClient, ts });
      }
    }

    if (innermost) this.lastFlow = f;
    const dir = fromClient ? 0 : 1;
    const d = f * 2 + dir;
    flows.segPackets[d]++;
    flows.segBytes[d] += bytes;
    flows.totalPackets[d]++;
    flows.totalBytes[d] += bytes;
    if (ts > flows.lastSeen[f]) flows.lastSeen[f] = ts;
    this.conn.packet(f, pkt, buf, off, ts, fromClient);
    if (flows.segStart[f] === NO_SEGMENT) {
      flows.segStart[f] = ts;
      flows.segBase[f] = this.interval * this.intervalUs;
    }
    const stateBefore = flows.tcpState[f];
    if (pkt.ipProto === IPPROTO_TCP && !pkt.laterFragment) {
      const flags = pkt.tcpFlags;
      flows.tcpFlags[d] |= flags;
      flows.tcpState[f] = nextTcpState(flows.tcpState[f], flags, fromClient, flows.tcpFlags[f * 2 + 1]);
    }

    // DPI: the first frame sizes, and the payload of flows whose app is not decided yet (TCP and
    // UDP ones: the engine decides the others when they start). Once decided, a flow costs two
    // array reads here.
    const dpi = this.dpi;
    if (dpi !== null) {
      if (dpi.sizeCount[f] < FIRST_SIZES) dpi.size(f, bytes, fromClient);
      if (dpi.decided[f] === 0 && pkt.payloadLength > 0 && !pkt.laterFragment) {
        const seq = pkt.ipProto === IPPROTO_TCP ? tcpSeqOf(buf, pkt.payloadOffset, pkt.srcPort, pkt.dstPort, off) : -1;
        dpi.packet(f, pkt.ipProto, buf, pkt.payloadOffset, pkt.payloadLength, fromClient, flows.clientPort(f), flows.serverPort(f), seq);
      }
    }
    // The classifier's features: not for a flow DPI has named (its guess would never be shown),
    // unless they are asked for as training input.
    const classifier = this.classifier;
    if (
      classifier !== null &&
      classifier.count[f] < CLASSIFY_PACKETS &&
      pkt.payloadLength > 0 &&
      !pkt.laterFragment &&
      (this.featuresForAll || dpi === null || dpi.app[f] === 0)
    ) {
      classifier.packet(f, ts, fromClient, pkt.ipProto, buf, pkt.payloadOffset, pkt.payloadLength);
    }

    const client = flows.hostClient[f];
    const server = flows.hostServer[f];
    if (fromClient) this.hosts.packet(client, server, bytes);
    else this.hosts.packet(server, client, bytes);
    if (flows.lastInterval[f] !== this.interval) {
      flows.lastInterval[f] = this.interval;
      this.hosts.peerSeen(client, server);
    }

    // Anomaly detection: the packet and a few facts of its flow, as bits (no allocation).
    const detect = this.detect;
    if (innermost && (detect !== null || this.detectFlags)) {
      let dflags = fromClient ? F_FROM_CLIENT : 0;
      if (started) {
        dflags |= F_NEW_FLOW;
        if (dpi?.peerToPeer(f)) dflags |= F_PEER_TO_PEER;
      }
      if (!fromClient && flows.totalPackets[d] === 1) dflags |= F_FIRST_REPLY;
      if (stateBefore === STATE_ATTEMPTED && flows.tcpState[f] === STATE_ESTABLISHED) dflags |= F_ESTABLISHED;
      this.lastDetect = dflags;
      if (detect !== null) detect.packet(pkt, buf, ts, bytes, dflags, flows.idHi[f], flows.idLo[f]);
    }

    const bus = this.opts.bus;
    if (bus !== undefined && (started || ts - flows.lastPublished[f] >= PUBLISH_EVERY_US) && bus.hasSubscribers('flow')) {
      flows.lastPublished[f] = ts;
      bus.publish('flow', { type: started ? 'start' : 'update', flow: this.summary(f) });
    }
    return f;
  }

  /** Where the last publishUpdates stopped (a slot), so that a large table is covered in turns. */
  private updateCursor = 0;

  /**
   * Publishes the flows that changed since their last live update (the packet path publishes a
   * flow at most once a second of packet time, so a flow's last packets would otherwise wait for
   * its end: a curl exchange showed its SYN alone for ~20 s). Live capture calls this on a timer
   * (src/flow/worker.ts); each flow goes out once per call at most, and at most
   * MAX_UPDATES_PER_FLUSH flows per call. Returns how many were published.
   */
  publishUpdates(): number {
    const bus = this.opts.bus;
    if (bus === undefined || !bus.hasSubscribers('flow')) return 0;
    const flows = this.flows;
    const high = flows.high;
    let published = 0;
    let f = this.updateCursor < high ? this.updateCursor : 0;
    for (let seen = 0; seen < high && published < MAX_UPDATES_PER_FLUSH; seen++, f = f + 1 < high ? f + 1 : 0) {
      if (!flows.used[f] || flows.lastSeen[f] <= flows.lastPublished[f]) continue;
      flows.lastPublished[f] = flows.lastSeen[f];
      bus.publish('flow', { type: 'update', flow: this.summary(f) });
      published++;
    }
    this.updateCursor = f;
    return published;
  }

  /** Counts a frame that could not even be framed (a record cut short by the end of the file). */
  countUnreadable(reason: number, bytes: number): void {
    this.packets++;
    this.bytes += bytes;
    this.malformed++;
    this.malformedCounts[reason]++;
  }

  /**
   * The packets' clock, before a packet of time `ts` is accounted: advances intervals; a jump back
   * by more than an interval means a capture from another time (the next file of an import), which
   * starts afresh. Returns what happened: CLOCK_SAME, CLOCK_FIRST, CLOCK_ADVANCE or CLOCK_RESTART.
   * A parallel import's decode workers are moved by the reader's clock through this, so that every
   * worker closes intervals and expires flows exactly when one aggregator over all packets would.
   */
  clock(ts: number): number {
    const idx = Math.floor(ts / this.intervalUs);
    if (idx === this.interval) return CLOCK_SAME;
    if (this.interval < 0) {
      this.interval = idx;
      return CLOCK_FIRST;
    }
    if (idx > this.interval) {
      this.advance(idx, ts);
      return CLOCK_ADVANCE;
    }
    if (idx < this.interval - 1) {
      this.endAll();
      this.interval = idx;
      return CLOCK_RESTART;
    }
    return CLOCK_SAME;
  }

  /**
   * Moves the packets' clock to `now` (µs) without a packet: on a quiet link live capture closes the
   * intervals that have ended and expires idle flows, as a packet at that time would have.
   */
  tick(now: number): void {
    if (this.interval < 0) return;
    const idx = Math.floor(now / this.intervalUs);
    if (idx > this.interval) this.advance(idx, now);
    else {
      // Unanswered attempts time out and quiet anomalies end on a quiet link too.
      this.detect?.tick(now);
      // And idle flows end when their timeout passes, not at the interval's end (up to --interval
      // later): a live flow's END tells its final state soon after its close. The flows a packet
      // would find expired are the same (Conn.expired), so the records do not change.
      this.endIdleFlows(now);
    }
  }

  /** Ends the flows idle longer than their timeout as of `now` (µs). */
  private endIdleFlows(now: number): void {
    const flows = this.flows;
    for (let f = 0; f < flows.high; f++) if (flows.used[f] && now - flows.lastSeen[f] > this.idleTimeoutOf(f)) this.endFlow(f, 'idle');
  }

  /** Start of the interval now being aggregated (µs), or of the one holding `fallback` before any packet. */
  openIntervalStart(fallback: number): number {
    return this.interval >= 0 ? this.interval * this.intervalUs : Math.floor(fallback / this.intervalUs) * this.intervalUs;
  }

  /** Labels the flows that start from now on (the file being imported, the interface). */
  setIface(iface: string): void {
    let i = this.ifaceNames.indexOf(iface);
    if (i < 0) i = this.ifaceNames.push(iface) - 1;
    this.ifaceIndex = i;
  }

  /** Records ready to be written, handed over once. */
  takeBatch(): RecordBatch {
    const batch = this.out;
    this.out = { flows: [], hosts: [], traffic: [] };
    if (this.detect !== null && this.detect.pending() > 0) batch.anomalies = this.detect.take();
    return batch;
  }

  pendingRows(): number {
    return this.out.flows.length + this.out.hosts.length + this.out.traffic.length;
  }

  /** Ends every flow and closes the current interval (end of input, shutdown). */
  finish(): void {
    this.endAll();
  }

  stats(): AggregatorStats {
    const malformedByReason: Record<string, number> = {};
    for (let r = 1; r < MALFORMED_REASONS.length; r++) {
      if (this.malformedCounts[r] > 0) malformedByReason[MALFORMED_REASONS[r]] = this.malformedCounts[r];
    }
    return {
      packets: this.packets,
      bytes: this.bytes,
      malformed: this.malformed,
      nonIp: this.nonIp,
      fragments: this.fragments,
      flows: this.flowsStarted,
      hosts: this.distinctHosts.count(),
      evictedFlows: this.flowsEvicted,
      evictedHosts: this.hosts.evicted,
      malformedByReason,
      firstPacket: this.firstPacket,
      lastPacket: this.lastPacket,
    };
  }

  /** Flows live in the table now. */
  liveFlows(): number {
    return this.flows.count;
  }

  private isNewConnection(f: number, flags: number): boolean {
    // A SYN (without ACK) on a flow that was closed or reset starts a new connection.
    const state = this.flows.tcpState[f];
    return (flags & 0x12) === 0x02 && (state === STATE_CLOSED || state === STATE_RESET);
  }

  private startFlow(f: number, pkt: DecodedPacket, ts: number, srcPort: number, dstPort: number): void {
    const flows = this.flows;
    const srcIsClient = senderIsClient(pkt, srcPort, dstPort);
    flows.clientIsA[f] = srcIsClient === flows.srcIsA ? 1 : 0;
    flows.firstSeen[f] = ts;
    flows.lastSeen[f] = ts;
    flows.iface[f] = this.ifaceIndex;
    if (pkt.ipProto === IPPROTO_TCP) flows.tcpState[f] = initialTcpState(pkt.tcpFlags);
    flows.idHi[f] = finish(mix(flows.hash[f], this.nodeHash));
    flows.idLo[f] = finish(mix(mix(mix(flows.hash[f] ^ 0x9e3779b9, ts % 4294967296), Math.floor(ts / 4294967296)), this.nodeHash));
    if (this.dpi !== null) {
      this.dpi.ensure(flows.cap);
      this.dpi.reset(f, pkt.ipProto);
    }
    if (this.classifier !== null) {
      this.classifier.ensure(flows.cap);
      this.classifier.reset(f, ts);
    }

    const version = pkt.ipVersion;
    const client = this.hosts.lookupOrInsert(version, flows.keyAddr, flows.clientAddrAt(f));
    const server = this.hosts.lookupOrInsert(version, flows.keyAddr, flows.serverAddrAt(f));
    flows.hostClient[f] = client;
    flows.hostServer[f] = server;
    this.hosts.addRef(client);
    this.hosts.addRef(server);
    this.hosts.flowStarted(client, server);
    this.distinctHosts.add(version, flows.keyAddr, flows.clientAddrAt(f));
    this.distinctHosts.add(version, flows.keyAddr, flows.serverAddrAt(f));
    if (this.enricher !== null) {
      this.ends[f * 2] = this.hosts.endOf(client);
      this.ends[f * 2 + 1] = this.hosts.endOf(server);
    }
    this.flowsStarted++;
    this.intervalFlows++;
  }

  /**
   * A table is at its cap (Suricata's emergency mode): ends the oldest idle flows, then frees the
   * hosts no live flow refers to any more (their interval records so far go out first). Rounds
   * free a sixteenth of a cap at a time, so that the scan of the table is rare.
   */
  /** Whether a new flow must first evict: this table at the cap, or the shared budget spent with this worker over its share. */
  private flowsFull(): boolean {
    const flows = this.flows;
    if (flows.count >= this.maxFlows) return true;
    return flows.shared !== null && flows.count >= this.flowShare && Atomics.load(flows.shared, 0) >= this.maxFlows;
  }

  /** The same for the two hosts a new flow may add. */
  private hostsFull(): boolean {
    const hosts = this.hosts;
    if (hosts.count + 2 > this.maxHosts) return true;
    return hosts.shared !== null && hosts.count + 2 > this.hostShare && Atomics.load(hosts.shared, 0) + 2 > this.maxHosts;
  }

  private makeRoom(): void {
    if (this.flowsFull()) this.evictFlows(evictionBatch(this.maxFlows));
    const hosts = this.hosts;
    const want = evictionBatch(this.maxHosts);
    const ts = this.interval * this.intervalUs;
    const evictHosts = () => hosts.evictOrphans(want, ts, this.opts.node, this.opts.source ?? '', this.out.hosts as HostRecord[]);
    if (this.hostsFull()) evictHosts();
    // Hosts all held by live flows (a host cap below twice the flow cap): flows go first.
    while (this.hostsFull() && this.flows.count > 0) {
      this.evictFlows(evictionBatch(this.maxFlows));
      evictHosts();
    }
  }

  /** Ends the `n` live flows idle longest (endReason 'evicted', or fin / rst for closed connections). */
  private evictFlows(n: number): void {
    const flows = this.flows;
    if (this.evictScratch === null || this.evictScratch.length < flows.high) this.evictScratch = new Float64Array(flows.cap);
    const lastSeen = this.evictScratch;
    let live = 0;
    for (let f = 0; f < flows.high; f++) if (flows.used[f]) lastSeen[live++] = flows.lastSeen[f];
    if (live === 0) return;
    const threshold = kthSmallest(lastSeen, live, Math.min(n, live) - 1);
    let left = n;
    for (let f = 0; f < flows.high && left > 0; f++) {
      if (flows.used[f] && flows.lastSeen[f] <= threshold) {
        this.endFlow(f, 'evicted');
        this.flowsEvicted++;
        left--;
      }
    }
  }

  /** Closes intervals up to (not including) `idx`, then exports and expires flows as of `now`. */
  private advance(idx: number, now: number): void {
    this.closeInterval();
    this.detect?.tick(now);
    const boundary = (this.interval + 1) * this.intervalUs;
    this.interval = idx;
    this.scanFlows(now, boundary);
  }

  private closeInterval(): void {
    if (this.interval < 0) return;
    const ts = this.interval * this.intervalUs;
    const node = this.opts.node;
    if (this.intervalPackets > 0) {
      const traffic: TrafficRecord = {
        ts,
        node,
        bytes: this.intervalBytes,
        packets: this.intervalPackets,
        flows: this.intervalFlows,
        source: this.opts.source ?? '',
      };
      this.out.traffic.push(traffic);
      const bus = this.opts.bus;
      if (bus?.hasSubscribers('traffic')) {
        bus.publish('traffic', {
          node,
          step: this.intervalUs,
          point: { ts, bytes: traffic.bytes, packets: traffic.packets, flows: traffic.flows },
        });
      }
    }
    this.hosts.flushInterval(ts, node, this.opts.source ?? '', this.out.hosts as HostRecord[]);
    this.intervalBytes = 0;
    this.intervalPackets = 0;
    this.intervalFlows = 0;
  }

  private scanFlows(now: number, boundary: number): void {
    const flows = this.flows;
    for (let f = 0; f < flows.high; f++) {
      if (!flows.used[f]) continue;
      if (now - flows.lastSeen[f] > this.idleTimeoutOf(f)) this.endFlow(f, 'idle');
      else if (flows.segStart[f] !== NO_SEGMENT && boundary - flows.segBase[f] >= this.activeUs) {
        this.emitSegment(f, false, 'active-timeout');
        flows.segBase[f] = boundary;
      }
    }
    for (const [key, entry] of this.fragmentsPending) {
      if (now - entry.ts > FRAGMENT_TTL_US) this.fragmentsPending.delete(key);
    }
  }

  private idleTimeoutOf(f: number): number {
    const flows = this.flows;
    switch (flows.keyProto[f]) {
      case IPPROTO_TCP: {
        const state = flows.tcpState[f];
        if (state === STATE_CLOSED || state === STATE_RESET) return this.idleUs.tcpClosed;
        if (state === STATE_ATTEMPTED) return this.idleUs.tcpAttempted;
        return this.idleUs.tcp;
      }
      case IPPROTO_UDP:
        return this.idleUs.udp;
      case IPPROTO_ICMP:
      case IPPROTO_ICMPV6:
        return this.idleUs.icmp;
      default:
        return this.idleUs.other;
    }
  }

  private endAll(): void {
    const flows = this.flows;
    for (let f = 0; f < flows.high; f++) if (flows.used[f]) this.endFlow(f, 'shutdown');
    this.detect?.finish();
    this.closeInterval();
    this.fragmentsPending.clear();
  }

  /** Ends a flow for `cause`; a TCP connection that had closed or been reset ends by fin / rst whatever ended it. */
  private endFlow(f: number, cause: EndReason): void {
    const flows = this.flows;
    const state = flows.tcpState[f];
    this.emitSegment(f, true, state === STATE_CLOSED ? 'fin' : state === STATE_RESET ? 'rst' : cause);
    const onFeatures = this.opts.onFlowFeatures;
    if (onFeatures !== undefined && this.classifier !== null) {
      const x = new Float32Array(FLOW_FEATURES);
      this.classifier.flowFeatures(f, x, 0);
      onFeatures(this.summary(f), x, this.classifier, f);
    }
    const bus = this.opts.bus;
    if (bus?.hasSubscribers('flow')) bus.publish('flow', { type: 'end', flow: this.summary(f) });
    this.hosts.release(flows.hostClient[f]);
    this.hosts.release(flows.hostServer[f]);
    flows.remove(f);
  }

  private emitSegment(f: number, final: boolean, endReason: EndReason): void {
    const flows = this.flows;
    if (flows.segStart[f] === NO_SEGMENT) return; // nothing since the last export
    const d = f * 2;
    const record = this.describe(f, flows.segPackets, flows.segBytes, flows.segStart[f], final, endReason);
    this.out.flows.push(record);
    flows.segPackets[d] = flows.segPackets[d + 1] = 0;
    flows.segBytes[d] = flows.segBytes[d + 1] = 0;
    flows.segStart[f] = NO_SEGMENT;
  }

  private flowId(f: number): string {
    return hex32(this.flows.idHi[f]) + hex32(this.flows.idLo[f]);
  }

  /** The flow as of now, with counts since it started. */
  summary(f: number): FlowSummary {
    const flows = this.flows;
    return this.describe(f, flows.totalPackets, flows.totalBytes, flows.firstSeen[f], false, '');
  }

  /** The flow's record with the given per-direction counts (its segment's, or its totals). */
  private describe(f: number, packets: Float64Array, bytes: Float64Array, ts: number, final: boolean, endReason: EndReason): FlowRecord {
    const flows = this.flows;
    const d = f * 2;
    const proto = flows.keyProto[f];
    const dpi = this.dpi;
    dpi?.label(f, proto, flows.clientPort(f), flows.serverPort(f));
    // Every field named in one literal (no spreads: they cost as much as the rest of the record).
    const z = this.conn.fields(f, proto);
    const client = this.enricher !== null ? this.ends[d]! : NO_END;
    const server = this.enricher !== null ? this.ends[d + 1]! : NO_END;
    const app = dpi !== null ? dpi.appName(f) : '';
    const guess = app === '' && this.predicting ? this.classifier!.predict(f, proto, flows.serverPort(f)) : NO_PREDICTION;
    return {
      ts,
      flowId: this.flowId(f),
      node: this.opts.node,
      iface: this.ifaceNames[flows.iface[f]],
      firstSeen: flows.firstSeen[f],
      lastSeen: flows.lastSeen[f],
      transport: TRANSPORT_NAMES[proto],
      ipProto: proto,
      clientIp: this.hosts.ipOf(flows.hostClient[f]),
      clientPort: flows.clientPort(f),
      serverIp: this.hosts.ipOf(flows.hostServer[f]),
      serverPort: flows.serverPort(f),
      clientPackets: packets[d],
      clientBytes: bytes[d],
      serverPackets: packets[d + 1],
      serverBytes: bytes[d + 1],
      clientTcpFlags: flows.tcpFlags[d],
      serverTcpFlags: flows.tcpFlags[d + 1],
      tcpState: TCP_STATE_NAMES[flows.tcpState[f]],
      final,
      app,
      serverName: dpi !== null ? dpi.serverName(f) : '',
      confidence: dpi !== null ? dpi.confidenceName(f) : '',
      firstPackets: dpi !== null ? dpi.firstPackets(f) : '',
      appInfo: dpi !== null ? dpi.appInfo(f) : '',
      risks: dpi !== null ? dpi.risks(f, flows.clientPort(f), flows.serverPort(f), flows.firstSeen[f]) : '',
      predictedCategory: guess.category,
      predictedApp: guess.app,
      predictedConfidence: guess.confidence,
      duration: flows.lastSeen[f] - flows.firstSeen[f],
      endReason,
      source: this.opts.source ?? '',
      communityId: z.communityId,
      originator: z.originator,
      connState: z.connState,
      history: z.history,
      clientPayloadBytes: z.clientPayloadBytes,
      serverPayloadBytes: z.serverPayloadBytes,
      clientIpBytes: z.clientIpBytes,
      serverIpBytes: z.serverIpBytes,
      missedBytes: z.missedBytes,
      zeekDuration: z.zeekDuration,
      icmpType: z.icmpType,
      icmpCode: z.icmpCode,
      tunnelParents: z.tunnelParents,
      zeekSplits: z.zeekSplits,
      clientCountry: client.country,
      serverCountry: server.country,
      clientAsn: client.asn,
      serverAsn: server.asn,
      clientAsOrg: client.asOrg,
      serverAsOrg: server.asOrg,
      clientNetwork: client.network,
      serverNetwork: server.network,
    };
  }

  private fragmentKey(pkt: DecodedPacket): string {
    const s = pkt.src;
    const d = pkt.dst;
    return `${pkt.ipVersion}:${s[0]}:${s[1]}:${s[2]}:${s[3]}>${d[0]}:${d[1]}:${d[2]}:${d[3]}:${pkt.ipProto}:${pkt.fragId}`;
  }
}
