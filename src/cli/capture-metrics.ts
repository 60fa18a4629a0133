// Prometheus metrics of a capture worker. `flowlens run` renders them with its API's /metrics;
// `flowlens capture --metrics-listen HOST:PORT` serves them (and /health) on a listener of its own,
// so that Prometheus scrapes every capture node of a fleet as well as the API (deploy/prometheus).
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Metrics } from '../api/metrics.js';
import type { LiveCapture } from '../capture/live.js';
import { PacketIndexReader } from '../packets/index-reader.js';
import { storeExtent } from '../packets/keeper.js';
import type { StoreBase, StoreWriter } from '../store/types.js';

/** Registers the capture's counters and gauges on `metrics`; they follow the capture's drop-counter reads. */
export function registerCaptureMetrics(metrics: Metrics, capture: LiveCapture): void {
  // libpcap's counters are cumulative; the metrics add their deltas.
  const packets = metrics.counter('flowlens_capture_packets_total', 'Frames received on the capture interfaces, by interface');
  const drops = metrics.counter('flowlens_capture_drops_total', 'Frames dropped, by interface and where (kernel buffer, interface, decode ring)');
  const seen = new Map<string, number>();
  const delta = (key: string, value: number) => {
    const d = value - (seen.get(key) ?? 0);
    seen.set(key, value);
    return d;
  };
  capture.onStats((st) => {
    for (const i of st.interfaces) {
      const labels = { iface: i.name, node: i.node };
      packets(delta(`p:${i.name}`, i.packets), labels);
      drops(delta(`k:${i.name}`, i.kernelDrops), { ...labels, where: 'kernel' });
      drops(delta(`i:${i.name}`, i.ifDrops), { ...labels, where: 'interface' });
      drops(delta(`r:${i.name}`, i.ringDrops), { ...labels, where: 'ring' });
    }
  });
  metrics.gauge('flowlens_capture_live_flows', 'Flows open in the decode workers now', () => capture.status().workers.reduce((n, w) => n + w.liveFlows, 0));
  // How close each decode worker is to dropping: a full ring drops frames (where="ring").
  metrics.gaugeFrom('flowlens_capture_ring_fill_ratio', 'Share of each decode worker ring written and not yet decoded (0 to 1), at scrape time', () => {
    const st = capture.status();
    return st.workers.map((w) => ({ labels: { node: st.node, worker: String(w.index) }, value: w.ringFill }));
  });
  metrics.gaugeFrom(
    'flowlens_capture_ring_peak_fill_ratio',
    'Highest share of each decode worker ring in use at once since the start (1: full, frames dropped)',
    () => {
      const st = capture.status();
      return st.workers.map((w) => ({ labels: { node: st.node, worker: String(w.index) }, value: w.ringPeakFill }));
    },
  );
  // The packet store (--keep-packets): what it wrote (its write rate is rate() of the bytes), what
  // it did not keep and why, and the files its caps evicted.
  if (capture.packetStoreStats()) {
    const ps = () => capture.packetStoreStats()!;
    const node = capture.status().node;
    metrics.counterFrom('flowlens_packet_store_packets_total', 'Packets written to the packet store', () => [{ labels: { node }, value: ps().kept }]);
    metrics.counterFrom('flowlens_packet_store_bytes_total', 'Bytes written to the packet store', () => [{ labels: { node }, value: ps().bytes }]);
    metrics.counterFrom(
      'flowlens_packet_store_dropped_total',
      'Packets not kept, by reason (buffers: the packet store writer thread or the disk fell behind, its ring or write buffers full; flow_cap: past --keep-flow-packets)',
      () => [
        { labels: { node, reason: 'buffers' }, value: ps().dropped },
        { labels: { node, reason: 'flow_cap' }, value: ps().skipped },
      ],
    );
    metrics.counterFrom('flowlens_packet_store_files_total', 'Packet files closed and indexed', () => [{ labels: { node }, value: ps().files }]);
    metrics.counterFrom('flowlens_packet_store_evicted_files_total', 'Packet files deleted by the size and age caps', () => [
      { labels: { node }, value: ps().evictedFiles },
    ]);
    // Size and age span at scrape time: one directory listing, shared by the three gauges.
    const reader = new PacketIndexReader(capture.packetStoreDir!);
    let extent: { at: number; value: ReturnType<typeof storeExtent> } | null = null;
    const read = () => {
      if (!extent || Date.now() - extent.at > 1000) extent = { at: Date.now(), value: storeExtent(reader) };
      return extent.value;
    };
    metrics.gauge('flowlens_packet_store_size_bytes', 'Size of the packet store directory (packet files and index)', async () => (await read()).bytes);
    metrics.gauge(
      'flowlens_packet_store_oldest_packet_timestamp_seconds',
      'Time of the oldest packet still held (Unix seconds; 0: none)',
      async () => (await read()).oldestUs / 1e6,
    );
    metrics.gauge(
      'flowlens_packet_store_newest_packet_timestamp_seconds',
      'Time of the newest packet of a closed (extractable) file (Unix seconds; 0: none)',
      async () => (await read()).newestUs / 1e6,
    );
  }
  // A node that stops writing is silent whether or not its process still answers scrapes.
  metrics.gauge('flowlens_capture_last_batch_timestamp_seconds', 'When a decode worker last handed over a batch (Unix seconds)', () => {
    const st = capture.status();
    return Math.max(st.startedAt, ...st.workers.map((w) => w.lastBatch)) / 1e6;
  });
}

/** Store write and flush calls of one process: how many, how long, how many failed. */
export class StoreWriteTimes {
  readonly calls = { ok: 0, error: 0 };
  seconds = 0;

  /** The writer, its write and flush calls timed; everything else (and `this` inside its methods) stays the store's. */
  wrap<S extends StoreWriter>(store: S): S {
    const timed =
      (call: (...args: unknown[]) => Promise<unknown>) =>
      async (...args: unknown[]): Promise<unknown> => {
        const started = performance.now();
        let result: 'ok' | 'error' = 'error';
        try {
          const r = await call(...args);
          result = 'ok';
          return r;
        } finally {
          this.seconds += (performance.now() - started) / 1000;
          this.calls[result]++;
        }
      };
    const write = timed((batch) => store.write(batch as Parameters<StoreWriter['write']>[0]));
    const flush = timed(() => store.flush());
    return new Proxy(store, {
      get(target, prop) {
        if (prop === 'write') return write;
        if (prop === 'flush') return flush;
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  register(metrics: Metrics): void {
    metrics.counterFrom('flowlens_store_writes_total', 'Store write and flush calls of this process, by result (ok, error)', () => [
      { labels: { result: 'ok' }, value: this.calls.ok },
      { labels: { result: 'error' }, value: this.calls.error },
    ]);
    metrics.counterFrom(
      'flowlens_store_write_seconds_total',
      'Seconds spent in store write and flush calls (divided by flowlens_store_writes_total: the mean latency)',
      () => [{ labels: {}, value: this.seconds }],
    );
  }
}

/** The store's health at scrape time, as the API's /metrics reports it. */
export function registerStoreHealthMetrics(metrics: Metrics, store: StoreBase): void {
  metrics.gauge('flowlens_store_up', 'Store health check result (1 ok, 0 failing), at scrape time', async () => ((await store.health()).ok ? 1 : 0));
  metrics.gauge('flowlens_store_spooled_batches', 'Batches waiting in the store outage spool', async () => (await store.health()).spooled ?? 0);
}

export interface MetricsListener {
  url: string;
  close(): Promise<void>;
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** `HOST:PORT` or `[V6]:PORT`; throws one clear error otherwise. */
export function parseListenAddress(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new Error(`--metrics-listen wants HOST:PORT (e.g. 127.0.0.1:9464 or [::1]:9464), got '${value}'`);
  return { host: m[1] ?? m[2], port };
}

/** The address to listen on; throws one clear error for a bad one, or for one beyond loopback without a token. */
export function checkMetricsListen(address: string, token: string | undefined): { host: string; port: number } {
  const at = parseListenAddress(address);
  if (!isLoopbackHost(at.host) && !token) {
    throw new Error(`refusing to serve metrics on ${at.host} without a token: set --metrics-token (FLOWLENS_METRICS_TOKEN) or listen on 127.0.0.1`);
  }
  return at;
}

/**
 * Serves GET /metrics (bearer token when `token` is set) and GET /health (no token: only whether
 * the store is up). Beyond loopback a token is required: the metrics name interfaces and nodes.
 */
export async function startMetricsListener(address: string, token: string | undefined, metrics: Metrics, store: StoreBase): Promise<MetricsListener> {
  const { host, port } = checkMetricsListen(address, token);
  const want = token ? createHash('sha256').update(token).digest() : undefined;
  const authorized = (header: string | undefined) => {
    if (!want) return true;
    const m = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
    return m !== null && timingSafeEqual(createHash('sha256').update(m[1].trim()).digest(), want);
  };
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/health') {
      void store.health().then(
        (h) => {
          res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json; charset=utf-8' });
          res.end(JSON.stringify({ status: h.ok ? 'ok' : 'degraded', store: { backend: h.backend, ok: h.ok } }));
        },
        () => res.writeHead(503).end(),
      );
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    if (!authorized(req.headers.authorization)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="flowlens"' }).end('missing or wrong bearer token\n');
      return;
    }
    void metrics.render().then((text) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : text);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot serve metrics on ${address}: ${err.message}`)));
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const urlHost = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${urlHost}:${bound.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
