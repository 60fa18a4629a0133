// The packet store's writer thread (one per decode worker, started by PacketKeeper in keeper.ts):
// it takes the packets from the store ring (store-ring.ts) in batches and does everything the
// store costs besides one copy into the ring (pcapng blocks, file rotation, the index and its
// sort, the writes), so that none of it runs on the decode worker, which must keep up with the
// capture ring.
import { workerData } from 'node:worker_threads';
import { PacketFileWriter, STAT_KEYS, type KeepPacketsOptions } from './keeper.js';
import { StoreRing } from './store-ring.js';

export interface StoreWriterData {
  ring: SharedArrayBuffer;
  /** The writer's counters (STAT_KEYS order), read by the decode worker at any time. */
  stats: SharedArrayBuffer;
  opts: KeepPacketsOptions;
  base: string;
  ifaces: string[];
}

/** Records handed to the file writer between two turns of the event loop (its buffers are written meanwhile). */
const BATCH = 4096;
const IDLE_WAIT_MS = 50;
/**
 * Fault injection for the tests (FLOWLENS_PACKET_STORE_STALL=<ring bytes>): the writer takes nothing
 * from its ring (made that small) until the capture ends, as a writer stuck behind a dead disk
 * would, so that the ring fills and the store drops.
 */
const STALLED = Number(process.env.FLOWLENS_PACKET_STORE_STALL ?? 0) > 0;

/**
 * The ring's wake-up or `ms`, whichever is first: a timer, as Atomics.waitAsync's own timeout does
 * not wake a worker whose event loop has nothing else to wait for (the writer then hung once idle).
 */
function waitFor(ring: StoreRing, seen: number, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const slept = new Promise<void>((r) => {
    timer = setTimeout(r, ms);
  });
  return Promise.race([ring.wait(seen, ms), slept]).finally(() => clearTimeout(timer));
}

async function main(data: StoreWriterData): Promise<void> {
  const ring = new StoreRing(data.ring);
  const shared = new Float64Array(data.stats);
  const writer = new PacketFileWriter(data.opts, data.base, data.ifaces);
  const publish = () => {
    STAT_KEYS.forEach((k, i) => {
      shared[i] = writer.stats[k];
    });
  };
  const onRecord = writer.add;
  const full = () => writer.saturated;
  let lastTick = Date.now();
  for (;;) {
    const seen = ring.seq();
    const stopping = ring.stopped;
    if (STALLED && !stopping) {
      await waitFor(ring, seen, IDLE_WAIT_MS);
      continue;
    }
    // The store's buffers full (the disk behind): the ring holds the packets meanwhile, and the
    // decode worker drops from the store once the ring is full too.
    if (writer.saturated) await writer.writable();
    const n = ring.drain(onRecord, BATCH, full);
    const now = Date.now();
    if (now - lastTick >= 1000) {
      lastTick = now;
      writer.tick(now);
    }
    publish();
    if (n === BATCH) await new Promise<void>((r) => setImmediate(r));
    else if (stopping && ring.used() === 0) break;
    else if (n === 0) await waitFor(ring, seen, IDLE_WAIT_MS);
  }
  await writer.close();
  publish();
}

await main(workerData as StoreWriterData);
