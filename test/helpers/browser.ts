/**
 * Browser tests of the web client: Debian's Chromium driven by playwright-core against a real
 * `flowlens serve` child process (node --import tsx src/cli/main.ts serve) on a free port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { newestMtime } from '../bench/flowlens.js';
import { REPO_ROOT, freePort, CLI_ARGV } from './cli.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts');
export const WEB_DIST = join(REPO_ROOT, 'dist', 'web');

/** Flags these machines need: no sandbox (root), no GPU, nothing fetched from the network. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium)`;
}

/** Builds the web client when dist/web is missing or older than web/ (npm run build does it too). */
export function ensureWebBuilt(): void {
  const index = join(WEB_DIST, 'index.html');
  if (existsSync(index) && statSync(index).mtimeMs >= newestMtime(join(REPO_ROOT, 'web'))) return;
  const r = spawnSync(
    process.execPath,
    [join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`vite build failed:\n${r.stdout}\n${r.stderr}`);
}

export interface ServeProcess {
  base: string;
  port: number;
  db: string;
  /** What the server printed (for failure messages). */
  output(): string;
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same port and store. */
  restart(): Promise<void>;
}

async function waitForHealth(base: string, child: ChildProcess, output: () => string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`flowlens serve exited with ${child.exitCode}:\n${output()}`);
    try {
      const r = await fetch(`${base}/health`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) throw new Error(`flowlens serve did not answer /health within ${timeoutMs} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startServe(dir: string, extraArgs: string[] = []): Promise<ServeProcess> {
  const port = await freePort();
  const db = join(dir, 'flows.duckdb');
  const base = `http://127.0.0.1:${port}`;
  let log = '';
  let child: ChildProcess;
  const env: NodeJS.ProcessEnv = { NO_COLOR: '1' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOWLENS_')) env[k] = v;

  const launch = async () => {
    child = spawn(process.execPath, [...CLI_ARGV, 'serve', '--port', String(port), '--db', db, ...extraArgs], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-20_000)));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (log = (log + d).slice(-20_000)));
    await waitForHealth(base, child, () => log);
  };
  const stop = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  await launch();
  return {
    base,
    port,
    db,
    output: () => log,
    stop,
    restart: async () => {
      await stop();
      await launch();
    },
  };
}

export interface BrowserSession {
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught page errors since the page opened (or the last clear). */
  errors: string[];
  close(): Promise<void>;
}

/** Headless Chromium with a fresh profile; one page that records console errors. */
export async function openBrowser(viewport = { width: 1366, height: 860 }, colorScheme: 'light' | 'dark' = 'light'): Promise<BrowserSession> {
  const profile = mkdtempSync(join(tmpdir(), 'flowlens-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
    colorScheme,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  return {
    context,
    page,
    errors,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}
