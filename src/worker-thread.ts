// Starts a worker thread from one of flowlens's modules, built (dist/*.js) or run from source
// under tsx (the tests): tsx's loader hooks do not reach worker threads, so there the worker
// registers them first and then imports the module.
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * A worker running `relative` (a path without extension, relative to `base`, an import.meta.url),
 * as .ts when `base` is a .ts module and as .js otherwise.
 */
export function startWorker(base: string, relative: string, options: WorkerOptions): Worker {
  const tsx = base.endsWith('.ts');
  const url = new URL(`${relative}.${tsx ? 'ts' : 'js'}`, base);
  if (!tsx) return new Worker(url, options);
  const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { ...options, eval: true });
}
