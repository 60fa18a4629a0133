// Child process of test/store-crash.test.ts: writes ROWS flow records into the DuckDB store at DB
// through the store's own write path, commits them (flush), says so on stdout and then waits to be
// killed, with the store never closed (no last checkpoint).
import { FLOW } from '../../src/records/index.js';
import { openStore } from '../../src/store/index.js';
import type { FlowRecord } from '../../src/store/types.js';
import { emptyRecord } from './records.js';

const [db, rowsArg] = process.argv.slice(2);
const rows = Number(rowsArg);
const store = await openStore({ db, duckdbThreads: 1 });
const BATCH = 5000;
for (let start = 0; start < rows; start += BATCH) {
  const flows: FlowRecord[] = [];
  for (let i = start; i < Math.min(rows, start + BATCH); i++) {
    flows.push(
      emptyRecord<FlowRecord>(FLOW, {
        ts: 1_700_000_000_000_000 + i * 1000,
        flowId: i.toString(16).padStart(16, '0'),
        transport: 'udp',
        ipProto: 17,
        clientIp: '10.0.0.1',
        clientPort: 1024 + (i % 60000),
        serverIp: '10.0.0.2',
        serverPort: 53,
        clientPackets: 1,
        clientBytes: 60 + (i % 100),
        source: 'crash-test',
      }),
    );
  }
  await store.write({ flows, hosts: [], traffic: [] });
}
await store.flush();
process.stdout.write(`flushed ${rows}\n`);
setInterval(() => {}, 60_000);
