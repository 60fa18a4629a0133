// Creating a directory and its missing parents, one level at a time. Node's mkdirSync(dir,
// { recursive: true }) never returns for some paths it cannot create: under /proc, mkdir of
// /proc/nope fails with ENOENT although /proc exists, and the recursive walk retries forever
// (`--db /proc/nope/x.duckdb` spun a core). Here every failure is one error at once.
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export class MakeDirectoryError extends Error {}

/** Makes `dir` (and its missing parents); throws MakeDirectoryError saying which level failed and why. */
export function makeDirectory(dir: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(at).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw new MakeDirectoryError(`cannot create directory ${dir}: ${at}: ${code}`);
    }
    if (isDir === false) throw new MakeDirectoryError(`cannot create directory ${dir}: ${at} is not a directory`);
    if (isDir) break;
    missing.push(at);
    const parent = dirname(at);
    if (parent === at) break;
    at = parent;
  }
  for (const level of missing.reverse()) {
    try {
      mkdirSync(level);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && statSync(level).isDirectory()) continue;
      throw new MakeDirectoryError(`cannot create directory ${dir}: ${level}: ${code}`);
    }
  }
}
