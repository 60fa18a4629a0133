// The alert engine: user rules and watchlists over the flows the pipeline publishes (the bus's
// 'flow' topic: a start, updates at most once a second, an end). Hits become anomalies of kind
// RULE or WATCHLIST through the same lifecycle as the built-in detectors' (detect/lifecycle.ts):
// started, updated while matching flows keep coming, ended after the rules file's quiet period.
//
// Time is the flows' own clock (lastSeen), as in detection, so an imported capture's windows are
// its packets' windows. When no flow arrives the clock moves with the wall clock, so that the
// anomalies of an import that has finished, or of a link gone quiet, still end.
import type { FlowEvent } from '../bus/types.js';
import { EvidenceFlows } from '../detect/evidence.js';
import { type Anomaly, AnomalyEmitter, type AnomalySink } from '../detect/lifecycle.js';
import type { FlowSummary } from '../records/index.js';
import { ReloadingFile } from './reloading-file.js';
import { parseRules, type Rule, type RuleFlow, type RuleSet } from './rules.js';
import { parseWatchlist, type WatchHit, type Watchlist } from './watchlist.js';

/** Flows followed at once (for their deltas and what was checked of them); the oldest go first. */
export const MAX_TRACKED_FLOWS = 500_000;
/** Threshold windows (rule, source or target) kept at once; the oldest go first. */
export const MAX_WINDOWS = 100_000;
/** Matching flows named in an anomaly's evidence. */
const EVIDENCE_FLOWS = 10;
/** Distinct peers remembered per window: enough to cross any threshold up to this. */
const MAX_PEERS_PER_WINDOW = 100_000;
const TICK_US = 1_000_000;

export interface AlertEngineOptions {
  rulesFile?: string;
  watchlistFiles?: string[];
  /** Lifecycle events of RULE and WATCHLIST anomalies. */
  sink: AnomalySink;
  /** How often the files are polled for changes (ms). */
  pollMs?: number;
  /** A refused reload (the previous version stays in force), and a successful one. */
  onReload?: (file: string, error: Error | null) => void;
}

interface FlowSeen {
  packets: number;
  bytes: number;
  addressesChecked: boolean;
  serverNameChecked: string;
  ja4Checked: string;
  /** Rules this flow has matched (it counts into their windows from then on). */
  matched: Rule[] | null;
}

interface Window {
  start: number;
  flows: number;
  bytes: number;
  packets: number;
  peers: Set<string>;
  evidence: object[];
  /** Every matching flow (the first and last ids, and the count: detect/evidence.ts). */
  flowIds: EvidenceFlows;
  anomaly: Anomaly | null;
}

function flowEvidence(f: FlowSummary): object {
  return {
    flowId: f.flowId,
    transport: f.transport,
    clientIp: f.clientIp,
    clientPort: f.clientPort,
    serverIp: f.serverIp,
    serverPort: f.serverPort,
    app: f.app,
    serverName: f.serverName,
  };
}

/** The JA4 fingerprint in a flow's appInfo JSON ('' when none), read without parsing the rest. */
export function ja4Of(appInfo: string): string {
  const at = appInfo.indexOf('"ja4":"');
  if (at < 0) return '';
  const end = appInfo.indexOf('"', at + 7);
  return end < 0 ? '' : appInfo.slice(at + 7, end);
}

export class AlertEngine {
  private readonly rulesFile: ReloadingFile<RuleSet> | null;
  private readonly listFiles: ReloadingFile<Watchlist>[];
  private readonly emitters = new Map<string, AnomalyEmitter>();
  private readonly flows = new Map<string, FlowSeen>();
  private readonly windows = new Map<string, Window>();
  private readonly listHits = new Map<string, { anomaly: Anomaly; evidence: object[]; flows: EvidenceFlows }>();
  private readonly ruleView: RuleFlow = {
    clientIp: '',
    serverIp: '',
    clientPort: 0,
    serverPort: 0,
    transport: '',
    app: '',
    serverName: '',
    ja4: '',
    node: '',
    iface: '',
    risks: '',
  };
  private clock = -1;
  private nextTick = -1;
  private lastEventWall = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Anomalies started so far, by kind. */
  readonly started = { RULE: 0, WATCHLIST: 0 };

  constructor(private readonly opts: AlertEngineOptions) {
    const changed = (file: string) => (_v: unknown, err: Error | null) => {
      // New rules start afresh: flows already seen are judged again by the new version.
      if (err === null) for (const seen of this.flows.values()) seen.matched = null;
      opts.onReload?.(file, err);
    };
    this.rulesFile = opts.rulesFile ? new ReloadingFile(opts.rulesFile, parseRules, changed(opts.rulesFile), opts.pollMs) : null;
    this.listFiles = (opts.watchlistFiles ?? []).map((f) => new ReloadingFile(f, parseWatchlist, changed(f), opts.pollMs));
  }

  /** The rule and list files with their state (in force since, last refused version's error). */
  files(): { file: string; loadedAt: number; error: string | null; entries: number }[] {
    return [
      ...(this.rulesFile ? [{ ...this.rulesFile.state, entries: this.rulesFile.value.rules.length }] : []),
      ...this.listFiles.map((l) => ({ ...l.state, entries: l.value.size })),
    ];
  }

  /** Starts the wall-clock fallback: a quiet input still ends its anomalies. */
  start(): this {
    this.timer = setInterval(() => this.idle(Date.now()), 1000);
    this.timer.unref();
    return this;
  }

  /** Ends every anomaly (shutdown) and stops watching the files. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const e of this.emitters.values()) e.endAll();
    this.rulesFile?.close();
    for (const l of this.listFiles) l.close();
  }

  /** Anomalies active now. */
  active(): number {
    let n = 0;
    for (const e of this.emitters.values()) n += e.size;
    return n;
  }

  /** Moves the clock with the wall clock while no flow arrives (`nowMs`: the wall clock). */
  idle(nowMs: number): void {
    if (this.clock < 0 || this.lastEventWall === 0) return;
    const quietMs = nowMs - this.lastEventWall;
    if (quietMs < 1000) return;
    this.lastEventWall = nowMs;
    this.advance(this.clock + quietMs * 1000);
  }

  /** One flow event from the bus. */
  flow(e: FlowEvent): void {
    const f = e.flow;
    this.lastEventWall = Date.now();
    let seen = this.flows.get(f.flowId);
    if (seen === undefined) {
      seen = { packets: 0, bytes: 0, addressesChecked: false, serverNameChecked: '', ja4Checked: '', matched: null };
      this.flows.set(f.flowId, seen);
      if (this.flows.size > MAX_TRACKED_FLOWS) this.flows.delete(this.flows.keys().next().value as string);
    }
    const packets = f.clientPackets + f.serverPackets;
    const bytes = f.clientBytes + f.serverBytes;
    const dPackets = Math.max(0, packets - seen.packets);
    const dBytes = Math.max(0, bytes - seen.bytes);
    seen.packets = packets;
    seen.bytes = bytes;
    const ts = f.lastSeen;
    if (ts > this.clock) this.clock = ts;

    if (this.listFiles.length > 0) this.checkLists(f, seen, dPackets, dBytes);
    if (this.rulesFile) this.checkRules(f, seen, dPackets, dBytes);
    if (e.type === 'end') this.flows.delete(f.flowId);
    if (this.clock >= this.nextTick) this.advance(this.clock);
  }

  private advance(now: number): void {
    this.clock = now;
    this.nextTick = now + TICK_US;
    for (const [node, e] of this.emitters) {
      e.tick(now);
      if (e.size === 0) this.emitters.delete(node);
    }
  }

  private emitter(node: string): AnomalyEmitter {
    let e = this.emitters.get(node);
    if (e === undefined) {
      const rules = this.rulesFile?.value;
      e = new AnomalyEmitter({ quietSec: rules?.quietSec ?? 60, updateSec: rules?.updateSec ?? 10 }, node, this.opts.sink);
      this.emitters.set(node, e);
    }
    return e;
  }

  private checkLists(f: FlowSummary, seen: FlowSeen, dPackets: number, dBytes: number): void {
    const lists = this.listFiles;
    if (!seen.addressesChecked) {
      seen.addressesChecked = true;
      for (const l of lists) {
        const hit = l.value.matchAddress(f.serverIp) ?? l.value.matchAddress(f.clientIp);
        if (hit) this.listHit(hit, f, dPackets, dBytes);
      }
    }
    if (f.serverName !== seen.serverNameChecked) {
      seen.serverNameChecked = f.serverName;
      for (const l of lists) {
        const hit = l.value.matchServerName(f.serverName);
        if (hit) this.listHit(hit, f, dPackets, dBytes);
      }
    }
    if (f.appInfo !== '' && seen.ja4Checked === '') {
      const ja4 = ja4Of(f.appInfo);
      if (ja4 !== '') {
        seen.ja4Checked = ja4;
        for (const l of lists) {
          const hit = l.value.matchJa4(ja4);
          if (hit) this.listHit(hit, f, dPackets, dBytes);
        }
      }
    }
  }

  private listHit(hit: WatchHit, f: FlowSummary, dPackets: number, dBytes: number): void {
    const key = `${hit.list}\0${hit.entry}\0${f.clientIp}\0${f.serverIp}`;
    const known = this.listHits.get(key);
    if (known && !known.anomaly.ended) {
      known.anomaly.alive(f.lastSeen);
      known.anomaly.packets += dPackets;
      known.anomaly.bytes += dBytes;
      if (known.evidence.length < EVIDENCE_FLOWS) known.evidence.push(flowEvidence(f));
      known.flows.addId(f.flowId);
      return;
    }
    const evidence = [flowEvidence(f)];
    const flows = new EvidenceFlows();
    flows.addId(f.flowId);
    const where = `${f.clientIp} -> ${f.serverIp}${f.serverPort ? `:${f.serverPort}` : ''}`;
    this.started.WATCHLIST++;
    const anomaly = this.emitter(f.node).start({
      kind: 'WATCHLIST',
      source: f.clientIp,
      targetIp: f.serverIp,
      targetPort: f.serverPort,
      startedAt: f.firstSeen,
      now: f.lastSeen,
      packets: f.clientPackets + f.serverPackets,
      bytes: f.clientBytes + f.serverBytes,
      flows,
      view: () => ({
        severity: 'high',
        evidence: { list: hit.list, entry: hit.entry, type: hit.type, flows: evidence },
        summary: `${where} matched ${hit.type} ${hit.entry} of watchlist ${hit.list}`,
      }),
      onEnd: () => this.listHits.delete(key),
    });
    this.listHits.set(key, { anomaly, evidence, flows });
  }

  private checkRules(f: FlowSummary, seen: FlowSeen, dPackets: number, dBytes: number): void {
    const rules = (this.rulesFile as ReloadingFile<RuleSet>).value.rules;
    let view: RuleFlow | null = null;
    for (const rule of rules) {
      if (seen.matched?.includes(rule)) {
        // Nothing new (a flow's end event, or an update without packets): nothing to count. Counted,
        // it would start the rule's anomaly again once the last one has ended, with no traffic.
        if (dPackets > 0 || dBytes > 0) this.count(rule, f, false, dPackets, dBytes);
        continue;
      }
      if (view === null) view = this.viewOf(f);
      if (!rule.matches(view)) continue;
      (seen.matched ??= []).push(rule);
      // First match: the flow and everything it carried so far count.
      this.count(rule, f, true, f.clientPackets + f.serverPackets, f.clientBytes + f.serverBytes);
    }
  }

  private viewOf(f: FlowSummary): RuleFlow {
    const v = this.ruleView;
    v.clientIp = f.clientIp;
    v.serverIp = f.serverIp;
    v.clientPort = f.clientPort;
    v.serverPort = f.serverPort;
    v.transport = f.transport;
    v.app = f.app;
    v.serverName = f.serverName;
    v.ja4 = ja4Of(f.appInfo);
    v.node = f.node;
    v.iface = f.iface;
    v.risks = f.risks;
    return v;
  }

  /** Counts a matching flow (`first`: its first match) into the rule's window and raises or feeds its anomaly. */
  private count(rule: Rule, f: FlowSummary, first: boolean, packets: number, bytes: number): void {
    const t = rule.threshold;
    const bySource = t === undefined || t.per === 'source';
    const who = bySource ? f.clientIp : f.serverIp;
    const key = t === undefined ? `${rule.name}\0${f.clientIp}\0${f.serverIp}\0${f.serverPort}` : `${rule.name}\0${who}`;
    const now = f.lastSeen;
    let w = this.windows.get(key);
    if (w === undefined || (w.anomaly === null && t !== undefined && now - w.start >= t.windowUs)) {
      if (w === undefined && this.windows.size >= MAX_WINDOWS) this.evictWindow();
      w = { start: now, flows: 0, bytes: 0, packets: 0, peers: new Set(), evidence: [], flowIds: new EvidenceFlows(), anomaly: null };
      this.windows.set(key, w);
    }
    if (first) w.flows++;
    w.packets += packets;
    w.bytes += bytes;
    if (w.peers.size < MAX_PEERS_PER_WINDOW) w.peers.add(bySource ? f.serverIp : f.clientIp);
    if (first && w.evidence.length < EVIDENCE_FLOWS) w.evidence.push(flowEvidence(f));
    if (first) w.flowIds.addId(f.flowId);
    if (w.anomaly !== null) {
      w.anomaly.alive(now);
      w.anomaly.packets += packets;
      w.anomaly.bytes += bytes;
      return;
    }
    const value = t === undefined ? 1 : t.metric === 'peers' ? w.peers.size : w[t.metric];
    if (t !== undefined && value < t.value) return;
    this.started.RULE++;
    const win = w;
    const source = t === undefined || bySource ? f.clientIp : 'distributed';
    const targetIp = t === undefined || !bySource ? f.serverIp : '';
    w.anomaly = this.emitter(f.node).start({
      kind: 'RULE',
      source,
      targetIp,
      targetPort: t === undefined ? f.serverPort : 0,
      startedAt: t === undefined ? f.firstSeen : win.start,
      now,
      packets: win.packets,
      bytes: win.bytes,
      flows: win.flowIds,
      view: () => {
        const figures = { flows: win.flows, bytes: win.bytes, packets: win.packets, peers: win.peers.size };
        const about =
          t === undefined
            ? `${f.clientIp} -> ${f.serverIp}${f.serverPort ? `:${f.serverPort}` : ''}`
            : `${t.per} ${who}: ${t.metric} ${figures[t.metric]} >= ${t.value} in ${t.windowUs / 1e6} s`;
        return {
          severity: rule.severity,
          evidence: {
            rule: rule.name,
            conditions: rule.text,
            ...(t ? { threshold: { metric: t.metric, value: t.value, per: t.per, windowSec: t.windowUs / 1e6 } } : {}),
            ...figures,
            flows: win.evidence,
          },
          summary: `rule ${rule.name}: ${about}`,
        };
      },
      onEnd: () => {
        if (this.windows.get(key) === win) this.windows.delete(key);
      },
    });
  }

  /** Drops the oldest window without an active anomaly (those stay: their anomaly needs them). */
  private evictWindow(): void {
    for (const [key, w] of this.windows) {
      if (w.anomaly === null) {
        this.windows.delete(key);
        return;
      }
    }
  }
}
