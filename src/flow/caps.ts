// Caps of the flow and host tables, sized from the machine's memory. Past a cap the oldest idle
// entries are evicted (Suricata's flow memcap and emergency mode): a spoofed-source flood then
// costs a bounded table, not all the memory there is.
import { totalmem } from 'node:os';

/**
 * Heap a live flow costs with its share of the host table and DPI state (bytes), rounded up from
 * test/flow-caps.test.ts's measure (about 600 bytes a flow under a spoofed SYN flood).
 */
export const BYTES_PER_FLOW = 1024;
/** The flow tables may take this share of the machine's memory (all workers together). */
const MEMORY_SHARE = 1 / 16;
const MIN_FLOWS = 65_536;
const MAX_FLOWS = 4_000_000;

/** Live flows kept before the oldest idle ones are evicted, over all decode workers. */
export function defaultMaxFlows(memoryBytes = totalmem()): number {
  return Math.max(MIN_FLOWS, Math.min(MAX_FLOWS, Math.floor((memoryBytes * MEMORY_SHARE) / BYTES_PER_FLOW)));
}

/** Hosts kept: every live flow refers to two, and hosts whose flows ended wait for the interval's end. */
export function defaultMaxHosts(maxFlows: number): number {
  return maxFlows * 2 + 1024;
}

/** How many entries one eviction round frees: a sixteenth of the cap, so that rounds are rare. */
export function evictionBatch(cap: number): number {
  return Math.max(1, Math.floor(cap / 16));
}

/**
 * The k-th smallest (0-based) of values[0..n), by Hoare's selection; reorders `values`. O(n) on
 * average: an eviction round finds its threshold without sorting the table.
 */
export function kthSmallest(values: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i] < pivot) i++;
      while (values[j] > pivot) j--;
      if (i <= j) {
        const t = values[i];
        values[i] = values[j];
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k];
  }
  return values[k];
}
