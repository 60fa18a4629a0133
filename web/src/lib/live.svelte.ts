// What the client follows for as long as it is open, whatever page is shown: flows (flowUpdates),
// anomalies, traffic intervals and imports. Started once by App; survives reconnects.
import { untrack } from 'svelte';
import { connection, query, subscribe } from './api.svelte';
import { FLOW_FIELDS, type Flow } from './flows';

/** Live flows kept at most; the ones seen longest ago go first. */
export const MAX_LIVE_FLOWS = 20_000;

export interface Anomaly {
  id: string;
  node: string | null;
  kind: string;
  severity: 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';
  state: 'ACTIVE' | 'ENDED';
  source: string;
  targetIp: string;
  targetPort: number | null;
  startedAt: string;
  lastSeen: string;
  packets: number;
  bytes: number;
  evidence: string;
  summary: string;
}

export const ANOMALY_FIELDS = 'id node kind severity state source targetIp targetPort startedAt lastSeen packets bytes evidence summary';

export interface ImportJob {
  id: string;
  fileName: string;
  state: 'UPLOADING' | 'RUNNING' | 'DONE' | 'FAILED';
  bytesRead: number;
  totalBytes: number;
  packets: number;
  elapsedSeconds: number;
  error: string | null;
  summary: { flows: number; packets: number; hosts: number } | null;
}

export const IMPORT_FIELDS = 'id fileName state bytesRead totalBytes packets elapsedSeconds error summary { flows packets hosts }';

export interface TrafficPoint {
  ts: string;
  bytes: number;
  packets: number;
  flows: number;
}

class LiveState {
  /** Flows by id; not reactive itself: `version` grows when it changes. */
  readonly flows = new Map<string, Flow>();
  version = $state(0);
  flowEvents = $state(0);
  anomalies = $state.raw<Anomaly[]>([]);
  anomalyVersion = $state(0);
  imports = $state.raw<ImportJob[]>([]);
  /** Interval points from the traffic subscription as they came (step in seconds, seq numbers them). */
  traffic = $state.raw<{ seq: number; step: number; point: TrafficPoint }[]>([]);
  trafficSeq = 0;
  private started = false;
  private pending = false;

  start(): void {
    if (this.started) return;
    this.started = true;
    subscribe<{ flowUpdates: { type: string; flow: Flow } }>(`subscription { flowUpdates { type flow { ${FLOW_FIELDS} } } }`, {}, (d) =>
      this.onFlow(d.flowUpdates.flow),
    );
    subscribe<{ anomalies: { type: string; anomaly: Anomaly } }>(`subscription { anomalies { type anomaly { ${ANOMALY_FIELDS} } } }`, {}, (d) =>
      this.onAnomaly(d.anomalies.anomaly),
    );
    subscribe<{ importProgress: ImportJob }>(`subscription { importProgress { ${IMPORT_FIELDS} } }`, {}, (d) => this.onImport(d.importProgress));
    subscribe<{ traffic: { step: number; point: TrafficPoint } }>(`subscription { traffic { step point { ts bytes packets flows } } }`, {}, (d) => {
      this.traffic = [...this.traffic.slice(-999), { seq: ++this.trafficSeq, ...d.traffic }];
    });
  }

  /** Loads the last hour's anomalies (after each reconnect, so none are missed while away). */
  async loadAnomalies(): Promise<void> {
    const d = await query<{ anomalies: Anomaly[] }>(`query { anomalies(limit: 500) { ${ANOMALY_FIELDS} } }`);
    const byId = new Map(this.anomalies.map((a) => [a.id, a]));
    for (const a of d.anomalies) byId.set(a.id, a);
    this.setAnomalies([...byId.values()]);
  }

  /** Fills an empty table with the flows of the last minutes (the subscription brings what follows). */
  async seedFlows(minutes = 5): Promise<void> {
    if (this.flows.size > 0) return;
    const now = Date.now();
    const d = await query<{ flows: { edges: { node: Flow }[] } }>(
      `query Seed($from: DateTime, $to: DateTime) { flows(from: $from, to: $to, first: 1000, orderBy: TIME) { edges { node { ${FLOW_FIELDS} } } } }`,
      { from: new Date(now - minutes * 60_000).toISOString(), to: new Date(now + 1000).toISOString() },
    );
    for (const { node } of d.flows.edges) if (!this.flows.has(node.id)) this.flows.set(node.id, node);
    this.version++;
  }

  clearFlows(): void {
    this.flows.clear();
    this.version++;
  }

  private onFlow(f: Flow): void {
    this.flows.delete(f.id); // re-inserted last: the Map's order is "least recently updated first"
    this.flows.set(f.id, f);
    if (this.flows.size > MAX_LIVE_FLOWS) {
      const drop = this.flows.size - MAX_LIVE_FLOWS;
      let i = 0;
      for (const id of this.flows.keys()) {
        if (i++ >= drop) break;
        this.flows.delete(id);
      }
    }
    this.flowEvents++;
    // Many events a second: tell the UI at most once a frame.
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.version++;
      });
    }
  }

  private onAnomaly(a: Anomaly): void {
    this.setAnomalies([a, ...this.anomalies.filter((x) => x.id !== a.id)]);
  }

  private setAnomalies(list: Anomaly[]): void {
    this.anomalies = list.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0)).slice(0, 2000);
    this.anomalyVersion++;
  }

  private onImport(job: ImportJob): void {
    const others = this.imports.filter((j) => j.id !== job.id);
    this.imports = [job, ...others].slice(0, 10);
  }
}

export const live = new LiveState();

/** Reloads after every (re)connect. */
export function onReconnect(fn: () => void): void {
  $effect(() => {
    if (connection.generation > 0) untrack(fn);
  });
}
