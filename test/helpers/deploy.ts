/**
 * Helpers of the deployment tests (test/deploy-*.test.ts): YAML read through Python's PyYAML
 * (Debian's python3-yaml; no YAML parser is a dependency of flowlens), the CLI's flags and
 * environment variables from its own --help, real `flowlens serve` and `flowlens capture`
 * processes, and Prometheus's relabelling applied to given target labels.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLI_MAIN, REPO_ROOT, CLI_ARGV } from './cli.js';

export const DEPLOY = join(REPO_ROOT, 'deploy');

/** Why YAML cannot be read here, or null. */
export function yamlUnavailable(): string | null {
  const r = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' });
  return r.status === 0 ? null : 'needs python3 with PyYAML (apt-get install python3-yaml)';
}

/** Every document of a YAML text (or file), as JSON values. Dates and other non-JSON scalars become strings. */
export function parseYamlAll(text: string): unknown[] {
  const r = spawnSync('python3', ['-c', 'import sys, json, yaml\njson.dump(list(yaml.safe_load_all(sys.stdin)), sys.stdout, default=str)'], {
    input: text,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`YAML does not parse: ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown[];
}

export function readYaml<T = Record<string, unknown>>(path: string): T {
  const docs = parseYamlAll(readFileSync(path, 'utf8'));
  if (docs.length !== 1) throw new Error(`${path}: expected one YAML document, found ${docs.length}`);
  return docs[0] as T;
}

export interface CliSurface {
  flags: Set<string>;
  env: Set<string>;
}

/** The long flags and the environment variables that `flowlens [COMMAND] --help` lists. */
export function cliSurface(command?: string): CliSurface {
  const args = [...CLI_ARGV, ...(command ? [command] : []), '--help'];
  const r = spawnSync(process.execPath, args, { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, COLUMNS: '400' } });
  if (r.status !== 0) throw new Error(`flowlens ${command ?? ''} --help failed: ${r.stderr}`);
  const flags = new Set([...r.stdout.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((m) => m[1]));
  const env = new Set([...r.stdout.matchAll(/env:\s+(FLOWLENS_[A-Z0-9_]+)/g)].map((m) => m[1]));
  return { flags, env };
}

/** The FLOWLENS_X settings that the container entrypoint also takes from a file as FLOWLENS_X_FILE. */
export function entrypointFileSettings(): Set<string> {
  const text = readFileSync(join(DEPLOY, 'docker', 'entrypoint.sh'), 'utf8');
  const m = /^SECRET_SETTINGS="([^"]+)"/m.exec(text);
  if (!m) throw new Error('entrypoint.sh: SECRET_SETTINGS not found');
  return new Set(m[1].split(/\s+/));
}

/** Is `name` a setting the image understands for `command`: a CLI flag's variable, or FLOWLENS_X_FILE of a file setting? */
export function knownSetting(name: string, surface: CliSurface, fileSettings: Set<string>): boolean {
  if (surface.env.has(name)) return true;
  const file = /^(FLOWLENS_[A-Z0-9_]+)_FILE$/.exec(name);
  return !!file && fileSettings.has(file[1]) && surface.env.has(file[1]);
}

export interface Proc {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `node --import tsx src/cli/main.ts ARGS` with only the FLOWLENS_* variables in `env`. */
export function startCli(args: string[], env: Record<string, string> = {}): Proc {
  const base: NodeJS.ProcessEnv = { NO_COLOR: '1' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOWLENS_')) base[k] = v;
  const child = spawn(process.execPath, [...CLI_ARGV, ...args], {
    cwd: REPO_ROOT,
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  return { child, output: () => out, stop: () => stopChild(child) };
}

/** SIGTERM, then SIGKILL after 10 s; resolves when the process has exited. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes; then fails with `what()`. */
export async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: () => string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    let value: T | undefined;
    try {
      value = await check();
    } catch {
      value = undefined;
    }
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await sleep(250);
  }
}

export interface RelabelConfig {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
  action?: string;
}

/**
 * Prometheus's relabelling (the actions replace, keep and drop) applied to `labels`; null when the
 * target is dropped. Regexes are anchored at both ends, as Prometheus anchors them.
 */
export function relabel(labels: Record<string, string>, configs: RelabelConfig[]): Record<string, string> | null {
  const out = { ...labels };
  for (const c of configs) {
    const value = (c.source_labels ?? []).map((l) => out[l] ?? '').join(c.separator ?? ';');
    const re = new RegExp(`^(?:${c.regex ?? '(.*)'})$`);
    const m = re.exec(value);
    const action = c.action ?? 'replace';
    if (action === 'keep') {
      if (!m) return null;
    } else if (action === 'drop') {
      if (m) return null;
    } else if (action === 'replace') {
      if (!m || !c.target_label) continue;
      const replaced = (c.replacement ?? '$1').replace(/\$(\d+)|\$\{(\d+)\}/g, (_, a: string, b: string) => m[Number(a ?? b)] ?? '');
      if (replaced === '') delete out[c.target_label];
      else out[c.target_label] = replaced;
    } else {
      throw new Error(`relabel action ${action} is not simulated here`);
    }
  }
  return out;
}

/**
 * A FLOWLENS_HOME for deploy/docker/entrypoint.sh outside the image: dist/cli/main.js loads the
 * sources through tsx, and its first line is the real main's (the entrypoint reads node's V8
 * flags from it). Readable by every user.
 */
export function entrypointHome(dir: string): string {
  const home = join(dir, 'home');
  mkdirSync(join(home, 'dist', 'cli'), { recursive: true });
  const shebang = readFileSync(CLI_MAIN, 'utf8').split('\n')[0];
  if (!shebang.startsWith('#!/usr/bin/env -S node ')) throw new Error(`unexpected first line of ${CLI_MAIN}: ${shebang}`);
  writeFileSync(
    join(home, 'dist', 'cli', 'main.js'),
    `${shebang}\nimport { register } from '${import.meta.resolve('tsx/esm/api')}';\nregister();\nawait import('${pathToFileURL(CLI_MAIN).href}');\n`,
  );
  return home;
}

/** Runs deploy/docker/entrypoint.sh ARGS with /bin/sh, with only the FLOWLENS_* variables in `env`. */
export function startEntrypoint(args: string[], env: Record<string, string>, prefix: string[] = []): Proc {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOWLENS_')) base[k] = v;
  const argv = [...prefix, 'sh', join(DEPLOY, 'docker', 'entrypoint.sh'), ...args];
  const child = spawn(argv[0], argv.slice(1), { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  return { child, output: () => out, stop: () => stopChild(child) };
}

/** Compose's interpolation of the forms docker-compose.yml uses: ${VAR:-default} (the default: the test sets none) and $$. */
export function composeDefaults(value: string): string {
  return value.replace(/\$\{(\w+):-([^}]*)\}/g, (_, _name: string, def: string) => def).replaceAll('$$', '$');
}
