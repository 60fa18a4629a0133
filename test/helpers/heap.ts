// The live heap, for tests that bound memory: a full GC first, so that only what is reachable counts.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** MiB of V8 heap in use after a full garbage collection. */
export function heapMb(): number {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}
