// What every resolver gets: the server's store, bus and helpers (one object per server, shared by
// all requests), and per operation the signal that cancels its store queries. The context is a
// QueryOptions, so a resolver passes it to the store as is.
import type { EventBus } from '../bus/types.js';
import type { Enricher } from '../enrich/enricher.js';
import type { PacketIndexReader } from '../packets/index-reader.js';
import type { FlowStore, QueryOptions } from '../store/types.js';
import type { DefaultRanges } from './default-range.js';
import type { ImportManager, ImportSlot } from './imports.js';
import type { DiskUpload } from './uploads.js';
import type { Metrics } from './metrics.js';
import type { StatusProvider } from './status.js';

export interface ApiContext extends QueryOptions {
  store: FlowStore;
  bus: EventBus;
  imports: ImportManager;
  status: StatusProvider;
  metrics: Metrics;
  /** The range of a query that names none (the data's own most recent range). */
  ranges: DefaultRanges;
  /** Aggregation interval of the data (µs): traffic steps are multiples of it. */
  intervalUs: number;
  /** The packet index behind /pcap and the pcapUrl fields; undefined when the server holds no packets. */
  packets?: PacketIndexReader;
  /** Country, AS and network of an address (the flow settings' enrichment, src/enrich); null when off. */
  enrich?: Enricher | null;
  /** Server start (µs since the epoch). */
  startedAt: number;
  /** Counts an event a slow subscriber did not get. */
  dropped: (topic: string) => void;
  /** Tracks live subscriptions for the metrics; returns the function to call when one ends. */
  subscriptionOpened: (field: string) => () => void;
  /** Aborted when the client goes away or the operation's time limit passes. */
  signal: AbortSignal;
  /** Aborts `signal` (the time limit calls it). */
  cancel: (reason: Error) => void;
  /** Set on a multipart upload: its files, on disk, and the import slot reserved before they were read. */
  upload?: { files: Map<string, DiskUpload>; slot: ImportSlot };
}
