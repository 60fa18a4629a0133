// What every resolver gets: the server's store, bus and helpers. One object per server, shared by
// all requests (none of it is per-request state).
import type { EventBus } from '../bus/types.js';
import type { FlowStore } from '../store/types.js';
import type { ImportManager } from './imports.js';
import type { Metrics } from './metrics.js';
import type { StatusProvider } from './status.js';

export interface ApiContext {
  store: FlowStore;
  bus: EventBus;
  imports: ImportManager;
  status: StatusProvider;
  metrics: Metrics;
  /** Aggregation interval of the data (µs): traffic steps are multiples of it. */
  intervalUs: number;
  /** Server start (µs since the epoch). */
  startedAt: number;
  /** Counts an event a slow subscriber did not get. */
  dropped: (topic: string) => void;
  /** Tracks live subscriptions for the metrics; returns the function to call when one ends. */
  subscriptionOpened: (field: string) => () => void;
}
