// Explore's latency over a day of aggregates (issue 21: p99 under 100 ms on the benchmark's day of
// 300,000 flow segments, test/bench/api.ts's syntheticDay). Not a test (it takes a minute to fill
// the store): `node --import tsx test/explore-latency.ts [requests]` prints p50/p99 per query shape.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { startApiServer } from '../src/api/server.js';
import { MemoryBus } from '../src/bus/memory.js';
import { openStore } from '../src/store/index.js';
import { BUSY_HOST, DAY_START_US, percentile, syntheticDay } from './bench/api.js';

const requests = Number(process.argv[2] ?? 50);
const dir = mkdtempSync(join(tmpdir(), 'flowlens-explore-latency-'));
const store = await openStore({ db: join(dir, 'day.duckdb') });
const bus = new MemoryBus();
let rows = 0;
for (const b of syntheticDay({ flowRows: 300_000, hosts: 300 })) {
  rows += b.flows.length;
  await store.write(b);
}
await store.flush();
const server = await startApiServer({ store, bus, logger: pino({ level: 'silent' }), host: '127.0.0.1', port: 0, flow: { intervalSec: 60 }, webRoot: null });
const day = { from: new Date(DAY_START_US / 1000).toISOString(), to: new Date(DAY_START_US / 1000 + 86_400_000).toISOString() };
const QUERY = `query($from: DateTime, $to: DateTime, $dimensions: [ExploreDimension!]!, $metric: ExploreMetric, $limit: Int, $filters: [ExploreFilter!]) {
  explore(from: $from, to: $to, dimensions: $dimensions, metric: $metric, limit: $limit, filters: $filters) { step items { keys bytes packets flows series { ts bytes packets flows } } }
}`;
const shapes: [string, Record<string, unknown>][] = [
  ['top 10 apps by bytes', { dimensions: ['APP'] }],
  ['top 10 hosts by bytes', { dimensions: ['HOST'] }],
  ['top 20 host/peer pairs by flows', { dimensions: ['HOST', 'PEER'], metric: 'FLOWS', limit: 20 }],
  ['top 10 transport/port by packets', { dimensions: ['TRANSPORT', 'PORT'], metric: 'PACKETS' }],
  [
    'top 10 servers of host X, app TLS',
    {
      dimensions: ['SERVER'],
      filters: [
        { dimension: 'HOST', value: BUSY_HOST },
        { dimension: 'APP', value: 'TLS' },
      ],
    },
  ],
];
console.log(`store: ${rows} flow segments over a day`);
for (const [name, vars] of shapes) {
  const times: number[] = [];
  let items = 0;
  for (let i = 0; i < requests + 3; i++) {
    const t0 = performance.now();
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: QUERY, variables: { ...day, ...vars } }),
    });
    const body = (await res.json()) as { data?: { explore: { items: unknown[] } }; errors?: unknown };
    if (!body.data) throw new Error(JSON.stringify(body.errors));
    items = body.data.explore.items.length;
    if (i >= 3) times.push(performance.now() - t0);
  }
  console.log(
    `${name.padEnd(36)} p50 ${percentile(times, 50).toFixed(1)} ms  p99 ${percentile(times, 99).toFixed(1)} ms  (${items} items, ${requests} requests)`,
  );
}
await server.close();
await bus.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
