// What the client follows for as long as it is open, whatever page is shown: flows (flowUpdates),
// anomalies, traffic intervals and imports. Started once by App; survives reconnects.
import { untrack } from 'svelte';
import { connection, query, subscribe } from './api.svelte';
import { type Flow, FlowFields } from './flows';
import { graphql, type ResultOf } from './graphql';
import { type Point, PointFields } from './traffic';

/** Live flows kept at most; the ones seen longest ago go first. */
export const MAX_LIVE_FLOWS = 20_000;

export const AnomalyFields = graphql(`
  fragment AnomalyFields on Anomaly {
    id node kind severity state source targetIp targetPort startedAt lastSeen packets bytes evidence summary
  }
`);

export type Anomaly = ResultOf<typeof AnomalyFields>;

export const ImportFields = graphql(`
  fragment ImportFields on Import {
    id fileName state bytesRead totalBytes packets elapsedSeconds error summary { flows packets hosts anomalies firstPacket lastPacket }
  }
`);

export type ImportJob = ResultOf<typeof ImportFields>;

const FlowUpdates = graphql(
  `
  subscription FlowUpdates { flowUpdates { type flow { ...FlowFields } } }
`,
  [FlowFields],
);

const AnomalyUpdates = graphql(
  `
  subscription AnomalyUpdates { anomalies { type anomaly { ...AnomalyFields } } }
`,
  [AnomalyFields],
);

const ImportProgress = graphql(
  `
  subscription ImportProgress { importProgress { ...ImportFields } }
`,
  [ImportFields],
);

const TrafficUpdates = graphql(
  `
  subscription TrafficUpdates { traffic { step point { ...PointFields } } }
`,
  [PointFields],
);

const RecentAnomalies = graphql(
  `
  query RecentAnomalies { anomalies(limit: 500) { ...AnomalyFields } }
`,
  [AnomalyFields],
);

const SeedFlows = graphql(
  `
  query Seed($from: DateTime, $to: DateTime) {
    flows(from: $from, to: $to, first: 500, orderBy: TIME) { edges { node { ...FlowFields } } }
  }
`,
  [FlowFields],
);

class LiveState {
  /** Flows by id; not reactive itself: `version` grows when it changes. */
  readonly flows = new Map<string, Flow>();
  version = $state(0);
  flowEvents = $state(0);
  anomalies = $state.raw<Anomaly[]>([]);
  anomalyVersion = $state(0);
  imports = $state.raw<ImportJob[]>([]);
  /** Interval points from the traffic subscription as they came (step in seconds, seq numbers them). */
  traffic = $state.raw<{ seq: number; step: number; point: Point }[]>([]);
  trafficSeq = 0;
  private started = false;
  private pending = false;

  start(): void {
    if (this.started) return;
    this.started = true;
    subscribe(FlowUpdates, {}, (d) => this.onFlow(d.flowUpdates.flow));
    subscribe(AnomalyUpdates, {}, (d) => this.onAnomaly(d.anomalies.anomaly));
    subscribe(ImportProgress, {}, (d) => this.onImport(d.importProgress));
    subscribe(TrafficUpdates, {}, (d) => {
      this.traffic = [...this.traffic.slice(-999), { seq: ++this.trafficSeq, ...d.traffic }];
    });
  }

  /** Loads the last hour's anomalies (after each reconnect, so none are missed while away). */
  async loadAnomalies(): Promise<void> {
    const d = await query(RecentAnomalies);
    const byId = new Map(this.anomalies.map((a) => [a.id, a]));
    for (const a of d.anomalies) byId.set(a.id, a);
    this.setAnomalies([...byId.values()]);
  }

  /** Fills an empty table with the flows of the last minutes (the subscription brings what follows). */
  async seedFlows(minutes = 5): Promise<void> {
    if (this.flows.size > 0) return;
    const now = Date.now();
    const d = await query(SeedFlows, { from: new Date(now - minutes * 60_000).toISOString(), to: new Date(now + 1000).toISOString() });
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
