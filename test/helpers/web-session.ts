/**
 * A browser test's setup in one call: the web client built, a temporary folder (optionally filled
 * before the server starts, e.g. by `flowlens import`), `flowlens serve` on it and a Chromium page;
 * `close()` undoes all of it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { type BrowserSession, ensureWebBuilt, openBrowser, type ServeProcess, startServe } from './browser.js';

export interface WebSession {
  dir: string;
  serve: ServeProcess;
  browser: BrowserSession;
  page: Page;
  close(): Promise<void>;
}

export async function startWebSession(prefix: string, prepare?: (dir: string) => Promise<void>): Promise<WebSession> {
  ensureWebBuilt();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let serve: ServeProcess | undefined;
  let browser: BrowserSession | undefined;
  const close = async () => {
    await browser?.close();
    await serve?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await prepare?.(dir);
    serve = await startServe(dir);
    browser = await openBrowser();
  } catch (err) {
    await close();
    throw err;
  }
  return { dir, serve, browser, page: browser.page, close };
}
