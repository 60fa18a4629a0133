// How to run the flowlens CLI from tests and benchmarks: the compiled dist/cli/main.js when it is
// up to date with src/ (fast start), `node --import tsx src/cli/main.ts` otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI_SRC = join(REPO_ROOT, 'src', 'cli', 'main.ts');
export const CLI_DIST = join(REPO_ROOT, 'dist', 'cli', 'main.js');

/** Newest modification time of any file below dir. */
export function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** True when dist/cli/main.js exists and no file under src/ is newer than dist/. */
export function distFresh(): boolean {
  if (!existsSync(CLI_DIST)) return false;
  // tsc rewrites every output file, so main.js's mtime is the time of the last build.
  return newestMtime(join(REPO_ROOT, 'src')) <= statSync(CLI_DIST).mtimeMs;
}

/** Builds dist/ with `npm run build` when it is missing or older than src/. Returns an error text or ''. */
export function ensureBuilt(): string {
  if (distFresh()) return '';
  const r = spawnSync('npm', ['run', 'build'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) return `npm run build failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`;
  return '';
}

/**
 * [command, ...args prefix] for running the CLI; `dist` forces the compiled one. The environment
 * variable FLOWLENS_TEST_CLI=dist|tsx overrides the choice.
 */
export function flowlensCommand(requested: 'auto' | 'dist' | 'tsx' = 'auto'): { cmd: string; args: string[]; how: string } {
  const env = process.env.FLOWLENS_TEST_CLI;
  const mode = env === 'dist' || env === 'tsx' ? env : requested;
  const useDist = mode === 'dist' || (mode === 'auto' && distFresh());
  // The node flags of the CLI's shebang line, so that tests and the benchmark run it as the bin does.
  const flags = shebangNodeFlags(CLI_SRC);
  if (useDist) return { cmd: process.execPath, args: [...flags, CLI_DIST], how: 'dist/cli/main.js' };
  return { cmd: process.execPath, args: [...flags, '--import', 'tsx', CLI_SRC], how: 'tsx src/cli/main.ts' };
}

/** The options given to node on a `#!/usr/bin/env -S node ...` first line. */
export function shebangNodeFlags(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0];
  const m = /^#!\/usr\/bin\/env(?: -S)? node((?: --?[\w-]+(?:=\S+)?)*)\s*$/.exec(first);
  if (!m) throw new Error(`${file}: first line is not a node shebang: ${first}`);
  return m[1].split(' ').filter(Boolean);
}
